"""Scheduler service objects -> octopus_interfaces messages (no node, no DDS)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from octopus_interfaces import msg
from octopus_interfaces.action import ExecuteTask
from octopus_scheduler.service.lab_service import JobSummary
from octopus_scheduler.service.step_goals import StepGoal
from octopus_scheduler.service.store import StepRecord

JOB_STATES = {
    "queued": msg.Job.STATE_QUEUED,
    "running": msg.Job.STATE_RUNNING,
    "held": msg.Job.STATE_HELD,
    "succeeded": msg.Job.STATE_SUCCEEDED,
    "failed": msg.Job.STATE_FAILED,
    "cancelled": msg.Job.STATE_CANCELLED,
}
STEP_STATES = {
    "planned": msg.TaskStep.STATE_PLANNED,
    "running": msg.TaskStep.STATE_RUNNING,
    "succeeded": msg.TaskStep.STATE_SUCCEEDED,
    "failed": msg.TaskStep.STATE_FAILED,
    "cancelled": msg.TaskStep.STATE_CANCELLED,
    "lost": msg.TaskStep.STATE_FAILED,
}


MAX_STAMP_S = 2**31 - 1  # builtin_interfaces/Time.sec is an int32


def stamp(seconds: float | None) -> Time:
    """A time; unknown (zero) for None, infinity or what Time cannot hold ("never" estimates)."""
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds < MAX_STAMP_S:
        return Time()
    whole = math.floor(seconds)
    return Time(sec=int(whole), nanosec=min(int((seconds - whole) * 1e9), 999_999_999))


def job_message(summary: JobSummary) -> msg.Job:
    view = summary.view
    return msg.Job(
        id=view.job_id,
        owner=view.owner,
        name=view.name,
        priority=view.priority,
        state=JOB_STATES[view.state],
        submitted=stamp(view.submit_time),
        started=stamp(view.start_time),
        finished=stamp(view.end_time),
        estimated_finish=stamp(summary.estimated_finish),
        progress=float(summary.progress),
        experiments_done=summary.experiments_done,
        experiments_total=summary.experiments_total,
        campaign=summary.campaign,
        message=view.reason,
    )


def planned_step(placement: Any) -> msg.TaskStep:
    """A placement of the core's plan (running or planned)."""
    job_id, _, rest = placement.step_id.partition("/")
    return msg.TaskStep(
        job_id=placement.job_id,
        experiment_id=rest.rsplit("/", 1)[0] if rest else "",
        task_id=placement.step_id,
        module=placement.module,
        task=placement.task,
        step_name=placement.step,
        mode=msg.TaskStep.MODE_STANDBY if placement.kind == "standby" else msg.TaskStep.MODE_ACTIVE,
        devices=list(placement.devices),
        planned_start=stamp(placement.start),
        planned_end=stamp(placement.end),
        actual_start=stamp(placement.start) if placement.state == "running" else Time(),
        state=STEP_STATES.get(placement.state, msg.TaskStep.STATE_PLANNED),
        outcome=placement.reason if placement.state != "running" else "",
    )


def executed_step(record: StepRecord, kind: str, devices: Sequence[str]) -> msg.TaskStep:
    """A step that ran (from the store), with the mode and devices its lab gives it."""
    return msg.TaskStep(
        job_id=record.job_id,
        task_id=record.step_id,
        module=record.module,
        task=record.task,
        step_name=record.step,
        mode=msg.TaskStep.MODE_STANDBY if kind == "standby" else msg.TaskStep.MODE_ACTIVE,
        devices=list(devices),
        actual_start=stamp(record.started_at),
        actual_end=stamp(record.ended_at),
        state=STEP_STATES.get(record.state, msg.TaskStep.STATE_FAILED),
        outcome=record.outcome,
    )


def schedule_message(
    policy: str,
    placements: Sequence[Any],
    executed: Sequence[StepRecord],
    now: float,
    shape: Callable[[str, str, str], tuple[str, Sequence[str]]],
) -> msg.Schedule:
    """Steps that ran (``shape(module, task, step)``: their kind and devices), then the plan."""
    schedule = msg.Schedule(
        policy=policy,
        steps=[
            executed_step(r, *shape(r.module, r.task, r.step))
            for r in executed
            if r.state != "running"
        ]
        + [planned_step(p) for p in placements],
    )
    schedule.header.stamp = stamp(now)
    return schedule


