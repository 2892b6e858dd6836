"""The module runtime: runs tasks of one module on its device back ends, without ROS.

Life of a goal (the ROS node maps these onto an action server):

1. ``accept(goal_id, task, params, slots, samples)`` checks the goal against the
   description (unknown task, missing/out-of-range parameter, slot out of range)
   and the live state (e-stop, device faults, devices busy, slot occupied, stock),
   then atomically reserves what the first step needs. Anything wrong raises
   :class:`GoalRejected` naming the field, before anything moves.
2. ``run(goal_id, on_feedback)`` executes it in the caller's thread and returns a
   :class:`TaskResult` (measured data, per-action timings, or an error naming step,
   device and action).

``execute_task`` does both. Concurrency rules:

* every *active* step holds its devices (the local part of its mask plus the
  devices of its actions); a *standby* step holds none, so other goals use the
  module's devices meanwhile;
* devices are taken all-or-nothing under one lock, and a goal releases the
  devices of one step before it waits for the next step's, so two goals never
  drive the same device and cannot deadlock;
* a goal whose devices are held by another goal is **refused at accept time** by
  default (``on_conflict="refuse"``: the scheduler should not have sent it, and a
  misbehaving client must not queue up work); with ``on_conflict="wait"`` it is
  accepted and waits, event-driven, until the devices are free.

Cancel (``cancel(goal_id)`` or setting the goal's cancel event) interrupts the
running action, calls ``safe_state`` on the devices the goal holds and ends the
goal as "cancelled". ``engage_estop(reason)`` aborts all goals, drives every
device to its safe state and refuses goals until ``reset_estop()``. Each action
has a watchdog: if it runs longer than ``action_timeout_factor`` x its expected
duration + ``action_timeout_margin_s`` (wall seconds; the expected lab duration is
turned into wall time by the runtime's :class:`~octopus_modules.lab_clock.LabClock`),
it is cancelled and the task fails with a timeout naming the device and action.

Device actions run on one worker thread per device (:mod:`device_worker`). A back end
that ignores a cancel / e-stop / timeout for ``stop_grace_s`` is abandoned: the goal
ends anyway, the device is marked in error until an operator clears it, and its
worker (one call at a time) keeps any later call off the device while it is stuck.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from octopus_modules.description import ModuleDescription, StepSpec
from octopus_modules.drivers.backend import DeviceBackend, DeviceCancelled, DeviceError
from octopus_modules.drivers.registry import check_backends
from octopus_modules.expressions import ExpressionError
from octopus_modules.lab_clock import LabClock, resolve_clock
from octopus_modules.runtime.device_worker import ActionAbandoned, DeviceCall, DeviceWorker
from octopus_modules.runtime.goals import GoalRejected, PreparedGoal, prepare_goal
from octopus_modules.runtime.module_state import DISCONNECTED, ERROR, FAULTS, OK, ModuleState
from octopus_modules.runtime.results import ActionTiming, TaskFeedback, TaskResult
from octopus_modules.runtime.status import ModuleStatus
from octopus_modules.runtime.watchdog import Watchdog

log = logging.getLogger(__name__)

FeedbackCallback = Callable[[TaskFeedback], None]
ChangeCallback = Callable[[ModuleStatus], None]
CONFLICT_POLICIES = ("refuse", "wait")
#: wall seconds a goal's planned start may lie before its run: the delays it makes up for are
#: milliseconds of messaging; an older one (a goal re-sent after a restart) counts from here
CATCH_UP_LIMIT_S = 1.0


@dataclass(frozen=True)
class EstopReport:
    reason: str
    aborted_goals: tuple[str, ...]
    #: seconds from engage_estop() to every running goal having ended (None: timed out)
    latency_s: float | None
    #: devices whose safe_state raised (it must not; logged)
    safe_state_failures: tuple[str, ...] = ()


@dataclass
class _Goal:
    prepared: PreparedGoal
    stop: threading.Event
    held: frozenset[str] = frozenset()
    stop_reason: str = ""  # "" (client cancel), "estop", "timeout"
    stop_message: str = ""  # the e-stop's reason
    current_call: DeviceCall | None = None  # the device action in progress
    moved: bool = False  # an action has started: slots/stock are no longer refunded
    done: threading.Event = field(default_factory=threading.Event)
    running: bool = False
    #: wall time at which the scheduler started the step (None: when it runs)
    planned_start: float | None = None
    #: wall time up to which the goal's lab time is spent: the lab end of its last action
    counted_to: float = 0.0


class _Stopped(Exception):
    """The goal's stop event was set (cancel, e-stop or timeout)."""


