"""The event-driven, deterministic scheduler core.

``SchedulerCore.handle(events)`` is the only mutating entry point: it applies stamped events,
runs one dispatch round and returns decisions. This file holds the core's state and what each
event does to it; the hard rules that no policy can break (devices, slots, zones, deadlock
avoidance) are :class:`~octopus_scheduler.core.safety_rules.SafetyRules`, and the round that
starts and admits work is :class:`~octopus_scheduler.core.dispatch_round.DispatchRound`.
Policies only order candidates, veto them or size chunks.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.dispatch_round import DispatchRound
from octopus_scheduler.core.jobscript import JobSpec
from octopus_scheduler.core.lab import Lab
from octopus_scheduler.core.policies import make_policy
from octopus_scheduler.core.proposer import Proposer
from octopus_scheduler.core.retry_policy import RetryPolicy
from octopus_scheduler.core.runs import (
    ABORTED,
    DONE,
    PENDING,
    READY,
    RUNNING,
    ChunkRun,
    GroupRun,
    JobRun,
    Sample,
    StepRun,
    step_counts,
)
from octopus_scheduler.core.safety_rules import SlotKey
from octopus_scheduler.core.views import EventRejected, JobView, StepView, in_view, step_view

LEARN_RATE = 0.3


class SchedulerCore(DispatchRound):
    """One lab, one policy, a clock; decisions come only out of events."""

    def __init__(
        self,
        lab: Lab,
        policy: str = "planner",
        *,
        clock: Callable[[], float] = time.time,
        policy_options: Mapping[str, Any] | None = None,
        proposer: Proposer | None = None,
        retry: RetryPolicy | None = None,
        defer_lookahead: bool = False,
    ) -> None:
        self.lab = lab
        self.retry = retry or RetryPolicy()
        self.policy_name = policy
        self.policy_options = dict(policy_options or {})
        self.policy = make_policy(policy, self.policy_options)
        # a live lab: the policy's look-ahead waits for the next Tick (see Policy)
        self.policy.defer_lookahead = defer_lookahead
        self.clock = clock
        self.proposer = proposer
        self.now: float = float("-inf")
        self.event_log: list[ev.Event] = []
        # an ended job's steps are let go (``_retire``), except in a fork: a projection runs
        # jobs to their end and its steps are read back
        self.retire_ended = True
        self._jobs: dict[str, JobRun] = {}
        self._live: dict[str, JobRun] = {}  # not ended, in submission order: what decides
        self._steps: dict[str, StepRun] = {}
        self._ready: dict[str, StepRun] = {}
        self._running: dict[str, StepRun] = {}
        self._holder: dict[str, StepRun | None] = dict.fromkeys(lab.device_module)
        self._cap: dict[SlotKey, int] = {
            (m.name, s.name): s.capacity for m in lab.modules.values() for s in m.slots.values()
        }
        self._used: dict[SlotKey, int] = dict.fromkeys(self._cap, 0)
        self._down: set[str] = set()
        # what a dispatch asks for every queued job, asked once per dispatch (see _entry_blocked)
        self._blocked_this_dispatch: dict[tuple[str, frozenset[str]], str] = {}
        self._entry_devices_this_dispatch: dict[tuple[str, str], frozenset[str]] = {}
        self._out_of_order: dict[str, str] = {}  # device -> why
        # device -> the distinct steps that failed on it since its last success
        self._failures_in_a_row: dict[str, list[str]] = {}
        self._operator_holds: set[str] = set()  # out of order until an operator clears them
        self._stock: dict[SlotKey, int] = {
            (m.name, c.name): c.stock for m in lab.modules.values() for c in m.consumables.values()
        }
        self._chunks: list[ChunkRun] = []  # admitted chunks that still hold or need slots
        self._groups: list[GroupRun] = []  # groups with samples not yet admitted
        self._ratio: dict[tuple[str, str, str], float] = {}
        self._seq = 0
        self._out: list[dc.Decision] = []
        self.logging = True

    # ------------------------------------------------------------------ public API
    @classmethod
    def replay(
        cls,
        lab: Lab,
        policy: str,
        events: Iterable[ev.Event],
        *,
        clock: Callable[[], float] = time.time,
        policy_options: Mapping[str, Any] | None = None,
        proposer: Proposer | None = None,
    ) -> SchedulerCore:
        """Rebuild a core from its persisted, stamped events (decisions are discarded)."""
        core = cls(lab, policy, clock=clock, policy_options=policy_options, proposer=proposer)
        for event in events:
            if event.time is None:
                raise ValueError("replay needs stamped events (time set)")
            core.handle(event)
        return core

    def handle(self, events: ev.Event | Sequence[ev.Event]) -> list[dc.Decision]:
        """Apply one event (or several simultaneous ones), dispatch, return the decisions."""
        batch = [events] if isinstance(events, ev.Event) else list(events)
        self._out = []
        for event in batch:
            t = event.time if event.time is not None else float(self.clock())
            t = max(t, self.now)
            event = dataclasses.replace(event, time=t)
            self.now = t
            reason = self._validate(event)
            if reason:
                self._out.append(EventRejected(t, type(event).__name__, reason))
                continue
            if self.logging:
                # without what a step measured: the core never reads it (the store keeps it),
                # and a log of every spectrum of the day would grow all day
                logged = event
                if isinstance(event, ev.StepFinished) and event.results:
                    logged = dataclasses.replace(event, results=None)
                self.event_log.append(logged)
            self._apply(event)
            self.policy.on_event(self, event)
        self._dispatch()
        out, self._out = self._out, []
        return out

    def jobs(self, *, ended_since: float | None = None) -> list[JobView]:
        """Every job, or (``ended_since``) the live ones and those ended at that time or later:
        a view costs more than the check, and the lab's history grows all day."""
        return [self._job_view(j) for j in self._jobs.values() if in_view(j.end, ended_since)]

    def job_states(self) -> Counter[str]:
        """How many jobs are in each state (no views built)."""
        return Counter(j.state for j in self._jobs.values())

    def job(self, job_id: str) -> JobView:
        return self._job_view(self._jobs[job_id])

    def step(self, step_id: str) -> StepView:
        return step_view(self._steps[step_id])

    def running_steps(self) -> list[StepView]:
        return [step_view(s) for s in self._running.values()]

    def devices(self) -> dict[str, str | None]:
        return {d: (s.id if s else None) for d, s in self._holder.items()}

    def modules_down(self) -> set[str]:
        return set(self._down)

    def out_of_order(self) -> dict[str, str]:
        """Devices that no step may use now, and why."""
        return dict(self._out_of_order)

    def operator_holds(self) -> set[str]:
        """Devices out of order for failing too often: only an operator's DeviceUp clears them."""
        return set(self._operator_holds)

    def next_wake(self) -> float | None:
        """The earliest time a Tick has work, or None: a retry's back-off ends, or a deferred
        look-ahead is due."""
        waits = [s.not_before for s in self._ready.values() if s.not_before > self.now]
        due = self.policy.lookahead_due_at(self)
        return min([*waits, *([due] if due is not None else [])], default=None)

    def checkpoint(self) -> SchedulerCore:
        """An exact copy of the whole state, to replay later events on; this core's event log
        restarts empty. The log is kept to rebuild the core after an event that fails, and
        from its start it grows with the lab's history. Ended jobs are shared with the copy:
        they no longer change, and their steps are let go (``_retire``)."""
        from octopus_scheduler.core.runs import copy_runs

        if not self.retire_ended:
            raise ValueError("a checkpoint shares ended jobs: only of a core that retires them")
        memo: dict[int, Any] = {id(self.lab): self.lab}
        memo.update((id(job), job) for job in self._jobs.values() if job.finished)
        copy_runs(self._live.values(), memo)
        self.event_log = []  # the copy's log starts empty too
        return copy.deepcopy(self, memo)

    def slots(self) -> dict[SlotKey, tuple[int, int]]:
        return {k: (self._used[k], self._cap[k]) for k in self._cap}

    def stock(self) -> dict[SlotKey, int]:
        return dict(self._stock)

    def fork(self) -> SchedulerCore:
        """A deep copy of the live state only (no ended jobs, no event log) for look-ahead."""
        from octopus_scheduler.core.runs import copy_data, copy_runs

        saved = (self._jobs, self._steps, self.event_log)
        live = dict(self._live)
        # a job's steps are those of its chunks, entered in _steps in seq order on admission
        steps = sorted(
            (s for j in live.values() for g in j.groups for c in g.chunks for s in c.steps),
            key=lambda s: s.seq,
        )
        self._jobs, self._steps, self.event_log = live, {s.id: s for s in steps}, []
        # the lab is shared; the run state is copied by copy_runs (sharing what never changes), the
        # policy's state (plain data, growing with the day) by copy_data, the rest by deepcopy
        memo: dict[int, Any] = {id(self.lab): self.lab}
        copy_runs(live.values(), memo)
        memo[id(self.policy)] = copy_data(self.policy, memo)
        try:
            twin = copy.deepcopy(self, memo)
        finally:
            self._jobs, self._steps, self.event_log = saved
        twin.logging = False
        twin.retire_ended = False
        twin.policy.forked(twin)
        return twin

    def plan(self, horizon_s: float | None = None) -> list[Any]:
        from octopus_scheduler.core.projection import project

        return project(self, horizon_s)

    # ------------------------------------------------------------------ internals used by policies
    def has_ended(self, job_id: str) -> bool:
        job = self.run_job(job_id)
        return job is not None and job.finished

    def live_jobs(self) -> list[JobRun]:
        """Jobs not ended, in submission order (``all_jobs`` grows with the lab's history)."""
        return list(self._live.values())

    def all_jobs(self) -> list[JobRun]:
        return list(self._jobs.values())

    def run_job(self, job_id: str) -> JobRun | None:
        return self._jobs.get(job_id)

    def run_step(self, step_id: str) -> StepRun | None:
        """A live step's run state (None if unknown or its job ended and was forked away)."""
        return self._steps.get(step_id)

    def chunks(self) -> list[ChunkRun]:
        """Every chunk admitted so far, in admission order."""
        return list(self._chunks)

    def ready_steps(self) -> list[StepRun]:
        return list(self._ready.values())

    def running(self) -> list[StepRun]:
        return list(self._running.values())

    def pending_groups(self) -> list[GroupRun]:
        return list(self._groups)

    def holder(self, device: str) -> StepRun | None:
        return self._holder[device]

    def free_slots(self, keys: Iterable[SlotKey]) -> int | None:
        frees = [self._cap[k] - self._used[k] for k in keys]
        return min(frees) if frees else None

    def entry_keys(self, job: JobRun) -> list[SlotKey]:
        module = job.spec.route[0].module
        return [(module, s) for s in self.lab.modules[module].sample_slots]

    def estimate(self, module: str, task: str, step: str, seconds: float) -> float:
        return seconds * self._ratio.get((module, task, step), 1.0)

    # ------------------------------------------------------------------ events
    def _validate(self, e: ev.Event) -> str:
        if isinstance(e, ev.JobSubmitted):
            return f"job '{e.job_id}' already exists" if e.job_id in self._jobs else ""
        if isinstance(e, ev.StepStarted | ev.StepFinished | ev.StepFailed):
            step = self._steps.get(e.step_id)
            if step is None:
                return f"unknown step '{e.step_id}'"
            return "" if step.state == RUNNING else f"step '{e.step_id}' is not running"
        if isinstance(e, ev.ModuleDown | ev.ModuleUp):
            return "" if e.module in self.lab.modules else f"unknown module '{e.module}'"
        if isinstance(e, ev.ModuleAdded):
            return self._extension_problem(e)
        if isinstance(e, ev.DeviceDown | ev.DeviceUp):
            return "" if e.device in self.lab.device_module else f"unknown device '{e.device}'"
        if isinstance(
            e, ev.CancelJob | ev.HoldJob | ev.ResumeJob | ev.SetPriority | ev.QuarantineJob
        ):
            job = self._jobs.get(e.job_id)
            if job is None:
                return f"unknown job '{e.job_id}'"
            if job.finished or job.ending:
                return f"job '{e.job_id}' has ended"
            return ""
        if isinstance(e, ev.ProposalsReady):
            job = self._jobs.get(e.job_id)
            if job is None or not job.awaiting_proposals or job.cycle != e.cycle:
                return f"job '{e.job_id}' is not waiting for proposals of cycle {e.cycle}"
            if not e.parameter_sets:
                return "no parameter sets"
            for p in e.parameter_sets:
                unknown = set(p) - set(job.spec.campaign.space)
                if unknown:
                    return f"unknown parameters {sorted(unknown)}"
            return ""
        if isinstance(e, ev.Restock):
            ok = (e.module, e.item) in self._stock and e.amount > 0
            return "" if ok else f"unknown consumable {e.module}.{e.item} or bad amount"
        return ""

    def _apply(self, e: ev.Event) -> None:
        if isinstance(e, ev.JobSubmitted):
            self._submit(e.job_id, e.spec)
        elif isinstance(e, ev.StepStarted):
            self._steps[e.step_id].start = self.now
        elif isinstance(e, ev.StepFinished):
            self._step_ended(self._steps[e.step_id], ok=True)
        elif isinstance(e, ev.StepFailed):
            self._step_ended(self._steps[e.step_id], ok=False, reason=e.reason, lost=e.lost)
        elif isinstance(e, ev.ModuleDown):
            self._down.add(e.module)
        elif isinstance(e, ev.ModuleUp):
            self._down.discard(e.module)
        elif isinstance(e, ev.CancelJob):
            self._end_job(self._jobs[e.job_id], "cancelled", "cancelled")
        elif isinstance(e, ev.QuarantineJob):
            self._end_job(self._jobs[e.job_id], "failed", f"quarantined: {e.reason}")
        elif isinstance(e, ev.HoldJob):
            job = self._jobs[e.job_id]
            job.held, job.state = True, "held"
        elif isinstance(e, ev.ResumeJob):
            job = self._jobs[e.job_id]
            job.held = False
            job.state = "running" if job.started else "queued"
        elif isinstance(e, ev.SetPriority):
            self._jobs[e.job_id].priority = e.priority
        elif isinstance(e, ev.ProposalsReady):
            job = self._jobs[e.job_id]
            self._add_group(job, job.cycle, [dict(p) for p in e.parameter_sets])
        elif isinstance(e, ev.Restock):
            self._stock[(e.module, e.item)] += e.amount
        elif isinstance(e, ev.ModuleAdded):
            self._add_module(e.lab, e.module)
        elif isinstance(e, ev.DeviceDown):
            self._out_of_order[e.device] = e.reason or "out of order"
        elif isinstance(e, ev.DeviceUp):
            if e.device in self._operator_holds and not e.operator:
                return  # the module says it is fine; it failed too often: an operator decides
            self._operator_holds.discard(e.device)
            self._failures_in_a_row.pop(e.device, None)
            self._out_of_order.pop(e.device, None)

    def _extension_problem(self, e: ev.ModuleAdded) -> str:
        """A new module may only add to the lab: what runs now must not change under it."""
        if e.module in self.lab.modules:
            return f"module '{e.module}' is already in the lab"
        if e.module not in e.lab.modules:
            return f"the extended lab has no module '{e.module}'"
        if set(e.lab.modules) != set(self.lab.modules) | {e.module}:
            return f"adding '{e.module}' must not add or remove other modules"
        for name, module in self.lab.modules.items():
            if e.lab.modules[name] != module:
                return f"adding '{e.module}' must not change module '{name}'"
        if any(e.lab.device_module.get(d) != m for d, m in self.lab.device_module.items()):
            return f"adding '{e.module}' must not move devices between modules"
        return ""

    def _add_module(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self._entry_devices_this_dispatch = {}
        module = lab.modules[name]
        self._holder.update(dict.fromkeys(module.devices))
        for slot in module.slots.values():
            self._cap[(name, slot.name)] = slot.capacity
            self._used[(name, slot.name)] = 0
        for item in module.consumables.values():
            self._stock[(name, item.name)] = item.stock

    def _submit(self, job_id: str, spec: JobSpec) -> None:
        job = JobRun(
            id=job_id,
            spec=spec,
            submit=self.now,
            order=len(self._jobs),
            priority=spec.metadata.priority,
            retries_left=spec.metadata.retries,
        )
        self._jobs[job_id] = self._live[job_id] = job
        camp = spec.campaign
        if camp.sequential:
            self._request_proposals(job)
        else:
            start = 0
            for gi, size in enumerate(camp.group_sizes()):
                self._add_group(job, gi, list(camp.experiments[start : start + size]))
                start += size

    def _request_proposals(self, job: JobRun) -> None:
        job.awaiting_proposals = True
        count = job.spec.campaign.batch
        if self.proposer is not None:
            self._add_group(job, job.cycle, self.proposer(job.id, job.spec, job.cycle, count))
        else:
            self._out.append(
                dc.NeedProposals(self.now, job.id, job.cycle, count, dict(job.spec.campaign.space))
            )

    def _add_group(self, job: JobRun, index: int, params: list[dict[str, float]]) -> None:
        job.awaiting_proposals = False
        samples = [Sample(f"{job.id}/g{index}s{i}", p) for i, p in enumerate(params)]
        group = GroupRun(job=job, index=index, pending=samples, ready_time=self.now)
        job.groups.append(group)
        self._groups.append(group)

    # ------------------------------------------------------------------ step life cycle
    def _release_devices(self, step: StepRun) -> None:
        for d in step.devices:
            if self._holder[d] is step:
                self._holder[d] = None

    def _step_ended(self, step: StepRun, ok: bool, reason: str = "", lost: bool = False) -> None:
        job = step.job
        self._running.pop(step.id, None)
        self._release_devices(step)
        step.end = self.now
        if job.ending:
            step.state = DONE if ok else ABORTED
            self._after_step(step)
            if not self._job_running(job):
                self._finalize(job)
            return
        if not lost:  # a module crash says nothing about its devices
            self._count_device_outcome(step, ok, reason)
        if not ok:
            if job.retries_left > 0:
                job.retries_left -= 1
                step.attempts += 1
                step.state, step.start, step.end = READY, None, None
                step.ready_time = self.now
                step.not_before = self.now + self.retry.delay_s(step.id, step.attempts)
                self._ready[step.id] = step
                return
            step.state = ABORTED
            self._after_step(step)
            self._end_job(job, "failed", f"step {step.id} failed: {reason}".rstrip(": "))
            return
        step.state = DONE
        if step.start is not None:
            measured = self.now - step.start
            if step.expected > 0 and measured > 0:
                key = step.duration_key
                old = self._ratio.get(key, 1.0)
                self._ratio[key] = old + LEARN_RATE * (old * measured / step.expected - old)
        self._after_step(step)
        for succ in step.succs:
            succ.missing -= 1
            if succ.missing == 0 and succ.state == PENDING:
                succ.state, succ.ready_time = READY, self.now
                self._ready[succ.id] = succ
        if step.chunk.steps_left == 0:
            self._release_chunk(step.chunk)
            self._progress(job)

    def _count_device_outcome(self, step: StepRun, ok: bool, reason: str) -> None:
        """A success resets its devices' failure counts; when ``limit`` different steps in a row
        failed on a device, it is out of order until an operator clears it. One step failing
        again and again is its job's problem: its retries run out, the device stays in order."""
        limit = self.retry.device_failure_limit
        for device in step.devices:
            if ok:
                self._failures_in_a_row.pop(device, None)
                continue
            failed = self._failures_in_a_row.setdefault(device, [])
            if step.id not in failed:
                failed.append(step.id)
            count = len(failed)
            if limit and count >= limit and device not in self._operator_holds:
                self._operator_holds.add(device)
                self._out_of_order[device] = (
                    f"{count} steps in a row failed on it (last: {reason or 'failed'}); "
                    "an operator clears it with octopus clear-error"
                )

    def _after_step(self, step: StepRun) -> None:
        chunk = step.chunk
        chunk.steps_left -= 1
        visit = chunk.visits[step.visit]
        visit.steps_left -= 1
        self._maybe_release(chunk, step.visit)

    def _maybe_release(self, chunk: ChunkRun, v: int) -> None:
        """Samples leave a module when done there and entered the next module (or finished)."""
        visit = chunk.visits[v]
        if not visit.entered or visit.released or visit.steps_left > 0:
            return
        if v + 1 < len(chunk.visits) and not chunk.visits[v + 1].entered:
            return
        visit.released = True
        for key, n in visit.demand.items():
            self._used[key] -= n

    def _release_chunk(self, chunk: ChunkRun) -> None:
        for visit in chunk.visits:
            if visit.entered and not visit.released:
                visit.released = True
                for key, n in visit.demand.items():
                    self._used[key] -= n
        if chunk in self._chunks:
            self._chunks.remove(chunk)

    def _progress(self, job: JobRun) -> None:
        if any(not g.done for g in job.groups) or job.awaiting_proposals:
            return
        camp = job.spec.campaign
        if camp.sequential and job.cycle + 1 < camp.cycles:
            job.cycle += 1
            self._request_proposals(job)
            return
        job.ending, job.end_reason = "succeeded", ""
        self._finalize(job)

    def _job_running(self, job: JobRun) -> bool:
        return any(s.job is job for s in self._running.values())

    def _end_job(self, job: JobRun, state: str, reason: str) -> None:
        job.ending, job.end_reason = state, reason
        job.awaiting_proposals = False
        for group in job.groups:
            group.pending.clear()
            if group in self._groups:
                self._groups.remove(group)
            for chunk in group.chunks:
                for step in chunk.steps:
                    if step.state == RUNNING:
                        if not step.abort_requested:
                            step.abort_requested = True
                            self._out.append(dc.AbortStep(self.now, step.id, job.id, state))
                    elif step.state in (PENDING, READY):
                        step.state = ABORTED
                        self._ready.pop(step.id, None)
        if not self._job_running(job):
            self._finalize(job)

    def _finalize(self, job: JobRun) -> None:
        for group in job.groups:
            for chunk in group.chunks:
                self._release_chunk(chunk)
            if group in self._groups:
                self._groups.remove(group)
        job.state = job.ending or "succeeded"
        job.end = self.now
        self._live.pop(job.id, None)
        self._out.append(dc.JobEnded(self.now, job.id, job.state, job.end_reason))
        if self.retire_ended:
            self._retire(job)

    def _retire(self, job: JobRun) -> None:
        """Let an ended job's steps go, keeping its counts and its chunks' samples: the store
        holds every step that ran and the script, and a lab that runs for months must not hold
        them in memory (23 KB per ended job before). A late event about one of them is an
        unknown step."""
        job.ended_counts = step_counts(job)
        # its route and the script as loaded neither: a view reads the metadata and campaign
        job.spec = dataclasses.replace(job.spec, route=(), source={})
        for group in job.groups:
            for chunk in group.chunks:
                for step in chunk.steps:
                    self._steps.pop(step.id, None)
                chunk.steps, chunk.visits = [], []

    def _job_view(self, j: JobRun) -> JobView:
        camp = j.spec.campaign
        return JobView(
            job_id=j.id,
            name=j.spec.metadata.name,
            owner=j.owner,
            priority=j.priority,
            state=j.state,
            submit_time=j.submit,
            start_time=j.start,
            end_time=j.end,
            cycle=j.cycle,
            cycles=camp.cycles,
            reason=j.end_reason if j.finished else self._waiting_for(j),
        )

    def _waiting_for(self, j: JobRun) -> str:
        """What a live job's next work waits for ("" when it runs or is free to start)."""
        for step in self._ready.values():
            if step.job is j and step.blocked:
                return step.blocked
        return next((g.blocked for g in j.groups if g.pending and g.blocked), "")
