"""The generic module node: one workstation, configured by its module description.

A thin adapter: messages in, calls, messages out. What it serves is built by
:func:`~octopus_modules.module_factory.build_module` (as tests build it): a
:class:`~octopus_modules.runtime.goal_book.GoalBook` (goal ids: new, repeated, running,
finished) over the :class:`~octopus_modules.runtime.module_runtime.ModuleRuntime` (checks,
reservations, devices). Its topics:

- ``~/execute_task`` (action ExecuteTask): goals are checked against the description and the live
  state at goal time (rejected before anything moves); feedback per device action; cancel stops
  the devices safely. Goals run concurrently when they use different devices.
- ``~/describe`` (service DescribeModule) and ``~/description`` (latched topic): the module
  describes itself, so a scheduler discovers it at any time.
- ``~/status`` (ModuleStatus, :mod:`~octopus_modules.ros.status_publisher`): every
  ``heartbeat_period`` seconds (the heartbeat) and on change; ``boot_id`` is new in every process,
  so a consumer sees a restart however fast it was.
- ``/octopus/emergency_stop`` (latched EmergencyStop): engaged -> abort all goals, devices safe,
  refuse goals until reset.

Run: ``module_node --ros-args -p description:=batch_synthesis -p time_scale:=600``
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from octopus_interfaces.action import ExecuteTask
from octopus_interfaces.msg import EmergencyStop, ModuleDescription
from octopus_interfaces.srv import ClearDeviceError, DescribeModule, ReleaseSamples
from octopus_modules.description import builtin_description_names
from octopus_modules.lab_clock import LabClock, ScaledClock
from octopus_modules.module_factory import build_module, resolve_description
from octopus_modules.ros.ros_common import LATCHED, declare, run_node
from octopus_modules.ros.ros_conversions import (
    description_message,
    goal_parameters,
    goal_slots,
    node_name_for,
    result_message,
    seconds_of,
)
from octopus_modules.ros.status_publisher import StatusPublisher
from octopus_modules.runtime.goal_book import new_goal_id
from octopus_modules.runtime.goals import GoalRejected
from octopus_modules.runtime.results import TaskFeedback

ESTOP_TOPIC = "/octopus/emergency_stop"
#: executor threads besides the goals': the heartbeat, the services, the e-stop subscription
SPARE_THREADS = 4
#: rclpy's ActionServer keeps a result 900 s (rclcpp_action, and rclpy after Jazzy: 10 s), and
#: every goal it keeps is in every status message to every client: at 30 actions a second the
#: scheduler spent a third of its time reading them. The scheduler asks for a result as soon as
#: its goal is accepted, so it is waiting when the goal ends; 10 s covers a late asker.
RESULT_TIMEOUT_S = 10.0


def parameters() -> dict[str, tuple[Any, str]]:
    """The node's ROS parameters: name -> (default, description)."""
    return {
        "description": (
            "",
            "Module description: a YAML file path or a built-in name "
            f"({', '.join(builtin_description_names())}).",
        ),
        "time_scale": (1.0, "Simulated seconds per wall second for simulated devices."),
        "seed": (0, "Seed of simulated noise and fault injection."),
        "heartbeat_period": (1.0, "Seconds between status publications (the heartbeat)."),
        "result_timeout": (
            RESULT_TIMEOUT_S,
            "Seconds a finished goal's result is kept for a client that asks for it late. Every "
            "kept goal is in each status message the action server sends to every client.",
        ),
        "sample_ledger": (
            "",
            "File shared by the simulated modules of one lab: what each sample contains, so a "
            "simulated spectrometer sees what a simulated pump dosed in another module.",
        ),
        "estop_topic": (ESTOP_TOPIC, "The lab's latched emergency-stop topic."),
        "driver_overrides": (
            "",
            "YAML mapping device -> {driver, settings}: real drivers for some devices.",
        ),
    }


