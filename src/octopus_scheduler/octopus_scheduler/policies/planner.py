"""`planner`: our duration-aware policy.

Rules, in order of precedence (lower rank key goes first):

1. user priority (``metadata.priority``, higher first);
2. jobs in danger: a deadline that the job's remaining critical path barely meets, then (mode
   ``protect_critical``) the makespan-critical job, the one whose remaining critical path ends
   last: delaying it delays the whole lab day;
3. (mode ``admitted_first``) work that already holds slots, which frees them for others;
4. shortest remaining *active* work first (device time the job still needs), scaled by the
   owner's current share of busy devices: this lowers the sum of job times and shares the lab
   between users;
5. arrival order.

Duration-aware insertion: a lower-ranked step may start only if it does not delay (a) the start
of the highest-ranked blocked step beyond the moment that step's devices free up, nor (b) the
next step of a higher-ranked running job, which becomes ready when its predecessor's expected
duration ends (EASY-style reservations from expected durations). Batches that do not fit are
split to the free slots (closed packing).

Look-ahead (option ``rollouts``, on by default): when a job is submitted (or a module goes down or
up, a step fails, a job is cancelled or re-prioritised) and at most ``rollout_jobs`` jobs are live,
the planner runs each rule mode forward on a fork of the core with expected durations (bounded to
``rollout_events`` events, the rest estimated by the remaining critical path) and keeps the mode
with the smallest projected sum of job times; the fourth mode is closed packing's order (arrival
order, running jobs first, no reservations). Deterministic, so event replay stays exact.

The published plan is the forward projection of these rules (``SchedulerCore.plan``), each
placement with what it waited for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..lab import ACTIVE, PER_BATCH
from ..proposer import expected_point
from ..runtime import ABORTED, DONE, PENDING, JobRun, Sample, task_params
from .base import Admission, Policy

if TYPE_CHECKING:
    from ..core import SchedulerCore
    from ..runtime import StepRun

DEADLINE_MARGIN = 1.2  # a job is urgent when its remaining path needs > 1/1.2 of the time left


class Planner(Policy):
    name = "planner"
    splits_batches = True

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.fairness = float(self.options.get("fairness", 1.0))
        self.protect_critical = bool(self.options.get("protect_critical", True))
        self.admitted_first = bool(self.options.get("admitted_first", False))
        self.lookahead = bool(self.options.get("lookahead", True))
        # look-ahead rollouts: on a submission (or module/failure event) try each rule mode on a
        # copy with expected durations and keep the one with the smallest sum of job times
        self.rollouts = bool(self.options.get("rollouts", True))
        self.rollout_jobs = int(self.options.get("rollout_jobs", 5))
        self.rollout_events = int(self.options.get("rollout_events", 120))
        # rule modes tried: (protect the makespan-critical job, admitted work first)
        self.fifo = bool(self.options.get("fifo", False))
        self.modes: tuple[tuple[bool, bool, bool], ...] = (
            (True, False, False),  # shortest remaining work first, makespan-critical job protected
            (False, False, False),  # shortest remaining work first
            (True, True, False),  # work already holding slots first
            (True, False, True),  # arrival order, running jobs first (closed packing's order)
        )
        self._replan = False
        self.mode_history: list[
            tuple[float, tuple[bool, bool], dict[tuple[bool, bool], float]]
        ] = []
        self._per_sample: dict[
            str, tuple[float, float]
        ] = {}  # job -> (active s, path s) per sample
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._reservation: tuple[float, frozenset[str]] | None = None
        self._upcoming: list[tuple[tuple[Any, ...], float, frozenset[str]]] = []

    # -------------------------------------------------------------- estimates
    def _sample_cost(self, core: SchedulerCore, job: JobRun) -> tuple[float, float]:
        """Expected active seconds and path seconds for one sample of ``job`` (batch of 1)."""
        if job.id not in self._per_sample:
            params = dict(job.spec.campaign.experiments[0]) if job.spec.campaign.experiments else {}
            if job.spec.campaign.sequential:
                params = expected_point(job.spec)
            sample = Sample("estimate", params)
            active = path = 0.0
            batch = max(1, job.spec.campaign.batch)
            for rt in job.spec.route:
                spec = core.lab.task(rt.module, rt.task)
                p = [task_params(rt, sample, core.lab)]
                for step in spec.steps:
                    n = 1 if spec.per != PER_BATCH else batch
                    seconds = step.duration.expected(n, p * n)
                    share = seconds / n if spec.per == PER_BATCH else seconds
                    path += share
                    if step.kind == ACTIVE:
                        active += share
            self._per_sample[job.id] = (active, path)
        return self._per_sample[job.id]

    def remaining(self, core: SchedulerCore, job: JobRun) -> tuple[float, float]:
        """(remaining active seconds, remaining critical path seconds) of ``job``."""
        active_ps, path_ps = self._sample_cost(core, job)
        active = path = 0.0
        pending = 0
        for group in job.groups:
            pending += len(group.pending)
            for chunk in group.chunks:
                chunk_path = 0.0
                for s in chunk.steps:
                    if s.state in (DONE, ABORTED):
                        continue
                    left = s.expected
                    if s.start is not None:
                        left = max(0.0, s.start + s.expected - core.now)
                    chunk_path += left
                    if s.kind == ACTIVE:
                        active += left
                path = max(path, chunk_path)
        camp = job.spec.campaign
        future = 0
        if camp.sequential:
            future = (camp.cycles - job.cycle - (0 if job.awaiting_proposals else 1)) * camp.batch
        active += active_ps * (pending + future)
        batch = max(1, camp.batch)
        path += path_ps * (pending + future)
        path -= (path_ps * (batch - 1) / batch) * 0  # chunks run mostly in parallel: keep simple
        return active, path

    # -------------------------------------------------------------- policy hooks
    def on_event(self, core: SchedulerCore, event: Any) -> None:
        if type(event).__name__ in (
            "JobSubmitted",
            "ModuleDown",
            "ModuleUp",
            "StepFailed",
            "CancelJob",
            "SetPriority",
            "ResumeJob",
        ):
            self._replan = True

    def _choose_mode(self, core: SchedulerCore) -> None:
        from ..projection import run_forward

        live = [j for j in core.all_jobs() if not j.finished and not j.ending]
        if len(live) > self.rollout_jobs or len(live) < 2:
            return
        scores: dict[tuple[bool, bool, bool], float] = {}
        for mode in self.modes:

            def configure(sim: SchedulerCore, mode: tuple[bool, bool, bool] = mode) -> None:
                pol = sim.policy
                assert isinstance(pol, Planner)
                pol.rollouts = False
                pol.protect_critical, pol.admitted_first, pol.fifo = mode

            sim, _ = run_forward(
                core, dispatch_first=True, configure=configure, max_events=self.rollout_events
            )
            pol = sim.policy
            assert isinstance(pol, Planner)
            ends = []
            for j in live:  # unfinished at the rollout horizon: add its remaining path
                run = sim._jobs[j.id]
                ends.append(
                    run.end if run.end is not None else sim.now + pol.remaining(sim, run)[1]
                )
            total = sum(e - j.submit for e, j in zip(ends, live, strict=True))
            scores[mode] = total + 1e-3 * max(ends)
        if scores:
            best = min(scores, key=lambda m: (scores[m], self.modes.index(m)))
            self.protect_critical, self.admitted_first, self.fifo = best
            self.mode_history.append((core.now, best, scores))

    def begin_round(self, core: SchedulerCore) -> None:
        if self._replan and self.rollouts:
            self._replan = False
            self._choose_mode(core)
        jobs = [j for j in core.all_jobs() if not j.finished and not j.ending]
        rem = {j.id: self.remaining(core, j) for j in jobs}
        ends = {j.id: core.now + rem[j.id][1] for j in jobs}
        latest = max(ends.values(), default=core.now)
        busy: dict[str, float] = {}
        total_busy = 0.0
        for s in core.running():
            if s.kind == ACTIVE:
                busy[s.job.owner] = busy.get(s.job.owner, 0.0) + len(s.devices)
                total_busy += len(s.devices)
        self._keys = {}
        for j in jobs:
            active, path = rem[j.id]
            urgent = False
            deadline = j.spec.metadata.deadline
            if j.spec.metadata.deadline_after_s is not None:
                deadline = j.submit + j.spec.metadata.deadline_after_s
            if deadline is not None:
                urgent = deadline - core.now < DEADLINE_MARGIN * path
            critical = self.protect_critical and ends[j.id] >= latest - 1e-6
            share = busy.get(j.owner, 0.0) / total_busy if total_busy else 0.0
            self._keys[j.id] = (
                -j.priority,
                0 if urgent else 1,
                0 if critical else 1,
                active * (1.0 + self.fairness * share),
                j.order,
            )
        self._reservation = None
        # look one step ahead: what higher-ranked running work will need, and from when
        self._upcoming = []
        for step in core.running():
            key = self._keys.get(step.job.id)
            if key is None:
                continue
            at = max(core.now, (step.start or core.now) + step.expected)
            for succ in step.succs:
                if succ.state == PENDING and succ.devices and succ.missing == 1:
                    self._upcoming.append((key, at, succ.devices))

    def rank(self, core: SchedulerCore, cand: StepRun | Admission) -> tuple[Any, ...]:
        if self.fifo:
            return (-cand.job.priority, *super().rank(core, cand))
        key = self._keys.get(cand.job.id, (0, 1, 1, 0.0, cand.job.order))
        # within a job: steps of admitted work before new chunks, then readiness order
        admitting = 1 if isinstance(cand, Admission) else 0
        if self.admitted_first:
            # work already holding slots goes first: it frees the slots others wait for
            return (
                key[0],
                key[1],
                admitting,
                *key[2:],
                cand.ready_time or 0.0,
                getattr(cand, "seq", 0),
            )
        return (*key, admitting, cand.ready_time or 0.0, getattr(cand, "seq", 0))

    def allow(self, core: SchedulerCore, cand: StepRun | Admission) -> bool:
        if self.fifo:
            return True
        devices = self._devices(core, cand)
        if not devices:
            return True
        until = core.now + self._duration(core, cand)
        if self._reservation is not None:
            at, reserved = self._reservation
            if devices & reserved and until > at + 1e-9:
                return False
        mine = self._keys.get(cand.job.id)
        for key, at, needed in self._upcoming if self.lookahead else ():
            if mine is not None and key < mine and until > at + 1e-9 and devices & needed:
                return False
        return True

    def admit_size(self, core: SchedulerCore, adm: Admission, free: int | None) -> int:
        pending = len(adm.group.pending)
        return pending if free is None else min(pending, free)

    def blocked(self, core: SchedulerCore, cand: StepRun | Admission) -> None:
        """Called by the core for a candidate that could not start: the first one reserves."""
        if self._reservation is not None:
            return
        devices = self._devices(core, cand)
        if not devices:
            return
        at = core.now
        for d in devices:
            holder = core.holder(d)
            if holder is not None:
                at = max(at, (holder.start or core.now) + holder.expected)
        if at > core.now:
            self._reservation = (at, devices)

    # -------------------------------------------------------------- helpers
    def _devices(self, core: SchedulerCore, cand: StepRun | Admission) -> frozenset[str]:
        if isinstance(cand, Admission):
            return core._entry_devices(cand.job)
        return cand.devices

    def _duration(self, core: SchedulerCore, cand: StepRun | Admission) -> float:
        if isinstance(cand, Admission):
            entry = cand.job.spec.route[0]
            spec = core.lab.task(entry.module, entry.task)
            p = (
                [task_params(entry, cand.group.pending[0], core.lab)]
                if cand.group.pending
                else [{}]
            )
            return spec.steps[0].duration.expected(1, p)
        return cand.expected
