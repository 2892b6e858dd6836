"""From the core's StartStep decisions to module goals: parameters in the module's units and
concrete slot positions.

The core counts slots ("2 stirrer positions"); a module needs positions ("stirrer 3 and 4 hold
samples s1 and s2"). :class:`SlotPositions` keeps which sample sits where, from the task that
occupies a position to the one that releases it, as the module description says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from octopus_modules.description import ModuleDescription
from octopus_scheduler.core.decisions import StartStep
from octopus_scheduler.core.units import UNITS
from octopus_scheduler.service.lab_from_modules import NUMERIC_TYPES, core_unit


@dataclass(frozen=True)
class StepGoal:
    """What one ExecuteTask goal carries (message-free, so the mapping is tested without ROS)."""

    module: str
    step_id: str
    job_id: str
    experiment_id: str
    task: str
    step_index: int
    parameters: Mapping[str, Any]
    #: slot type -> [(position, sample id)]
    slots: Mapping[str, Sequence[tuple[int, str]]]
    expected_s: float
    samples: tuple[str, ...] = ()
    attempt: int = 0
    #: the goal runs every step of the task (a policy that plans whole tasks, e.g. fcfs);
    #: ``step_index`` is then the task's last step
    whole_task: bool = False
    #: lab time at which the core started the step (the module counts its lab time from there)
    started_at: float | None = None

    @property
    def task_id(self) -> str:
        """The module's goal id: a retry is a new goal (a module answers a re-sent id with its
        stored result), a re-send after a restart is the same one."""
        return self.step_id if self.attempt == 0 else f"{self.step_id}~retry{self.attempt}"


class SlotError(RuntimeError):
    """No free position although the core counted one: core and module disagree."""


@dataclass
class SlotPositions:
    capacities: dict[tuple[str, str], int]
    #: (module, slot type) -> {position: sample}
    taken: dict[tuple[str, str], dict[int, str]] = field(default_factory=dict)

    def positions_for(self, module: str, slot_type: str, samples: Sequence[str]) -> list[int]:
        """The positions of these samples, assigning the lowest free ones to newcomers."""
        key = (module, slot_type)
        taken = self.taken.setdefault(key, {})
        where = {sample: position for position, sample in taken.items()}
        positions = []
        for sample in samples:
            if sample not in where:
                free = next((p for p in range(self.capacities[key]) if p not in taken), None)
                if free is None:
                    raise SlotError(f"{module}.{slot_type}: no free position for {sample}")
                taken[free] = sample
                where[sample] = free
            positions.append(where[sample])
        return positions

    def release(self, module: str, slot_type: str, samples: Sequence[str]) -> None:
        taken = self.taken.get((module, slot_type), {})
        for position in [p for p, s in taken.items() if s in samples]:
            del taken[position]

    def samples(self) -> list[str]:
        return [s for taken in self.taken.values() for s in taken.values()]

    def release_samples(self, samples: Sequence[str]) -> None:
        """A job ended: its samples sit nowhere any more."""
        for taken in self.taken.values():
            for position in [p for p, s in taken.items() if s in samples]:
                del taken[position]


class StepGoalMapper:
    def __init__(self, descriptions: Sequence[ModuleDescription]) -> None:
        self.descriptions = {d.module: d for d in descriptions}
        self.positions = SlotPositions(
            {(d.module, s.type): s.capacity for d in descriptions for s in d.slots}
        )

    def add(self, description: ModuleDescription) -> None:
        """A module that joined the lab while it runs."""
        self.descriptions[description.module] = description
        for slot in description.slots:
            self.positions.capacities[(description.module, slot.type)] = slot.capacity

    def goal(self, decision: StartStep) -> StepGoal:
        description = self.descriptions[decision.module]
        task = description.task(decision.task)
        if task is None:
            raise KeyError(f"{decision.module} has no task {decision.task}")
        index = next((i for i, s in enumerate(task.steps) if s.name == decision.step), None)
        whole_task = index is None and decision.step == decision.task  # merged by the policy
        if index is None:
            if not whole_task:
                raise KeyError(f"{decision.module}.{decision.task} has no step {decision.step}")
            index = len(task.steps) - 1
        samples = list(decision.samples)
        slots = {
            use.type: list(
                zip(
                    self.positions.positions_for(decision.module, use.type, samples),
                    samples,
                    strict=True,
                )
            )
            for use in task.slots
        }
        return StepGoal(
            module=decision.module,
            step_id=decision.step_id,
            job_id=decision.job_id,
            experiment_id=samples[0] if samples else "",
            task=decision.task,
            step_index=index,
            parameters=module_parameters(description, decision.task, decision.params),
            slots=slots,
            expected_s=decision.expected_s,
            samples=tuple(samples),
            attempt=decision.attempt,
            whole_task=whole_task,
            started_at=decision.time,
        )

    def step_ended(self, goal: StepGoal) -> None:
        """After the last step of a task that releases positions, they are free again."""
        task = self.descriptions[goal.module].task(goal.task)
        assert task is not None
        if goal.step_index != len(task.steps) - 1:
            return
        for use in task.slots:
            if use.use == "release":
                self.positions.release(goal.module, use.type, goal.samples)


def module_parameters(
    description: ModuleDescription, task_name: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Core parameters (canonical units; a batch carries ``per_sample``) -> module units."""
    task = description.task(task_name)
    assert task is not None
    if "per_sample" in params:
        samples = list(params["per_sample"])
        # a batch runs with one set of values: the longest time, the first sample's others
        merged = dict(samples[0]) if samples else {}
        for name in merged:
            values = [s[name] for s in samples if name in s]
            if values and all(isinstance(v, int | float) for v in values):
                merged[name] = max(values) if name.lower().endswith("time") else values[0]
        params = merged
    out: dict[str, Any] = {}
    for spec in task.parameters:
        if spec.name not in params:
            continue
        value = params[spec.name]
        if spec.type in NUMERIC_TYPES and isinstance(value, int | float):
            value = value / UNITS[core_unit(spec.unit)][1]
            value = int(round(value)) if spec.type == "int" else float(value)
        out[spec.name] = value
    return out