class ModuleNode(Node):
    def __init__(
        self,
        node_name: str = "module",
        namespace: str = "/octopus/modules",
        *,
        clock: LabClock | None = None,
        **kwargs: Any,
    ) -> None:
        """``clock``: the process's lab clock, for a host of several nodes in one process;
        without it the node builds one from its ``time_scale`` parameter."""
        super().__init__(node_name, namespace=namespace, **kwargs)
        value = {name: declare(self, name, *spec) for name, spec in parameters().items()}
        if not value["description"]:
            raise ValueError("parameter 'description' is required (a file or a built-in name)")
        overrides = value["driver_overrides"]
        # one lab clock for the runtime and every simulated device: they wait on it
        self.lab_clock = clock if clock is not None else ScaledClock(value["time_scale"])
        self.goals = build_module(
            value["description"],
            driver_overrides=yaml.safe_load(overrides) if overrides else None,
            clock=self.lab_clock,
            seed=value["seed"],
            ledger_path=value["sample_ledger"] or None,
        )
        self.description, self.runtime = self.goals.description, self.goals.runtime
        self._status = StatusPublisher(self, self.runtime, value["heartbeat_period"])
        self._description_pub = self.create_publisher(ModuleDescription, "~/description", LATCHED)
        action_name = self.resolve_topic_name("~/execute_task")
        self._description_msg = description_message(self.description, action_name)
        self._description_pub.publish(self._description_msg)
        self.create_service(DescribeModule, "~/describe", self._describe)
        self.create_service(ReleaseSamples, "~/release_samples", self._release_samples)
        self.create_service(ClearDeviceError, "~/clear_device_error", self._clear_device_error)

        # Goals run in parallel (different devices); the e-stop must get through while they run.
        self._action_server = ActionServer(
            self,
            ExecuteTask,
            "~/execute_task",
            execute_callback=self._execute,
            goal_callback=self._check_goal,
            cancel_callback=self._cancel,
            callback_group=ReentrantCallbackGroup(),
            result_timeout=value["result_timeout"],
        )
        self.create_subscription(
            EmergencyStop,
            value["estop_topic"],
            self._on_estop,
            LATCHED,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.get_logger().info(
            f"module {self.description.module} ready: {len(self.description.devices)} devices, "
            f"{len(self.description.tasks)} tasks, action {action_name}"
        )

    def executor_threads(self) -> int:
        """Threads its executor needs. rclpy runs an action's execute callback to its end, so a
        running goal holds a thread for its whole duration; a module whose goals took every
        thread (eight standby reactions) answered nothing, sent no heartbeat and was marked down.
        Goals at once are bounded by what each holds: a slot position or a device."""
        positions = sum(slot.capacity for slot in self.description.slots)
        return positions + len(self.description.devices) + SPARE_THREADS

    # ---- ExecuteTask: message in, GoalBook call, message out ----------------------------------

    def _check_goal(self, goal: ExecuteTask.Goal) -> GoalResponse:
        """Reserve at goal time, so a goal that cannot run is rejected before anything moves."""
        if not goal.task_id:
            goal.task_id = new_goal_id()  # the handle carries this same object
        slots, samples = goal_slots(goal.slots, goal.experiment_id)
        try:
            self.goals.accept(
                goal.task_id,
                goal.task,
                lambda task: goal_parameters(task, goal.parameters),
                slots,
                samples,
                goal.step_indices,
                planned_start=seconds_of(goal.planned_start),
            )
        except GoalRejected as error:
            self.get_logger().warning(f"rejected goal {goal.task_id} ({goal.task}): {error}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _cancel(self, handle: ServerGoalHandle) -> CancelResponse:
        self.goals.cancel(handle.request.task_id)
        return CancelResponse.ACCEPT

    def _execute(self, handle: ServerGoalHandle) -> ExecuteTask.Result:
        def feedback(event: TaskFeedback) -> None:
            handle.publish_feedback(
                ExecuteTask.Feedback(
                    step_index=event.step_index,
                    current_action=action_label(event),
                    progress=float(event.progress),
                )
            )

        result = self.goals.run(handle.request.task_id, feedback)
        if result.outcome == "cancelled":
            handle.canceled()
        elif result.success:
            handle.succeed()
        else:
            handle.abort()
        return result_message(result)

    # ---- description, status, e-stop -----------------------------------------------------------

    def _describe(
        self, _request: DescribeModule.Request, response: DescribeModule.Response
    ) -> DescribeModule.Response:
        response.description = self._description_msg
        return response

    def _release_samples(
        self, request: ReleaseSamples.Request, response: ReleaseSamples.Response
    ) -> ReleaseSamples.Response:
        response.released = self.runtime.release_job_samples(request.job_id)
        if response.released:
            self.get_logger().info(
                f"released {', '.join(response.released)} of job {request.job_id}"
            )
        return response

    def _clear_device_error(
        self, request: ClearDeviceError.Request, response: ClearDeviceError.Response
    ) -> ClearDeviceError.Response:
        try:
            self.runtime.clear_device_error(request.device)
        except KeyError:
            known = ", ".join(d.name for d in self.description.devices)
            response.message = f"device: unknown device '{request.device}' (known: {known})"
            return response
        who = request.user or "an operator"
        self.get_logger().warning(f"device {request.device}: error cleared by {who}")
        response.success, response.message = True, f"{request.device} accepts goals again"
        return response

    def _on_estop(self, message: EmergencyStop) -> None:
        if message.engaged and not self.runtime.estop_engaged:
            report = self.runtime.engage_estop(f"{message.reason} (from {message.source})")
            latency = "timed out" if report.latency_s is None else f"{report.latency_s:.4f} s"
            self.get_logger().warning(
                f"EMERGENCY STOP: {message.reason}; aborted {len(report.aborted_goals)} goal(s) "
                f"in {latency}"
            )
        elif not message.engaged and self.runtime.estop_engaged:
            self.runtime.reset_estop()
            self.get_logger().info(f"emergency stop reset by {message.source}")

    def destroy_node(self) -> None:
        self.runtime.close()
        self._status.close()
        super().destroy_node()


def action_label(event: TaskFeedback) -> str:
    """ "Device.action" while an action runs, else the event ("standby_started", ...)."""
    return f"{event.device}.{event.action}" if event.device else event.event


def description_argument(argv: list[str]) -> str:
    """The value of ``-p description:=...`` among ROS arguments ("" if absent)."""
    for arg in argv:
        if arg.startswith("description:="):
            value = arg.split(":=", 1)[1]
            parsed = yaml.safe_load(value)  # as rcl reads it: '"uv_vis"' is uv_vis
            return parsed if isinstance(parsed, str) else value
    return ""


def main(args: list[str] | None = None) -> None:
    argv = list(sys.argv if args is None else args)
    # Named after its module (REP 144), unless the caller remaps __node.
    reference = description_argument(argv)

    def make_node() -> ModuleNode:
        name = node_name_for(resolve_description(reference).module) if reference else "module"
        return ModuleNode(node_name=name)

    run_node(make_node, "module", args=argv, threads=ModuleNode.executor_threads)


if __name__ == "__main__":
    main()
