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
5. arrival order;
6. within a job, work already admitted before new chunks, then (order ``ready``) the step
   that became ready first or (order ``chunk``) the oldest chunk's step: a vial finishes its
   dosing before the next one is dosed, so reactions end one by one and the next module takes
   them as they come instead of all at once.

Duration-aware insertion: a lower-ranked step may start only if it does not delay (a) the start
of the highest-ranked blocked step beyond the moment that step's devices free up, nor (b) the
next step of a higher-ranked running job, which becomes ready when its predecessor's expected
duration ends (EASY-style reservations from expected durations). Batches that do not fit are
split to the free slots (closed packing).

Look-ahead (option ``rollouts``, on by default): when a job is submitted (or a module goes down or
up, a step fails, a job is cancelled or re-prioritised) and at most ``rollout_jobs`` (30) jobs are
live, the planner runs each rule mode forward on a fork of the core with expected durations
(bounded to ``rollout_events`` events, the rest estimated by the remaining critical path) and
keeps the mode with the smallest projected sum of job times. The modes: four base modes (protect
the critical job or not, admitted work first, and closed packing's order: arrival order, running
jobs first, no reservations), each with every order within a job in ``within_orders`` (default
``ready,chunk``; ``admit_chunk`` admits new chunks first), and the reference policies' exact
rules (``references``, default ``closed_packing,backfill``; ``fcfs`` can be added): the planner
never keeps rules its own projection rates worse than what those policies would do from here.
The reference rules know no priorities; they are kept only if they keep the priority promise in
the projection (``priority_guard``: ``class``, the default, the jobs of each priority above the
lowest end no later in sum; ``job``, no such job ends later; ``off``); a deadline job never ends
later.
Deterministic, so event replay stays exact. In a live lab (``defer_lookahead``) a look-ahead of
more than ``inline_jobs`` (5) live jobs is not run inside the event: the service runs it on a copy
of the core outside its locks at its next tick and applies the choice as a logged
``RulesChosen`` event, so submissions and module results never wait for it.

CP-SAT improvement (option ``improve: cpsat``, off by default): on the same triggers, with at
most ``improve_jobs`` live jobs, the projected plan of the chosen mode seeds a CP-SAT model of the
next ``improve_horizon_steps`` steps (``improver.py``); a strictly better solution is followed as an
order override until its steps have started or an event invalidates it, and only if the projection
with it beats the plain rules (by more than ``improve_min_gain`` of the projected Σ, 0 by default)
and ends no higher-priority or deadline job later. The projections are bounded to ``improve_events``
events. One worker and a deterministic budget (``improve_budget_s``, CP-SAT deterministic seconds),
so replays stay exact. ``improve_history`` records each attempt.

The published plan is the forward projection of these rules (``SchedulerCore.plan``), each
placement with what it waited for.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from octopus_scheduler.core.lab import ACTIVE, PER_BATCH
from octopus_scheduler.core.policies.base import Admission, Policy
from octopus_scheduler.core.policies.improver import Override, build_and_solve
from octopus_scheduler.core.proposer import expected_point
from octopus_scheduler.core.runs import ABORTED, DONE, PENDING, READY, JobRun, Sample, task_params

if TYPE_CHECKING:
    from octopus_scheduler.core.runs import GroupRun, StepRun
    from octopus_scheduler.core.scheduler_core import SchedulerCore

