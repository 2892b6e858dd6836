"""The module's ``~/status`` topic (ModuleStatus), for :mod:`octopus_modules.ros.module_node`.

Published every heartbeat period, on every change of the runtime, and at once when a new
listener matches, all from one thread, in order: ``heartbeat`` counts the publications, so it
only grows (a heartbeat published from the timer's thread once overtook a change queued before
it). ``boot_id`` is new in every process, so a listener sees a restart however fast it was. Each
warning of the status (low stock, a device in error) is logged once while it lasts.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from typing import Any

from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from octopus_interfaces.msg import ModuleStatus
from octopus_modules.ros.ros_conversions import status_message
from octopus_modules.runtime.module_runtime import ModuleRuntime
from octopus_modules.runtime.status import ModuleStatus as RuntimeStatus

STATUS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
_BEAT = object()  # in the queue: publish a heartbeat


class StatusPublisher:
    def __init__(self, node: Node, runtime: ModuleRuntime, heartbeat_period: float) -> None:
        self._node = node
        self._runtime = runtime
        self._boot_id = uuid.uuid4().hex  # this process: its goals die with it
        self._warned: set[str] = set()
        # a new listener (a scheduler, or one that sees this process replace a crashed one) hears
        # the status at once, not a heartbeat period later
        self._publisher = node.create_publisher(
            ModuleStatus,
            "~/status",
            STATUS_QOS,
            event_callbacks=PublisherEventCallbacks(matched=self._matched),
        )
        # every status is published from a thread of its own, in order: a goal's accept and result
        # never wait for a status message to be built and written (bench-live: the DDS + module
        # part of a device action went from ~27 to ~18 ms p50 on this machine)
        self._queue: queue.SimpleQueue[RuntimeStatus | object | None] = queue.SimpleQueue()
        self._published = 0
        self._thread = threading.Thread(
            target=self._publish_changes, name="module-status", daemon=True
        )
        self._thread.start()
        runtime.add_change_listener(self._queue.put)
        node.create_timer(heartbeat_period, self.heartbeat)

    def heartbeat(self) -> None:
        self._queue.put(_BEAT)  # its status is taken when its turn comes

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=2.0)

    def _matched(self, info: Any) -> None:
        """A new listener: status now and twice more soon. It may match us a moment after we
        matched it, and drops what came before; a reliable writer repairs that only at its next
        DDS heartbeat (3 s)."""
        if info.current_count_change <= 0:
            return
        self.heartbeat()
        left = [2]

        def again() -> None:
            self.heartbeat()
            left[0] -= 1
            if left[0] == 0:
                self._node.destroy_timer(timer)

        timer = self._node.create_timer(0.25, again)

    def _publish_changes(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._publish(self._runtime.status() if item is _BEAT else item)
            except Exception:  # noqa: BLE001 - the node is being destroyed
                return

    def _publish(self, status: RuntimeStatus) -> None:
        message = status_message(status, time.time())
        self._published += 1
        message.heartbeat = self._published
        message.boot_id = self._boot_id
        self._publisher.publish(message)
        new = set(status.warnings) - self._warned
        for warning in sorted(new):  # low stock, device errors: once each, while they last
            self._node.get_logger().warning(warning)
        self._warned = set(status.warnings)
