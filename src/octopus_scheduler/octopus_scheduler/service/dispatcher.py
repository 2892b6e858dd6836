"""The module goals of a running lab, without ROS: what is in flight, what is sent, what ends.

:class:`Dispatcher` sits between :class:`~octopus_scheduler.service.lab_service.LabService` and the
modules. It owns:

- the goals in flight (one attempt per step; a retry is a new attempt with the same step id)
  and their deadlines (``factor x expected + margin`` wall seconds, counted again from when the
  module accepts the goal; a late step times out);
- the queue of goals to send: a goal waits while its module cannot take it (not discovered
  yet), and cancels of goals the module accepted;
- what an answer means: rejected, succeeded, failed; an outcome of an attempt that already
  ended (timed out, lost, retried) and a second outcome of one are ignored;
- module liveness (:class:`~octopus_scheduler.service.liveness.ModuleLiveness`): a silent module is
  down, a new boot id is a restart; either way its steps in flight end at once (``lost``), the
  core retries or fails them;
- the e-stop's hold on modules coming back, and alerts (job ended, module down, low stock).

It reaches the modules only through a :class:`ModulePort` (the scheduler node: rclpy action
clients) and reads time from an injected monotonic clock, so it runs under a virtual clock in
tests. Threads: every method may be called from any thread; :attr:`Dispatcher.lock` guards the
service and what the core knows (the node takes it around its own service calls too); the goals
in flight and the send queue have a lock of their own, so that goals go out and answers are
recorded while a decision holds ``lock``. The port is never called with either lock held.
:meth:`Dispatcher.send_queued` must run where the answers to goals are handled (the node: one
mutually exclusive callback group), see the node.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from octopus_modules.lab_clock import LabClock, ScaledClock
from octopus_scheduler.service import notifications
from octopus_scheduler.service.lab_service import CommandResult, LabService, Outbox
from octopus_scheduler.service.liveness import ModuleLiveness
from octopus_scheduler.service.step_goals import StepGoal


class ModulePort(Protocol):
    """What the dispatcher asks of the modules."""

    def ready(self, module: str) -> bool:
        """Can a goal reach the module now (its action server is matched)?"""

    def send_goal(self, goal: StepGoal, planned_start: float | None) -> None:
        """Send the goal (``planned_start``: the wall time at which the core started the step);
        its answer comes back through :meth:`Dispatcher.answered`, its outcome through
        :meth:`Dispatcher.finished`."""

    def cancel_goal(self, handle: Any) -> None:
        """Cancel a goal the module accepted (``handle`` as given to ``answered``)."""

    def release_samples(self, job_id: str) -> None:
        """Free the positions a job's samples still hold in the modules."""

    def wake(self) -> None:
        """Goals or cancels are queued: call :meth:`Dispatcher.send_queued` soon."""


class Logger(Protocol):
    def info(self, message: str) -> Any: ...
    def warning(self, message: str) -> Any: ...
    def error(self, message: str) -> Any: ...


@dataclass
class InFlight:
    goal: StepGoal  # the attempt in flight
    deadline: float  # monotonic wall seconds: from when it was sent, then from its acceptance
    handle: Any = None  # the module's handle once it accepted the goal


@dataclass(order=True)
class _Outcome:
    """A module's answer that waits for the lab's lock, ordered by when it ended in lab time."""

    ended: float  # lab time; an answer without a stamp ended "now", after the stamped ones
    arrival: int
    goal: StepGoal = field(compare=False)
    success: bool = field(compare=False)
    reason: str = field(compare=False)
    measured: Mapping[str, Any] | None = field(compare=False)
    at: float | None = field(compare=False)
    faults: Mapping[str, str] = field(compare=False)


def _nothing(*_: Any) -> None:
    return None