WITHIN_JOB_ORDERS = ("ready", "chunk", "admit_chunk")
#: reference policies whose exact rules the look-ahead also evaluates (see ``references``)
REFERENCES = ("closed_packing", "backfill", "fcfs")
#: how the look-ahead keeps the priority promise when it weighs the reference rules
PRIORITY_GUARDS = ("class", "job", "off")
#: a rule mode: (protect the makespan-critical job, admitted work first, closed packing's order,
#: the order within a job, a reference policy's exact rules or "" for the planner's own)
Mode = tuple[bool, bool, bool, str, str]
DEADLINE_MARGIN = 1.2  # a job is urgent when its remaining path needs > 1/1.2 of the time left
REPLAN_EVENTS = (
    "JobSubmitted",
    "ModuleDown",
    "ModuleUp",
    "StepFailed",
    "CancelJob",
    "SetPriority",
    "ResumeJob",
)
# events after which a CP-SAT override no longer describes the lab: it is dropped
STALE_EVENTS = (*REPLAN_EVENTS, "HoldJob", "ModuleAdded", "DeviceDown", "DeviceUp")
#: look-aheads and improvements a planner remembers (what it chose and why: for reports, not
#: for deciding); a lab that runs for months makes one per submission
HISTORY_KEPT = 1000


def _remember(history: list[Any], entry: Any) -> None:
    history.append(entry)
    if len(history) > HISTORY_KEPT:
        del history[: len(history) - HISTORY_KEPT]


def keeps_promises_of(
    guard: str,
    priorities: Mapping[str, int],
    deadlines: Collection[str],
    ends: Mapping[str, float],
    own_ends: Mapping[str, float],
) -> bool:
    """Whether projected job ends ``ends`` keep the promises that the planner's own rules
    (``own_ends``) keep: no job with a deadline ends later, and by ``guard``: "class", the jobs of
    each priority above the lowest end no later in sum (they may swap places among themselves);
    "job", none of them ends later; "off", priorities are not weighed."""
    tolerance = 1e-6
    if any(ends[j] > own_ends[j] + tolerance for j in deadlines):
        return False
    low = min(priorities.values(), default=0)
    above = [j for j, p in priorities.items() if p > low]
    if guard == "job":
        return all(ends[j] <= own_ends[j] + tolerance for j in above)
    if guard == "class":
        for level in {priorities[j] for j in above}:
            ids = [j for j in above if priorities[j] == level]
            if sum(ends[j] for j in ids) > sum(own_ends[j] for j in ids) + tolerance:
                return False
    return True


