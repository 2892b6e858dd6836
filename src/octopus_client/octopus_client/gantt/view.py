"""The schedule view shared by the rqt plugin and ``octopus gantt --live``.

It takes :class:`ScheduleSnapshot` s from any thread (ROS callbacks run on the executor's thread
inside rqt) through a Qt signal, keeps the latest, and redraws once a second so the now-line and
the running bars follow the clock between schedule updates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from python_qt_binding.QtCore import QObject, Qt, QTimer, Signal
from python_qt_binding.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from octopus_client.gantt.messages import ScheduleSnapshot
from octopus_client.gantt.model import build_model
from octopus_client.gantt.timeaxis import format_time, is_wall_clock
from octopus_client.gantt.widget import GanttWidget

# (label, seconds of history shown; None = everything the schedule holds)
HISTORY_CHOICES: tuple[tuple[str, float | None], ...] = (
    ("all", None),
    ("last 15 min", 900.0),
    ("last hour", 3600.0),
    ("last 4 h", 14400.0),
)


class ScheduleBridge(QObject):
    """Carries snapshots into the Qt thread (a queued connection when emitted elsewhere)."""

    received = Signal(object)


class ScheduleView(QWidget):
    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        module_devices: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
        refresh_ms: int = 1000,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._module_devices = dict(module_devices or {})
        self._snapshot: ScheduleSnapshot | None = None
        self._history_s: float | None = None

        self.status = QLabel("Waiting for the schedule ...")
        self.history = QComboBox()
        for label, _ in HISTORY_CHOICES:
            self.history.addItem(label)
        self.history.currentIndexChanged.connect(self._history_changed)
        header = QHBoxLayout()
        header.addWidget(self.status, 1)
        header.addWidget(QLabel("Show:"))
        header.addWidget(self.history)

        self.gantt = GanttWidget()
        self.gantt.empty_text = "Waiting for the schedule on the topic ..."
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(self.gantt)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(scroll, 1)

        self.bridge = ScheduleBridge(self)
        self.bridge.received.connect(self.show_snapshot)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(refresh_ms)

    # -- feeding -------------------------------------------------------------------------------
    def post_snapshot(self, snapshot: ScheduleSnapshot) -> None:
        """Thread-safe: hand a snapshot to the GUI thread."""
        self.bridge.received.emit(snapshot)

    def show_snapshot(self, snapshot: ScheduleSnapshot) -> None:
        self._snapshot = snapshot
        self.gantt.empty_text = "The schedule is empty: no job has steps planned or running."
        jobs = len({s.job_id for s in snapshot.steps})
        when = format_time(snapshot.stamp) if snapshot.stamp is not None else "unstamped"
        policy = f"policy {snapshot.policy}, " if snapshot.policy else ""
        self.status.setText(f"{policy}{jobs} jobs, {len(snapshot.steps)} steps; computed {when}")
        self.refresh()

    def set_module_devices(self, module_devices: Mapping[str, Sequence[str]]) -> None:
        self._module_devices = dict(module_devices)
        self.refresh()

    # -- history window (kept in rqt settings) -------------------------------------------------
    @property
    def history_s(self) -> float | None:
        return self._history_s

    def set_history_s(self, seconds: float | None) -> None:
        choices = [value for _, value in HISTORY_CHOICES]
        self.history.setCurrentIndex(choices.index(seconds) if seconds in choices else 0)

    def _history_changed(self, index: int) -> None:
        self._history_s = HISTORY_CHOICES[index][1]
        self.refresh()

    # -- drawing -------------------------------------------------------------------------------
    def now(self) -> float:
        stamp = None if self._snapshot is None else self._snapshot.stamp
        # A schedule on a virtual clock (simulated, or a time-scaled lab running ahead of the
        # wall) has its own "now": its stamp. Otherwise the now-line follows the wall clock.
        if stamp is not None and (not is_wall_clock(stamp) or stamp - self._clock() > 60):
            return stamp
        return self._clock()

    def refresh(self) -> None:
        if self._snapshot is None:
            return
        now = self.now()
        t_from = None if self._history_s is None else now - self._history_s
        self.gantt.set_model(
            build_model(self._snapshot.steps, now, self._module_devices, t_from=t_from)
        )

    def stop(self) -> None:
        self._timer.stop()