class ModuleRuntime:
    def __init__(
        self,
        description: ModuleDescription,
        backends: Mapping[str, DeviceBackend],
        *,
        clock: LabClock | None = None,
        time_scale: float | None = None,
        action_timeout_factor: float = 3.0,
        action_timeout_margin_s: float = 10.0,
        stop_grace_s: float = 2.0,
        connect: bool = True,
    ) -> None:
        #: lab time of standby waits and action timeouts (``time_scale``: a ScaledClock of it)
        self.clock = resolve_clock(clock, time_scale)
        check_backends(description, backends)
        self.description = description
        self.backends = dict(backends)
        self.action_timeout_factor = action_timeout_factor
        self.action_timeout_margin_s = action_timeout_margin_s
        self.stop_grace_s = stop_grace_s
        self._state = ModuleState(description)
        self._lock = threading.RLock()
        self._devices_freed = threading.Condition(self._lock)
        self._goals: dict[str, _Goal] = {}
        self._estop_reason = ""
        self._estop = False
        self._revision = 0
        self._listeners: list[ChangeCallback] = []
        self._watchdog = Watchdog(f"{description.module}-watchdog")
        self._workers = {name: DeviceWorker(backend) for name, backend in self.backends.items()}
        if connect:
            self.connect_all()

    # ---- goals ------------------------------------------------------------

    def accept(
        self,
        goal_id: str,
        task: str,
        params: Mapping[str, Any],
        slots: Mapping[str, Sequence[int]] | None = None,
        samples: Sequence[str] | None = None,
        *,
        cancel_event: threading.Event | None = None,
        on_conflict: str = "refuse",
        planned_start: float | None = None,
    ) -> PreparedGoal:
        """Check and reserve; GoalRejected (naming the field) if the goal cannot run now.

        ``planned_start``: the wall time at which the scheduler started the step. Simulated
        devices and standby waits count the goal's lab time from there instead of from when it
        runs, so in a time-scaled lab the messaging delay (milliseconds, times the scale) does not
        lengthen the step; real devices start when they start."""
        if on_conflict not in CONFLICT_POLICIES:
            raise GoalRejected("on_conflict", f"expected one of {', '.join(CONFLICT_POLICIES)}")
        prepared = prepare_goal(self.description, goal_id, task, params, slots, samples)
        self._reconnect(prepared.devices)
        with self._lock:
            if self._estop:
                raise GoalRejected("estop", f"emergency stop engaged: {self._estop_reason}")
            if goal_id in self._goals:
                raise GoalRejected("goal_id", f"goal {goal_id} is already running")
            fault = self._state.device_fault(prepared.devices)
            if fault:
                raise GoalRejected("devices", fault)
            if on_conflict == "refuse":
                conflict = self._state.device_conflict(prepared.devices, goal_id)
                if conflict:
                    raise GoalRejected("devices", conflict)
            self._state.check_slots(prepared)
            self._state.check_stock(prepared)
            goal = _Goal(prepared, cancel_event or threading.Event(), planned_start=planned_start)
            first = prepared.step_devices[0]
            if on_conflict == "refuse" and self._state.try_acquire(first, goal_id):
                goal.held = first
            self._state.occupy_slots(prepared)
            self._state.take_stock(prepared)
            self._goals[goal_id] = goal
            low = [
                c
                for c in self._state.consumable_statuses()
                if c.low and c.name in prepared.consumption and prepared.consumption[c.name]
            ]
        for c in low:
            log.warning(
                "%s: low stock of %s: %d %s left (threshold %d)",
                self.description.module,
                c.name,
                c.stock,
                c.unit,
                c.low_stock,
            )
        self._changed()
        return prepared

    def run(self, goal_id: str, on_feedback: FeedbackCallback | None = None) -> TaskResult:
        """Execute an accepted goal to its end, in the calling thread."""
        with self._lock:
            goal = self._goals.get(goal_id)
            if goal is None or goal.running:
                raise KeyError(f"goal {goal_id} is not accepted or already running")
            goal.running = True
        now = time.time()
        planned = now if goal.planned_start is None else goal.planned_start
        goal.counted_to = min(max(planned, now - CATCH_UP_LIMIT_S), now)
        result = TaskResult(goal_id, goal.prepared.task.name, success=False)
        try:
            self._run_steps(goal, result, on_feedback or (lambda _: None))
            result.success, result.outcome = True, "succeeded"
            result.ended_at = goal.counted_to
        except _Stopped:
            result.outcome = "aborted" if goal.stop_reason == "estop" else "cancelled"
            if goal.stop_reason == "estop":
                result.error = f"aborted by emergency stop: {goal.stop_message}"
            else:
                result.error = result.error or "cancelled"
        except _TaskFailed as exc:
            result.outcome, result.error = "failed", str(exc)
        except Exception as exc:  # a bug must end the goal cleanly, not the caller's thread
            log.exception("goal %s: unexpected error", goal_id)
            result.outcome = "failed"
            result.error = f"{goal.prepared.task.name}: internal error: {type(exc).__name__}: {exc}"
        finally:
            result.ended_at = result.ended_at or time.time()
            self._finish(goal, result)
        return result

    def execute_task(
        self,
        goal_id: str,
        task: str,
        params: Mapping[str, Any],
        slots: Mapping[str, Sequence[int]] | None = None,
        on_feedback: FeedbackCallback | None = None,
        cancel_event: threading.Event | None = None,
        *,
        samples: Sequence[str] | None = None,
        on_conflict: str = "refuse",
        planned_start: float | None = None,
    ) -> TaskResult:
        """accept() then run(); raises GoalRejected if the goal is refused."""
        self.accept(
            goal_id,
            task,
            params,
            slots,
            samples,
            cancel_event=cancel_event,
            on_conflict=on_conflict,
            planned_start=planned_start,
        )
        return self.run(goal_id, on_feedback)

    def cancel(self, goal_id: str) -> bool:
        """Ask a goal to stop; False if it is not running. The goal ends as cancelled."""
        with self._lock:
            goal = self._goals.get(goal_id)
            if goal is None:
                return False
            self._stop_goal(goal)
        return True

    def connect_all(self) -> dict[str, str]:
        """Open every device's connection; a device that fails is marked disconnected (the
        module still comes up, and the next goal that needs the device retries). Returns
        the failures by device name."""
        failures: dict[str, str] = {}
        for name, backend in self.backends.items():
            try:
                backend.connect()
            except Exception as exc:  # a missing instrument must not keep the module down
                failures[name] = str(exc)
                log.warning("connecting %s failed: %s", name, exc)
                with self._lock:
                    self._state.health[name] = (DISCONNECTED, str(exc))
        if failures:
            self._changed()
        return failures

    def discard(self, goal_id: str) -> bool:
        """Drop an accepted goal that will never run (its client went away): frees everything."""
        with self._lock:
            goal = self._goals.get(goal_id)
            if goal is None or goal.running:
                return False
            self._state.release_all(goal_id)
            self._state.free_slots(goal.prepared, ("occupy",))
            self._state.take_stock(goal.prepared, sign=-1)
            del self._goals[goal_id]
            self._devices_freed.notify_all()
        goal.done.set()
        self._changed()
        return True

    def expected_duration_s(
        self, task: str, params: Mapping[str, Any], n_samples: int = 1
    ) -> float:
        """Expected duration (unscaled seconds) of a task; GoalRejected if invalid."""
        slots = {u.type: list(range(n_samples)) for u in self._task(task).slots}
        samples = [f"s{i}" for i in range(n_samples)]
        return prepare_goal(
            self.description, "estimate", task, params, slots, samples
        ).expected_duration_s

    # ---- emergency stop and operator actions ---------------------------------------

    def engage_estop(self, reason: str, wait_s: float = 5.0) -> EstopReport:
        """Abort every goal, drive every device safe, refuse goals until reset_estop()."""
        t0 = time.perf_counter()
        with self._lock:
            self._estop, self._estop_reason = True, reason or "engaged"
            goals = list(self._goals.values())
            for goal in goals:
                goal.stop_reason, goal.stop_message = "estop", self._estop_reason
                self._stop_goal(goal)
        failures = tuple(
            name for name, backend in self.backends.items() if not _safe_state(backend)
        )
        deadline = t0 + wait_s
        ended = all(
            g.done.wait(max(deadline - time.perf_counter(), 0.0)) for g in goals if g.running
        )
        latency = time.perf_counter() - t0 if ended else None
        self._changed()
        log.warning(
            "emergency stop engaged (%s): %d goal(s) aborted in %s s",
            reason,
            len(goals),
            "?" if latency is None else f"{latency:.4f}",
        )
        return EstopReport(reason, tuple(g.prepared.goal_id for g in goals), latency, failures)

    def reset_estop(self) -> None:
        with self._lock:
            self._estop, self._estop_reason = False, ""
        self._changed()

    @property
    def estop_engaged(self) -> bool:
        return self._estop

    def clear_device_error(self, device: str) -> None:
        """Operator confirms a failed device is fine again (it then accepts goals)."""
        if device not in self.backends:
            raise KeyError(f"unknown device '{device}'")
        with self._lock:
            self._state.health[device] = (OK, "")
        self._changed()

    def restock(self, consumable: str, amount: int) -> None:
        with self._lock:
            if consumable not in self._state.stock:
                raise KeyError(f"unknown consumable '{consumable}'")
            self._state.stock[consumable] += amount
        self._changed()

    def free_slots(self, slot_type: str, positions: Sequence[int]) -> None:
        """Operator removed samples by hand."""
        with self._lock:
            if slot_type not in self._state.slots:
                raise KeyError(f"unknown slot type '{slot_type}'")
            self._state.free_positions(slot_type, list(positions))
        self._changed()

    def release_job_samples(self, job_id: str) -> list[str]:
        """Free the positions holding samples of job ``job_id`` (ids ``<job_id>/...``): the job
        ended. Returns ``"<slot type>:<position>"`` of each position freed."""
        if not job_id:
            return []
        prefix = f"{job_id}/"
        released: list[str] = []
        with self._lock:
            for slot_type, holders in self._state.slots.items():
                positions = [p for p, sample in enumerate(holders) if sample.startswith(prefix)]
                self._state.free_positions(slot_type, positions)
                released += [f"{slot_type}:{p}" for p in positions]
        if released:
            self._changed()
        return released

    # ---- status --------------------------------------------------------------

    def add_change_listener(self, callback: ChangeCallback) -> None:
        """``callback(status)`` after every change (from the thread that made it)."""
        self._listeners.append(callback)

    def status(self) -> ModuleStatus:
        with self._lock:
            consumables = self._state.consumable_statuses()
            warnings = tuple(
                f"low stock: {c.name} {c.stock} {c.unit} (threshold {c.low_stock})"
                for c in consumables
                if c.low
            )
            devices = self._state.device_statuses()
            warnings += tuple(
                f"device {d.name} {d.state}: {d.message}" for d in devices if d.state in FAULTS
            )
            return ModuleStatus(
                self.description.module,
                self._revision,
                self._estop,
                self._estop_reason,
                devices,
                self._state.slot_statuses(),
                consumables,
                tuple(sorted(self._goals)),
                warnings,
            )

    def close(self) -> None:
        self._watchdog.close()
        for worker in self._workers.values():
            worker.shutdown()
        for backend in self.backends.values():
            _safe_state(backend)
            try:
                backend.close()
            except Exception:  # closing must not stop closing the others
                log.exception("closing %s failed", backend.name)

    # ---- execution -------------------------------------------------------------

    def _run_steps(self, goal: _Goal, result: TaskResult, on_feedback: FeedbackCallback) -> None:
        prepared = goal.prepared
        schedule = prepared.schedule()
        per_sample = prepared.task.scope == "per_sample"
        env_cache: dict[int | None, dict[str, Any]] = {}
        total = max(prepared.expected_duration_s, 1e-9)
        done_s = 0.0
        for sample_index, step_index, step in schedule:
            env = env_cache.setdefault(sample_index, prepared.environment(sample_index))
            sample = prepared.samples[sample_index] if per_sample else ""
            context = _StepContext(goal, step_index, step, sample, env, on_feedback, done_s / total)
            if goal.stop.is_set():
                raise _Stopped
            if step.mode == "standby":
                done_s += self._standby(context)
            else:
                done_s += self._active(context, result, prepared.step_devices[step_index])

    def _standby(self, ctx: _StepContext) -> float:
        with self._lock:
            self._state.release(ctx.goal.held, ctx.goal.prepared.goal_id)
            ctx.goal.held = frozenset()
            self._devices_freed.notify_all()
        self._changed()
        duration = ctx.step.expected_duration_s(ctx.env)
        ctx.feedback("standby_started")
        if self.clock.wait(ctx.goal.stop, duration - self._lab_spent(ctx.goal)):
            raise _Stopped
        ctx.goal.counted_to = min(ctx.goal.counted_to + self.clock.wall_s(duration), time.time())
        ctx.feedback("standby_finished")
        return duration

    def _lab_spent(self, goal: _Goal) -> float:
        """Lab seconds that passed since the goal's lab time was last spent (the messaging delay
        before its planned start was answered, a previous action's end): the next simulated wait
        is that much shorter."""
        return self.clock.lab_s(max(time.time() - goal.counted_to, 0.0))

    def _active(self, ctx: _StepContext, result: TaskResult, devices: frozenset[str]) -> float:
        self._acquire(ctx, devices)
        goal = ctx.goal
        try:
            durations = ctx.step.action_durations_s(ctx.env)
        except ExpressionError as exc:
            raise _TaskFailed(f"{ctx.where()}: {exc}") from None
        for j, (action, expected) in enumerate(zip(ctx.step.actions, durations, strict=True)):
            try:
                params = action.params.render(ctx.env)
            except ExpressionError as exc:
                raise _TaskFailed(f"{ctx.where()}.actions[{j}]: {exc}") from None
            backend = self.backends[action.device]
            simulated = backend.uses_expected_duration
            if simulated:
                params["expected_duration_s"] = expected
                params["lab_elapsed_s"] = self._lab_spent(goal)
            ctx.feedback("action_started", action.device, action.action)
            goal.moved = True
            start = goal.counted_to if simulated else time.time()
            ok = False
            try:
                data = self._execute(goal, action.device, action.action, params, expected)
                ok = True
            except DeviceCancelled:
                self._stop_devices(goal)
                if goal.stop_reason == "timeout":
                    self._mark_failed(action.device, "timeout")
                    limit = self._timeout_s(expected)
                    raise _TaskFailed(
                        f"{ctx.where()}: {action.device}.{action.action}: no "
                        f"answer within {limit:.3g} s (timeout)"
                    ) from None
                raise _Stopped from None
            except DeviceError as exc:
                self._stop_devices(goal)
                self._mark_failed(action.device, exc.reason, _is_disconnect(exc))
                raise _TaskFailed(f"{ctx.where()}: {exc}") from None
            except ActionAbandoned:
                why = {"estop": "the emergency stop", "timeout": "its timeout"}.get(
                    goal.stop_reason, "cancel"
                )
                reason = (
                    f"did not stop within {self.stop_grace_s:g} s after {why}; it may still be "
                    f"moving: check it, then clear its error"
                )
                self._mark_failed(action.device, reason)
                self._stop_devices(goal)
                if goal.stop_reason == "estop":
                    raise _Stopped from None
                raise _TaskFailed(
                    f"{ctx.where()}: {action.device}.{action.action}: {reason}"
                ) from None
            except Exception as exc:  # a back end bug must fail the task, not kill the module
                self._stop_devices(goal)
                self._mark_failed(action.device, f"{type(exc).__name__}: {exc}")
                raise _TaskFailed(
                    f"{ctx.where()}: {action.device}.{action.action}: {type(exc).__name__}: {exc}"
                ) from None
            finally:
                end = time.time()
                if simulated and ok:  # it ends in lab time where it began plus its duration
                    took = float(data.get("duration_s", expected))
                    end = min(start + self.clock.wall_s(took), end)
                goal.counted_to = end
                result.timings.append(
                    ActionTiming(
                        action.device,
                        action.action,
                        start,
                        end,
                        ctx.step.name,
                        ctx.sample,
                        ok,
                    )
                )
            if data:
                _store(result.measured_data, ctx.sample, action.device, action.action, data)
            ctx.feedback("action_finished", action.device, action.action)
            if goal.stop.is_set():
                raise _Stopped
        return sum(durations)

    def _execute(
        self,
        goal: _Goal,
        device: str,
        action: str,
        params: dict[str, Any],
        expected_s: float,
    ) -> dict[str, Any]:
        def expire() -> None:
            with self._lock:
                if not goal.stop.is_set():
                    goal.stop_reason = "timeout"
                    self._stop_goal(goal)

        call = self._workers[device].submit(action, params, goal.stop)
        with self._lock:
            goal.current_call = call
            if goal.stop.is_set():  # stopped just before the call existed: give it its grace too
                self._watchdog.arm(self.stop_grace_s, call.abandon)
        handle = self._watchdog.arm(self._timeout_s(expected_s), expire)
        try:
            return call.wait() or {}
        finally:
            self._watchdog.disarm(handle)
            with self._lock:
                goal.current_call = None

    def _stop_goal(self, goal: _Goal) -> None:
        """Set the goal's stop event (caller holds the lock); a device action that ignores it
        is abandoned after the grace period."""
        goal.stop.set()
        if goal.current_call is not None:
            self._watchdog.arm(self.stop_grace_s, goal.current_call.abandon)
        self._devices_freed.notify_all()

    def _timeout_s(self, expected_s: float) -> float:
        # the watchdog runs on the wall: the expected lab duration as wall time, with slack
        return self.clock.wall_s(expected_s) * self.action_timeout_factor + (
            self.action_timeout_margin_s
        )

    def _acquire(self, ctx: _StepContext, devices: frozenset[str]) -> None:
        """Release the previous step's devices, then take this step's, all or none."""
        goal, goal_id = ctx.goal, ctx.goal.prepared.goal_id
        waited = False
        with self._lock:
            if goal.held != devices:
                self._state.release(goal.held - devices, goal_id)
                goal.held = goal.held & devices
                self._devices_freed.notify_all()
            while not self._state.try_acquire(devices, goal_id):
                if goal.stop.is_set():
                    raise _Stopped
                if not waited:
                    waited = True
                    ctx.feedback("waiting_for_devices")
                # woken by every release, cancel and e-stop; the timeout only covers a client
                # that set the cancel event directly instead of calling cancel()
                self._devices_freed.wait(0.05)
            goal.held = devices
        if waited:  # the time waiting for another goal's devices is not this goal's lab time
            goal.counted_to = max(goal.counted_to, time.time())
        self._changed()

    def _stop_devices(self, goal: _Goal) -> None:
        for name in sorted(goal.held):
            _safe_state(self.backends[name])

    def _mark_failed(self, device: str, message: str, disconnected: bool = False) -> None:
        with self._lock:
            self._state.health[device] = (DISCONNECTED if disconnected else ERROR, message)

    def _reconnect(self, devices: frozenset[str]) -> None:
        """Try once to reconnect devices that lost their connection (outside the lock)."""
        for name in sorted(devices):
            if self._state.health[name][0] != DISCONNECTED:
                continue
            try:
                self.backends[name].connect()
            except Exception as exc:  # still gone: the goal will be refused with this reason
                log.warning("reconnecting %s failed: %s", name, exc)
                continue
            with self._lock:
                self._state.health[name] = (OK, "")

    def _finish(self, goal: _Goal, result: TaskResult) -> None:
        prepared = goal.prepared
        with self._lock:
            self._state.release_all(prepared.goal_id)
            goal.held = frozenset()
            if result.success:
                self._state.free_slots(prepared, ("release",))
            elif not goal.moved:  # nothing happened: give the slots and stock back
                self._state.free_slots(prepared, ("occupy",))
                self._state.take_stock(prepared, sign=-1)
            del self._goals[prepared.goal_id]
            result.device_faults = self._state.device_faults()
            self._devices_freed.notify_all()
        goal.done.set()
        self._changed()

    def _changed(self) -> None:
        with self._lock:
            self._revision += 1
        if not self._listeners:
            return
        snapshot = self.status()
        for listener in list(self._listeners):
            try:
                listener(snapshot)
            except Exception:
                log.exception("status listener failed")

    def _task(self, name: str) -> Any:
        task = self.description.task(name)
        if task is None:
            raise GoalRejected("task", f"unknown task '{name}'")
        return task


