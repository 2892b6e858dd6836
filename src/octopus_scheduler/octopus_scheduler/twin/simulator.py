"""Discrete-event simulator: the digital twin. Drives the real core with a virtual clock."""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.invariants import InvariantError, check_invariants
from octopus_scheduler.core.proposer import standin_proposer
from octopus_scheduler.core.scheduler_core import SchedulerCore
from octopus_scheduler.twin.scenario import Scenario

FINAL = ("succeeded", "failed", "cancelled")


@dataclass
class SimReport:
    scenario: str
    policy: str
    jobs: list[dict[str, Any]]
    sums: dict[str, float]
    means: dict[str, float]
    makespan: float
    device_utilisation: dict[str, float]
    slot_utilisation: dict[str, float]
    timeline: list[dict[str, Any]]
    latencies_s: list[float] = field(default_factory=list, repr=False)
    wall_s: float = 0.0
    chunking: dict[str, dict[int, list[int]]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "jobs": self.jobs,
            "sums": self.sums,
            "means": self.means,
            "makespan": self.makespan,
            "device_utilisation": self.device_utilisation,
            "slot_utilisation": self.slot_utilisation,
            "timeline": self.timeline,
            "decision_latency_ms": latency_summary(self.latencies_s),
            "wall_s": self.wall_s,
            "chunking": {j: {str(g): c for g, c in gs.items()} for j, gs in self.chunking.items()},
        }


def _row(d: dc.StartStep) -> dict[str, Any]:
    return {
        "step_id": d.step_id,
        "job_id": d.job_id,
        "module": d.module,
        "task": d.task,
        "step": d.step,
        "kind": d.kind,
        "devices": list(d.devices),
        "samples": len(d.samples),
        "start": d.time,
        "end": None,
        "state": "running",
    }


def latency_summary(lat: list[float]) -> dict[str, float]:
    if not lat:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    s = sorted(lat)

    def q(p: float) -> float:
        return s[min(len(s) - 1, int(math.ceil(p * len(s))) - 1)] * 1000

    return {"p50": q(0.5), "p99": q(0.99), "max": s[-1] * 1000, "n": len(s)}


