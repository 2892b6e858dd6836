"""``octopus_interfaces/msg/Schedule`` -> Gantt step records.

The conversion reads the message by field name (duck typing) and takes the enum values from the
message class when it has them, so it runs on real messages and on plain test doubles alike;
``octopus_interfaces`` is imported only by :func:`schedule_msg_type`, when a subscriber needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from octopus_client.gantt.model import GanttStep, State

# Mirrors of the TaskStep.msg constants, used when the object is not a generated message.
MODE_STANDBY = 1
STATE_PLANNED = 0
STATE_READY = 1
STATE_RUNNING = 2
STATE_SUCCEEDED = 3
STATE_FAILED = 4
STATE_CANCELLED = 5


@dataclass(frozen=True)
class ScheduleSnapshot:
    """What one Schedule message says, as plain data."""

    steps: list[GanttStep]
    stamp: float | None  # when the scheduler computed it (None if unstamped)
    policy: str = ""
    job_states: dict[str, int] = field(default_factory=dict)


def schedule_msg_type() -> type:
    """The generated Schedule message class (imported lazily: needs the built workspace)."""
    from octopus_interfaces.msg import Schedule

    return Schedule


def time_to_seconds(stamp: Any) -> float | None:
    """builtin_interfaces/Time -> float seconds; zero means "not set" in our messages."""
    seconds = float(stamp.sec) + float(stamp.nanosec) * 1e-9
    return seconds if seconds > 0 else None


def snapshot_from_schedule_msg(msg: Any) -> ScheduleSnapshot:
    owners = {job.id: job.owner for job in msg.jobs}
    names = {job.id: job.name for job in msg.jobs}
    steps = [
        converted
        for task_step in msg.steps
        if (converted := step_from_task_step(task_step, owners, names)) is not None
    ]
    return ScheduleSnapshot(
        steps=steps,
        stamp=time_to_seconds(msg.header.stamp),
        policy=str(msg.policy),
        job_states={job.id: int(job.state) for job in msg.jobs},
    )


def steps_from_schedule_msg(msg: Any) -> list[GanttStep]:
    return snapshot_from_schedule_msg(msg).steps


def step_from_task_step(
    msg: Any, owners: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> GanttStep | None:
    """One TaskStep -> a step record, or None when there is nothing to draw.

    Not drawn: a waiting step the planner has not placed yet (no planned times) and a cancelled
    step that never started.
    """
    consts = _Constants.of(msg)
    planned = _span(msg.planned_start, msg.planned_end)
    actual_start = time_to_seconds(msg.actual_start)
    actual_end = time_to_seconds(msg.actual_end)
    outcome = str(msg.outcome)
    code = int(msg.state)

    state: State
    if code in (consts.planned, consts.ready):
        if planned is None:
            return None
        state, (start, end) = "planned", planned
    elif code == consts.running:
        start = actual_start if actual_start is not None else (planned or (0.0, 0.0))[0]
        if start <= 0:
            return None
        expected_end = planned[1] if planned is not None else start
        state, end = "running", max(expected_end, start)
    elif code == consts.succeeded:
        span = _ran(actual_start, actual_end, planned)
        if span is None:
            return None
        state, (start, end) = "done", span
    elif code in (consts.failed, consts.cancelled):
        if actual_start is None:
            return None  # never ran: nothing happened on the lab to show
        span = _ran(actual_start, actual_end, planned)
        assert span is not None
        state, (start, end) = "failed", span
        if code == consts.cancelled and not outcome:
            outcome = "cancelled"
    else:
        raise ValueError(f"TaskStep of job {msg.job_id}: unknown state {code}")

    job_id = str(msg.job_id)
    return GanttStep(
        job_id=job_id,
        owner=(owners or {}).get(job_id, ""),
        module=str(msg.module),
        task=str(msg.task),
        step_name=str(msg.step_name) or f"step {int(msg.step_index)}",
        mode="standby" if int(msg.mode) == consts.standby else "active",
        devices=[str(d) for d in msg.devices],
        start=start,
        end=end,
        state=state,
        reason=outcome,
        step_id=f"{job_id}/{msg.experiment_id}/{msg.task_id}/{int(msg.step_index)}",
        job_name=(names or {}).get(job_id, ""),
        experiment_id=str(msg.experiment_id),
    )


def _span(start_stamp: Any, end_stamp: Any) -> tuple[float, float] | None:
    start, end = time_to_seconds(start_stamp), time_to_seconds(end_stamp)
    if start is None:
        return None
    return start, max(end if end is not None else start, start)


def _ran(
    actual_start: float | None, actual_end: float | None, planned: tuple[float, float] | None
) -> tuple[float, float] | None:
    """Actual times of an ended step (falling back on the plan for a missing stamp)."""
    start = actual_start if actual_start is not None else (planned[0] if planned else None)
    if start is None:
        return None
    end = actual_end if actual_end is not None else (planned[1] if planned else start)
    return start, max(end, start)


@dataclass(frozen=True)
class _Constants:
    standby: int
    planned: int
    ready: int
    running: int
    succeeded: int
    failed: int
    cancelled: int

    @classmethod
    def of(cls, msg: Any) -> _Constants:
        # Generated messages carry their constants; test doubles use the mirrored values.
        kind = type(msg)
        return cls(
            standby=getattr(kind, "MODE_STANDBY", MODE_STANDBY),
            planned=getattr(kind, "STATE_PLANNED", STATE_PLANNED),
            ready=getattr(kind, "STATE_READY", STATE_READY),
            running=getattr(kind, "STATE_RUNNING", STATE_RUNNING),
            succeeded=getattr(kind, "STATE_SUCCEEDED", STATE_SUCCEEDED),
            failed=getattr(kind, "STATE_FAILED", STATE_FAILED),
            cancelled=getattr(kind, "STATE_CANCELLED", STATE_CANCELLED),
        )
