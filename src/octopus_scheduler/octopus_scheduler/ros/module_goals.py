"""The scheduler node's side of the modules, for :mod:`octopus_scheduler.ros.scheduler_node`:
the :class:`~octopus_scheduler.service.dispatcher.ModulePort` over rclpy (an ExecuteTask action
client and a ReleaseSamples client per module), each module's heartbeat (``modules/<name>/status``)
handed to the dispatcher, and the modules that announce themselves on the graph
(``modules/<name>/description``, latched), which join the lab.

The goals go out and their answers come in on a node of their own (``<scheduler>_module_goals``)
with an executor of its own. On the scheduler's executor, busy with its services, timers and every
module's status, each hop of a goal's round trip (goal response, result request, result) waited
for an iteration of that executor: 31-40 ms for a round trip that takes 9 ms to the same module
from a client of its own.
"""

from __future__ import annotations

import threading
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.callback_groups import CallbackGroup, MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from octopus_interfaces.action import ExecuteTask
from octopus_interfaces.msg import DeviceState, ModuleDescription, ModuleStatus
from octopus_interfaces.srv import ReleaseSamples
from octopus_modules.ros.ros_common import LATCHED
from octopus_modules.ros.ros_conversions import node_name_for, seconds_of
from octopus_scheduler.ros.ros_messages import goal_message, measurements
from octopus_scheduler.service.dispatcher import Dispatcher
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.step_goals import StepGoal

#: the goal node's executor: the goal group, and answers that wait for the lab's lock meanwhile
GOAL_THREADS = 8


#: A module's status is a whole snapshot and its next one comes a period later: read as it comes.
#: A reliable reader holds every later status back until a lost one is repaired, at the writer's
#: next DDS heartbeat (up to 3 s): after a 4 s stall of this process, modules stayed silent for
#: 2.8 s more and were marked down.
HEARTBEAT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)