class _TaskFailed(Exception):
    """A device action failed; the message names step, device and action."""


@dataclass
class _StepContext:
    goal: _Goal
    step_index: int
    step: StepSpec
    sample: str
    env: dict[str, Any]
    on_feedback: FeedbackCallback
    progress: float  # share of the expected duration done before this step

    def where(self) -> str:
        sample = f" (sample {self.sample})" if self.sample else ""
        return f"{self.goal.prepared.task.name}.steps[{self.step_index}] {self.step.name}{sample}"

    def feedback(self, event: str, device: str = "", action: str = "") -> None:
        prepared = self.goal.prepared
        try:
            self.on_feedback(
                TaskFeedback(
                    prepared.goal_id,
                    prepared.task.name,
                    event,
                    self.step_index,
                    self.step.name,
                    self.sample,
                    device,
                    action,
                    min(self.progress, 1.0),
                )
            )
        except Exception:  # a broken subscriber must not break the task
            log.exception("feedback callback failed")


def _store(
    measured: dict[str, Any], sample: str, device: str, action: str, data: dict[str, Any]
) -> None:
    key = f"{sample}/{device}.{action}" if sample else f"{device}.{action}"
    unique, n = key, 1
    while unique in measured:
        n += 1
        unique = f"{key}[{n}]"
    measured[unique] = data


def _is_disconnect(exc: BaseException) -> bool:
    # the serial helper's link defines its own DeviceDisconnected; accept both by name
    return any(cls.__name__ == "DeviceDisconnected" for cls in type(exc).__mro__)


def _safe_state(backend: DeviceBackend) -> bool:
    try:
        backend.safe_state()
        return True
    except Exception:  # the contract says it must not raise; log and carry on with the others
        log.exception("safe_state of %s raised", backend.name)
        return False
