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
- The dispatcher's port: each step to start becomes an ExecuteTask goal to its module
  (``modules/<name>/execute_task``), its answers go back to the dispatcher, and so does each
  module's heartbeat (``modules/<name>/status``).

Times: the scheduler's clock runs at the lab's time scale, so plans and estimates are in lab time
even when a simulated lab runs 600x faster than the wall.
"""

from __future__ import annotations

from typing import Any

from rclpy.action import ActionClient
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from octopus_interfaces.action import ExecuteTask
from octopus_interfaces.msg import DeviceState, EmergencyStop, ModuleDescription, ModuleStatus
from octopus_interfaces.srv import (
    ClearDeviceError,
    GetJob,
    GetSchedule,
    JobCommand,
    ListJobs,
    ReleaseSamples,
    SetEmergencyStop,
)
from octopus_modules.lab_clock import ScaledClock
from octopus_modules.ros.ros_common import LATCHED, declare, run_node
from octopus_scheduler.core.jobscript import Limits
from octopus_scheduler.ros.job_goals import JobGoals
from octopus_scheduler.ros.ros_messages import (
    JOB_STATES,
    goal_message,
    job_message,
    measurements,
    results_json,
    schedule_message,
)
from octopus_scheduler.ros.schedule_publisher import RELIABLE, SchedulePublisher
from octopus_scheduler.service import notifications
from octopus_scheduler.service.dispatcher import Dispatcher
from octopus_scheduler.service.identity import lab_authenticator
from octopus_scheduler.service.lab_config import load_lab_config
from octopus_scheduler.service.lab_service import LabService, Outbox
from octopus_scheduler.service.step_goals import StepGoal
from octopus_scheduler.service.store import Store


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
            "step_timeout_factor", 3.0, "A step times out after factor x expected + margin."
        )
        self.timeout_margin = self._declare(
            "step_timeout_margin", 10.0, "Wall seconds added to every step timeout."
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
        self.notifier = notifications.Notifier(self.config.notifications, lab_name=self.config.name)
        self.dispatcher = Dispatcher(
            self.service,
            self,
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

        callbacks = ReentrantCallbackGroup()
        # rclpy's ActionClient registers a request only after sending it: a fast answer handled
        # meanwhile in another executor thread is dropped. Sending and answering in one mutually
        # exclusive group cannot interleave.
        self._goal_group = MutuallyExclusiveCallbackGroup()
        self._send_trigger = self.create_guard_condition(
            self.dispatcher.send_queued, callback_group=self._goal_group
        )
        self.create_timer(
            Dispatcher.RESEND_PERIOD_S, self.dispatcher.resend, callback_group=self._goal_group
        )
        self._callbacks = callbacks
        self._module_clients: dict[str, ActionClient] = {}
        self._release_clients: dict[str, Any] = {}
        self._units: dict[tuple[str, str], dict[str, str]] = {}
        for description in self.service.descriptions:  # the lab file's and those that joined
            self._wire_module(description)
        # modules are self-describing: any module node that announces itself joins the lab
        self._description_topics: set[str] = set()
        self._heard_descriptions: dict[str, str] = {}  # module -> the last description it announced
        self.create_timer(
            self.heartbeat_period, self._discover_modules, MutuallyExclusiveCallbackGroup()
        )

        self.publisher = SchedulePublisher(
            self, self.service, self.dispatcher, self.policy, self.clock_scaled
        )
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

    # ---- the dispatcher's port: module goals over rclpy action clients ---------------------------

    def ready(self, module: str) -> bool:
        return self._module_clients[module].server_is_ready()

    def send_goal(self, goal: StepGoal) -> None:
        message = goal_message(goal, self._units[(goal.module, goal.task)])
        future = self._module_clients[goal.module].send_goal_async(message)
        future.add_done_callback(lambda f, goal=goal: self._goal_answered(goal, f))

    def cancel_goal(self, handle: Any) -> None:
        handle.cancel_goal_async()

    def wake(self) -> None:
        self._send_trigger.trigger()

    def release_samples(self, job_id: str) -> None:
        """Free the positions a job's samples still hold in the modules."""
        for module, client in self._release_clients.items():
            if client.service_is_ready():
                client.call_async(ReleaseSamples.Request(job_id=job_id))
            else:
                self.get_logger().warning(f"cannot release samples of {job_id} on {module}")

    def _goal_answered(self, goal: StepGoal, future: Any) -> None:
        handle = future.result()
        self.dispatcher.answered(goal, handle, handle.accepted)
        if handle.accepted:
            handle.get_result_async().add_done_callback(lambda f: self._goal_done(goal, f))

    def _goal_done(self, goal: StepGoal, future: Any) -> None:
        result = future.result().result
        measured = measurements(result.measured_data)
        self.dispatcher.finished(goal, result.success, measured, result.error)

    def _changed(self, jobs_ended: bool) -> None:
        self.publisher.changed()
        if jobs_ended:
            self.job_goals.jobs_ended()

    # ---- modules: wiring, discovery, heartbeats --------------------------------------------------

    def _wire_module(self, description: Any) -> None:
        """Goals, sample releases and heartbeats of one module."""
        from octopus_modules.ros.ros_conversions import node_name_for

        module = description.module
        node_name = node_name_for(module)
        self._module_clients[module] = ActionClient(
            self, ExecuteTask, f"modules/{node_name}/execute_task", callback_group=self._goal_group
        )
        self._release_clients[module] = self.create_client(
            ReleaseSamples,
            f"modules/{node_name}/release_samples",
            callback_group=self._callbacks,
        )
        for task in description.tasks:
            self._units[(module, task.name)] = {p.name: p.unit for p in task.parameters}
        self.create_subscription(
            ModuleStatus,
            f"modules/{node_name}/status",
            lambda status: self._heartbeat(module, status),
            RELIABLE,
            callback_group=self._callbacks,
        )

    def _discover_modules(self) -> None:
        """Subscribe to every module description topic on the graph (latched: a module that
        started before us is heard too). ROS 2 has no wildcard subscriptions."""
        prefix = f"{self.get_namespace().rstrip('/')}/modules/"
        for topic, types in self.get_topic_names_and_types():
            if (
                topic.startswith(prefix)
                and topic.endswith("/description")
                and "octopus_interfaces/msg/ModuleDescription" in types
                and topic not in self._description_topics
            ):
                self._description_topics.add(topic)
                self.create_subscription(
                    ModuleDescription,
                    topic,
                    self._on_description,
                    LATCHED,
                    callback_group=self._callbacks,
                )

    def _on_description(self, message: ModuleDescription) -> None:
        module = message.name
        with self._state_lock:
            if self._heard_descriptions.get(module) == message.description_yaml:
                return  # said once
            verdict, detail, outbox = self.service.announced(message.description_yaml)
            if verdict == "joined":
                self.dispatcher.joined(module)
                self._wire_module(self.service.descriptions[-1])
            else:
                self._heard_descriptions[module] = message.description_yaml
        if verdict == "differs":
            self.get_logger().warning(
                f"module {module} announces a description that differs from the lab's; "
                "the scheduler plans with the lab's"
            )
        elif verdict == "refused":
            self.get_logger().error(f"module {module} announced itself but cannot join: {detail}")
        elif verdict == "joined":
            self.get_logger().info(f"module {module} joined the lab (announced its description)")
            self.dispatcher.dispatch(outbox)
            self.publisher.changed()

    def _heartbeat(self, module: str, status: ModuleStatus) -> None:
        faults = {
            d.name: d.message or "disconnected"
            for d in status.devices
            if d.state in (DeviceState.STATE_ERROR, DeviceState.STATE_DISCONNECTED)
        }
        self.dispatcher.heartbeat(module, status.boot_id, faults)

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
        node.notifier.close(timeout=5.0)
        node.service.store.close()

    run_node(SchedulerNode, "scheduler", args=args, threads=16, on_exit=close)


if __name__ == "__main__":
    main()
