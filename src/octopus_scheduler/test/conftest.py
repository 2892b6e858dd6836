"""Fixtures for the scheduler core tests."""

from __future__ import annotations

import pytest

from octopus_scheduler.core.lab import Lab, load_lab
from octopus_scheduler.twin.examples import tiny_lab_data


@pytest.fixture
def tiny_lab() -> Lab:
    return load_lab(tiny_lab_data())
