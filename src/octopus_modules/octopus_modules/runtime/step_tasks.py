"""Running one step of a task as its own goal.

The scheduler plans steps, not tasks: the active "close reactor" step of React holds devices, its
standby "react" step holds none, and other jobs use the devices in between. So a scheduler sends
one goal per step (ExecuteTask.step_indices). Each step k of a multi-step task T is offered to the
runtime as a task "T#k" of its own: the same parameters, mask and scope; slots are occupied by the
task's first step and released by its last; consumables are taken by the first step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from octopus_modules.description import ModuleDescription, SlotUse, TaskSpec
from octopus_modules.runtime.goals import GoalRejected

SEPARATOR = "#"


def with_step_tasks(description: ModuleDescription) -> ModuleDescription:
    """The description plus a task per step of every multi-step task."""
    extra = [
        _step_task(task, index)
        for task in description.tasks
        if len(task.steps) > 1
        for index in range(len(task.steps))
    ]
    return replace(description, tasks=description.tasks + tuple(extra))


def _step_task(task: TaskSpec, index: int) -> TaskSpec:
    last = len(task.steps) - 1
    slots = tuple(
        SlotUse(use.type, use.use if _keeps(use.use, index, last) else "use") for use in task.slots
    )
    return replace(
        task,
        name=f"{task.name}{SEPARATOR}{index}",
        steps=(task.steps[index],),
        slots=slots,
        consumes=task.consumes if index == 0 else (),
    )


def _keeps(use: str, index: int, last: int) -> bool:
    return (use == "occupy" and index == 0) or (use == "release" and index == last) or use == "use"


def runtime_task(description: ModuleDescription, task: str, step_indices: Sequence[int]) -> str:
    """The runtime task that runs ``step_indices`` of ``task`` (all steps: the task itself)."""
    spec = description.task(task)
    if spec is None or SEPARATOR in task:
        return task  # the runtime rejects it, naming the task
    indices = list(step_indices)
    if not indices or indices == list(range(len(spec.steps))):
        return task
    if len(indices) != 1:
        raise GoalRejected("step_indices", "give one step, or all of them in order")
    if not 0 <= indices[0] < len(spec.steps):
        raise GoalRejected(
            "step_indices[0]", f"task {task} has steps 0..{len(spec.steps) - 1}, not {indices[0]}"
        )
    return task if len(spec.steps) == 1 else f"{task}{SEPARATOR}{indices[0]}"
