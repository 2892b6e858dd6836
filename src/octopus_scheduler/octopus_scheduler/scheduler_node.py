"""The scheduler node: :class:`~octopus_scheduler.lab_service.LabService` on the ROS graph.

- ``submit_job`` (action SubmitJob): a job script in, feedback while the job runs, the result when
  it ends; cancelling the goal cancels the job. A rejected script ends the goal at once (aborted)
  with the reason, naming the field, in ``summary``.
- ``list_jobs``, ``get_job``, ``cancel_job``/``hold_job``/``resume_job`` (JobCommand),
  ``get_schedule``, ``set_emergency_stop`` (services).
- ``schedule`` and ``resources`` (latched: the plan and what ran; free slots, busy devices and
  their holders, modules up), ``jobs`` (job updates), ``emergency_stop`` (latched), and
  ``/diagnostics`` (the scheduler and each module, for rqt_robot_monitor).
- Each decision to start a step becomes an ExecuteTask goal to its module (``modules/<name>/
  execute_task``); the goal's result goes back into the core. A module whose heartbeat
  (``modules/<name>/status``) stops for ``2 x heartbeat_period`` is marked down.

Times: the scheduler's clock runs at the lab's time scale, so plans and estimates are in lab time
even when a simulated lab runs 600x faster than the wall.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections import Counter
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from octopus_interfaces.action import ExecuteTask, SubmitJob
from octopus_interfaces.msg import (
    DeviceState,
    EmergencyStop,
    Job,
    ModuleDescription,
    ModuleStatus,
    ResourceState,
    Schedule,
)
from octopus_interfaces.srv import (
    ClearDeviceError,
    GetJob,
    GetSchedule,
    JobCommand,
    ListJobs,
    ReleaseSamples,
    SetEmergencyStop,
)
from octopus_modules.ros_common import LATCHED, declare, run_node

from . import notifications
from .dispatcher import Dispatcher
from .identity import lab_authenticator
from .jobscript import Limits
from .lab_clock import ScaledClock
from .lab_config import load_lab_config
from .lab_service import ENDED, LabService, Outbox, Submission
from .publication_pacer import PublicationPacer
from .ros_messages import (
    JOB_STATES,
    diagnostics_message,
    goal_message,
    job_message,
    resource_message,
    schedule_message,
    stamp,
)
from .step_goals import StepGoal
from .store import Store

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# The SubmitJob services keep 10,000 requests (the default keeps 10: a burst overflowed the reader
# before the executor took the requests). Not KEEP_ALL: a response writer that keeps all waits
# for the slowest client's acknowledgements, and a write that waits too long is dropped.
REQUESTS = QoSProfile(depth=10000, reliability=ReliabilityPolicy.RELIABLE)


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
        from octopus_modules.module_node import load_module_description

        self.descriptions = [load_module_description(m.description) for m in self.config.modules]
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
        self._followed: dict[str, ServerGoalHandle] = {}  # job id -> its SubmitJob goal
        self._submissions: dict[int, Submission] = {}  # id(goal) -> its submission, until accepted
        self.dispatcher = Dispatcher(
            self.service,
            self,
            self.get_logger(),
            time_scale=self.config.time_scale,
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
        self.create_timer(0.1, self.dispatcher.resend, callback_group=self._goal_group)
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

        self._schedule_pub = self.create_publisher(Schedule, "schedule", LATCHED)
        self._jobs_pub = self.create_publisher(Job, "jobs", RELIABLE)
        self._resources_pub = self.create_publisher(ResourceState, "resources", LATCHED)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self._estop_pub = self.create_publisher(EmergencyStop, "emergency_stop", LATCHED)
        self._estop_pub.publish(self.estop)
        ActionServer(
            self,
            SubmitJob,
            "submit_job",
            execute_callback=self._job_result,
            goal_callback=self._submit_job,
            handle_accepted_callback=self._accept_job,
            cancel_callback=self._cancel_job_goal,
            callback_group=callbacks,
            goal_service_qos_profile=REQUESTS,
            result_service_qos_profile=REQUESTS,
            cancel_service_qos_profile=REQUESTS,
            feedback_pub_qos_profile=RELIABLE,
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
        # a retry's back-off ends in lab time: look often enough for a fast simulated lab
        self.create_timer(0.05, self.dispatcher.tick, MutuallyExclusiveCallbackGroup())
        self.create_timer(  # a silent module is down at most a quarter period late
            min(self.heartbeat_period / 4, 0.25),
            self.dispatcher.watchdog,
            MutuallyExclusiveCallbackGroup(),
        )
        publishing = MutuallyExclusiveCallbackGroup()
        following = MutuallyExclusiveCallbackGroup()
        self._follow_trigger = self.create_guard_condition(
            self._follow_jobs, callback_group=following
        )
        self.create_timer(1.0, self._follow_jobs, following)  # feedback once a second
        self._schedule_dirty = threading.Event()
        self._published: dict[str, Any] = {}  # job id -> summary of the last published schedule
        self._pacer = PublicationPacer()
        self.create_timer(0.25, self._publish_if_dirty, publishing)

        recovered = self.service.recovered_goals
        if recovered:  # a restart: ask the modules again; a finished step returns its result
            self.get_logger().info(f"reconciling {len(recovered)} step(s) in flight")
            self._dispatch(Outbox(goals=list(recovered)))
        self._schedule_dirty.set()
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
        try:
            measured = json.loads(result.measured_data) if result.measured_data else {}
        except json.JSONDecodeError:
            measured = {"raw": result.measured_data}
        self.dispatcher.finished(goal, result.success, measured, result.error)

    def _dispatch(self, outbox: Outbox) -> None:
        self.dispatcher.dispatch(outbox)

    def _changed(self, jobs_ended: bool) -> None:
        self._schedule_dirty.set()
        if jobs_ended:
            self._follow_trigger.trigger()  # their goals get their results now

    # ---- modules: wiring, discovery, heartbeats --------------------------------------------------

    def _wire_module(self, description: Any) -> None:
        """Goals, sample releases and heartbeats of one module."""
        from octopus_modules.ros_conversions import node_name_for

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
            self._dispatch(outbox)
            self._schedule_dirty.set()

    def _heartbeat(self, module: str, status: ModuleStatus) -> None:
        faults = {
            d.name: d.message or "disconnected"
            for d in status.devices
            if d.state in (DeviceState.STATE_ERROR, DeviceState.STATE_DISCONNECTED)
        }
        self.dispatcher.heartbeat(module, status.boot_id, faults)

    # ---- jobs ------------------------------------------------------------------------------------

    def _submit_job(self, goal: SubmitJob.Goal) -> GoalResponse:
        """Persist the job before the goal response leaves: a client that sees its goal accepted
        finds its job in list_jobs. A script that fails validation is accepted too, so that its
        result can name the field (a goal rejection carries no message)."""
        with self._state_lock:
            try:
                submission, outbox = self.service.submit(goal.script, goal.user, goal.auth)
            except Exception:  # a bug must not leave the client without an answer
                self.get_logger().error(f"submission failed:\n{traceback.format_exc()}")
                submission = Submission(error="internal error: see the scheduler log")
                outbox = Outbox()
            # rclpy hands this same Goal object to the accepted handle (handle.request)
            self._submissions[id(goal)] = submission
        if submission.accepted:
            self.get_logger().info(f"job {submission.job_id} accepted from {goal.user}")
            self._dispatch(outbox)
        else:
            self.get_logger().warning(f"job of {goal.user} rejected: {submission.error}")
        return GoalResponse.ACCEPT

    def _accept_job(self, handle: ServerGoalHandle) -> None:
        """The goal then waits, holding no executor thread, until its job ends (feedback comes
        from the follower timer). Many users' jobs may be followed at once.
        """
        with self._state_lock:
            submission = self._submissions.pop(id(handle.request))
        if not submission.accepted:
            handle._octopus_rejection = submission.error  # noqa: SLF001 - read by _job_result
            handle.execute()
            return
        job_id = submission.job_id
        handle._octopus_job_id = job_id  # noqa: SLF001 - read by the cancel callback
        with self._state_lock:
            self._followed[job_id] = handle
        self._follow(job_id, handle)  # the client learns its job id now (only this job: a burst
        # of accepts must not each tell every followed job)

    def _follow_jobs(self) -> None:
        """Feedback to every followed job; a job that ended gets its result."""
        with self._state_lock:
            followed = list(self._followed.items())
        for job_id, handle in followed:
            self._follow(job_id, handle)

    def _follow(self, job_id: str, handle: ServerGoalHandle) -> None:
        view = self.service.job(job_id)
        if view is None:
            return
        if view.state in ENDED:
            with self._state_lock:
                mine = self._followed.pop(job_id, None) is not None
            if mine:  # exactly once, whichever thread saw the end first
                handle.execute()  # runs _job_result, which ends the goal
            return
        # progress and estimates from the last published schedule: planning is not free
        summary = self._published.get(job_id)
        try:
            handle.publish_feedback(
                SubmitJob.Feedback(
                    job_id=job_id,
                    state=JOB_STATES[view.state],
                    progress=float(summary.progress) if summary else 0.0,
                    experiments_done=summary.experiments_done if summary else 0,
                    experiments_total=self.service.experiments_total(job_id),
                    estimated_finish=stamp(summary.estimated_finish if summary else None),
                )
            )
        except Exception:  # the goal is no longer active (cancelled): nothing to tell
            pass

    def _job_result(self, handle: ServerGoalHandle) -> SubmitJob.Result:
        rejection = getattr(handle, "_octopus_rejection", None)
        if rejection is not None:
            handle.abort()
            return SubmitJob.Result(job_id="", final_state=Job.STATE_FAILED, summary=rejection)
        job_id = handle._octopus_job_id  # noqa: SLF001
        view = self.service.job(job_id)
        state = view.state if view is not None else "failed"
        report = self.service.result_summary(job_id)
        result = SubmitJob.Result(job_id=job_id, final_state=JOB_STATES[state], summary=report)
        if state == "succeeded":
            handle.succeed()
        elif state == "cancelled" and handle.is_cancel_requested:
            handle.canceled()
        else:
            handle.abort()
        return result

    def _cancel_job_goal(self, handle: ServerGoalHandle) -> CancelResponse:
        job_id = getattr(handle, "_octopus_job_id", "")
        with self._state_lock:
            result, outbox = self.service.command(
                "cancel", job_id, handle.request.user, goal_owner=True
            )
        self._dispatch(outbox)
        return CancelResponse.ACCEPT if result.success else CancelResponse.REJECT

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
        summary = next(
            (s for s in self.service.summaries() if s.view.job_id == request.job_id), None
        )
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
        response.results_json = json.dumps(
            [
                {
                    "experiment": e.experiment_id,
                    "parameters": e.parameters,
                    "measured": e.measured,
                    "derived": e.derived,
                }
                for e in detail.experiments
            ]
        )
        return response

    def _command(self, kind: str, request: JobCommand.Request, response: Any) -> Any:
        with self._state_lock:
            result, outbox = self.service.command(kind, request.job_id, request.user, request.auth)
        self._dispatch(outbox)
        response.success, response.message = result.success, result.message
        summary = next(
            (s for s in self.service.summaries() if s.view.job_id == request.job_id), None
        )
        if summary is not None:
            response.job = job_message(summary)
        return response

    # ---- schedule, e-stop ------------------------------------------------------------------------

    def _schedule(self, job_id: str = "") -> Schedule:
        placements = self.service.plan()
        executed = self.service.store.steps(job_id or None)
        if job_id:
            placements = [p for p in placements if p.job_id == job_id]
        schedule = schedule_message(
            self.policy, placements, executed, self.clock_scaled(), self.service.step_shape
        )
        summaries = self.service.summaries(placements)
        if not job_id:
            self._published = {s.view.job_id: s for s in summaries}
        schedule.jobs = [job_message(s) for s in summaries if not job_id or s.view.job_id == job_id]
        return schedule

    def _publish_if_dirty(self) -> None:
        """When the pacer says: on change, at least every 2 s, planning at most 20 % of the time."""
        started = time.monotonic()
        changed = self._schedule_dirty.is_set()
        if not self._pacer.due(started, changed):
            return
        self._schedule_dirty.clear()
        try:
            self._publish_state(changed)
        except Exception:  # a broken publication must not take the scheduler down
            self.get_logger().error(f"publishing the schedule failed:\n{traceback.format_exc()}")
        self._pacer.published(started, time.monotonic() - started)

    def _publish_state(self, changed: bool) -> None:
        schedule = self._schedule()
        self._schedule_pub.publish(schedule)
        self._resources_pub.publish(
            resource_message(
                self.service.resources(), self.dispatcher.liveness.down, self.clock_scaled()
            )
        )
        if changed:  # job updates only when something happened
            for job in schedule.jobs:
                self._jobs_pub.publish(job)
        by_state = Counter(view.state for view in self.service.jobs())
        self._diagnostics_pub.publish(
            diagnostics_message(
                self.service.resources(),
                self.dispatcher.liveness.down,
                by_state,
                self.dispatcher.in_flight,
                self.policy,
                self.clock_scaled(),
            )
        )

    def _get_schedule(self, request: GetSchedule.Request, response: Any) -> Any:
        response.schedule = self._schedule(request.job_id)
        return response

    def _clear_device(self, request: ClearDeviceError.Request, response: Any) -> Any:
        with self._state_lock:
            result, outbox = self.service.clear_device(request.device, request.user, request.auth)
        response.success, response.message = result.success, result.message
        if result.success:
            self.get_logger().info(f"{request.device}: {result.message}")
            self._schedule_dirty.set()
        self._dispatch(outbox)
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
            self._dispatch(outbox)
        response.state = self.estop
        return response


def main(args: list[str] | None = None) -> None:
    def close(node: SchedulerNode) -> None:
        node.notifier.close(timeout=5.0)
        node.service.store.close()

    run_node(SchedulerNode, "scheduler", args=args, threads=16, on_exit=close)


if __name__ == "__main__":
    main()
