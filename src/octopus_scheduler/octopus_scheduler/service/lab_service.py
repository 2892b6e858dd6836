"""The scheduler as a service, without ROS: the scheduler node is a thin adapter around this.

It owns the core, the store and the campaigns. Every input (a submitted script, a step result, a
module lost, a user's command) becomes a core event. One place writes (:meth:`LabService._handle`):
per event, the event with the rows of its input (a job, a step's end and its measured values) in
one transaction **before the core sees it**, then the rows its decisions imply (steps started,
experiments, jobs ended) in another; the events the decisions call for (proposals, quarantines)
follow from a work list, in the order they were called for. A restarted scheduler replays the
same events into the same state. What the node
must do comes out as :class:`Outbox` entries: module goals to send, goals to abort, job updates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from octopus_modules.description import DescriptionError, ModuleDescription, parse_description_text
from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.errors import SpecError
from octopus_scheduler.core.jobscript import LIMITS, Limits, load_document, parse_job_script
from octopus_scheduler.core.lab import Lab
from octopus_scheduler.core.projection import Placement, project
from octopus_scheduler.core.retry_policy import RetryPolicy
from octopus_scheduler.core.runs import step_counts
from octopus_scheduler.core.scheduler_core import EventRejected, JobView, SchedulerCore
from octopus_scheduler.core.views import in_view
from octopus_scheduler.service.campaign_driver import CampaignDriver
from octopus_scheduler.service.identity import AccessPolicy, Authenticator
from octopus_scheduler.service.lab_from_modules import lab_from_modules
from octopus_scheduler.service.step_goals import StepGoal, StepGoalMapper
from octopus_scheduler.service.store import Store

log = logging.getLogger(__name__)

JOB_COMMANDS = ("cancel", "hold", "resume")
#: events applied between two checkpoints of the core (see ``_apply``): at most this many are
#: kept in memory to rebuild the core after an event that fails
CHECKPOINT_EVENTS = 2000
ENDED = ("succeeded", "failed", "cancelled")


@dataclass
class Outbox:
    goals: list[StepGoal] = field(default_factory=list)
    aborts: list[str] = field(default_factory=list)  # step ids whose goals must be cancelled
    ended_jobs: list[dc.JobEnded] = field(default_factory=list)
    low_stock: list[dc.LowStock] = field(default_factory=list)

    def extend(self, more: Outbox) -> None:
        self.goals += more.goals
        self.aborts += more.aborts
        self.ended_jobs += more.ended_jobs
        self.low_stock += more.low_stock


@dataclass(frozen=True)
class Submission:
    job_id: str = ""
    error: str = ""  # "<field>: <message>" when rejected

    @property
    def accepted(self) -> bool:
        return bool(self.job_id)


@dataclass(frozen=True)
class JobSummary:
    view: JobView
    campaign: str
    progress: float  # share of the job's steps done, 0..1
    experiments_done: int
    experiments_total: int
    estimated_finish: float | None  # end of its last planned step


@dataclass(frozen=True)
class CommandResult:
    success: bool
    message: str


@dataclass(frozen=True)
class EmergencyStopState:
    engaged: bool = False
    reason: str = ""
    source: str = "scheduler"


ESTOP_KEY = "emergency_stop"  # store meta key of the last e-stop state
SHUTTING_DOWN = (
    "the scheduler is shutting down: the job was not recorded; submit it again when it is back"
)


class LabService:
    def __init__(
        self,
        descriptions: Sequence[ModuleDescription],
        store: Store,
        *,
        policy: str = "planner",
        masks: Mapping[str, Sequence[str]] | None = None,
        admins: Sequence[str] = (),
        retries: int = 0,
        policy_options: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        limits: Limits = LIMITS,
        retry: RetryPolicy | None = None,
        auth: Authenticator | None = None,
        checkpoint_events: int = CHECKPOINT_EVENTS,
    ) -> None:
        self.default_retries = retries
        # who a user is: signed requests (identity.Authenticator); default: names as given
        self.auth = auth or Authenticator()
        self.limits = limits
        self.retry = retry or RetryPolicy()
        self.policy_name = policy
        self.policy_options = dict(policy_options or {})
        self.descriptions = list(descriptions)
        self.masks = masks
        self.lab = lab_from_modules(self.descriptions, masks)
        self.store = store
        self.access = AccessPolicy.from_admins(admins)
        self.clock = clock
        self.goals = StepGoalMapper(descriptions)
        self.campaigns = CampaignDriver(store, self)
        self._running_goals: dict[str, StepGoal] = {}
        self._starts: dict[str, dc.StartStep] = {}  # the decision that started each running goal
        self._lock = threading.RLock()  # one event at a time, from any callback thread
        self._closed = False
        self._version = 0  # events applied: which state a plan was made from
        # each module's last report of its devices in error (live, not stored: it reports again)
        self._reported_faults: dict[str, dict[str, str]] = {}
        self._latest_plan: list[Placement] = []
        self._plan_version = -1
        self._first_lab = self.lab
        self.core = self._new_core()
        # the core as it was at its last checkpoint; its events since are in its event log
        self._base: SchedulerCore | None = None
        self._checkpoint_events = checkpoint_events
        # jobs whose stored script no longer loads (the lab changed under it): failed, not lost
        self._unloadable: dict[str, JobView] = {}
        # Restart: the same events give the same decisions, which rebuild the goals in flight
        # and the slot positions; nothing is sent or written again. A job whose events cannot
        # be applied is quarantined (it fails with the reason); every other job goes on.
        for stored in store.load_events():
            event = self._replayable(stored)
            if event is None:
                continue
            self._replay(event)
        self.recovered_goals = list(self._running_goals.values())
        self._reconcile_started()

    def _replay(self, event: ev.Event) -> None:
        """Apply a stored event; what it still calls for (only the quarantine of a job whose
        step cannot be sent: proposals were answered before) is applied too, not stored again."""
        self._before(event)
        for follow_up in self._decide(event, Outbox(), replaying=True):
            self._replay(follow_up)

    def _reconcile_started(self) -> None:
        """After a replay that set a job aside, other jobs' steps may run that never started
        before: they start now (recorded, then sent with the recovered goals)."""
        open_steps = {r.step_id for r in self.store.steps(state="running")}
        now = self.clock()
        for goal in self.recovered_goals:
            if goal.step_id in open_steps:
                continue
            self._started(goal, self._starts[goal.step_id], now)

    def close(self) -> None:
        """Shutting down: after the event in progress, the store closes and submissions are
        refused. A submission is then either all recorded or not at all, and told which."""
        with self._lock:
            self._closed = True
            self.store.close()

    # ---- inputs --------------------------------------------------------------------------

    def submit(
        self, script: str, user: str, auth: str = "", *, received_at: float | None = None
    ) -> tuple[Submission, Outbox]:
        """Validate, persist and queue a job; a rejection names the field and changes nothing.
        ``auth``: the request's signature (identity.sign over the script and the user);
        ``received_at``: the lab time the request arrived (else: now), so that neither its
        checks nor a wait for the lock count as the job's waiting."""
        if received_at is None:
            received_at = self.clock()
        if isinstance(script, str):
            verdict = self.auth.verify("submit_job", {"script": script}, user, auth)
            if not verdict.allowed:
                return Submission(error=verdict.reason), Outbox()
        try:
            data = load_document(script, self.limits) if isinstance(script, str) else script
            if isinstance(data, dict):
                # the submitting user owns the job, whatever the script says
                data.setdefault("metadata", {})
                if isinstance(data["metadata"], dict):
                    data["metadata"]["owner"] = user or data["metadata"].get("owner", "")
                    # the lab's retry policy, unless the job states its own
                    data["metadata"].setdefault("retries", self.default_retries)
            spec = parse_job_script(data, self.lab, self.limits)
        except SpecError as error:
            return Submission(error=str(error)), Outbox()
        with self._lock:
            now = self._stamp(received_at)
            if self._closed:  # nothing recorded: the client must not think it was
                return Submission(error=SHUTTING_DOWN), Outbox()
            job_id = self.store.next_job_id()
            problem = self._trial(ev.JobSubmitted(job_id, spec, time=now))
            if problem:
                return Submission(
                    error=f"<document>: the scheduler cannot plan it: {problem}"
                ), Outbox()
            outbox = self._handle(ev.JobSubmitted(job_id, spec, time=now), script=script)
        return Submission(job_id=job_id), outbox

    def step_finished(
        self, step_id: str, measured: Mapping[str, Any] | None = None, *, at: float | None = None
    ) -> Outbox:
        """A step succeeded; ``at``: the lab time its module says it ended (else: now)."""
        with self._lock:
            if step_id not in self._running_goals:
                return Outbox()  # a duplicate answer (a re-sent goal): already counted
            event = ev.StepFinished(step_id, dict(measured or {}), time=self._stamp(at))
            return self._handle(event)

    def step_failed(
        self, step_id: str, reason: str, *, lost: bool = False, at: float | None = None
    ) -> Outbox:
        """A step failed; ``lost``: its module's process was lost under it (the device is not
        to blame); ``at``: as for :meth:`step_finished`."""
        with self._lock:
            if step_id not in self._running_goals:
                return Outbox()
            event = ev.StepFailed(step_id, reason, lost=lost, time=self._stamp(at))
            return self._handle(event)

    def _stamp(self, at: float | None) -> float:
        """When an input happened, as the lab counts it: ``at`` (a module's word for a step's end,
        a request's arrival), which may lie a message delay or a wait for the lock before now (a
        time-scaled lab multiplies those), but not before the last event nor after now."""
        now = self.clock()
        return now if at is None else min(max(at, self.core.now), now)

    def announced(self, description_yaml: str) -> tuple[str, str, Outbox]:
        """A module node announced its description: ("joined" | "known" | "differs" |
        "refused", detail, work). A module of the lab that announces a different description
        (a driver override, say) keeps the lab's: the plan does not change under it."""
        try:
            name = parse_description_text(description_yaml, "announced description").module
        except DescriptionError as error:
            return "refused", str(error), Outbox()
        mine = next((d for d in self.descriptions if d.module == name), None)
        if mine is not None:
            return ("known" if mine.to_yaml() == description_yaml else "differs"), "", Outbox()
        error, outbox = self.add_module(description_yaml)
        return ("refused", error, outbox) if error else ("joined", "", outbox)

    def add_module(self, description_yaml: str) -> tuple[str, Outbox]:
        """A module that announced itself while the lab runs joins it (modules are
        self-describing). Returns an error naming the problem, or "", and the work it unblocks;
        a rejected description changes nothing."""
        with self._lock:
            try:
                description = parse_description_text(description_yaml, "announced description")
                if description.module in self.lab.modules:
                    return f"module: '{description.module}' is already in the lab", Outbox()
                lab = lab_from_modules([*self.descriptions, description], self.masks)
            except (DescriptionError, SpecError) as error:
                return str(error), Outbox()
            now = self.clock()
            record = {
                "type": ev.ModuleAdded.__name__,
                "module": description.module,
                "description": description_yaml,
                "time": now,
            }
            return "", self._handle(self._adopt(description, lab, now), record)

    def device_health(
        self, module: str, faults: Mapping[str, str], *, complete: bool = True
    ) -> Outbox:
        """A module's report of its devices: ``faults`` maps each device in error (or
        disconnected) to why. Only changes become events: a device that fails goes out of
        order (its steps wait instead of failing their retries), a cleared one comes back.
        ``complete``: the module's status (a device it does not name is fine); else a goal
        result's faults, which may overtake the status that reports them and clear nothing."""
        with self._lock:
            if module not in self.lab.modules:
                return Outbox()
            if complete:
                self._reported_faults[module] = dict(faults)
            outbox = Outbox()
            down = self.core.out_of_order()
            held = self.core.operator_holds()  # only an operator brings these back
            for device in self.lab.modules[module].devices:
                if device in faults and device not in down:
                    event: ev.Event = ev.DeviceDown(device, faults[device], time=self.clock())
                elif complete and device not in faults and device in down and device not in held:
                    event = ev.DeviceUp(device, time=self.clock())
                else:
                    continue
                outbox.extend(self._handle(event))
            return outbox

    def clear_device(self, device: str, user: str, auth: str = "") -> tuple[CommandResult, Outbox]:
        """An operator says a device is fine again: it is back in order, also after failing
        too often in a row (the steps waiting for it start). A lab that requires signed
        requests takes it only from an admin."""
        refused = self._refused("clear_device_error", {"device": device}, user, auth, admin=True)
        if refused:
            return refused, Outbox()
        with self._lock:
            if device not in self.lab.device_module:
                known = ", ".join(sorted(self.lab.device_module))
                return CommandResult(
                    False, f"device: unknown '{device}' (known: {known})"
                ), Outbox()
            if device not in self.core.out_of_order():
                return CommandResult(True, f"{device} is in order"), Outbox()
            module = self.lab.device_module[device]
            reported = self._reported_faults.get(module, {}).get(device)
            if reported is not None:  # its goals would only be refused by the module
                return CommandResult(
                    False,
                    f"device: {device} is in error on {module} ({reported}); clear it on the "
                    "module first (it may have failed again since it was cleared there)",
                ), Outbox()
            outbox = self._handle(ev.DeviceUp(device, operator=True, time=self.clock()))
            log.info("device %s cleared by %s", device, user)
            return CommandResult(True, f"{device} is back in order (cleared by {user})"), outbox

    def next_wake(self) -> float | None:
        """Lab time at which :meth:`tick` has work (a retry's back-off ends), or None."""
        with self._lock:
            return self.core.next_wake()

    def tick(self) -> Outbox:
        """Let the core act on time passing: retries whose back-off has ended start, and a
        look-ahead the policy deferred runs. It runs on a copy of the core taken under the lock
        and outside it (0.1-0.3 s with tens of jobs: module results and submissions must not
        wait for it); what it chose is applied and logged as an event."""
        with self._lock:
            wake = self.core.next_wake()
            if wake is None or self.clock() < wake:
                return Outbox()
            replan = self.core.policy.rules_due()
            snapshot = self.core.fork() if replan else None
        outbox = Outbox()
        if snapshot is not None:
            try:
                rules = snapshot.policy.choose_rules(snapshot)
            except Exception:  # the look-ahead's own failure must not stop the lab
                log.error("look-ahead failed:\n%s", traceback.format_exc())
                rules = ()  # the rules stay as they are until the next replanning event
            with self._lock:
                # at the time of the state it was chosen for: a choice moves no lab time on
                chosen = ev.RulesChosen(rules, replan, time=snapshot.now)
                outbox.extend(self._handle(chosen))
        with self._lock:
            wake = self.core.next_wake()
            now = self.clock()
            if wake is not None and now >= wake and not self.core.policy.rules_due():
                outbox.extend(self._handle(ev.Tick(time=now)))
        return outbox

    def emergency_stop(self) -> EmergencyStopState:
        """The last e-stop state: an engaged stop outlives a restart (a restart never releases
        it)."""
        saved = json.loads(self.store.get_meta(ESTOP_KEY, "{}") or "{}")
        return EmergencyStopState(
            bool(saved.get("engaged", False)),
            str(saved.get("reason", "")),
            str(saved.get("source", "scheduler")),
        )

    def set_emergency_stop(
        self, engaged: bool, reason: str, source: str, alive: Sequence[str], auth: str = ""
    ) -> tuple[CommandResult, Outbox]:
        """Anyone may engage the stop, only an admin may reset it. Engaged: every module is
        down (no step starts anywhere); reset: the ``alive`` modules are up again. The state is
        stored before anyone is told. Signed: by an enrolled user, a reset by an admin."""
        fields = {"engaged": "true" if engaged else "false", "reason": reason}
        refused = self._refused("set_emergency_stop", fields, source, auth, admin=not engaged)
        if refused:
            return refused, Outbox()
        if not engaged and not self.access.is_admin(source):
            message = f"source: only an admin may reset the emergency stop ({source})"
            return CommandResult(False, message), Outbox()
        # one commit (one fsync) for the state and every module's event: the stop is published
        # only after it is stored, so each commit here delays it
        with self._lock, self.store.transaction():
            record = {"engaged": engaged, "reason": reason, "source": source}
            self.store.set_meta(ESTOP_KEY, json.dumps(record))
            outbox = Outbox()
            for module in self.lab.modules:
                if engaged:
                    outbox.extend(self.module_down(module))
                elif module in alive:
                    outbox.extend(self.module_up(module))
        return CommandResult(True, f"emergency stop {'ENGAGED' if engaged else 'reset'}"), outbox

    def module_down(self, module: str) -> Outbox:
        with self._lock:
            return self._handle(ev.ModuleDown(module, time=self.clock()))

    def module_up(self, module: str) -> Outbox:
        with self._lock:
            return self._handle(ev.ModuleUp(module, time=self.clock()))

    def _refused(
        self, action: str, fields: Mapping[str, Any], user: str, auth: str, *, admin: bool = False
    ) -> CommandResult | None:
        """None when the request's signature (if the lab requires one) holds, else why not."""
        verdict = self.auth.verify(action, fields, user, auth)
        if not verdict.allowed:
            return CommandResult(False, verdict.reason)
        if admin and self.auth.required and not self.access.is_admin(user):
            return CommandResult(False, f"user: only an admin may do this ('{user}' is not one)")
        return None

    def command(
        self, kind: str, job_id: str, user: str, auth: str = "", *, goal_owner: bool = False
    ) -> tuple[CommandResult, Outbox]:
        """Cancel, hold or resume a job: only its owner or an admin may. ``goal_owner``: the
        cancel of the job's own SubmitJob goal, whose submission was already verified."""
        if kind not in JOB_COMMANDS:
            return CommandResult(False, f"command: unknown '{kind}'"), Outbox()
        refused = (
            None if goal_owner else self._refused(f"{kind}_job", {"job_id": job_id}, user, auth)
        )
        if refused:
            return refused, Outbox()
        with self._lock:
            record = self.store.job(job_id)
            if record is None:
                return CommandResult(False, f"job_id: no job '{job_id}'"), Outbox()
            verdict = self.access.check(user, record.owner, kind)
            if not verdict.allowed:
                return CommandResult(False, verdict.reason), Outbox()
            state = self.job(job_id).state  # type: ignore[union-attr] - the store knows it
            if state in ENDED:
                return CommandResult(
                    False, f"job_id: {job_id} has already ended ({state})"
                ), Outbox()
            event_type = {"cancel": ev.CancelJob, "hold": ev.HoldJob, "resume": ev.ResumeJob}[kind]
            outbox = self._handle(event_type(job_id, time=self.clock()))
            state = self.core.job(job_id).state
            return CommandResult(True, f"{kind}: job {job_id} is {state}"), outbox

    # ---- the core ---------------------------------------------------------------------------

    def _handle(
        self, event: ev.Event, record: Mapping[str, Any] | None = None, *, script: str = ""
    ) -> Outbox:
        """The one write path. Per event: first, in one transaction, the event (``record``, else
        its own mapping) and the rows of the input (the first event only: the job of ``script``,
        a step's end and what it measured), before the core sees it; then the core's decisions
        and, in a second transaction, the rows they imply. The events the decisions call for are
        handled next, depth first: in the order a recursion would take them."""
        outbox = Outbox()
        # (event, its stored mapping, whether it is the input)
        work: list[tuple[ev.Event, Mapping[str, Any] | None, bool]] = [(event, record, True)]
        while work:
            event, record, is_input = work.pop()
            with self.store.transaction():
                self.store.append_event(dict(record) if record is not None else ev.to_dict(event))
                if is_input:
                    self._write_input(event, script)
            with self.store.transaction():
                self._before(event)
                follow_ups = self._decide(event, outbox, replaying=False)
            work.extend((follow_up, None, False) for follow_up in reversed(follow_ups))
        return outbox

    def _write_input(self, event: ev.Event, script: str) -> None:
        """The rows an input adds besides its event: a submitted job, a step's end and what it
        measured."""
        if isinstance(event, ev.JobSubmitted):
            meta = event.spec.metadata
            self.store.add_job(
                job_id=event.job_id,
                owner=meta.owner,
                name=meta.name,
                script=script,
                submitted_at=event.time,
                priority=meta.priority,
            )
        elif isinstance(event, ev.StepFinished):
            self.store.step_ended(
                event.step_id, state="succeeded", ended_at=event.time, outcome="ok"
            )
            if event.results:
                goal = self._running_goals[event.step_id]
                self._record_measurements(goal, event.results, event.time)
        elif isinstance(event, ev.StepFailed):
            self.store.step_ended(
                event.step_id, state="failed", ended_at=event.time, outcome=event.reason
            )

    def _event_from_store(self, stored: Mapping[str, Any]) -> ev.Event:
        if stored.get("type") != ev.ModuleAdded.__name__:
            return ev.from_dict(stored, self.lab)
        description = parse_description_text(stored["description"], "stored description")
        lab = lab_from_modules([*self.descriptions, description], self.masks)
        return self._adopt(description, lab, stored["time"])

    def _adopt(self, description: ModuleDescription, lab: Lab, now: float) -> ev.ModuleAdded:
        """Take a new module into the service's own model; the event takes it into the core."""
        self.descriptions.append(description)
        self.lab = lab
        self.goals.add(description)
        return ev.ModuleAdded(description.module, lab, time=now)

    def _before(self, event: ev.Event) -> None:
        """Bookkeeping of goals and positions that an event implies (live and on replay)."""
        if isinstance(event, ev.StepFinished | ev.StepFailed):
            goal = self._running_goals.pop(event.step_id, None)
            self._starts.pop(event.step_id, None)
            if goal is not None and isinstance(event, ev.StepFinished):
                self.goals.step_ended(goal)

    def _decide(self, event: ev.Event, outbox: Outbox, *, replaying: bool) -> list[ev.Event]:
        """Apply one event; fill ``outbox``; return the events the decisions call for."""
        follow_ups: list[ev.Event] = []
        for decision in self._apply(event, replaying=replaying):
            if isinstance(decision, dc.StartStep):
                try:
                    goal = self.goals.goal(decision)
                except Exception as error:  # the module cannot be asked for it: the job's fault
                    follow_ups += self._unsendable(decision, error)
                    continue
                self._running_goals[decision.step_id] = goal
                self._starts[decision.step_id] = decision
                if replaying:
                    continue
                self._started(goal, decision, decision.time)
                outbox.goals.append(goal)
            elif isinstance(decision, dc.JobEnded):
                self.goals.positions.release_samples(
                    [
                        s
                        for s in self.goals.positions.samples()
                        if s.startswith(f"{decision.job_id}/")
                    ]
                )
                if not replaying:
                    self.store.set_job_state(
                        decision.job_id,
                        decision.state,
                        ended_at=decision.time,
                        message=decision.reason,
                    )
                    outbox.ended_jobs.append(decision)
            elif replaying:
                continue  # proposals, aborts and alerts were answered before the restart
            elif isinstance(decision, dc.AbortStep):
                outbox.aborts.append(decision.step_id)
            elif isinstance(decision, dc.LowStock):
                outbox.low_stock.append(decision)
            elif isinstance(decision, dc.NeedProposals):
                follow_ups.append(self._proposals(decision))
            elif isinstance(decision, EventRejected):
                log.warning("core ignored %s: %s", decision.event_type, decision.reason)
        return follow_ups

    def _started(self, goal: StepGoal, start: dc.StartStep, when: float) -> None:
        """Record a step's start and, the first time a sample starts, its experiment: its
        parameters and cycle, as the decision gives them. The store says whether it has the
        experiment: a set of every sample that ever started grew with the lab's history."""
        for sample, params in zip(start.samples, start.sample_params, strict=True):
            if not self.store.has_experiment(goal.job_id, sample):
                self.store.record_experiment(
                    job_id=goal.job_id,
                    experiment_id=sample,
                    recorded_at=when,
                    cycle=start.cycle,
                    parameters=dict(params),
                )
        self.store.step_started(
            step_id=goal.step_id,
            job_id=goal.job_id,
            module=goal.module,
            task=goal.task,
            step=start.step,
            started_at=when,
        )

    def _unsendable(self, start: dc.StartStep, error: Exception) -> list[ev.Event]:
        """A step the core started whose module goal cannot be built: its job is quarantined
        and the step ends, so nothing waits for a goal that was never sent."""
        log.error("step %s cannot be sent:\n%s", start.step_id, traceback.format_exc())
        reason = f"step {start.step_id} cannot be sent: {type(error).__name__}: {error}"
        return [
            ev.QuarantineJob(start.job_id, reason, time=start.time),
            ev.StepFailed(start.step_id, reason, time=start.time),
        ]

    def _proposals(self, need: dc.NeedProposals) -> ev.Event:
        # at the time they were asked for, as decisions are: the optimiser's compute is not lab
        # time (a time-scaled lab would multiply its 0.1 s into minutes; the twin counts none)
        try:
            sets = self.campaigns.propose(need)
        except Exception as error:  # one campaign's optimiser must not stop the lab
            log.error("proposals for %s failed:\n%s", need.job_id, traceback.format_exc())
            return ev.QuarantineJob(need.job_id, f"its campaign failed: {error}", time=need.time)
        return ev.ProposalsReady(need.job_id, need.cycle, tuple(sets), time=need.time)

    # ---- isolation: one job's bad data never stops the lab ------------------------------------

    def _new_core(self, lab: Lab | None = None) -> SchedulerCore:
        return SchedulerCore(
            lab or self._first_lab,
            self.policy_name,
            clock=self.clock,
            policy_options=self.policy_options,
            retry=self.retry,
            defer_lookahead=True,  # submissions are answered at once; the next tick looks ahead
        )

    def _rebuilt(self, events: Sequence[ev.Event]) -> SchedulerCore:
        """The core at its last checkpoint, having applied ``events`` (which applied without
        error before)."""
        core = self._base.checkpoint() if self._base is not None else self._new_core()
        for event in events:
            core.handle(event)
        return core

    def _trial(self, event: ev.Event) -> str:
        """Apply ``event`` to a copy of the core: "" when it applies, else why not. The copy skips
        the policy's look-ahead: it only chooses among safe decisions, and the live core's
        look-ahead is guarded like any event (``_apply``)."""
        try:
            trial = self.core.fork()
            trial.policy.skip_lookahead()
            trial.handle(event)
        except Exception as error:
            log.error("trial of %s failed:\n%s", type(event).__name__, traceback.format_exc())
            return f"{type(error).__name__}: {error}"
        return ""

    def _apply(self, event: ev.Event, *, replaying: bool) -> list[dc.Decision]:
        """The core's decisions on ``event``. If applying it raises, the core is rebuilt from the
        events before it (on its last checkpoint, taken every ``checkpoint_events``) and the job
        to blame is quarantined: the event's own job, else the first live job without which the
        event applies. Deterministic, so a replay after a restart takes the same way. An event
        that fails whoever is quarantined is dropped."""
        self._version += 1
        if len(self.core.event_log) >= self._checkpoint_events:
            self._base = self.core.checkpoint()
        mark = len(self.core.event_log)
        try:
            return self.core.handle(event)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            log.error("applying %s failed:\n%s", type(event).__name__, traceback.format_exc())
        before = self.core.event_log[:mark]
        base = self._rebuilt(before)
        suspect = ev.job_of(event)
        suspects = [suspect] if suspect else [j.id for j in base.all_jobs() if not j.finished]
        for job_id in suspects:
            core = self._rebuilt(before) if job_id != suspects[0] else base
            quarantine = ev.QuarantineJob(job_id, reason, time=event.time)
            # simultaneous: a submitted job exists before it is set aside, others are set aside
            # before the event; one dispatch either way
            pair = (
                [event, quarantine] if isinstance(event, ev.JobSubmitted) else [quarantine, event]
            )
            try:
                decisions = core.handle(pair)
            except Exception:
                continue
            self.core = core
            log.error("job %s quarantined: %s", job_id, reason)
            if not replaying:  # kept in the log too (a replay derives it again anyway)
                self.store.append_event(ev.to_dict(quarantine))
            return decisions
        self.core = self._rebuilt(before)
        log.error(
            "%s dropped: it fails whichever job is set aside (%s)", type(event).__name__, reason
        )
        if isinstance(event, ev.JobSubmitted):
            self._set_aside(event.job_id, f"its submission cannot be applied: {reason}", event.time)
        return []

    def _replayable(self, stored: Mapping[str, Any]) -> ev.Event | None:
        """A stored event, or None when it cannot be read (its job is quarantined)."""
        job_id = str(stored.get("job_id") or str(stored.get("step_id", "")).split("/", 1)[0])
        if job_id in self._unloadable:
            return None
        try:
            return self._event_from_store(stored)
        except Exception as error:
            reason = f"its stored {stored.get('type', 'event')} cannot be read: {error}"
        log.error("replay of job %r: %s", job_id, reason)
        if stored.get("type") == ev.JobSubmitted.__name__:
            self._set_aside(job_id, reason, stored.get("time"))
        elif job_id and self.core.run_job(job_id) is not None:
            return ev.QuarantineJob(job_id, reason, time=stored.get("time"))
        return None  # a lab event that cannot be read: skipped, and said

    def _set_aside(self, job_id: str, reason: str, when: float | None) -> None:
        """A job the core cannot hold at all: failed in the store, shown from its record."""
        record = self.store.job(job_id)
        if record is None:
            return
        message = f"quarantined: {reason}"
        if record.state != "failed" or record.message != message:
            self.store.set_job_state(job_id, "failed", ended_at=when, message=message)
        self._unloadable[job_id] = JobView(
            job_id=job_id,
            name=record.name,
            owner=record.owner,
            priority=record.priority,
            state="failed",
            submit_time=record.submitted_at,
            start_time=None,
            end_time=when,
            cycle=0,
            cycles=0,
            reason=message,
        )

    def _record_measurements(self, goal: StepGoal, measured: Mapping[str, Any], now: float) -> None:
        """Per sample: module data keyed "<sample>/<Device>.<action>" or, per batch, unkeyed."""
        where = f"{goal.module}.{goal.step_id.rsplit('/', 1)[-1]}"
        for sample in goal.samples or (goal.experiment_id,):
            mine = {
                k.split("/", 1)[1] if k.startswith(f"{sample}/") else k: v
                for k, v in measured.items()
                if k.startswith(f"{sample}/") or "/" not in k
            }
            if mine:
                self.store.record_experiment(
                    job_id=goal.job_id,
                    experiment_id=sample,
                    recorded_at=now,
                    measured={where: mine},
                )

    # ---- views -------------------------------------------------------------------------------

    def jobs(self, *, ended_since: float | None = None) -> list[JobView]:
        """Every job, or the live ones and those ended at ``ended_since`` or later."""
        with self._lock:
            unloadable = [v for v in self._unloadable.values() if in_view(v.end_time, ended_since)]
            views = self.core.jobs(ended_since=ended_since)
            return sorted([*views, *unloadable], key=_by_submission)

    def job_states(self) -> Counter[str]:
        """How many jobs of the lab are in each state."""
        with self._lock:
            return self.core.job_states() + Counter(v.state for v in self._unloadable.values())

    def job(self, job_id: str) -> JobView | None:
        with self._lock:
            try:
                return self.core.job(job_id)
            except KeyError:
                return self._unloadable.get(job_id)

    def plan(self) -> list[Placement]:
        """What the scheduler will do from now on, if every step takes its expected time.

        Projected on a copy of the core taken under the lock and run outside it: with hundreds
        of jobs queued a projection takes a second, and submissions and module results must not
        wait for it. The newest plan is kept for the views (``summaries``)."""
        with self._lock:
            snapshot, version = self.core.fork(), self._version
        placements = project(snapshot)
        with self._lock:
            if version >= self._plan_version:  # a slower projection of an older state loses
                self._latest_plan, self._plan_version = placements, version
        return placements

    def latest_plan(self) -> list[Placement]:
        """The newest plan made by ``plan`` (the schedule topic makes one every 0.5 s)."""
        with self._lock:
            return self._latest_plan

    def summaries(
        self, plan: Sequence[Placement] | None = None, *, ended_since: float | None = None
    ) -> list[JobSummary]:
        """Every job (live, or ended at ``ended_since`` or later) with its progress and its
        estimated finish from ``plan``, else from the newest plan made (planning is not free:
        listing jobs must not plan each time)."""
        with self._lock:
            placements = self._latest_plan if plan is None else plan
            finish: dict[str, float] = {}
            for p in placements:
                finish[p.job_id] = max(finish.get(p.job_id, p.end), p.end)
            out = []
            for view in self.jobs(ended_since=ended_since):
                run = self.core.run_job(view.job_id)
                if run is None:  # quarantined before the core could hold it
                    out.append(JobSummary(view, "", 0.0, 0, 0, None))
                    continue
                progress, done, total = job_progress(run)
                out.append(
                    JobSummary(
                        view=view,
                        campaign=run.spec.campaign.kind,
                        progress=1.0 if view.state == "succeeded" else progress,
                        experiments_done=done,
                        experiments_total=total,
                        estimated_finish=finish.get(view.job_id, view.end_time),
                    )
                )
            return out

    def result_summary(self, job_id: str) -> str:
        """A job's end as YAML: state, message, and per experiment its parameters and results."""
        detail = self.store.job_detail(job_id)
        return yaml.safe_dump(
            {
                "job": job_id,
                "state": detail.job.state,
                "message": detail.job.message,
                "experiments": [
                    {"id": e.experiment_id, "parameters": e.parameters, "derived": e.derived}
                    for e in detail.experiments
                ],
            },
            sort_keys=False,
        )

    def resources(self) -> dict[str, tuple[dict[str, tuple[int, int]], dict[str, str]]]:
        """Per module: {slot type: (used, capacity)} and {busy device: holding step id}."""
        with self._lock:
            out: dict[str, tuple[dict[str, tuple[int, int]], dict[str, str]]] = {
                m: ({}, {}) for m in self.lab.modules
            }
            for (module, slot_type), used_capacity in self.core.slots().items():
                out[module][0][slot_type] = used_capacity
            for device, holder in self.core.devices().items():
                if holder is not None:
                    out[self.lab.device_module[device]][1][device] = holder
            return out

    def experiments_total(self, job_id: str) -> int:
        """How many experiments the job runs in all (cheap: no planning)."""
        with self._lock:
            run = self.core.run_job(job_id)
            return experiments_of(run.spec.campaign) if run else 0

    def step_shape(self, module: str, task: str, step: str) -> tuple[str, tuple[str, ...]]:
        """(kind, devices) of a step of the lab: "active"/"standby" and the mask it holds."""
        spec = next((s for s in self.lab.task(module, task).steps if s.name == step), None)
        if spec is None:
            return "active", ()
        return spec.kind, tuple(sorted(self.lab.step_devices(module, task, spec)))


def _by_submission(view: JobView) -> tuple[float, str]:
    return view.submit_time, view.job_id


def experiments_of(campaign: Any) -> int:
    return campaign.batch * campaign.cycles if campaign.sequential else len(campaign.experiments)


def job_progress(run: Any) -> tuple[float, int, int]:
    """(share of steps done, experiments whose every step is done, experiments in all).

    Steps of experiments not expanded yet (later cycles, samples still queued) are counted at
    the rate of those already expanded.
    """
    total = experiments_of(run.spec.campaign)
    known, samples, done_steps, finished = step_counts(run)
    expected = known + (known / samples) * max(total - samples, 0) if samples else 0
    return (done_steps / expected if expected else 0.0), finished, total
