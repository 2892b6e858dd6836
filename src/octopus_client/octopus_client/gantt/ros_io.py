"""The Gantt's ROS side: the latched schedule subscription (rclpy imported lazily)."""

from __future__ import annotations

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
