"""The event-driven, deterministic scheduler core.

``SchedulerCore.handle(events)`` is the only mutating entry point: it applies stamped events,
runs one dispatch round and returns decisions. Hard rules live here and no policy can break them:
atomic all-or-nothing device acquisition, slot capacities, slot zones (samples holding a zoned slot
type at once agree on its parameter, e.g. one hot plate = one temperature), step precedence, and
deadlock avoidance for slots and zones (a banker's check: a chunk enters a module only if every
admitted chunk can still finish afterwards). Policies only order candidates, veto them or size
chunks.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.jobscript import JobSpec, RouteTask
from octopus_scheduler.core.lab import Lab, ZoneKey, zone_key
from octopus_scheduler.core.policies import make_policy
from octopus_scheduler.core.policies.base import Admission
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
    build_chunk,
    task_params,
    visits_of,
)

SlotKey = tuple[str, str]
ZoneWant = tuple[SlotKey, ZoneKey]
LEARN_RATE = 0.3


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


class SchedulerCore:
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
    ) -> None:
        self.lab = lab
        self.retry = retry or RetryPolicy()
        self.policy_name = policy
        self.policy_options = dict(policy_options or {})
        self.policy = make_policy(policy, self.policy_options)
        self.clock = clock
        self.proposer = proposer
        self.now: float = float("-inf")
        self.event_log: list[ev.Event] = []
        self._jobs: dict[str, JobRun] = {}
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
                self.event_log.append(event)
            self._apply(event)
            self.policy.on_event(self, event)
        self._dispatch()
        out, self._out = self._out, []
        return out

    def jobs(self) -> list[JobView]:
        return [self._job_view(j) for j in self._jobs.values()]

    def job(self, job_id: str) -> JobView:
        return self._job_view(self._jobs[job_id])

    def step(self, step_id: str) -> StepView:
        return _step_view(self._steps[step_id])

    def running_steps(self) -> list[StepView]:
        return [_step_view(s) for s in self._running.values()]

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
        """The earliest time a retry's back-off ends (a Tick then lets it start), or None."""
        waits = [s.not_before for s in self._ready.values() if s.not_before > self.now]
        return min(waits, default=None)

    def slots(self) -> dict[SlotKey, tuple[int, int]]:
        return {k: (self._used[k], self._cap[k]) for k in self._cap}

    def stock(self) -> dict[SlotKey, int]:
        return dict(self._stock)

    def fork(self) -> SchedulerCore:
        """A deep copy of the live state only (no ended jobs, no event log) for look-ahead."""
        from octopus_scheduler.core.runs import copy_data, copy_runs

        saved = (self._jobs, self._steps, self.event_log)
        live = {k: j for k, j in self._jobs.items() if not j.finished}
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
        twin.policy.forked(twin)
        return twin

    def plan(self, horizon_s: float | None = None) -> list[Any]:
        from octopus_scheduler.core.projection import project

        return project(self, horizon_s)

    # ------------------------------------------------------------------ internals used by policies
    def all_jobs(self) -> list[JobRun]:
        return list(self._jobs.values())

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
        self._jobs[job_id] = job
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
        self._out.append(dc.JobEnded(self.now, job.id, job.state, job.end_reason))

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self) -> None:
        self._blocked_this_dispatch, self._entry_devices_this_dispatch = {}, {}
        self.policy.begin_round(self)
        for _ in range(64):  # admissions add ready steps; a few rounds always suffice
            cands: list[StepRun | Admission] = [s for s in self._ready.values() if not s.job.held]
            groups = self.policy.admission_groups(self, self._groups)
            cands += [Admission(g) for g in groups if g.pending and not g.job.held]
            if not cands:
                return
            cands.sort(key=lambda c: self.policy.rank(self, c))
            admitted = False
            for cand in cands:
                if isinstance(cand, Admission):
                    ok = self._try_admit(cand)
                    admitted |= ok
                else:
                    ok = self._try_start(cand)
                if not ok:
                    self.policy.blocked(self, cand)
            if not admitted:
                return

    def why_blocked(self, step: StepRun) -> str:
        """Empty string if ``step`` could start now, else what it waits for."""
        if step.job.held:
            return "job held"
        if step.not_before > self.now:
            return f"retry {step.attempts} backs off until {step.not_before:.0f}"
        if step.module in self._down:
            return f"module {step.module} down"
        unavailable = self._unavailable(step.devices)  # lasting reasons first
        if unavailable:
            return unavailable
        for d in step.devices:
            holder = self._holder[d]
            if holder is not None:
                until = (holder.start or self.now) + holder.expected
                return f"devices {d} held by {holder.id} until {until:.0f}"
        for item, n in step.consumes.items():
            if self._stock.get((step.module, item), 0) < n:
                return f"consumable {step.module}.{item} out of stock"
        if step.enters_visit and not step.chunk.visits[step.visit].entered:
            visit = step.chunk.visits[step.visit]
            for key, n in visit.demand.items():
                free = self._cap[key] - self._used[key]
                if free < n:
                    return f"slots {key[0]}.{key[1]} ({free} free, needs {n})"
            zone = self._zone_conflict(self._chunk_zones(step.chunk, step.visit), step.chunk)
            if zone:
                return zone
            if not self._safe(step.chunk, step.visit):
                return "slots held back to avoid a deadlock"
        return ""

    def _unavailable(self, devices: Iterable[str]) -> str:
        """Why one of ``devices`` cannot be used at all now ("" if all can)."""
        for d in sorted(devices):
            if self.lab.device_module[d] in self._down:
                return f"module {self.lab.device_module[d]} down"
            if d in self._out_of_order:
                return f"device {d} out of order: {self._out_of_order[d]}"
        return ""

    def _try_start(self, step: StepRun) -> bool:
        reason = self.why_blocked(step)
        if not reason and not self.policy.allow(self, step):
            reason = "policy: reserved for higher-ranked work"
        step.blocked = reason or step.blocked
        if reason:
            return False
        self._start(step)
        return True

    def _try_admit(self, adm: Admission) -> bool:
        group, job = adm.group, adm.job
        entry = job.spec.route[0]
        reason = self._entry_blocked(entry.module, self.entry_devices(job))
        if reason:
            group.blocked = reason
            return False
        keys = self.entry_keys(job)
        # the policy's verdict after the lab's: it costs more (durations, look-ahead), and a queue
        # of jobs waiting for one held device is asked on every dispatch
        if not self.policy.allow(self, adm):
            group.blocked = "policy: reserved for higher-ranked work"
            return False
        free = self.free_slots(keys)
        batch, sized = group.pending, adm
        if self._route_zoned(job.spec.route):
            # a chunk's samples share their zone keys: admit the first key class that fits the
            # zones now; the policy sizes it as if it were the whole batch
            batch, first_conflict = [], ""
            for cls in self._zone_classes(job.spec.route, group.pending):
                conflict = self._zone_conflict(sample_zones(self.lab, job.spec.route, cls[0], 0))
                if not conflict:
                    batch = cls
                    break
                first_conflict = first_conflict or conflict
            if not batch:
                group.blocked = first_conflict
                return False
            if len(batch) < len(group.pending):
                sized = Admission(dataclasses.replace(group, pending=batch))
        size = min(self.policy.admit_size(self, sized, free), len(batch))
        if size <= 0:
            key = keys[0] if keys else (entry.module, "?")
            group.blocked = f"slots {key[0]}.{key[1]} ({free} free, needs {len(batch)})"
            return False
        while size > 0:
            chunk = build_chunk(
                self.lab,
                job,
                group,
                batch[:size],
                merge_task_steps=self.policy.merge_task_steps,
                estimate=self.estimate,
            )
            first = chunk.steps[0]
            if not self._entry_ok(chunk, first):
                group.blocked = "slots held back to avoid a deadlock, or out of consumables"
                if not self.policy.splits_batches:
                    return False
                size -= 1
                continue
            if batch is group.pending:
                del group.pending[:size]
            else:
                taken = {id(s) for s in batch[:size]}
                group.pending[:] = [s for s in group.pending if id(s) not in taken]
            if not group.pending and group in self._groups:
                self._groups.remove(group)
            group.chunks.append(chunk)
            self._chunks.append(chunk)
            job.n_chunks += 1
            for step in chunk.steps:
                self._seq += 1
                step.seq = self._seq
                self._steps[step.id] = step
            first.state, first.ready_time = READY, self.now
            first.blocked = group.blocked
            group.blocked = ""
            self._start(first)
            return True
        return False

    def _entry_blocked(self, module: str, devices: frozenset[str]) -> str:
        """Why a job entering at ``module`` on ``devices`` cannot start now ("" if it can).
        A dispatch only takes devices, so what is blocked stays blocked until it ends: the
        answer is kept for the dispatch (a queue of jobs for one device asks once, not per job)."""
        key = (module, devices)
        reason = self._blocked_this_dispatch.get(key)
        if reason is not None:
            return reason
        if module in self._down:
            reason = f"module {module} down"
        else:
            reason = self._unavailable(devices)
        for d in sorted(devices) if not reason else ():
            holder = self._holder[d]
            if holder is not None:
                until = (holder.start or self.now) + holder.expected
                reason = f"devices {d} held by {holder.id} until {until:.0f}"
                break
        if reason:
            self._blocked_this_dispatch[key] = reason
        return reason

    def _entry_ok(self, chunk: ChunkRun, first: StepRun) -> bool:
        for item, n in first.consumes.items():
            if self._stock.get((first.module, item), 0) < n:
                return False
        for key, n in chunk.visits[0].demand.items():
            if self._cap[key] - self._used[key] < n:
                return False
        if self._zone_conflict(self._chunk_zones(chunk, 0), chunk):
            return False
        return self._safe(chunk, 0, new=True)

    def entry_devices(self, job: JobRun) -> frozenset[str]:
        """The devices the first step of ``job`` takes when it enters the lab."""
        entry = job.spec.route[0]
        key = (entry.module, entry.task)
        devices = self._entry_devices_this_dispatch.get(key)  # asked for every queued job
        if devices is None:
            if self.policy.merge_task_steps:
                devices = self.lab.task_devices(entry.module, entry.task)
            else:
                first = self.lab.task(entry.module, entry.task).steps[0]
                devices = self.lab.step_devices(entry.module, entry.task, first)
            self._entry_devices_this_dispatch[key] = devices
        return devices

    def _safe(self, chunk: ChunkRun, visit: int, new: bool = False) -> bool:
        """Banker's check: after ``chunk`` enters ``visit``, can every chunk still finish?

        Zones: a chunk that will still enter a zoned slot type can go next only if no other
        unfinished chunk holds that zone at another key (it waits for the zone to drain).
        """
        entering = chunk.visits[visit]
        free = {k: self._cap[k] - self._used[k] for k in self._cap}
        for key, n in entering.demand.items():
            free[key] -= n
        zoned = self._lab_zoned()
        # per unfinished chunk: slots held, slots still needed, zone keys held, zone keys needed
        table: list[
            tuple[dict[SlotKey, int], dict[SlotKey, int], dict[SlotKey, ZoneKey], list[ZoneWant]]
        ] = []
        others = list(self._chunks)
        if new:
            others.append(chunk)
        for c in others:
            alloc = c.alloc()
            need: dict[SlotKey, int] = {}
            wants: list[ZoneWant] = []
            for i, v in enumerate(c.visits):
                if v.entered or (c is chunk and i == visit):
                    continue
                for key, n in v.demand.items():
                    need[key] = max(need.get(key, 0), n)
                if zoned:
                    wants += self._chunk_zones(c, i).items()
            if c is chunk:
                for key, n in entering.demand.items():
                    alloc[key] = alloc.get(key, 0) + n
            if need:
                holds: dict[SlotKey, ZoneKey] = {}
                for i, v in enumerate(c.visits) if zoned else ():
                    if (v.entered and not v.released) or (c is chunk and i == visit):
                        holds.update(self._chunk_zones(c, i))
                table.append((alloc, need, holds, wants))
            else:  # it can always finish: give its slots back right away
                for key, n in alloc.items():
                    free[key] += n
        while table:
            for i, (alloc, need, _, wants) in enumerate(table):
                if all(free[k] >= n for k, n in need.items()) and not any(
                    other[2].get(key, want) != want
                    for j, other in enumerate(table)
                    if j != i
                    for key, want in wants
                ):
                    for key, n in alloc.items():
                        free[key] += n
                    del table[i]
                    break
            else:
                return False
        return True

    # ------------------------------------------------------------------ zones
    def _lab_zoned(self) -> bool:
        return any(s.zone_by for m in self.lab.modules.values() for s in m.slots.values())

    def _route_zoned(self, route: Sequence[RouteTask]) -> bool:
        mods = [self.lab.modules[m] for m in dict.fromkeys(r.module for r in route)]
        return any(m.slots[s].zone_by for m in mods for s in m.sample_slots)

    def _chunk_zones(self, chunk: ChunkRun, visit: int) -> dict[SlotKey, ZoneKey]:
        """The key each zoned slot type of ``visit`` holds for ``chunk`` (absent: any key)."""
        mod = self.lab.modules[chunk.visits[visit].module]
        if not any(mod.slots[s].zone_by for s in mod.sample_slots):
            return {}
        out: dict[SlotKey, ZoneKey] = {}
        for sample in chunk.samples:  # one key class per chunk: the first key is every key
            for key, zk in sample_zones(self.lab, chunk.job.spec.route, sample, visit).items():
                out.setdefault(key, zk)
        return out

    def _zone_conflict(
        self, wants: Mapping[SlotKey, ZoneKey], exclude: ChunkRun | None = None
    ) -> str:
        """Why samples with ``wants`` cannot enter their zones now ('' if they can)."""
        if not wants:
            return ""
        modules = {key[0] for key in wants}
        for c in self._chunks:
            if c is exclude:
                continue
            for i, v in enumerate(c.visits):
                if not v.entered or v.released or v.module not in modules:
                    continue
                for key, held in self._chunk_zones(c, i).items():
                    want = wants.get(key)
                    if want is not None and held != want:
                        zone_by = self.lab.modules[key[0]].slots[key[1]].zone_by
                        param = zone_by[1] if zone_by else "?"
                        return (
                            f"zone {key[0]}.{key[1]} at {param} {_fmt_key(held)} "
                            f"(needs {_fmt_key(want)})"
                        )
        return ""

    def _zone_classes(
        self, route: Sequence[RouteTask], samples: list[Sample]
    ) -> list[list[Sample]]:
        """``samples`` split by their zone keys on the whole route, in order of first appearance."""
        vis = visits_of(route)
        classes: dict[tuple[Any, ...], list[Sample]] = {}
        for s in samples:
            sig = tuple(
                (v, tuple(sample_zones(self.lab, route, s, v).items())) for v in range(vis[-1] + 1)
            )
            classes.setdefault(sig, []).append(s)
        return list(classes.values())

    def _start(self, step: StepRun) -> None:
        job, chunk = step.job, step.chunk
        for d in step.devices:
            self._holder[d] = step
        slots: tuple[dc.SlotUse, ...] = ()
        if step.enters_visit and not chunk.visits[step.visit].entered:  # not on a retry
            visit = chunk.visits[step.visit]
            visit.entered = True
            for key, n in visit.demand.items():
                self._used[key] += n
            slots = tuple(dc.SlotUse(k[0], k[1], n) for k, n in visit.demand.items())
            if step.visit > 0:
                self._maybe_release(chunk, step.visit - 1)
        for item, n in step.consumes.items():
            key = (step.module, item)
            before = self._stock[key]
            self._stock[key] = before - n
            low = self.lab.modules[step.module].consumables[item].low
            if before > low >= self._stock[key]:
                self._out.append(dc.LowStock(self.now, step.module, item, self._stock[key]))
        self._ready.pop(step.id, None)
        self._running[step.id] = step
        step.state, step.start, step.blocked = RUNNING, self.now, step.blocked
        if job.start is None:
            job.start = self.now
        if job.state == "queued":
            job.state = "running"
        self._out.append(
            dc.StartStep(
                time=self.now,
                step_id=step.id,
                job_id=job.id,
                module=step.module,
                task=step.task,
                step=step.name,
                kind=step.kind,
                devices=tuple(sorted(step.devices)),
                slots=slots,
                samples=tuple(s.id for s in step.samples),
                params=step.params,
                expected_s=step.expected,
                attempt=step.attempts,
            )
        )

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


def _step_view(s: StepRun) -> StepView:
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


def sample_zones(
    lab: Lab, route: Sequence[RouteTask], sample: Sample, visit: int
) -> dict[SlotKey, ZoneKey]:
    """A sample's key on each zoned slot type of ``visit`` (absent: it runs no zone task there
    and so is compatible with any key): the zone parameter over the visit's runs of the task."""
    vis = visits_of(route)
    module = route[vis.index(visit)].module
    mod = lab.modules[module]
    out: dict[SlotKey, ZoneKey] = {}
    for slot in mod.sample_slots:
        zone_by = mod.slots[slot].zone_by
        if zone_by is None:
            continue
        task, param = zone_by
        values = []
        for rt, v in zip(route, vis, strict=True):
            if v == visit and rt.task == task:
                params = task_params(rt, sample, lab)
                if param in params:
                    values.append(params[param])
        key = zone_key(values)
        if key is not None:
            out[(module, slot)] = key
    return out


def _fmt_key(key: ZoneKey) -> str:
    parts = [f"{v:g}" if isinstance(v, float) else str(v) for v in key or ()]
    return ", ".join(parts) or "any"