class Dispatcher:
    #: how often the node calls :meth:`resend` and :meth:`tick` (a retry's back-off ends in lab
    #: time: look often enough for a fast simulated lab)
    RESEND_PERIOD_S = 0.1
    TICK_PERIOD_S = 0.05

    def __init__(
        self,
        service: LabService,
        port: ModulePort,
        logger: Logger,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        lab_clock: LabClock | None = None,
        timeout_factor: float = 3.0,
        timeout_margin_s: float = 10.0,
        heartbeat_period_s: float = 1.0,
        notify: Callable[[notifications.Notification | None], Any] = _nothing,
        changed: Callable[[bool], Any] = _nothing,
    ) -> None:
        """``changed(jobs_ended)``: what the plan shows changed (publish it; jobs ended too)."""
        self.service = service
        self.port = port
        self.log = logger
        self.monotonic = monotonic
        # the lab's clock says how long a step's lab seconds last on the wall
        self.lab_clock = lab_clock or ScaledClock(1.0)
        self.timeout_factor = timeout_factor
        self.timeout_margin_s = timeout_margin_s
        self.notify = notify
        self.changed = changed
        self.lock = threading.RLock()
        # heartbeats are recorded under a lock of their own, held for microseconds: a beat must
        # not wait for a long decision under ``lock`` and be counted late (a starved scheduler
        # marked live modules down)
        self._beats = threading.Lock()
        self._faults: dict[str, dict[str, str]] = {}  # module -> the faults it last reported
        # module -> {device: (wall time, why)}: faults a failed goal's result reported, which a
        # status published before that time may not show yet (statuses are best effort, on
        # another topic): such a status does not clear them, a later one does
        self._unconfirmed: dict[str, dict[str, tuple[float, str]]] = {}
        #: how often the node calls :meth:`watchdog`: a silent module is down at most a quarter
        #: period late
        self.watchdog_period_s = min(heartbeat_period_s / 4, 0.25)
        self.liveness = ModuleLiveness(
            [d.module for d in service.descriptions], heartbeat_period_s, monotonic()
        )
        self.estop_engaged = service.emergency_stop().engaged  # modules stay down while engaged
        # the goals in flight and what waits to be sent, under a lock of their own held for
        # microseconds (taken after ``lock`` when both are needed, never before): a goal the
        # core started must not wait for the next submission or decision to go out (the first
        # goal of the 4,000x day waited 96 ms behind a submission, 6 lab minutes)
        self._goals = threading.Lock()
        self._in_flight: dict[str, InFlight] = {}
        self._outgoing: deque[StepGoal] = deque()
        self._cancels: list[Any] = []
        # outcomes that arrived and wait for ``lock``, taken in the order they ended (a heap)
        self._arrived: list[_Outcome] = []
        self._arrivals = threading.Lock()
        self._arrival_numbers = itertools.count()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # ---- the service's work out ----------------------------------------------------------------

    def dispatch(self, outbox: Outbox) -> None:
        """Carry out what the service decided: goals, aborts, sample releases, alerts."""
        for ended in outbox.ended_jobs:
            # the core frees a job's slots when it ends: so must the modules, also for samples a
            # finished route left in place (a no-op where the route took them out); before new
            # goals, which may already use those positions
            self.port.release_samples(ended.job_id)
        for goal in outbox.goals:
            self._send(goal)
        for step_id in outbox.aborts:
            with self._goals:
                entry = self._in_flight.get(step_id)
            if entry is not None and entry.handle is not None:
                self._cancel(entry.handle)
        for ended in outbox.ended_jobs:
            record = self.service.store.job(ended.job_id)
            self.notify(
                notifications.job_ended(
                    ended.job_id,
                    ended.state,
                    ended.reason,
                    owner=record.owner if record else "",
                    name=record.name if record else "",
                )
            )
        for low in outbox.low_stock:
            self.log.warning(f"low stock: {low.module} {low.item} ({low.remaining} left)")
            self.notify(notifications.low_consumables(low.module, low.item, low.remaining))
        if outbox.goals or outbox.aborts or outbox.ended_jobs:
            self.changed(bool(outbox.ended_jobs))

    def tick(self) -> None:
        """Time passed: retries whose back-off has ended start, and a deferred look-ahead runs.
        Not under ``lock``: the service serialises its own state, and the look-ahead (0.1-0.3 s
        with tens of jobs) runs outside the service's lock, so that results, goal answers and
        status changes are handled meanwhile; under ``lock`` they all waited for it."""
        self.dispatch(self.service.tick())

    def _deadline(self, goal: StepGoal) -> float:
        """When the goal times out if nothing is heard of it from now on."""
        wall = self.lab_clock.wall_s(goal.expected_s)
        return self.monotonic() + wall * self.timeout_factor + self.timeout_margin_s

    def _send(self, goal: StepGoal) -> None:
        deadline = self._deadline(goal)
        with self._goals:
            self._in_flight[goal.step_id] = InFlight(goal, deadline)
            self._outgoing.append(goal)
        self.port.wake()

    def send_queued(self) -> None:
        """Send the queued cancels, and the queued goals whose module is ready (a goal sent
        before discovery completes is silently lost); the others wait for :meth:`resend`."""
        with self._goals:
            cancels, self._cancels = self._cancels, []
        for handle in cancels:
            self.port.cancel_goal(handle)
        waiting: deque[StepGoal] = deque()
        while True:
            with self._goals:
                if not self._outgoing:
                    self._outgoing.extend(waiting)
                    return
                goal = self._outgoing.popleft()
                if not self._current(goal):
                    continue  # ended meanwhile (timed out, module down)
            if not self.port.ready(goal.module):
                waiting.append(goal)
                continue
            start = goal.started_at
            self.port.send_goal(goal, None if start is None else self.lab_clock.wall_time_at(start))

    def resend(self) -> None:
        """Try again what waits (the node calls it every 0.1 s, from where it sends)."""
        if self._outgoing or self._cancels:
            self.send_queued()

    def _cancel(self, handle: Any) -> None:
        """Cancel a module goal: queued, and sent from :meth:`send_queued` like every request."""
        with self._goals:
            self._cancels.append(handle)
        self.port.wake()

    def _current(self, goal: StepGoal) -> bool:
        """Is this goal the step's attempt in flight? (A retry has the same step id.) Under
        ``_goals``."""
        entry = self._in_flight.get(goal.step_id)
        return entry is not None and entry.goal is goal

    # ---- the modules' answers in -------------------------------------------------------------

    def answered(self, goal: StepGoal, handle: Any, accepted: bool) -> None:
        """The module took the goal (``handle`` cancels it) or rejected it. An accepted goal's
        time starts again: what it waited before (in the send queue, in DDS, for a busy module
        to answer) is not the step running long. At 50 modules under load goals were accepted
        18-33 s after they were sent and timed out while they ran as planned."""
        if not accepted:
            self._end_step(goal.step_id, False, "rejected by the module", attempt=goal)
            return
        # not under ``lock``: the goal node's threads must not wait for a decision to record an
        # acceptance (under load they all did, and goal answers queued for seconds)
        deadline = self._deadline(goal)
        with self._goals:
            if self._current(goal):
                entry = self._in_flight[goal.step_id]
                entry.handle = handle
                entry.deadline = max(entry.deadline, deadline)

    def finished(
        self,
        goal: StepGoal,
        success: bool,
        measured: Mapping[str, Any] | None = None,
        error: str = "",
        *,
        ended_at: float | None = None,
        faults: Mapping[str, str] | None = None,
    ) -> None:
        """The goal's outcome (of this attempt: a late one of an earlier attempt is ignored);
        ``ended_at``: the wall time the module says it ended (else: now); ``faults``: the
        module's devices in error when it ended, and why (the module's status may tell later);
        those of a failure take the devices out of order at once (see :meth:`_close`).

        Outcomes that arrive while the lab's lock is held (by a decision, a submission) are
        taken in the order their steps ended, not the order their threads get the lock: the core
        takes a step's end no earlier than its last event, so an earlier end taken second was
        moved to the later one (at 4,000x, lab minutes). Each answer's thread takes one outcome,
        the earliest waiting, and lets the lock go: one thread taking them all held the lab for
        seconds at 50 modules."""
        at = None if ended_at is None else self.lab_clock.lab_time_at(ended_at)
        reason = "" if success else (error or "failed")
        # a failed task's end is the module's clock when it failed: its statuses from then on
        # show the faults (a success's end may be counted earlier than that, see ExecuteTask)
        faults = {} if success else dict(faults or {})
        if faults:
            with self._beats:
                told = self._unconfirmed.setdefault(goal.module, {})
                told.update({d: (ended_at or 0.0, why) for d, why in faults.items()})
        outcome = _Outcome(
            math.inf if at is None else at,
            next(self._arrival_numbers),
            goal,
            success,
            reason,
            measured if success else None,
            at,
            faults,
        )
        with self._arrivals:
            heapq.heappush(self._arrived, outcome)
        with self.lock:
            with self._arrivals:  # never empty: one pop for each push, each after its push
                first = heapq.heappop(self._arrived)
            outbox = self._close(
                first.goal.step_id,
                first.success,
                first.reason,
                first.measured,
                first.goal,
                False,
                first.at,
                first.faults,
            )
        if outbox is not None:
            self.dispatch(outbox)

    def result_lost(self, goal: StepGoal) -> None:
        """The module no longer had the goal's result when it was asked for (an action server
        keeps a result ``result_timeout`` after the goal ends, and a busy scheduler asked
        later). The goal is sent again: a module answers a goal it knows from what it kept,
        without running it again (one it did not keep, cancelled or aborted there, runs anew
        as a retry would)."""
        with self._goals:
            if not self._current(goal):
                return
            self._outgoing.append(goal)
        self.log.warning(f"step {goal.step_id}: its result had expired, asking again")
        self.port.wake()

    def _end_step(
        self,
        step_id: str,
        success: bool,
        reason: str,
        measured: Mapping[str, Any] | None = None,
        *,
        attempt: StepGoal | None = None,
        lost: bool = False,
        at: float | None = None,
    ) -> None:
        """End the step in flight; an outcome of an earlier ``attempt`` is ignored. ``lost``: the
        module's process was lost under it. ``at``: the lab time it ended (else: now)."""
        with self.lock:
            outbox = self._close(step_id, success, reason, measured, attempt, lost, at, {})
        if outbox is not None:
            self.dispatch(outbox)

    def _close(
        self,
        step_id: str,
        success: bool,
        reason: str,
        measured: Mapping[str, Any] | None,
        attempt: StepGoal | None,
        lost: bool,
        at: float | None,
        faults: Mapping[str, str],
    ) -> Outbox | None:
        """:meth:`_end_step` under ``lock``: what to dispatch once it is released, if anything.
        ``faults`` (of ``attempt``'s module) go out of order first: the step's retry, and every
        other step, waits for those devices instead of being refused by the module."""
        with self._goals:
            if attempt is not None and not self._current(attempt):
                return None  # an outcome of an attempt that already ended (timed out, retried)
            if self._in_flight.pop(step_id, None) is None:
                return None  # already ended (timeout, module down)
        outbox = Outbox()
        if faults and attempt is not None:
            outbox.extend(self._device_report(attempt.module, faults, complete=False))
        if success:
            outbox.extend(self.service.step_finished(step_id, measured, at=at))
            return outbox
        self.log.warning(f"step {step_id} failed: {reason}")
        outbox.extend(self.service.step_failed(step_id, reason, lost=lost, at=at))
        return outbox

    # ---- liveness and timeouts -----------------------------------------------------------------

    def joined(self, module: str) -> None:
        """A module joined the running lab (it announced itself): heard now."""
        with self._beats:
            self.liveness.add(module, self.monotonic())

    def heartbeat(
        self, module: str, boot_id: str, faults: Mapping[str, str], stamp: float | None = None
    ) -> None:
        """A module's status: ``faults`` maps each of its devices in error to why; ``stamp``:
        the wall time it was published (None: taken as new)."""
        with self._beats:  # on time even if the scheduler is busy
            first, was_down, restarted = self.liveness.beat(module, self.monotonic(), boot_id)
            # most statuses say what the last one said: nothing for the core, no wait for its lock
            # (three per device action, beside the goal's own answers)
            same = self._faults.get(module) == faults and module not in self._unconfirmed
            self._faults[module] = dict(faults)
            faults = self._with_unconfirmed(module, faults, stamp)
        if same and not (first or was_down or restarted):
            return
        # a new process before the old one was missed: what the old one ran is lost (a module
        # marked down had its steps ended then)
        restarted = restarted and not was_down
        with self.lock:
            # the core learns it from the core's own state, so a beat racing the watchdog cannot
            # leave the core believing a live module is down (or tell it "up" twice); a module
            # the event log left down (lost before a restart) is back when heard too, unless the
            # emergency stop holds every module down
            back = module in self.service.core.modules_down() and not self.estop_engaged
            outbox = self.service.module_up(module) if back else Outbox()
            outbox.extend(self._device_report(module, faults, complete=True))
        if first:
            self.log.info(f"module {module} is up (first heartbeat)")
        if restarted:
            self._module_lost(module, restarted=True)
        if back:
            self.log.info(f"module {module} is back")
        self.dispatch(outbox)

    def _with_unconfirmed(
        self, module: str, faults: Mapping[str, str], stamp: float | None
    ) -> dict[str, str]:
        """Under ``_beats``: a status's faults, and those a failed goal's result reported that
        the status is too old to show (published before that goal ended)."""
        told = self._unconfirmed.pop(module, {})
        kept = {
            device: (at, why)
            for device, (at, why) in told.items()
            if device not in faults and stamp is not None and stamp < at
        }
        if kept:
            self._unconfirmed[module] = kept
        return {**faults, **{device: why for device, (_at, why) in kept.items()}}

    def _device_report(self, module: str, faults: Mapping[str, str], *, complete: bool) -> Outbox:
        """Under ``lock``: a module's faults to the service (see its ``device_health``), and
        what went out of order or came back, to the log."""
        before = self.service.core.out_of_order()
        outbox = self.service.device_health(module, faults, complete=complete)
        after = self.service.core.out_of_order()
        for device in sorted(set(after) - set(before)):
            self.log.error(f"device {device} is out of order: {after[device]}")
        for device in sorted(set(before) - set(after)):
            self.log.info(f"device {device} is back in order")
        if before != after:
            self.changed(False)  # the plan's reasons change
        return outbox

    def watchdog(self) -> None:
        """Silent modules are down; steps past their deadline time out (not in the period after
        a stall of this process: a result that came meanwhile is read first)."""
        now = self.monotonic()
        with self._beats:
            lost_modules = self.liveness.newly_down(now)
            listening = self.liveness.listening(now)
        for module in lost_modules:
            self._module_lost(module, restarted=False)
        if not listening:
            return
        with self._goals:
            in_flight = list(self._in_flight.items())
        for step_id, entry in in_flight:
            if now > entry.deadline:
                if entry.handle is not None:
                    self._cancel(entry.handle)
                self._end_step(step_id, False, "timed out")

    def _module_lost(self, module: str, *, restarted: bool) -> None:
        """A module went down or restarted: its steps in flight end now (the core retries or
        fails them), never left to their timeout. The event log gets ModuleDown, the StepFailed
        of each step with ``module <name> <what>``, and ModuleUp if it restarted."""
        what = (
            "restarted (its goal was lost)"
            if restarted
            else "went down (no heartbeat; its goal was lost)"
        )
        with self.lock:
            if not restarted and module not in self.liveness.down:
                return  # heard again since the watchdog found it silent (a starved scheduler):
                # liveness and the core must not disagree, so the core is not told it went down
            with self._goals:
                lost = [
                    (s, e.handle) for s, e in self._in_flight.items() if e.goal.module == module
                ]
            outbox = self.service.module_down(module)
        if restarted:
            self.log.error(f"module {module} restarted: {len(lost)} step(s) lost")
        else:
            self.log.error(f"module {module} went down: no heartbeat")
        self.notify(notifications.module_down(module, what))
        self.dispatch(outbox)
        for step_id, handle in lost:
            if handle is not None:  # a goal the new process accepted must not run on
                self._cancel(handle)
            self._end_step(step_id, False, f"module {module} {what}", lost=True)
        if restarted:
            with self.lock:
                up = not self.estop_engaged and module not in self.liveness.down
                outbox = self.service.module_up(module) if up else Outbox()
            if up:
                self.log.info(f"module {module} is back (a new process)")
            self.dispatch(outbox)

    # ---- the emergency stop ------------------------------------------------------------------

    def set_emergency_stop(
        self, engaged: bool, reason: str, source: str, auth: str = ""
    ) -> tuple[CommandResult, Outbox]:
        """Engage (every module down) or reset (the live modules up again). The caller
        dispatches the work once it has told the modules."""
        with self.lock:
            alive = [m for m in self.service.lab.modules if m not in self.liveness.down]
            result, outbox = self.service.set_emergency_stop(engaged, reason, source, alive, auth)
            if result.success:
                self.estop_engaged = engaged
        return result, outbox
