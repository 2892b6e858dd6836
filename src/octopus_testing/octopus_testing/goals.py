"""An action client whose goals start once, even when the server's answer to a goal is lost.

Discovery can be one-sided for a while after ``wait_for_server``: the server has our goal but not
yet our reply reader, and rmw_fastrtps drops its answer ("failed to send response (timeout)")
while the goal was accepted. Sending the goal again under a new id would start it twice (a second
job of the same script). So a goal unanswered in time is first looked for: a late answer, or the
server's status (transient local), which lists every goal it accepted. Only a goal neither
answered nor listed is sent again, under the same id: rclpy's ActionServer refuses an id it
already tracks. (It does not refuse one whose first request is still in its goal callback: the
scheduler's, reentrant, would take that goal twice. Looking first keeps a slow answer from being
sent again.) A refused resend whose first send was accepted is told the same way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from action_msgs.msg import GoalStatusArray
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.node import Node
from rclpy.qos import qos_profile_action_status_default
from unique_identifier_msgs.msg import UUID

from octopus_testing.futures import wait_for_future

#: how long an unanswered goal is looked for (a late answer, the server's status) before it is
#: sent again
FATE_WAIT_S = 5.0


class ResendingActionClient(ActionClient):
    def __init__(self, node: Node, action_type: Any, action_name: str, **kwargs: Any) -> None:
        super().__init__(node, action_type, action_name, **kwargs)
        self._status_node = node
        self._response_type = action_type.Impl.SendGoalService.Response
        self._listed: set[bytes] = set()
        # subscribed now, so that it has matched by the time an unanswered goal is looked for
        self._status = node.create_subscription(
            GoalStatusArray,
            f"{action_name}/_action/status",
            self._on_status,
            qos_profile_action_status_default,
        )

    def _on_status(self, message: GoalStatusArray) -> None:
        self._listed.update(bytes(s.goal_info.goal_id.uuid) for s in message.status_list)

    def _fate(
        self, goal_id: UUID, sent: list[Any], wait: float, *, refused_is_final: bool
    ) -> ClientGoalHandle | None:
        """Within ``wait`` s: an accepted answer to any send of ``goal_id``; else, once it is
        listed in the server's status, its handle (its answer was lost); else, when every send
        was answered and ``refused_is_final``, a refusal. None if nothing is known by then."""
        deadline = time.monotonic() + wait
        while True:
            answered = [f.result() for f in sent if f.done() and f.result() is not None]
            accepted = next((h for h in answered if h.accepted), None)
            if accepted is not None:
                return accepted
            if bytes(goal_id.uuid) in self._listed:
                response = self._response_type(accepted=True)
                return ClientGoalHandle(self, goal_id, response)
            if answered and (refused_is_final or len(answered) == len(sent)):
                return answered[-1]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def send_goal_once(
        self,
        goal: Any,
        timeout: float,
        *,
        feedback_callback: Callable[[Any], None] | None = None,
        attempts: int = 3,
        fate_wait: float = FATE_WAIT_S,
    ) -> ClientGoalHandle:
        """Send ``goal``; its handle, accepted or not. Unanswered within ``timeout`` s, it is
        looked for ``fate_wait`` s more, then sent again under the same id.

        Raises TimeoutError when nothing is known of it after ``attempts`` sends.
        """
        goal_id = UUID(uuid=list(uuid.uuid4().bytes))
        sent: list[Any] = []
        for _ in range(attempts):
            future = self.send_goal_async(goal, feedback_callback, goal_uuid=goal_id)
            sent.append(future)
            try:
                handle = wait_for_future(future, timeout)
            except TimeoutError:
                known = self._fate(goal_id, sent, fate_wait, refused_is_final=True)
                if known is not None:
                    return known
                continue
            if handle.accepted or len(sent) == 1:
                return handle
            # a resend refused: its first send may have been accepted unseen
            earlier = self._fate(goal_id, sent[:-1], fate_wait, refused_is_final=False)
            return earlier if earlier is not None and earlier.accepted else handle
        raise TimeoutError(
            f"goal unanswered after {attempts} sends of {timeout:.1f} s (+{fate_wait:.1f} s)"
        )

    def destroy(self) -> None:
        self._status_node.destroy_subscription(self._status)
        super().destroy()
