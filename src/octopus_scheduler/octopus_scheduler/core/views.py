"""What the scheduler core shows of its state: read-only views of jobs and steps, and the
decision for an event it ignored."""

from __future__ import annotations

from dataclasses import dataclass

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core.runs import StepRun


@dataclass(frozen=True)
class EventRejected(dc.Decision):
    """An event was invalid (unknown step, job already ended...) and was ignored, not logged."""

    event_type: str
    reason: str


@dataclass(frozen=True)
class JobView:
    job_id: str
    name: str
    owner: str
    priority: int
    state: str
    submit_time: float
    start_time: float | None
    end_time: float | None
    cycle: int
    cycles: int
    reason: str


@dataclass(frozen=True)
class StepView:
    step_id: str
    job_id: str
    module: str
    task: str
    step: str
    kind: str
    devices: tuple[str, ...]
    samples: tuple[str, ...]
    state: str
    start: float | None
    end: float | None
    expected_s: float


def in_view(end: float | None, ended_since: float | None) -> bool:
    """Whether a job that ended at ``end`` (None: it has not) is shown: every job when
    ``ended_since`` is None, else the live ones and those ended at that time or later."""
    return ended_since is None or end is None or end >= ended_since


def step_view(s: StepRun) -> StepView:
    return StepView(
        step_id=s.id,
        job_id=s.job.id,
        module=s.module,
        task=s.task,
        step=s.name,
        kind=s.kind,
        devices=tuple(sorted(s.devices)),
        samples=tuple(x.id for x in s.samples),
        state=s.state,
        start=s.start,
        end=s.end,
        expected_s=s.expected,
    )
