"""Quantities with units: parse ``"120 min"``, ``{value: 5, unit: mL}`` or a bare number."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from octopus_scheduler.core.errors import SpecError

# unit -> (dimension, factor to the canonical unit of that dimension)
UNITS: dict[str, tuple[str, float]] = {
    "s": ("time", 1.0),
    "sec": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "uL": ("volume", 1.0),
    "mL": ("volume", 1000.0),
    "L": ("volume", 1_000_000.0),
    "mg": ("mass", 1.0),
    "g": ("mass", 1000.0),
    "mM": ("concentration", 1.0),
    "M": ("concentration", 1000.0),
    "C": ("temperature", 1.0),
    "degC": ("temperature", 1.0),
    "C/min": ("heating rate", 1.0),
    "degC/min": ("heating rate", 1.0),
    "ms": ("time", 0.001),
    "kN": ("force", 1.0),
    "N": ("force", 0.001),
    "V": ("potential", 1.0),
    "mV": ("potential", 0.001),
    "mV/s": ("scan rate", 1.0),
    "V/s": ("scan rate", 1000.0),
    "rpm": ("speed", 1.0),
    "uL/s": ("flow", 1.0),
    "mL/min": ("flow", 1000.0 / 60.0),
    "nm": ("length", 1.0),
    "count": ("count", 1.0),
    "": ("none", 1.0),
}


def dimension(unit: str, field: str, error: Callable[[str, str], SpecError]) -> str:
    """The dimension of ``unit`` or an error naming ``field``."""
    if unit not in UNITS:
        raise error(field, f"unknown unit '{unit}' (known: {', '.join(u for u in UNITS if u)})")
    return UNITS[unit][0]


def to_canonical(
    raw: Any,
    unit: str,
    field: str,
    error: Callable[[str, str], SpecError],
) -> float:
    """Convert ``raw`` to the canonical unit of ``unit``'s dimension.

    ``raw`` is a number (already in ``unit``), a string ``"<number> <unit>"`` or a mapping
    ``{value, unit}``. A unit of another dimension is an error.
    """
    want_dim, want_factor = UNITS[unit]
    value: Any
    given_unit = unit
    if isinstance(raw, bool):
        raise error(field, f"expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        value = raw
    elif isinstance(raw, str):
        parts = raw.strip().split(None, 1)
        if not parts:
            raise error(field, "empty value")
        value = parts[0]
        if len(parts) == 2:
            given_unit = parts[1].strip()
    elif isinstance(raw, Mapping):
        if "value" not in raw:
            raise error(field, "a quantity mapping needs 'value' (and 'unit')")
        value = raw["value"]
        given_unit = str(raw.get("unit", unit))
    else:
        raise error(field, f"expected a quantity, got {type(raw).__name__}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise error(field, f"'{value}' is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise error(field, "value must be finite")
    if given_unit not in UNITS:
        raise error(field, f"unknown unit '{given_unit}'")
    dim, factor = UNITS[given_unit]
    if dim != want_dim:
        raise error(field, f"wrong unit '{given_unit}': expected a {want_dim} unit like '{unit}'")
    return number * factor


def canonical_factor(unit: str) -> float:
    """Factor from ``unit`` to its canonical unit (e.g. min -> 60)."""
    return UNITS[unit][1]


def parse_duration_s(raw: Any, field: str, error: Callable[[str, str], SpecError]) -> float:
    """A duration in seconds; bare numbers are seconds."""
    seconds = to_canonical(raw, "s", field, error)
    if seconds < 0:
        raise error(field, "duration must not be negative")
    return seconds
