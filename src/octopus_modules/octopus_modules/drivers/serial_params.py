"""Validation of action parameters shared by the serial back ends.

Everything is checked before a byte is sent, and every error names the
parameter, so a bad goal fails with a clear message instead of a device fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from octopus_modules.drivers.backend import DeviceBackend, DeviceError


def number_param(backend: DeviceBackend, action: str, params: Mapping[str, Any], key: str) -> float:
    if key not in params:
        raise DeviceError(backend.name, action, f"missing parameter {key}")
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(backend.name, action, f"parameter {key} must be a number, got {value!r}")
    return float(value)


def optional_number_param(
    backend: DeviceBackend, action: str, params: Mapping[str, Any], key: str
) -> float | None:
    if params.get(key) is None:
        return None
    return number_param(backend, action, params, key)


def check_range(
    backend: DeviceBackend, action: str, key: str, value: float, low: float, high: float
) -> None:
    if not low <= value <= high:  # also rejects NaN
        raise DeviceError(backend.name, action, f"{key}={value:g} out of range [{low:g}, {high:g}]")


def check_duration(backend: DeviceBackend, action: str, duration_s: float | None) -> None:
    if duration_s is not None and not duration_s >= 0:
        raise DeviceError(backend.name, action, f"duration_s={duration_s:g} must be >= 0")