def measurements(measured_data: str) -> dict[str, Any]:
    """An ExecuteTask result's ``measured_data`` (JSON; kept as ``raw`` when it is not)."""
    try:
        return json.loads(measured_data) if measured_data else {}
    except json.JSONDecodeError:
        return {"raw": measured_data}


def results_json(experiments: Sequence[Any]) -> str:
    """GetJob's ``results_json``: each experiment's parameters and results."""
    return json.dumps(
        [
            {
                "experiment": e.experiment_id,
                "parameters": e.parameters,
                "measured": e.measured,
                "derived": e.derived,
            }
            for e in experiments
        ]
    )


def goal_message(
    goal: StepGoal, units: Mapping[str, str], planned_start: float | None = None
) -> ExecuteTask.Goal:
    """A step goal as ExecuteTask: numbers in ``value`` with the module's unit, the rest as text;
    ``planned_start``: the wall time at which the core started the step."""
    parameters = []
    for name, value in goal.parameters.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            parameters.append(msg.TaskParameter(name=name, text=str(value)))
        else:
            parameters.append(
                msg.TaskParameter(name=name, value=float(value), unit=units.get(name, ""))
            )
    return ExecuteTask.Goal(
        job_id=goal.job_id,
        experiment_id=goal.experiment_id,
        task_id=goal.task_id,
        task=goal.task,
        parameters=parameters,
        slots=[
            msg.SlotAssignment(slot_type=slot_type, index=position, experiment_id=sample)
            for slot_type, taken in goal.slots.items()
            for position, sample in taken
        ],
        step_indices=[] if goal.whole_task else [goal.step_index],  # empty: every step
        planned_start=stamp(planned_start),
    )


def resource_message(
    resources: Mapping[str, tuple[Mapping[str, tuple[int, int]], Mapping[str, str]]],
    down: set[str],
    now: float,
) -> msg.ResourceState:
    state = msg.ResourceState(
        modules=[
            msg.ModuleResources(
                module=module,
                up=module not in down,
                slots=[
                    msg.SlotState(slot_type=t, free=capacity - used, total=capacity)
                    for t, (used, capacity) in sorted(slots.items())
                ],
                busy_devices=[
                    msg.DeviceState(name=d, state=msg.DeviceState.STATE_BUSY, holder=holder)
                    for d, holder in sorted(busy.items())
                ],
            )
            for module, (slots, busy) in resources.items()
        ]
    )
    state.header.stamp = stamp(now)
    return state


def diagnostics_message(
    resources: Mapping[str, tuple[Mapping[str, tuple[int, int]], Mapping[str, str]]],
    down: set[str],
    jobs: Mapping[str, int],
    steps_in_flight: int,
    policy: str,
    now: float,
) -> DiagnosticArray:
    """/diagnostics: the scheduler (jobs by state, steps in flight) and each module (up, slots)."""
    statuses = [
        DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name="octopus: scheduler",
            message=f"policy {policy}, {steps_in_flight} step(s) in flight",
            hardware_id="scheduler",
            values=[KeyValue(key=f"jobs {s}", value=str(n)) for s, n in sorted(jobs.items())],
        )
    ]
    for module, (slots, busy) in resources.items():
        statuses.append(
            DiagnosticStatus(
                level=DiagnosticStatus.ERROR if module in down else DiagnosticStatus.OK,
                name=f"octopus: module {module}",
                message="no heartbeat" if module in down else f"up, {len(busy)} device(s) busy",
                hardware_id=module,
                values=[
                    KeyValue(key=f"free {t}", value=f"{capacity - used}/{capacity}")
                    for t, (used, capacity) in sorted(slots.items())
                ],
            )
        )
    array = DiagnosticArray(status=statuses)
    array.header.stamp = stamp(now)
    return array