class Planner(Policy):
    name = "planner"
    splits_batches = True
    #: caches of pure functions of a job: a look-ahead fork shares them with the original
    SHARED_CACHES = ("_per_sample", "_splittable")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.fairness = float(self.options.get("fairness", 1.0))
        self.protect_critical = bool(self.options.get("protect_critical", True))
        self.admitted_first = bool(self.options.get("admitted_first", False))
        self.lookahead = bool(self.options.get("lookahead", True))
        # admit one sample per chunk when splitting costs no device time (the job's per-batch
        # tasks only wait: mixing, reacting): each sample then starts its reaction as soon as it
        # is ready instead of waiting for the whole batch's dosing
        self.split_samples = bool(self.options.get("split_samples", True))
        self._splittable: dict[str, bool] = {}  # job -> its per-batch tasks hold no device
        # look-ahead rollouts: on a submission (or module/failure event) try each rule mode on a
        # copy with expected durations and keep the one with the smallest sum of job times
        self.rollouts = bool(self.options.get("rollouts", True))
        # (5 before issue 15: above it the planner kept its last mode, the cause of its worst
        # generated days; a look-ahead with 20-30 live jobs takes 0.1-0.3 s)
        self.rollout_jobs = int(self.options.get("rollout_jobs", 30))
        self.rollout_events = int(self.options.get("rollout_events", 120))
        # a live lab looks ahead with at most this many live jobs inside the event (see
        # begin_round), with more on its next tick, outside its locks
        self.inline_jobs = int(self.options.get("inline_jobs", 5))
        self.fifo = bool(self.options.get("fifo", False))
        self.within_job = str(self.options.get("within_job", "ready"))
        # the orders within a job the rollouts try, each with every base mode: "chunk" lets a
        # vial finish its dosing before the next is dosed, so reactions end one by one and the
        # next module takes them as they come instead of all at once
        orders = self.options.get("within_orders", "ready,chunk")
        if isinstance(orders, str):
            orders = [o.strip() for o in orders.split(",") if o.strip()]
        if not orders:
            raise ValueError("planner: within_orders needs at least one order")
        for order in (self.within_job, *orders):
            if order not in WITHIN_JOB_ORDERS:
                raise ValueError(
                    f"planner: within_job orders are {', '.join(WITHIN_JOB_ORDERS)}, not {order!r}"
                )
        base_modes = (
            (True, False, False),  # shortest remaining work first, makespan-critical job protected
            (False, False, False),  # shortest remaining work first
            (True, True, False),  # work already holding slots first
            (True, False, True),  # arrival order, running jobs first (closed packing's order)
        )
        # the reference systems' exact rules are candidates too ("dominance by construction"):
        # the look-ahead never keeps a mode its own projection rates worse than what closed
        # packing (or fcfs) would do from here, unless that would end a higher-priority or
        # deadline job later
        refs = self.options.get("references", "closed_packing,backfill")
        if isinstance(refs, str):
            refs = [r.strip() for r in refs.split(",") if r.strip()]
        for ref in refs:
            if ref not in REFERENCES:
                raise ValueError(f"planner: references are {', '.join(REFERENCES)}, not {ref!r}")
        # the reference rules ignore priorities: the look-ahead takes them when its projection
        # rates them better on Σ and keeps the priority promise (``priority_guard``): "class"
        # (default), the jobs of each priority above the lowest end no later in sum; "job", no
        # such job ends later (strict: it vetoes the reference rules most of the time on busy
        # days); "off". The planner's own rules rank by priority.
        guard = self.options.get("priority_guard", "class")
        guard = {True: "job", False: "off"}.get(guard, guard) if isinstance(guard, bool) else guard
        if guard not in PRIORITY_GUARDS:
            raise ValueError(
                f"planner: priority_guard is one of {', '.join(PRIORITY_GUARDS)}, not {guard!r}"
            )
        self.priority_guard = str(guard)
        # ``reference``: follow one reference policy's rules until the first look-ahead (with
        # ``rollouts: false``, for good: the planner then decides exactly as that policy)
        self.reference = str(self.options.get("reference", ""))
        if self.reference and self.reference not in REFERENCES:
            raise ValueError(
                f"planner: reference is one of {', '.join(REFERENCES)}, not {self.reference!r}"
            )
        self.modes: tuple[Mode, ...] = tuple(
            (*m, o, "") for o in orders for m in base_modes
        ) + tuple((False, False, False, "ready", ref) for ref in refs)
        self._set_reference(self.reference)
        self._replan = False
        self._replans = 0  # replanning events so far (a deferred choice answers those before it)
        self._answered = 0  # the replanning events the newest choice answered
        self._ticked = False  # a Tick was applied since the last round (deferred improvement)
        self.mode_history: list[tuple[float, Mode, dict[Mode, float]]] = []
        self._per_sample: dict[
            str, tuple[float, float]
        ] = {}  # job -> (active s, path s) per sample
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._reservation: tuple[float, frozenset[str]] | None = None
        self._upcoming: list[tuple[tuple[Any, ...], float, frozenset[str]]] = []
        # CP-SAT improvement of the projected plan (see improver.py); off by default
        improve = self.options.get("improve") or "off"
        if improve not in ("off", "cpsat"):
            raise ValueError(f"planner: improve must be 'off' or 'cpsat', not {improve!r}")
        self.improve = improve == "cpsat"
        # CP-SAT deterministic seconds per improvement (not wall time: replays stay exact)
        self.improve_budget_s = float(self.options.get("improve_budget_s", 0.05))
        self.improve_horizon_steps = int(self.options.get("improve_horizon_steps", 40))
        self.improve_jobs = int(self.options.get("improve_jobs", 20))
        self.improve_events = int(self.options.get("improve_events", 400))
        # follow a CP-SAT plan only if its projection gains at least this share of the projected
        # Σ: smaller gains are within what the next arrival changes anyway
        self.improve_min_gain = float(self.options.get("improve_min_gain", 0.0))
        # the rest of the projected plan keeps its devices and slots in the model (delay only)
        self.improve_tail = bool(self.options.get("improve_tail", True))
        self._improve_due = False
        self._override: Override | None = None
        if self.improve:  # load OR-Tools now, not inside the first event that improves
            import ortools.sat.python.cp_model  # noqa: F401
        # (time, projected Σ of the rules, projected Σ with the override or None, CP-SAT status:
        # INFEASIBLE = nothing strictly better on the horizon, the rules' plan is kept)
        self.improve_history: list[tuple[float, float, float | None, str]] = []

    def _set_reference(self, reference: str) -> None:
        """Follow ``reference``'s exact rules ("" = the planner's own). fcfs holds a task's devices
        for the whole task and admits whole batches; the core reads both from the policy."""
        self.reference = reference
        self.merge_task_steps = reference == "fcfs"
        self.splits_batches = reference not in ("fcfs", "backfill")

    def _mode(self) -> Mode:
        return (
            self.protect_critical,
            self.admitted_first,
            self.fifo,
            self.within_job,
            self.reference,
        )

    def _set_mode(self, mode: Mode) -> None:
        self.protect_critical, self.admitted_first, self.fifo, self.within_job, ref = mode
        self._set_reference(ref)

    def __deepcopy__(self, memo: dict[int, Any]) -> Planner:
        """The copy a look-ahead fork runs: the histories grow all day and a fork's are never
        read (it starts them empty); the per-sample estimates are pure functions of a job, so
        the caches are shared. Everything else is copied."""
        twin = copy.copy(self)
        memo[id(self)] = twin
        for name, value in vars(self).items():
            if name in ("mode_history", "improve_history"):
                setattr(twin, name, [])
            elif name not in self.SHARED_CACHES:
                setattr(twin, name, copy.deepcopy(value, memo))
        return twin

    def skip_lookahead(self) -> None:
        self.rollouts = self.improve = self._improve_due = False

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
                if chunk.steps_left == 0:
                    continue  # every step ended: nothing left (most chunks of a long job)
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
    def lookahead_due_at(self, core: SchedulerCore) -> float | None:
        pending = self.rules_due() or self._improve_due
        return core.now if self.defer_lookahead and pending else None

    def rules_due(self) -> int:
        return self._replans if self._replan and self.rollouts else 0

    def choose_rules(self, core: SchedulerCore) -> tuple[Any, ...]:
        chosen = self._look_ahead(core)
        return chosen[0] if chosen else ()

    def on_event(self, core: SchedulerCore, event: Any) -> None:
        name = type(event).__name__
        if name == "Tick":
            self._ticked = True
        if name in REPLAN_EVENTS:
            self._replan = True
            self._replans += 1
            self._improve_due = self.improve
        if name in STALE_EVENTS:
            self._override = None
        if name == "RulesChosen" and event.replan >= self._answered:  # else a newer one ran
            if event.rules:
                mode: Mode = tuple(event.rules)  # type: ignore[assignment]
                if mode not in self.modes:
                    raise ValueError(f"rules: {event.rules!r} is not one of the planner's modes")
                self._set_mode(mode)
                _remember(self.mode_history, (core.now, mode, {}))
            self._answered = event.replan
            if event.replan >= self._replans:  # no replanning event came after the copy
                self._replan = False

    @staticmethod
    def _projected_total(sim: SchedulerCore, live: list[JobRun]) -> tuple[float, dict[str, float]]:
        """Σ (end - submit) of ``live`` in a rollout; unfinished jobs end after their path."""
        pol = sim.policy
        assert isinstance(pol, Planner)
        ends: dict[str, float] = {}
        for j in live:  # unfinished at the rollout horizon: add its remaining path
            run = sim._jobs[j.id]
            ends[j.id] = run.end if run.end is not None else sim.now + pol.remaining(sim, run)[1]
        return sum(ends[j.id] - j.submit for j in live), ends

    def _choose_mode(self, core: SchedulerCore) -> None:
        chosen = self._look_ahead(core)
        if chosen is not None:
            self._set_mode(chosen[0])
            _remember(self.mode_history, (core.now, *chosen))

    def _look_ahead(self, core: SchedulerCore) -> tuple[Mode, dict[Mode, float]] | None:
        """The mode with the smallest projected Σ that keeps the promises, and every mode's
        score; None when too few or too many jobs are live to look ahead."""
        from octopus_scheduler.core.projection import run_forward

        live = [j for j in core.live_jobs() if not j.ending]
        if len(live) > self.rollout_jobs or len(live) < 2:
            return None
        modes = self.modes
        scores: dict[Mode, float] = {}
        ends_of: dict[Mode, dict[str, float]] = {}
        for mode in modes:

            def configure(sim: SchedulerCore, mode: Mode = mode) -> None:
                sim.policy.skip_lookahead()
                assert isinstance(sim.policy, Planner)
                sim.policy._set_mode(mode)

            sim, _ = run_forward(
                core, dispatch_first=True, configure=configure, max_events=self.rollout_events
            )
            total, ends = self._projected_total(sim, live)
            scores[mode] = total + 1e-3 * max(ends.values())
            ends_of[mode] = ends

        def order(m: Mode) -> tuple[float, int]:
            return scores[m], modes.index(m)

        own = min((m for m in modes if not m[4]), key=order)
        # a reference policy knows no deadlines (nor priorities): its rules are kept only if the
        # projection ends no deadline job later than the planner's own rules, and keeps the
        # priority promise (``priority_guard``)
        priorities = {j.id: j.priority for j in live}
        deadlines = {
            j.id
            for j in live
            if j.spec.metadata.deadline is not None or j.spec.metadata.deadline_after_s is not None
        }

        def keeps_promises(m: Mode) -> bool:
            return keeps_promises_of(
                self.priority_guard, priorities, deadlines, ends_of[m], ends_of[own]
            )

        allowed = [m for m in modes if not m[4] or keeps_promises(m)]
        return min(allowed, key=order), scores

    def _improve(self, core: SchedulerCore) -> None:
        """Look for a better plan with CP-SAT; follow it only if its projection is better."""
        from octopus_scheduler.core.projection import run_forward

        live = [j for j in core.live_jobs() if not j.ending]
        if len(live) > self.improve_jobs or len(live) < 2 or any(j.held for j in live):
            return  # a held job's steps cannot follow a plan

        def configure(sim: SchedulerCore, override: Override | None = None) -> None:
            sim.policy.skip_lookahead()
            assert isinstance(sim.policy, Planner)
            sim.policy._override = override

        sim, placements = run_forward(
            core, dispatch_first=True, configure=configure, max_events=self.improve_events
        )
        base, base_ends = self._projected_total(sim, live)
        result = build_and_solve(
            core,
            sim,
            placements,
            base_ends,
            horizon_steps=self.improve_horizon_steps,
            budget_s=self.improve_budget_s,
            tail_resources=self.improve_tail,
        )
        if result.override is None:
            _remember(self.improve_history, (core.now, base, None, result.status))
            return
        trial, _ = run_forward(
            core,
            dispatch_first=True,
            configure=lambda s: configure(s, result.override),
            max_events=self.improve_events,
        )
        total, ends = self._projected_total(trial, live)
        low = min(j.priority for j in live)
        # stalled (nothing left to run, a job unfinished) or a protected job later: not taken
        stalled = not trial.running() and any(not trial._jobs[j.id].finished for j in live)
        protected_later = any(
            ends[j.id] > base_ends[j.id] + 1e-6
            for j in live
            if j.priority > low
            or j.spec.metadata.deadline is not None
            or j.spec.metadata.deadline_after_s is not None
        )
        gain = base - total
        accepted = (
            gain > max(1e-6, self.improve_min_gain * base) and not stalled and not protected_later
        )
        _remember(self.improve_history, (core.now, base, total, result.status))
        if accepted:
            self._override = result.override

    def _override_key(self, cand: StepRun | Admission) -> str | None:
        ov = self._override
        if ov is None:
            return None
        if isinstance(cand, Admission):
            group = cand.group
            entry = ov.entries.get(f"{cand.job.id}/g{group.index}c{len(group.chunks)}")
            return entry[0] if entry is not None else None
        return cand.id if cand.id in ov.start else None

    @staticmethod
    def _started(core: SchedulerCore, step_id: str) -> bool:
        step = core.run_step(step_id)
        if step is None:  # not expanded yet, or its job ended and let its steps go
            return core.has_ended(step_id.split("/", 1)[0])
        return step.state not in (PENDING, READY)

    def _override_allows(self, core: SchedulerCore, cand: StepRun | Admission) -> bool | None:
        """The override's verdict on ``cand`` (None: it has none, the rules decide)."""
        ov = self._override
        if ov is None or not core.running():
            return None  # with nothing running the rules decide: a plan never stalls the lab
        key = self._override_key(cand)
        if key is not None:  # after what the plan starts before it on its devices and slots
            return all(self._started(core, b) for b in ov.blockers[key])
        # other work: only in the gaps of the plan
        devices = self._devices(core, cand)
        until = core.now + self._duration(core, cand)
        slot_res: dict[str, int] = {}
        if isinstance(cand, Admission):
            n = len(cand.group.pending)
            slot_res = {f"slot:{m}.{s}": n for m, s in core.entry_keys(cand.job)}
        elif cand.enters_visit and not cand.chunk.visits[cand.visit].entered:
            demand = cand.chunk.visits[cand.visit].demand
            slot_res = {f"slot:{m}.{s}": n for (m, s), n in demand.items()}
        needed: dict[str, int] = {}
        for key, res in ov.resources.items():
            if self._started(core, key):
                continue
            if until > ov.start[key] + 1e-9 and any(r in devices for r in res):
                return False
            for r, n in ov.slot_need.get(key, {}).items():
                if r in slot_res:
                    needed[r] = needed.get(r, 0) + n
        if needed:
            slots = core.slots()
            for r, n in slot_res.items():
                m, s = r[5:].split(".", 1)
                used, cap = slots[(m, s)]
                if cap - used - min(n, cap - used) < needed.get(r, 0):
                    return False
        return None

    def begin_round(self, core: SchedulerCore) -> None:
        ticked, self._ticked = self._ticked, False
        if self._replan and self.rollouts:
            live = sum(1 for j in core.live_jobs() if not j.ending)
            # a live lab defers only a look-ahead that costs: not one of at most ``inline_jobs``
            # live jobs (a few ms; at a fast time scale the tick's 50 ms are minutes of lab time
            # decided by the old rules), nor one there is none of (outside 2..rollout_jobs)
            inline = live <= self.inline_jobs or live > self.rollout_jobs
            if not self.defer_lookahead or inline:
                self._replan, self._answered = False, self._replans
                self._choose_mode(core)
        if self._improve_due and (ticked or not self.defer_lookahead):
            self._improve_due = False
            self._improve(core)
        ov = self._override
        if ov is not None:
            last = max(ov.start.values())
            if all(self._started(core, k) for k in ov.start):
                self._override = None  # followed to its end: the rules take over
            elif core.now > last + max(60.0, last - ov.made_at):
                self._override = None  # far behind the plan (a step never came): rules again
        jobs = [j for j in core.live_jobs() if not j.ending]
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
        if self._override is not None:
            key = self._override_key(cand)
            if key is not None:  # the plan's order first (user priority still above it)
                ov = self._override
                return (-cand.job.priority, 0, ov.start[key], ov.order[key])
            return (-cand.job.priority, 1, *self._rule_rank(core, cand))
        return self._rule_rank(core, cand)

    def _rule_rank(self, core: SchedulerCore, cand: StepRun | Admission) -> tuple[Any, ...]:
        if self.reference:  # the reference policy's own order (it knows no priorities)
            return Policy.rank(self, core, cand)
        job = cand.job
        seq = getattr(cand, "seq", 0)
        # within a job: steps of admitted work before new chunks ("ready": then readiness
        # order; "chunk": then the oldest chunk first), or new chunks first ("admit_chunk")
        admitting = 1 if isinstance(cand, Admission) else 0
        if self.within_job == "ready":
            if self.fifo:
                return (-job.priority, *super().rank(core, cand))
            inner: tuple[Any, ...] = (admitting, cand.ready_time or 0.0, seq)
        elif self.within_job == "chunk":
            inner = (admitting, seq)
        else:
            inner = (-admitting, seq)
        if self.fifo:  # closed packing's order, jobs by arrival
            return (-job.priority, 0 if job.started else 1, job.order, *inner)
        key = self._keys.get(job.id, (0, 1, 1, 0.0, job.order))
        if self.admitted_first:
            # work already holding slots goes first: it frees the slots others wait for
            return (key[0], key[1], admitting, *key[2:], *inner)
        return (*key, *inner)

    def allow(self, core: SchedulerCore, cand: StepRun | Admission) -> bool:
        verdict = self._override_allows(core, cand)
        if verdict is not None:
            return verdict
        if self.fifo or self.reference:
            return True
        devices = self._devices(core, cand)
        if not devices:
            return True
        until: float | None = None  # its end, worked out only if a reservation touches it

        def ends_after(at: float) -> bool:
            nonlocal until
            if until is None:
                until = core.now + self._duration(core, cand)
            return until > at + 1e-9

        if self._reservation is not None:
            at, reserved = self._reservation
            if devices & reserved and ends_after(at):
                return False
        mine = self._keys.get(cand.job.id)
        for key, at, needed in self._upcoming if self.lookahead else ():
            if mine is not None and key < mine and devices & needed and ends_after(at):
                return False
        return True

    def admit_size(self, core: SchedulerCore, adm: Admission, free: int | None) -> int:
        pending = len(adm.group.pending)
        ov = self._override
        if ov is not None:  # a planned chunk enters whole, as the model has it
            group = adm.group
            entry = ov.entries.get(f"{adm.job.id}/g{group.index}c{len(group.chunks)}")
            if entry is not None:
                size = min(entry[1], pending)
                return size if free is None or free >= size else 0
        if self.reference in ("fcfs", "backfill"):  # whole batches only
            return Policy.admit_size(self, core, adm, free)
        size = pending if free is None else min(pending, free)
        if self.reference:
            return size
        return 1 if size > 1 and self.split_samples and self._split(core, adm.job) else size

    def admission_groups(self, core: SchedulerCore, groups: list[GroupRun]) -> list[GroupRun]:
        if self.reference != "fcfs" or not groups:
            return groups
        # fcfs: one job at a time on the lab, the oldest unfinished one
        head = next(iter(core.live_jobs()), None)
        return [g for g in groups if g.job is head]

    def _split(self, core: SchedulerCore, job: JobRun) -> bool:
        if job.id not in self._splittable:
            batch_tasks = [
                core.lab.task(r.module, r.task)
                for r in job.spec.route
                if core.lab.task(r.module, r.task).per == PER_BATCH
            ]
            self._splittable[job.id] = bool(batch_tasks) and all(
                step.kind != ACTIVE for task in batch_tasks for step in task.steps
            )
        return self._splittable[job.id]

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
            return core.entry_devices(cand.job)
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
