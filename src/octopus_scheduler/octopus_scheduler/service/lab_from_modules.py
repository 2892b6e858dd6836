"""The core's Lab from the module descriptions the module nodes run (octopus_modules' format).

The module description is the one source of truth for a live lab: devices, slots, tasks and their
steps, masks and duration formulas. This module turns it into the scheduler core's model:

- device names are lab-wide; a mask entry "UV-Vis/UV_RobotArm" names a device of another module;
- slot types a task ``occupy``s are where samples sit while they visit the module;
- step durations keep the module's formulas (``3.7 + Volume / Rate``): the core asks
  :class:`FormulaDuration` with the samples' parameters in canonical units, which are converted
  back to the module's units before the formula is evaluated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from octopus_modules.description import ModuleDescription
from octopus_modules.description import StepSpec as ModuleStep
from octopus_modules.description import TaskSpec as ModuleTask
from octopus_scheduler.core.lab import DurationSpec, Lab, load_lab
from octopus_scheduler.core.units import UNITS

# Module descriptions spell a few units differently from the core's table.
UNIT_ALIASES = {"degC": "C", "ml": "mL", "ul": "uL", "piece": "count", "pieces": "count"}
NUMERIC_TYPES = ("float", "int")
KNOWN_DURATIONS = 100_000  # answers a formula keeps (a few MB at most)


def core_unit(unit: str) -> str:
    unit = UNIT_ALIASES.get(unit, unit)
    return unit if unit in UNITS else ""


@dataclass(frozen=True)
class FormulaDuration(DurationSpec):
    """A step duration given by a module description's formula."""

    step: ModuleStep | None = None
    task: ModuleTask | None = None
    # the scheduler asks the same durations again and again (every queued job on every dispatch,
    # every projection); a formula is pure, so its answers are kept
    _known: dict[Any, float] = dataclasses.field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def expected(self, n_samples: int, params: Sequence[Mapping[str, float]]) -> float:
        if self.step is None or self.task is None:
            return super().expected(n_samples, params)
        try:
            key = (n_samples, tuple(tuple(sorted(p.items())) for p in params))
            hash(key)
        except TypeError:  # a parameter value that cannot be a key: evaluate each time
            return self._evaluate(n_samples, params)
        seconds = self._known.get(key)
        if seconds is None:
            if len(self._known) >= KNOWN_DURATIONS:
                self._known.clear()
            seconds = self._known[key] = self._evaluate(n_samples, params)
        return seconds

    def _evaluate(self, n_samples: int, params: Sequence[Mapping[str, float]]) -> float:
        assert self.step is not None and self.task is not None
        per_sample = [self._environment(p, n_samples) for p in params] or [
            self._environment({}, n_samples)
        ]
        if self.task.scope == "per_sample":
            return sum(max(0.0, self.step.expected_duration_s(env)) for env in per_sample)
        # a batch step lasts as long as its longest sample needs (a batch React of max Time)
        return max(max(0.0, self.step.expected_duration_s(env)) for env in per_sample)

    def _environment(self, canonical: Mapping[str, float], n_samples: int) -> dict[str, Any]:
        assert self.task is not None
        values: dict[str, Any] = {}
        for spec in self.task.parameters:
            if spec.name in canonical and spec.type in NUMERIC_TYPES:
                factor = UNITS[core_unit(spec.unit)][1]
                values[spec.name] = canonical[spec.name] / factor
            elif spec.name in canonical:
                values[spec.name] = canonical[spec.name]
            else:
                values[spec.name] = spec.default
        samples = [f"s{i}" for i in range(max(n_samples, 1))]
        return self.task.environment(values, samples, list(range(len(samples))))


def lab_mapping(
    descriptions: Iterable[ModuleDescription], masks: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """The ``load_lab`` mapping of a lab made of these modules (durations filled in later)."""
    modules: dict[str, Any] = {}
    for description in descriptions:
        occupied = [
            use.type for task in description.tasks for use in task.slots if use.use == "occupy"
        ]
        entry: dict[str, Any] = {
            "devices": [d.name for d in description.devices],
            "slots": {
                s.type: {"capacity": s.capacity, "zone_by": s.zone_by} if s.zone_by else s.capacity
                for s in description.slots
            },
            "consumables": {
                c.name: {"stock": c.stock, "low": c.low_stock} for c in description.consumables
            },
            "tasks": {task.name: _task_mapping(task) for task in description.tasks},
        }
        if occupied:
            entry["sample_slots"] = list(dict.fromkeys(occupied))
        modules[description.module] = entry
    return {"modules": modules, "masks": {k: list(v) for k, v in (masks or {}).items()}}


def _task_mapping(task: ModuleTask) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for spec in task.parameters:
        if spec.type == "str" and spec.choices:
            params[spec.name] = {"choices": [str(c) for c in spec.choices]} | (
                {"default": spec.default} if spec.default is not None else {"required": True}
            )
            continue
        if spec.type not in NUMERIC_TYPES:
            continue  # free text and lists are the module's own business
        entry: dict[str, Any] = {"unit": core_unit(spec.unit)}
        for key, value in (("min", spec.minimum), ("max", spec.maximum), ("default", spec.default)):
            if value is not None:
                entry[key] = value
        if spec.required:
            entry["required"] = True
        if spec.type == "int":
            entry["integer"] = True
        params[spec.name] = entry
    # the core tracks stock of what a task always takes (a vial, a cuvette); amounts that depend
    # on parameters are counted by the module itself
    consumes = {c.name: int(c.amount.evaluate({})) for c in task.consumes if not c.amount.names}
    return {
        "per": "sample" if task.scope == "per_sample" else "batch",
        "params": params,
        **({"reports": list(task.reports)} if task.reports is not None else {}),
        "consumes": {k: v for k, v in consumes.items() if v > 0},
        "mask": [device_name(name) for name in task.mask],
        "steps": [
            {"name": step.name, "kind": step.mode}
            | ({"devices": [device_name(n) for n in step.mask]} if step.mask is not None else {})
            for step in task.steps
        ],
    }


def device_name(mask_entry: str) -> str:
    """ "UV-Vis/UV_RobotArm" -> "UV_RobotArm": device names are unique across the lab."""
    return mask_entry.rsplit("/", 1)[-1]


def lab_from_modules(
    descriptions: Sequence[ModuleDescription], masks: Mapping[str, Sequence[str]] | None = None
) -> Lab:
    """The core's Lab; LabError names the field of the first problem."""
    lab = load_lab(lab_mapping(descriptions, masks))
    by_module = {d.module: d for d in descriptions}
    modules = {}
    for name, module in lab.modules.items():
        tasks = {}
        for task_name, task in module.tasks.items():
            source = by_module[name].task(task_name)
            assert source is not None
            steps = tuple(
                dataclasses.replace(step, duration=FormulaDuration(step=source_step, task=source))
                for step, source_step in zip(task.steps, source.steps, strict=True)
            )
            tasks[task_name] = dataclasses.replace(task, steps=steps)
        modules[name] = dataclasses.replace(module, tasks=tasks)
    return dataclasses.replace(lab, modules=modules)
