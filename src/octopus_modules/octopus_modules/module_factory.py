"""One call from "which module" to a ready runtime: the one way a module is built.

:func:`build_module` is what the module node serves (the runtime with a task per step, under a
:class:`~octopus_modules.runtime.goal_book.GoalBook`); :func:`build_module_runtime` is the
runtime alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from octopus_modules.description import (
    DescriptionError,
    ModuleDescription,
    builtin_description_names,
    load_builtin_description,
    load_description,
)
from octopus_modules.driver_overrides import apply_driver_overrides
from octopus_modules.drivers.registry import DriverContext, create_backends
from octopus_modules.lab_clock import LabClock, resolve_clock
from octopus_modules.runtime.goal_book import GoalBook
from octopus_modules.runtime.module_runtime import ModuleRuntime
from octopus_modules.runtime.step_tasks import with_step_tasks
from octopus_modules.sim.sample_ledger import SampleLedger


def resolve_description(reference: str) -> ModuleDescription:
    """A description from a file path, or a built-in one by name (``batch_synthesis``)."""
    path = Path(reference)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise DescriptionError(f"{reference}: no such description file")
        return load_description(path)
    if reference in builtin_description_names():
        return load_builtin_description(reference)
    raise DescriptionError(
        f"{reference}: neither a description file nor a built-in description "
        f"({', '.join(builtin_description_names())})"
    )


def build_module_runtime(
    description: ModuleDescription | str,
    *,
    clock: LabClock | None = None,
    time_scale: float | None = None,
    seed: int = 0,
    ledger_path: str | Path | None = None,
    action_timeout_factor: float = 3.0,
    action_timeout_margin_s: float = 10.0,
) -> ModuleRuntime:
    """Load the description, build every device's back end and the runtime over them.

    ``clock`` is the process's lab clock, shared by the runtime and the simulated devices;
    ``time_scale`` is short for ``clock=ScaledClock(time_scale)`` (1 if neither is given).
    ``ledger_path`` lets the simulated modules of one lab, each in its own process,
    share what is in each sample (pump of one module, spectrometer of another).
    """
    if isinstance(description, str):
        description = resolve_description(description)
    clock = resolve_clock(clock, time_scale)
    context = DriverContext(clock=clock, seed=seed, ledger=SampleLedger(ledger_path))
    backends = create_backends(description, context)
    return ModuleRuntime(
        description,
        backends,
        clock=clock,
        action_timeout_factor=action_timeout_factor,
        action_timeout_margin_s=action_timeout_margin_s,
    )


def build_module(
    description: ModuleDescription | str,
    *,
    driver_overrides: Mapping[str, Any] | None = None,
    clock: LabClock | None = None,
    time_scale: float | None = None,
    seed: int = 0,
    ledger_path: str | Path | None = None,
    action_timeout_factor: float = 3.0,
    action_timeout_margin_s: float = 10.0,
) -> GoalBook:
    """The module as the module node serves it: the description with the lab's driver
    overrides, its runtime (:func:`build_module_runtime`, with a task per step, so one goal runs
    one step) and the book of its goals. ``clock`` / ``time_scale``: as for
    :func:`build_module_runtime`."""
    if isinstance(description, str):
        description = resolve_description(description)
    if driver_overrides:
        description = apply_driver_overrides(description, driver_overrides)
    runtime = build_module_runtime(
        with_step_tasks(description),
        clock=clock,
        time_scale=time_scale,
        seed=seed,
        ledger_path=ledger_path,
        action_timeout_factor=action_timeout_factor,
        action_timeout_margin_s=action_timeout_margin_s,
    )
    return GoalBook(description, runtime)