class ModuleGoals:
    """Module goals, heartbeats and announcements over rclpy; every answer goes to the
    dispatcher (:meth:`bind`), which decides what it means."""

    def __init__(
        self, node: Node, service: LabService, callbacks: CallbackGroup, discovery_period_s: float
    ) -> None:
        self._node = node
        self._service = service
        self._callbacks = callbacks
        self._dispatcher: Dispatcher | None = None
        self._changed: Callable[[], None] = lambda: None
        # rclpy's ActionClient registers a request only after sending it: an answer handled
        # meanwhile in another executor thread is dropped (a module that answers at once, a goal
        # whose planned start has passed, lost its result and the step timed out). Every request
        # is made from the goal group, where the clients handle their answers: they cannot
        # interleave. The futures' done callbacks (an answer for the dispatcher, which may wait
        # for the lab's lock) run on the other threads, so the group never waits for that lock.
        # Its own name, not the process's remapped one (launch gives ``-r __node:=scheduler``).
        self._goal_node = Node(
            f"{node.get_name()}_module_goals",
            namespace=node.get_namespace(),
            context=node.context,
            use_global_arguments=False,
        )
        self._goal_group = MutuallyExclusiveCallbackGroup()
        self._result_requests: deque[tuple[StepGoal, Any]] = deque()
        self._result_trigger: Any = None
        self._goal_executor = MultiThreadedExecutor(GOAL_THREADS, context=node.context)
        self._goal_executor.add_node(self._goal_node)
        self._goal_thread = threading.Thread(
            target=self._spin_goals, name="module-goals", daemon=True
        )
        self._clients: dict[str, ActionClient] = {}
        self._release_clients: dict[str, Any] = {}
        self._units: dict[tuple[str, str], dict[str, str]] = {}
        self._send_trigger: Any = None
        self._description_topics: set[str] = set()
        self._heard: dict[str, str] = {}  # module -> the last description it announced
        self._discovery_period_s = discovery_period_s

    def bind(self, dispatcher: Dispatcher, changed: Callable[[], None]) -> None:
        """Start: goals go out when the dispatcher says (``wake``) and every few seconds its
        resends; ``changed``: the lab changed (a module joined)."""
        self._dispatcher, self._changed = dispatcher, changed
        node = self._node
        goals = self._goal_node
        self._send_trigger = goals.create_guard_condition(
            dispatcher.send_queued, callback_group=self._goal_group
        )
        self._result_trigger = goals.create_guard_condition(
            self._request_results, callback_group=self._goal_group
        )
        goals.create_timer(
            Dispatcher.RESEND_PERIOD_S, dispatcher.resend, callback_group=self._goal_group
        )
        self._goal_thread.start()
        for description in self._service.descriptions:  # the lab file's and those that joined
            self._wire(description)
        # modules are self-describing: any module node that announces itself joins the lab
        node.create_timer(
            self._discovery_period_s, self._discover, MutuallyExclusiveCallbackGroup()
        )

    # ---- the dispatcher's port ---------------------------------------------------------------

    def ready(self, module: str) -> bool:
        return self._clients[module].server_is_ready()

    def send_goal(self, goal: StepGoal, planned_start: float | None) -> None:
        message = goal_message(goal, self._units[(goal.module, goal.task)], planned_start)
        future = self._clients[goal.module].send_goal_async(message)
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
                self._node.get_logger().warning(f"cannot release samples of {job_id} on {module}")

    def _goal_answered(self, goal: StepGoal, future: Any) -> None:
        handle = future.result()
        if handle.accepted:
            # asked before the dispatcher hears of it, which waits for the lab's lock (held by a
            # decision, a look-ahead's copy): a goal that ends at once kept its result at the
            # module until then, 10 ms p50 of a 20 ms round trip
            self._result_requests.append((goal, handle))
            self._result_trigger.trigger()
        self._bound().answered(goal, handle, handle.accepted)

    def _request_results(self) -> None:
        """Ask for the results of accepted goals, from the goal group (see __init__)."""
        while self._result_requests:
            goal, handle = self._result_requests.popleft()
            handle.get_result_async().add_done_callback(
                lambda f, goal=goal: self._goal_done(goal, f)
            )

    def _goal_done(self, goal: StepGoal, future: Any) -> None:
        response = future.result()
        if response.status == GoalStatus.STATUS_UNKNOWN:  # the module no longer had it
            self._bound().result_lost(goal)
            return
        result = response.result
        measured = measurements(result.measured_data)
        ended_at = seconds_of(result.ended_at)
        self._bound().finished(
            goal,
            result.success,
            measured,
            result.error,
            ended_at=ended_at,
            faults=device_faults(result.device_faults),
        )

    def _spin_goals(self) -> None:
        """The goal node's thread: until :meth:`close`; a failed callback is logged, not fatal."""
        while True:
            try:
                self._goal_executor.spin()
                return
            except ExternalShutdownException:
                return
            except Exception:  # one failed callback must not stop every goal of the lab
                self._node.get_logger().error(
                    f"a module goal callback failed:\n{traceback.format_exc()}"
                )

    def close(self) -> None:
        """Stop the goal node's thread (before what its callbacks use, the store, is closed)."""
        self._goal_executor.shutdown(timeout_sec=5.0)
        if self._goal_thread.is_alive():
            self._goal_thread.join(timeout=5.0)
        self._goal_node.destroy_node()

    def _bound(self) -> Dispatcher:
        assert self._dispatcher is not None, "ModuleGoals.bind was not called"
        return self._dispatcher

    # ---- wiring, heartbeats, announcements -------------------------------------------------

    def _wire(self, description: Any) -> None:
        """Goals, sample releases and heartbeats of one module."""
        module = description.module
        name = node_name_for(module)
        node = self._node
        self._clients[module] = ActionClient(
            self._goal_node,
            ExecuteTask,
            f"modules/{name}/execute_task",
            callback_group=self._goal_group,
        )
        self._release_clients[module] = node.create_client(
            ReleaseSamples, f"modules/{name}/release_samples", callback_group=self._callbacks
        )
        for task in description.tasks:
            self._units[(module, task.name)] = {p.name: p.unit for p in task.parameters}
        node.create_subscription(
            ModuleStatus,
            f"modules/{name}/status",
            lambda status: self._heartbeat(module, status),
            HEARTBEAT_QOS,
            callback_group=self._callbacks,
        )

    def _heartbeat(self, module: str, status: ModuleStatus) -> None:
        self._bound().heartbeat(
            module, status.boot_id, device_faults(status.devices), seconds_of(status.header.stamp)
        )

    def _discover(self) -> None:
        """Subscribe to every module description topic on the graph (latched: a module that
        started before us is heard too). ROS 2 has no wildcard subscriptions."""
        node = self._node
        prefix = f"{node.get_namespace().rstrip('/')}/modules/"
        for topic, types in node.get_topic_names_and_types():
            if (
                topic.startswith(prefix)
                and topic.endswith("/description")
                and "octopus_interfaces/msg/ModuleDescription" in types
                and topic not in self._description_topics
            ):
                self._description_topics.add(topic)
                node.create_subscription(
                    ModuleDescription,
                    topic,
                    self._on_description,
                    LATCHED,
                    callback_group=self._callbacks,
                )

    def _on_description(self, message: ModuleDescription) -> None:
        module, log, dispatcher = message.name, self._node.get_logger(), self._bound()
        with dispatcher.lock:
            if self._heard.get(module) == message.description_yaml:
                return  # said once
            verdict, detail, outbox = self._service.announced(message.description_yaml)
            if verdict == "joined":
                dispatcher.joined(module)
                self._wire(self._service.descriptions[-1])
            else:
                self._heard[module] = message.description_yaml
        if verdict == "differs":
            log.warning(
                f"module {module} announces a description that differs from the lab's; "
                "the scheduler plans with the lab's"
            )
        elif verdict == "refused":
            log.error(f"module {module} announced itself but cannot join: {detail}")
        elif verdict == "joined":
            log.info(f"module {module} joined the lab (announced its description)")
            dispatcher.dispatch(outbox)
            self._changed()


def device_faults(devices: Sequence[DeviceState]) -> dict[str, str]:
    """The devices in error or disconnected, and why."""
    return {
        d.name: d.message or "disconnected"
        for d in devices
        if d.state in (DeviceState.STATE_ERROR, DeviceState.STATE_DISCONNECTED)
    }
