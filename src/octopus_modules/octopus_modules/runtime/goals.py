"""Checking a goal against the module description before anything moves.

``prepare_goal`` turns a raw goal (task name, parameters, slot positions, sample
ids) into a :class:`PreparedGoal` or raises :class:`GoalRejected` naming the
field: ``task``, ``params.Volume``, ``slots.stirrer[1]``, ``samples``, ...
It only looks at the description; the runtime checks live state (devices held,
slots occupied, stock) when it accepts the goal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from octopus_modules.description import ModuleDescription, StepSpec, TaskSpec
from octopus_modules.expressions import ExpressionError
from octopus_modules.parameters import ParameterError


class GoalRejected(ValueError):
    """The goal does not fit the description or the module's state; names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class StepEstimate:
    """One step of a goal as a planner sees it."""

    sample: str  # "" for per-batch tasks
    step_index: int
    name: str
    mode: str  # active | standby
    duration_s: float  # expected, unscaled
    #: devices the step holds: this module's by name, other modules' as "Module/Device"
    mask: tuple[str, ...]


@dataclass(frozen=True)
class PreparedGoal:
    goal_id: str
    task: TaskSpec
    params: Mapping[str, Any]
    samples: tuple[str, ...]
    #: slot type -> one position per sample, for the slot types the task declares
    positions: Mapping[str, tuple[int, ...]]
    #: consumable name -> amount this goal takes
    consumption: Mapping[str, int]
    #: local devices each step holds (empty for standby steps), in step order
    step_devices: tuple[frozenset[str], ...]
    expected_duration_s: float

    @property
    def devices(self) -> frozenset[str]:
        """Every local device the task drives or masks: all must be idle to accept it."""
        return frozenset().union(*self.step_devices)

    def environment(self, sample_index: int | None) -> dict[str, Any]:
        """Names visible to the task's expressions, for one sample or the batch."""
        primary = self.task.slots[0].type if self.task.slots else None
        positions = list(self.positions.get(primary, ())) if primary else []
        env = self.task.environment(self.params, list(self.samples), positions)
        env["goal_id"] = self.goal_id
        if sample_index is not None:
            env.update(
                sample=self.samples[sample_index],
                position=positions[sample_index] if positions else 0,
                sample_index=sample_index,
            )
        return env

    def step_estimates(self) -> list[StepEstimate]:
        """Every step in execution order with its expected duration and mask (for planners)."""
        out = []
        for sample_index, step_index, step in self.schedule():
            env = self.environment(sample_index)
            if step.mode == "standby":
                mask: tuple[str, ...] = ()
            else:
                declared = self.task.mask if step.mask is None else step.mask
                foreign = tuple(m for m in declared if "/" in m)
                mask = tuple(sorted(self.step_devices[step_index])) + foreign
            sample = self.samples[sample_index] if sample_index is not None else ""
            out.append(
                StepEstimate(
                    sample, step_index, step.name, step.mode, step.expected_duration_s(env), mask
                )
            )
        return out

    def schedule(self) -> list[tuple[int | None, int, StepSpec]]:
        """(sample index or None for the batch, step index, step) in execution order."""
        steps = list(enumerate(self.task.steps))
        if self.task.scope == "per_batch":
            return [(None, i, step) for i, step in steps]
        return [(s, i, step) for s in range(len(self.samples)) for i, step in steps]


def prepare_goal(
    description: ModuleDescription,
    goal_id: str,
    task_name: str,
    params: Mapping[str, Any],
    slots: Mapping[str, Sequence[int]] | None = None,
    samples: Sequence[str] | None = None,
) -> PreparedGoal:
    task = description.task(task_name)
    if task is None:
        known = ", ".join(t.name for t in description.tasks)
        raise GoalRejected(
            "task", f"unknown task '{task_name}' of {description.module} (tasks: {known})"
        )
    if not goal_id:
        raise GoalRejected("goal_id", "empty")
    try:
        checked = task.check_params(params, "params")
    except ParameterError as exc:
        field, _, reason = str(exc).partition(": ")
        raise GoalRejected(field, reason) from None
    slots = dict(slots or {})
    for type_name in slots:
        if description.slot(type_name) is None:
            known = ", ".join(s.type for s in description.slots) or "none"
            raise GoalRejected(f"slots.{type_name}", f"unknown slot type (module has: {known})")
    sample_ids = _samples(task, goal_id, slots, samples)
    positions: dict[str, tuple[int, ...]] = {}
    for use in task.slots:
        positions[use.type] = _positions(description, use.type, slots, len(sample_ids), task)
    try:
        consumption = task.consumption(checked, len(sample_ids))
        expected = task.expected_duration_s(checked, len(sample_ids))
    except ExpressionError as exc:
        raise GoalRejected(
            "params", f"the task's formulas fail for these parameters: {exc}"
        ) from None
    step_devices = tuple(description.local_mask(task, step) for step in task.steps)
    return PreparedGoal(
        goal_id, task, checked, tuple(sample_ids), positions, consumption, step_devices, expected
    )


def _samples(
    task: TaskSpec,
    goal_id: str,
    slots: Mapping[str, Sequence[int]],
    samples: Sequence[str] | None,
) -> list[str]:
    if samples:
        ids = [str(s) for s in samples]
        for i, sample in enumerate(ids):
            if not sample:
                raise GoalRejected(f"samples[{i}]", "empty sample id")
        if len(set(ids)) != len(ids):
            raise GoalRejected("samples", "duplicate sample id")
        return ids
    # no sample ids: one anonymous sample per position of the task's first slot type
    count = len(slots.get(task.slots[0].type, ())) if task.slots else 0
    return [f"{goal_id}#{i}" for i in range(max(count, 1))]


def _positions(
    description: ModuleDescription,
    type_name: str,
    slots: Mapping[str, Sequence[int]],
    n_samples: int,
    task: TaskSpec,
) -> tuple[int, ...]:
    where = f"slots.{type_name}"
    if type_name not in slots:
        raise GoalRejected(where, f"task {task.name} needs one {type_name} position per sample")
    raw = slots[type_name]
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise GoalRejected(where, "expected a list of positions")
    if len(raw) != n_samples:
        raise GoalRejected(where, f"{len(raw)} position(s) for {n_samples} sample(s)")
    capacity = description.slot(type_name).capacity  # type: ignore[union-attr]
    seen: set[int] = set()
    for i, position in enumerate(raw):
        if isinstance(position, bool) or not isinstance(position, int):
            raise GoalRejected(f"{where}[{i}]", f"expected an integer position, got {position!r}")
        if not 0 <= position < capacity:
            raise GoalRejected(
                f"{where}[{i}]", f"position {position} out of range 0..{capacity - 1}"
            )
        if position in seen:
            raise GoalRejected(f"{where}[{i}]", f"position {position} given twice")
        seen.add(position)
    return tuple(raw)
