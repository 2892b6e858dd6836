"""Driver names (as written in module descriptions) -> back-end factories, imported lazily.

Registering a driver is one line in :data:`DRIVERS`: ``"name": "package.module:Attribute"``.
The module is imported only when a description uses the driver, so a missing or
broken driver fails with a clear error naming the device, and only then.

The attribute is either
* a :class:`DeviceBackend` subclass: called as ``Class(device_name, **settings)``
  (the description's ``settings`` become keyword arguments, e.g. ``port``, ``baudrate``), or
* any other callable: called as ``factory(spec, context)`` with the :class:`DeviceSpec`
  and the lab-wide :class:`DriverContext` (lab clock, seed, sample ledger).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any

from octopus_modules.drivers.backend import DeviceBackend
from octopus_modules.lab_clock import LabClock, resolve_clock
from octopus_modules.sim.sample_ledger import SampleLedger

if TYPE_CHECKING:
    from octopus_modules.description import DeviceSpec, ModuleDescription

DRIVERS: dict[str, str] = {
    "simulated": "octopus_modules.drivers.simulated:create_simulated_backend",
    "namur_stirrer": "octopus_modules.drivers.serial_namur_stirrer:NamurStirrer",
    "syringe_pump": "octopus_modules.drivers.serial_ne1000_pump:Ne1000Pump",
}


class DriverError(RuntimeError):
    """A driver could not be found or could not build its back end; names the device."""


@dataclass
class DriverContext:
    """Lab-wide settings shared by the back ends of one module (or a whole simulated lab).

    ``DriverContext(time_scale=600)`` is short for ``DriverContext(clock=ScaledClock(600))``.
    """

    #: the process's lab clock: simulated devices wait on it (ScaledClock(600): a 10-hour day
    #: in a minute); never None once built (None given: a ScaledClock of ``time_scale``, or 1)
    clock: LabClock | None = None
    #: base seed of simulated noise and faults; each device derives its own from its name
    seed: int = 0
    #: what is in each sample (simulated chemistry), shared by pumps and spectrometers
    ledger: SampleLedger = field(default_factory=SampleLedger)
    time_scale: InitVar[float | None] = None

    def __post_init__(self, time_scale: float | None) -> None:
        self.clock = resolve_clock(self.clock, time_scale)


def resolve_driver(name: str) -> Callable[..., Any]:
    """The factory registered under ``name``; DriverError if unknown or not importable."""
    target = DRIVERS.get(name)
    if target is None:
        raise DriverError(f"unknown driver '{name}'; known: {', '.join(sorted(DRIVERS))}")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverError(f"driver '{name}': cannot import {module_name}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise DriverError(f"driver '{name}': {module_name} has no '{attribute}'") from None


def create_backend(spec: DeviceSpec, context: DriverContext | None = None) -> DeviceBackend:
    """Build the back end of one described device."""
    context = context or DriverContext()
    where = f"devices.{spec.name}"
    try:
        factory = resolve_driver(spec.driver)
    except DriverError as exc:
        raise DriverError(f"{where}.driver: {exc}") from None
    try:
        if isinstance(factory, type) and issubclass(factory, DeviceBackend):
            backend = factory(spec.name, **dict(spec.settings))
        else:
            backend = factory(spec, context)
    except (TypeError, ValueError) as exc:
        raise DriverError(f"{where}.settings: driver '{spec.driver}' refused them: {exc}") from None
    if not isinstance(backend, DeviceBackend):
        raise DriverError(f"{where}.driver: '{spec.driver}' did not build a DeviceBackend")
    if backend.kind not in (spec.kind, "generic"):
        raise DriverError(
            f"{where}.kind: driver '{spec.driver}' drives a '{backend.kind}', not a '{spec.kind}'"
        )
    return backend


def create_backends(
    description: ModuleDescription, context: DriverContext | None = None
) -> dict[str, DeviceBackend]:
    """Back ends for every device of a module, by device name."""
    context = context or DriverContext()
    return {spec.name: create_backend(spec, context) for spec in description.devices}


def check_backends(description: ModuleDescription, backends: Mapping[str, DeviceBackend]) -> None:
    """Raise DriverError if a back end is missing or does not accept an action the tasks use."""
    for spec in description.devices:
        if spec.name not in backends:
            raise DriverError(f"devices.{spec.name}: no back end")
    for task in description.tasks:
        for i, step in enumerate(task.steps):
            for j, action in enumerate(step.actions):
                accepted = backends[action.device].actions()
                if action.action not in accepted:
                    raise DriverError(
                        f"tasks.{task.name}.steps[{i}].actions[{j}].action: back end of "
                        f"'{action.device}' does not accept '{action.action}' "
                        f"(accepts: {', '.join(sorted(accepted))})"
                    )