def simulate(
    scenario: Scenario,
    policy: str = "planner",
    *,
    seed: int | None = None,
    policy_options: Mapping[str, Any] | None = None,
    all_at_start: bool = False,
    timeline: bool = True,
    check: bool = False,
    observe: Callable[[SchedulerCore], None] | None = None,
) -> SimReport:
    """Run ``scenario`` under ``policy`` in virtual time and report.

    ``all_at_start`` submits every job at t = 0 in id order (the published FCFS protocol).
    ``check`` verifies the core's invariants after every event (slower; for tests).
    ``observe`` is called with the core after every event (tests look at its state there).
    """
    wall0 = time.perf_counter()
    rng = random.Random(scenario.seed if seed is None else seed)
    options = policy_options
    if options is None:
        options = scenario.policy_options.get(policy, {})
    now = 0.0
    core = SchedulerCore(
        scenario.lab, policy, clock=lambda: now, policy_options=options, proposer=standin_proposer
    )
    core.logging = False
    queue: list[tuple[float, int, ev.Event, int]] = []
    seq = 0
    # A retried step keeps its id: the outcome of an attempt that was aborted must not end the
    # retry, so each step outcome carries the attempt it belongs to.
    attempt_of: dict[str, int] = {}

    def push(t: float, event: ev.Event, attempt: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (t, seq, event, attempt))

    def current(event: ev.Event, attempt: int) -> bool:
        if isinstance(event, ev.StepFinished | ev.StepFailed):
            return attempt == attempt_of.get(event.step_id, 0)
        return True

    for job in scenario.jobs:
        t = 0.0 if all_at_start else job.submit
        push(t, ev.JobSubmitted(job.job_id, job.spec, time=t))
    for e in scenario.events:
        push(e.time or 0.0, e)
    latencies: list[float] = []
    attempts: list[dict[str, Any]] = []  # one row per attempt of a step
    open_attempt: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    slot_area: dict[tuple[str, str], float] = {}
    last_t = 0.0
    slot_state = core.slots()
    while queue:
        t = queue[0][0]
        batch = []
        while queue and queue[0][0] == t:
            _, _, event, attempt = heapq.heappop(queue)
            if current(event, attempt):
                batch.append(event)
        if not batch:
            continue
        for key, (used, _) in slot_state.items():
            slot_area[key] = slot_area.get(key, 0.0) + used * (t - last_t)
        last_t = now = t
        t0 = time.perf_counter()
        out = core.handle(batch)
        latencies.append(time.perf_counter() - t0)
        if check:
            check_invariants(core)
        if observe is not None:
            observe(core)
        slot_state = core.slots()
        for event in batch:
            if isinstance(event, ev.StepFinished | ev.StepFailed):
                row = open_attempt.pop(event.step_id, None)
                if row is not None:
                    row["end"] = t
                    row["state"] = "done" if isinstance(event, ev.StepFinished) else "failed"
        for d in out:
            if isinstance(d, dc.StartStep):
                attempt = attempt_of[d.step_id] = attempt_of.get(d.step_id, 0) + 1
                row = _row(d)
                attempts.append(row)
                open_attempt[d.step_id] = row
                base = core.run_step(d.step_id).base
                dur = base
                if scenario.noise_sigma > 0:
                    dur = base * rng.lognormvariate(0.0, scenario.noise_sigma)
                if scenario.failure_probability > 0 and rng.random() < scenario.failure_probability:
                    failed = ev.StepFailed(d.step_id, "simulated failure")
                    push(t + dur * rng.random(), failed, attempt)
                else:
                    push(t + dur, ev.StepFinished(d.step_id), attempt)
            elif isinstance(d, dc.AbortStep):
                push(t, ev.StepFailed(d.step_id, "aborted"), attempt_of.get(d.step_id, 0))
    if check:
        unfinished = [j.job_id for j in core.jobs() if j.state not in FINAL]
        if unfinished:
            raise InvariantError(f"jobs never ended (deadlock?): {unfinished}")
    for row in attempts:
        if row["end"] is None:  # still running when the scenario ran out of events
            row["state"] = core.run_step(row["step_id"]).state
        rows.append(row)
    jobs = []
    for j in core.jobs():
        submit = j.submit_time
        start = j.start_time if j.start_time is not None else j.end_time
        jobs.append(
            {
                "job_id": j.job_id,
                "name": j.name,
                "owner": j.owner,
                "state": j.state,
                "submit": submit,
                "start": start,
                "end": j.end_time,
                "waiting": (start - submit) if start is not None else None,
                "turnaround": (j.end_time - start) if j.end_time is not None else None,
                "total": (j.end_time - submit) if j.end_time is not None else None,
            }
        )
    t_first = min((j["submit"] for j in jobs), default=0.0)
    t_last = max((j["end"] or 0.0 for j in jobs), default=0.0)
    makespan = t_last - t_first
    sums = {
        k: sum(j[k] for j in jobs if j[k] is not None) for k in ("waiting", "turnaround", "total")
    }
    means = {k: v / max(1, len(jobs)) for k, v in sums.items()}
    busy: dict[str, float] = dict.fromkeys(scenario.lab.device_module, 0.0)
    for row in rows:
        if row["end"] is not None:
            for d in row["devices"]:
                busy[d] += row["end"] - row["start"]
    span = makespan or 1.0
    caps = {k: c for k, (_, c) in core.slots().items()}
    return SimReport(
        scenario=scenario.name,
        policy=policy,
        jobs=jobs,
        sums=sums,
        means=means,
        makespan=makespan,
        device_utilisation={d: b / span for d, b in busy.items()},
        slot_utilisation={f"{m}.{s}": a / (caps[(m, s)] * span) for (m, s), a in slot_area.items()},
        timeline=sorted(rows, key=lambda r: (r["start"], r["step_id"])) if timeline else [],
        latencies_s=latencies,
        wall_s=time.perf_counter() - wall0,
        chunking={
            j.id: {g.index: [len(c.samples) for c in g.chunks] for g in j.groups}
            for j in core.all_jobs()
        },
    )
