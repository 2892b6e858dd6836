"""Fixtures for the scheduler core tests."""

from __future__ import annotations

import pytest

from octopus_scheduler.examples import tiny_lab_data
from octopus_scheduler.lab import Lab, load_lab


@pytest.fixture
def tiny_lab() -> Lab:
    return load_lab(tiny_lab_data())
