"""The Gantt's ROS side: the latched schedule subscription (rclpy imported lazily)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from octopus_client.gantt.messages import (
    ScheduleSnapshot,
    schedule_msg_type,
    snapshot_from_schedule_msg,
)

SCHEDULE_TOPIC = "/octopus/schedule"


def schedule_qos() -> Any:
    """Reliable, transient local, keep last 1: a late joiner gets the current schedule at once."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def subscribe_schedule(
    node: Any,
    on_snapshot: Callable[[ScheduleSnapshot], None],
    topic: str = SCHEDULE_TOPIC,
) -> Any:
    """Subscribe ``node`` to the schedule; ``on_snapshot`` gets each message as plain data.

    The callback runs on the executor's thread: GUI code must hand it to the Qt thread
    (see ``view.ScheduleBridge``).
    """
    return node.create_subscription(
        schedule_msg_type(),
        topic,
        lambda msg: on_snapshot(snapshot_from_schedule_msg(msg)),
        schedule_qos(),
    )


def wait_for_schedule(
    node: Any,
    timeout_s: float = 5.0,
    topic: str = SCHEDULE_TOPIC,
    spin: Callable[[float], None] | None = None,
) -> ScheduleSnapshot | None:
    """The current (latched) schedule, or None if none arrives within ``timeout_s``.

    ``spin(seconds)`` spins ``node`` for at most that long; leave it None when the node is
    already spun elsewhere (e.g. by a background executor).
    """
    received: list[ScheduleSnapshot] = []
    arrived = threading.Event()

    def on_snapshot(snapshot: ScheduleSnapshot) -> None:
        received.append(snapshot)
        arrived.set()

    subscription = subscribe_schedule(node, on_snapshot, topic)
    deadline = time.monotonic() + timeout_s
    try:
        while not arrived.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if spin is None:
                arrived.wait(min(left, 0.1))
            else:
                spin(min(left, 0.1))
        return received[0]
    finally:
        node.destroy_subscription(subscription)


def capture_schedule(
    topic: str = SCHEDULE_TOPIC, timeout_s: float = 5.0
) -> ScheduleSnapshot | None:
    """One-shot for ``octopus gantt --out``: own context and node, all torn down on return."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("octopus_gantt_capture", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        try:
            return wait_for_schedule(
                node, timeout_s, topic, spin=lambda seconds: executor.spin_once(seconds)
            )
        finally:
            executor.shutdown()
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
