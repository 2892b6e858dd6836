"""The scheduler node: :class:`~octopus_scheduler.service.lab_service.LabService` on the ROS graph.

It translates, and decides nothing: messages, timers and futures in, a call of the service or
of the :class:`~octopus_scheduler.service.dispatcher.Dispatcher` (module goals, their
deadlines, retries of sends, liveness), messages out.

- ``submit_job`` (action SubmitJob): :class:`~octopus_scheduler.ros.job_goals.JobGoals`.
- ``list_jobs``, ``get_job``, ``cancel_job``/``hold_job``/``resume_job`` (JobCommand),
  ``get_schedule``, ``set_emergency_stop``, ``clear_device_error`` (services).
- ``schedule``, ``resources``, ``jobs``, ``/diagnostics``:
  :class:`~octopus_scheduler.ros.schedule_publisher.SchedulePublisher`; ``emergency_stop``
  (latched).
- The modules: :class:`~octopus_scheduler.ros.module_goals.ModuleGoals` (the dispatcher's port:
  ExecuteTask goals, heartbeats, modules that announce themselves).

Times: the scheduler's clock runs at the lab's time scale, so plans and estimates are in lab time
even when a simulated lab runs 600x faster than the wall.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from octopus_interfaces.msg import EmergencyStop
from octopus_interfaces.srv import (
    ClearDeviceError,
    GetJob,
    GetSchedule,
    JobCommand,
    ListJobs,
    SetEmergencyStop,
)
from octopus_modules.lab_clock import ScaledClock
from octopus_modules.ros.ros_common import LATCHED, declare, run_node
from octopus_scheduler.core.jobscript import Limits
from octopus_scheduler.ros.job_goals import JobGoals
from octopus_scheduler.ros.module_goals import ModuleGoals
from octopus_scheduler.ros.ros_messages import (
    JOB_STATES,
    job_message,
    results_json,
    schedule_message,
)
from octopus_scheduler.ros.schedule_publisher import HISTORY_S, SchedulePublisher
from octopus_scheduler.service import notifications
from octopus_scheduler.service.dispatcher import Dispatcher
from octopus_scheduler.service.identity import lab_authenticator
from octopus_scheduler.service.lab_config import load_lab_config
from octopus_scheduler.service.lab_service import LabService, Outbox
from octopus_scheduler.service.store import Store

SWITCH_INTERVAL_S = 0.0005  # Python's GIL switch interval in the scheduler's process (see main)


class SchedulerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("scheduler", namespace="/octopus", **kwargs)
        lab_file = self._declare("lab_file", "", "Lab description YAML (modules, masks, admins).")
        policy = self._declare("policy", "", "Scheduling policy; empty: the lab's.")
        database = self._declare("database", "", "SQLite file; empty: the lab's.")
        self.heartbeat_period = self._declare(
            "heartbeat_period", 1.0, "Module heartbeat period, s; two missed = module down."
        )
        self.timeout_factor = self._declare(
            "step_timeout_factor",
            3.0,
            "A step times out after factor x expected + margin (wall), from its module's accept.",
        )
        self.timeout_margin = self._declare(
            "step_timeout_margin", 10.0, "Wall seconds added to every step timeout."
        )
        self.schedule_history = self._declare(
            "schedule_history",
            HISTORY_S,
            "Lab seconds of history on the schedule topic: steps that ran, jobs that ended.",
        )
        if not lab_file:
            raise ValueError("parameter 'lab_file' is required")
        self.config = load_lab_config(lab_file)
        from octopus_modules.module_factory import resolve_description

        self.descriptions = [resolve_description(m.description) for m in self.config.modules]
        self.policy = policy or self.config.policy
        store = Store(database or self.config.database)
        last_event = store.load_events()[-1:]
        self.clock_scaled = ScaledClock(
            self.config.time_scale, last_event[0]["time"] if last_event else None
        )
        self.service = LabService(
            self.descriptions,
            store,
            policy=self.policy,
            masks=self.config.masks,
            admins=self.config.admins,
            retries=self.config.retries,
            policy_options=self.config.policy_options.get(self.policy, {}),
            clock=self.clock_scaled,
            limits=Limits(max_retries=self.config.max_retries),
            retry=self.config.retry,
            auth=lab_authenticator(self.config),
        )
        callbacks = ReentrantCallbackGroup()
        self.notifier = notifications.Notifier(self.config.notifications, lab_name=self.config.name)
        self.modules = ModuleGoals(self, self.service, callbacks, self.heartbeat_period)
        self.dispatcher = Dispatcher(
            self.service,
            self.modules,
            self.get_logger(),
            lab_clock=self.clock_scaled,
            timeout_factor=self.timeout_factor,
            timeout_margin_s=self.timeout_margin,
            heartbeat_period_s=self.heartbeat_period,
            notify=self.notifier.notify,
            changed=self._changed,
        )
        self._state_lock = self.dispatcher.lock
        saved = self.service.emergency_stop()  # engaged before a restart: still engaged
        self.estop = EmergencyStop(engaged=saved.engaged, reason=saved.reason, source=saved.source)

        self.publisher = SchedulePublisher(
            self,
            self.service,
            self.dispatcher,
            self.policy,
            self.clock_scaled,
            self.schedule_history,
        )
        self.modules.bind(self.dispatcher, self.publisher.changed)
        self._estop_pub = self.create_publisher(EmergencyStop, "emergency_stop", LATCHED)
        self._estop_pub.publish(self.estop)
        self.job_goals = JobGoals(
            self, self.service, self.dispatcher, lambda: self.publisher.published, callbacks
        )
        self.create_service(ListJobs, "list_jobs", self._list_jobs, callback_group=callbacks)
        self.create_service(GetJob, "get_job", self._get_job, callback_group=callbacks)
        for kind in ("cancel", "hold", "resume"):
            self.create_service(
                JobCommand,
                f"{kind}_job",
                lambda request, response, kind=kind: self._command(kind, request, response),
                callback_group=callbacks,
            )
        self.create_service(
            GetSchedule, "get_schedule", self._get_schedule, callback_group=callbacks
        )
        self.create_service(
            SetEmergencyStop, "set_emergency_stop", self._set_estop, callback_group=callbacks
        )
        self.create_service(
            ClearDeviceError, "clear_device_error", self._clear_device, callback_group=callbacks
        )
        timing = self.dispatcher
        self.create_timer(timing.TICK_PERIOD_S, timing.tick, MutuallyExclusiveCallbackGroup())
        self.create_timer(
            timing.watchdog_period_s, timing.watchdog, MutuallyExclusiveCallbackGroup()
        )

        recovered = self.service.recovered_goals
        if recovered:  # a restart: ask the modules again; a finished step returns its result
            self.get_logger().info(f"reconciling {len(recovered)} step(s) in flight")
            self.dispatcher.dispatch(Outbox(goals=list(recovered)))
        self.publisher.changed()
        self.get_logger().info(
            f"scheduler ready: lab {self.config.name}, policy {self.policy}, "
            f"{len(self.service.descriptions)} modules, {len(self.service.jobs())} job(s) on record"
        )

    def _declare(self, name: str, default: Any, description: str) -> Any:
        return declare(self, name, default, description)

    def _changed(self, jobs_ended: bool) -> None:
        self.publisher.changed()
        if jobs_ended:
            self.job_goals.jobs_ended()

    # ---- jobs ------------------------------------------------------------------------------------

    def _summary(self, job_id: str) -> Any:
        return next((s for s in self.service.summaries() if s.view.job_id == job_id), None)

    def _list_jobs(self, request: ListJobs.Request, response: ListJobs.Response) -> Any:
        wanted = set(request.states)
        response.jobs = [
            job_message(s)
            for s in reversed(self.service.summaries())
            if (not request.owner or s.view.owner == request.owner)
            and (not wanted or JOB_STATES[s.view.state] in wanted)
        ]
        return response

    def _get_job(self, request: GetJob.Request, response: GetJob.Response) -> Any:
        summary = self._summary(request.job_id)
        if summary is None:
            response.found, response.message = False, f"job_id: no job '{request.job_id}'"
            return response
        detail = self.service.store.job_detail(request.job_id)
        schedule = schedule_message(
            self.policy,
            [p for p in self.service.latest_plan() if p.job_id == request.job_id],
            detail.steps,
            self.clock_scaled(),
            self.service.step_shape,
        )
        response.found, response.job, response.steps = True, job_message(summary), schedule.steps
        response.results_json = results_json(detail.experiments)
        return response

    def _command(self, kind: str, request: JobCommand.Request, response: Any) -> Any:
        with self._state_lock:
            result, outbox = self.service.command(kind, request.job_id, request.user, request.auth)
        self.dispatcher.dispatch(outbox)
        response.success, response.message = result.success, result.message
        summary = self._summary(request.job_id)
        if summary is not None:
            response.job = job_message(summary)
        return response

    # ---- schedule, e-stop ------------------------------------------------------------------------

    def _get_schedule(self, request: GetSchedule.Request, response: Any) -> Any:
        response.schedule = self.publisher.schedule(request.job_id)
        return response

    def _clear_device(self, request: ClearDeviceError.Request, response: Any) -> Any:
        with self._state_lock:
            result, outbox = self.service.clear_device(request.device, request.user, request.auth)
        response.success, response.message = result.success, result.message
        if result.success:
            self.get_logger().info(f"{request.device}: {result.message}")
            self.publisher.changed()
        self.dispatcher.dispatch(outbox)
        return response

    def _set_estop(self, request: SetEmergencyStop.Request, response: Any) -> Any:
        with self._state_lock:
            result, outbox = self.dispatcher.set_emergency_stop(
                request.engaged, request.reason, request.source, request.auth
            )
            if result.success:
                self.estop = EmergencyStop(
                    engaged=request.engaged,
                    reason=request.reason,
                    source=request.source,
                    stamp=self.get_clock().now().to_msg(),
                )
        response.success, response.message = result.success, result.message
        if result.success:
            # the modules abort their goals and refuse new ones while it is engaged
            self._estop_pub.publish(self.estop)
            self.notifier.notify(
                notifications.estop(request.engaged, by=request.source, reason=request.reason)
            )
            self.get_logger().warning(f"{result.message} by {request.source}: {request.reason}")
            self.dispatcher.dispatch(outbox)
        response.state = self.estop
        return response


def main(args: list[str] | None = None) -> None:
    def close(node: SchedulerNode) -> None:
        node.modules.close()  # its callbacks write to the store
        node.notifier.close(timeout=5.0)
        node.service.close()

    # A look-ahead (pure Python, 0.1-0.3 s) holds the GIL on the tick's thread; every other
    # callback gives the GIL up at each call into rcl and then waits a whole switch interval
    # (5 ms by default) to get it back: module results were answered 0.3-0.8 s late.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # rclpy (Jazzy) reports an answer the middleware could not deliver (a client not matched
    # yet) as a RuntimeWarning, which Python prints once per place: the log shows every one
    warnings.filterwarnings("always", r"failed to send response", RuntimeWarning)
    run_node(SchedulerNode, "scheduler", args=args, threads=16, on_exit=close)


if __name__ == "__main__":
    main()
