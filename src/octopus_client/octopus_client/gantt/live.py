"""``octopus gantt --live``: the schedule view in its own window, without rqt.

rclpy is spun from a QTimer on the Qt thread (``spin_once(timeout_sec=0)``), so there is one
thread and no locking; Ctrl-C in the terminal closes the window.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from python_qt_binding.QtCore import QTimer, Signal
from python_qt_binding.QtGui import QCloseEvent
from python_qt_binding.QtWidgets import QApplication, QMainWindow, QWidget

from octopus_client.gantt.ros_io import SCHEDULE_TOPIC, subscribe_schedule
from octopus_client.gantt.view import ScheduleView

SPIN_INTERVAL_MS = 50
NODE_NAME = "octopus_gantt"

Subscribe = Callable[..., Any]  # (node, on_snapshot, topic) -> subscription


class LiveGanttWindow(QMainWindow):
    """A window showing the live schedule of ``node``'s lab; spins ``executor`` from a timer."""

    closed = Signal()

    def __init__(
        self,
        node: Any,
        executor: Any,
        *,
        topic: str = SCHEDULE_TOPIC,
        module_devices: Mapping[str, Sequence[str]] | None = None,
        subscribe: Subscribe = subscribe_schedule,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"OCTOPUS schedule - {topic}")
        self.resize(1200, 600)
        self._node = node
        self._executor = executor
        self.view = ScheduleView(module_devices=module_devices)
        self.setCentralWidget(self.view)
        self._subscription = subscribe(node, self.view.post_snapshot, topic)
        self._spin_timer = QTimer(self)
        self._spin_timer.timeout.connect(self._spin)
        self._spin_timer.start(SPIN_INTERVAL_MS)

    def _spin(self) -> None:
        # Zero timeout: never block the GUI; the schedule topic keeps only its last message.
        self._executor.spin_once(timeout_sec=0.0)

    def stop(self) -> None:
        """Stop spinning and drop the subscription (idempotent)."""
        self._spin_timer.stop()
        self.view.stop()
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.stop()
        super().closeEvent(event)
        self.closed.emit()


def run_live(
    topic: str = SCHEDULE_TOPIC,
    *,
    module_devices: Mapping[str, Sequence[str]] | None = None,
    argv: Sequence[str] | None = None,
    subscribe: Subscribe = subscribe_schedule,
) -> int:
    """Open the live Gantt window until it is closed (or Ctrl-C); returns the exit code.

    ``module_devices`` orders the rows (e.g. from the lab description); ``subscribe`` is
    replaceable for tests.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    context = Context()  # our own: nothing global is left behind when the window closes
    rclpy.init(context=context)
    node = rclpy.create_node(NODE_NAME, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    window = LiveGanttWindow(
        node, executor, topic=topic, module_devices=module_devices, subscribe=subscribe
    )
    window.closed.connect(app.quit)
    # Python handles SIGINT between Qt events; the spin timer wakes the loop often enough.
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    try:
        window.show()
        return int(app.exec_())
    finally:
        signal.signal(signal.SIGINT, previous)
        window.stop()
        window.deleteLater()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
