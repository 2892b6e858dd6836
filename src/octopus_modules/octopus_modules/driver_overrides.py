"""Per-lab driver choices: the same module description runs simulated or on real hardware.

A lab description says, per device, which driver to use and its settings (a serial port, a baud
rate); everything else of the module description stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from octopus_modules.description import DescriptionError, ModuleDescription

_KEYS = {"driver", "settings"}


def apply_driver_overrides(
    description: ModuleDescription, overrides: Mapping[str, Any]
) -> ModuleDescription:
    """``{device: {driver: name, settings: {...}}}`` -> a description using those drivers."""
    known = {d.name for d in description.devices}
    for device, override in overrides.items():
        where = f"driver_overrides.{device}"
        if device not in known:
            raise DescriptionError(
                f"{where}: {description.module} has no device '{device}' "
                f"(devices: {', '.join(sorted(known))})"
            )
        if not isinstance(override, Mapping) or not set(override) <= _KEYS:
            raise DescriptionError(f"{where}: expected a mapping with 'driver' and 'settings'")
        if not isinstance(override.get("settings", {}), Mapping):
            raise DescriptionError(f"{where}.settings: expected a mapping")
    devices = tuple(
        replace(
            spec,
            driver=str(overrides[spec.name].get("driver", spec.driver)),
            settings=dict(overrides[spec.name].get("settings", spec.settings)),
        )
        if spec.name in overrides
        else spec
        for spec in description.devices
    )
    return replace(description, devices=devices)
