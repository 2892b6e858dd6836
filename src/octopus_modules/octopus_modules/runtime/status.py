"""Snapshots of a module's state, made to be published (flat lists of named things)."""

from __future__ import annotations

from dataclasses import dataclass

DEVICE_STATES = ("idle", "busy", "error", "disconnected")


@dataclass(frozen=True)
class DeviceStatus:
    name: str
    kind: str
    state: str  # one of DEVICE_STATES
    holder: str = ""  # goal id holding the device, if busy
    message: str = ""  # last error, if any


@dataclass(frozen=True)
class SlotStatus:
    type: str
    capacity: int
    free: int
    #: (position, holder sample id) of every occupied position
    occupied: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class ConsumableStatus:
    name: str
    stock: int
    low_stock: int
    unit: str
    low: bool


@dataclass(frozen=True)
class ModuleStatus:
    module: str
    revision: int  # increases on every change
    estop_engaged: bool
    estop_reason: str
    devices: tuple[DeviceStatus, ...]
    slots: tuple[SlotStatus, ...]
    consumables: tuple[ConsumableStatus, ...]
    running_goals: tuple[str, ...]
    warnings: tuple[str, ...]

    def device(self, name: str) -> DeviceStatus:
        return next(d for d in self.devices if d.name == name)

    def slot(self, type_name: str) -> SlotStatus:
        return next(s for s in self.slots if s.type == type_name)

    def consumable(self, name: str) -> ConsumableStatus:
        return next(c for c in self.consumables if c.name == name)
