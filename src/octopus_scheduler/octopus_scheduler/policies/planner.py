"""Placeholder, replaced below."""

from __future__ import annotations

from .fifo import ClosedPacking


class Planner(ClosedPacking):
    name = "planner"
