"""The published plan: run a copy of the core forward with expected durations.

For every policy the plan is what the policy itself would do if every step took its expected
time and no new job arrived; each planned placement carries the reason it waits.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.proposer import standin_proposer

if TYPE_CHECKING:
    from octopus_scheduler.core.scheduler_core import SchedulerCore

MAX_EVENTS = 200_000


@dataclass(frozen=True)
class Placement:
    step_id: str
    job_id: str
    module: str
    task: str
    step: str
    kind: str
    devices: tuple[str, ...]
    start: float
    end: float
    state: str  # running | planned
    reason: str


def project(core: SchedulerCore, horizon_s: float | None = None) -> list[Placement]:
    out: list[Placement] = []
    for s in core.running():
        start = s.start if s.start is not None else core.now
        out.append(_placement(s, start, max(core.now, start + s.expected), "running", "running"))
    _, planned = run_forward(core, horizon_s=horizon_s)
    return out + planned


def run_forward(
    core: SchedulerCore,
    *,
    horizon_s: float | None = None,
    dispatch_first: bool = False,
    configure: Callable[[SchedulerCore], None] | None = None,
    max_events: int = MAX_EVENTS,
) -> tuple[SchedulerCore, list[Placement]]:
    """Run a copy of ``core`` with expected durations and no new arrivals; return it and its
    placements. ``dispatch_first`` runs a dispatch round before anything finishes (for a policy
    that evaluates alternatives at the start of a round); ``configure`` adjusts the copy."""
    out: list[Placement] = []
    sim = core.fork()
    if configure is not None:
        configure(sim)
    if sim.proposer is None:
        sim.proposer = standin_proposer  # future cycles planned with stand-in parameters
    now = core.now
    sim.clock = lambda: now
    queue: list[tuple[float, int, str]] = []
    seq = 0
    for s in sim.running():
        start = s.start if s.start is not None else now
        seq += 1
        heapq.heappush(queue, (max(now, start + s.expected), seq, s.id))
    if dispatch_first:
        sim._out = []
        sim._dispatch()
        decisions, sim._out = sim._out, []
        _collect(decisions, sim, queue, out, now)
    # proposals asked before the copy have no answer yet: give them stand-in ones
    for job in sim.all_jobs():
        if job.awaiting_proposals:
            sets = standin_proposer(job.id, job.spec, job.cycle, job.spec.campaign.batch)
            _collect(
                sim.handle(ev.ProposalsReady(job.id, job.cycle, tuple(sets), time=now)),
                sim,
                queue,
                out,
                now,
            )
    limit = None if horizon_s is None else core.now + horizon_s
    count = 0
    while queue and count < max_events:
        t = queue[0][0]
        if limit is not None and t > limit:
            break
        batch = []
        while queue and queue[0][0] == t:
            batch.append(ev.StepFinished(heapq.heappop(queue)[2], time=t))
        now = t
        count += len(batch)
        _collect(sim.handle(batch), sim, queue, out, t)
    return sim, out


def _collect(
    decisions: list[dc.Decision], sim: SchedulerCore, queue: list, out: list, t: float
) -> None:
    for d in decisions:
        if isinstance(d, dc.StartStep):
            step = sim._steps[d.step_id]
            heapq.heappush(queue, (t + d.expected_s, len(queue) + len(out) + 1, d.step_id))
            out.append(_placement(step, t, t + d.expected_s, "planned", step.blocked or "planned"))
        elif isinstance(d, dc.AbortStep):
            heapq.heappush(queue, (t, len(queue) + len(out) + 1, d.step_id))


def _placement(step, start: float, end: float, state: str, reason: str) -> Placement:  # noqa: ANN001
    return Placement(
        step_id=step.id,
        job_id=step.job.id,
        module=step.module,
        task=step.task,
        step=step.name,
        kind=step.kind,
        devices=tuple(sorted(step.devices)),
        start=start,
        end=end,
        state=state,
        reason=reason,
    )
