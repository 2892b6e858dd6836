"""The live window, the shared schedule view and the rqt plugin, with test doubles for ROS/rqt.

rclpy's executor and node are replaced by recording doubles (the real subscription is tested in
test_gantt_messages.py). The plugin is built on the real ``rqt_gui_py.plugin.Plugin`` where the
ROS 2 user tools are (the underlay, a ROS 2 install), else on a double with its documented
constructor (a QObject given the plugin context); test_rqt_plugin.py runs it in real rqt.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import time
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Skipped, not broken, where PyQt5 is not installed yet (the ROS workspace venv).
pytest.importorskip("python_qt_binding.QtWidgets", reason="needs PyQt5 + python_qt_binding")

from python_qt_binding.QtCore import QObject  # noqa: E402
from python_qt_binding.QtWidgets import QApplication, QWidget  # noqa: E402

from octopus_client.gantt.live import LiveGanttWindow  # noqa: E402
from octopus_client.gantt.messages import ScheduleSnapshot  # noqa: E402
from octopus_client.gantt.model import GanttStep  # noqa: E402
from octopus_client.gantt.ros_io import SCHEDULE_TOPIC  # noqa: E402
from octopus_client.gantt.view import ScheduleView  # noqa: E402

T0 = 1_760_000_000.0
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def snapshot(stamp: float | None = T0, policy: str = "planner") -> ScheduleSnapshot:
    steps = [
        GanttStep("J0001", "alice", "UV-Vis", "Measure", "scan", "active", ["UV_Spectrometer"],
                  T0 - 100, T0 - 40, "done"),
        GanttStep("J0002", "bob", "UV-Vis", "Measure", "scan", "active", ["UV_Spectrometer"],
                  T0 - 30, T0 + 60, "running"),
    ]  # fmt: skip
    return ScheduleSnapshot(steps=steps, stamp=stamp, policy=policy)


@pytest.fixture(scope="module")
def app() -> Iterator[QApplication]:
    application = QApplication.instance() or QApplication([])
    yield application
    application.processEvents()


def pump(app: QApplication, until: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if until():
            return True
        time.sleep(0.01)
    return until()


class FakeNode:
    def __init__(self) -> None:
        self.destroyed: list[Any] = []

    def destroy_subscription(self, subscription: Any) -> None:
        self.destroyed.append(subscription)


class FakeExecutor:
    def __init__(self) -> None:
        self.spins = 0

    def spin_once(self, timeout_sec: float | None = None) -> None:
        assert timeout_sec == 0.0  # must never block the GUI thread
        self.spins += 1


class RecordingSubscribe:
    """Stands in for ``subscribe_schedule``: keeps the callback so a test can 'publish'."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []
        self.callback: Callable[[ScheduleSnapshot], None] | None = None

    def __call__(self, node: Any, on_snapshot: Callable[[ScheduleSnapshot], None],
                 topic: str = SCHEDULE_TOPIC) -> str:  # fmt: skip
        self.calls.append((node, topic))
        self.callback = on_snapshot
        return f"subscription:{topic}"


def test_the_view_draws_snapshots_posted_from_another_thread(app: QApplication) -> None:
    view = ScheduleView(clock=lambda: T0 + 1000, refresh_ms=50)
    try:
        worker = threading.Thread(target=view.post_snapshot, args=(snapshot(),))
        worker.start()
        worker.join()
        assert pump(app, lambda: not view.gantt.model.is_empty)
        assert view.gantt.model.now == T0 + 1000  # wall-clock schedule: the now-line follows it
        assert {j.job_id for j in view.gantt.model.jobs} == {"J0001", "J0002"}
        assert "planner" in view.status.text() and "2 jobs" in view.status.text()
        # J0001 ended 1040 s before now; J0002 still runs (overrunning): only it is left.
        view.set_history_s(900.0)
        assert {b.step.job_id for b in view.gantt.model.bars} == {"J0002"}
        assert view.history_s == 900.0 and view.gantt.model.t_min == T0 + 100
    finally:
        view.stop()
        view.deleteLater()
        app.processEvents()


def test_a_virtual_clock_schedule_uses_its_own_stamp_as_now(app: QApplication) -> None:
    view = ScheduleView(clock=lambda: T0, refresh_ms=50)
    try:
        simulated = ScheduleSnapshot(steps=[], stamp=1234.0, policy="fcfs")
        view.show_snapshot(simulated)
        assert view.now() == 1234.0 and view.gantt.model.now == 1234.0
    finally:
        view.stop()
        view.deleteLater()
        app.processEvents()


def test_the_live_window_spins_from_a_timer_and_stops_cleanly(app: QApplication) -> None:
    node, executor, subscribe = FakeNode(), FakeExecutor(), RecordingSubscribe()
    window = LiveGanttWindow(node, executor, topic="/lab2/schedule", subscribe=subscribe)
    try:
        assert subscribe.calls == [(node, "/lab2/schedule")]
        window.show()
        assert pump(app, lambda: executor.spins >= 3)
        assert subscribe.callback is not None
        subscribe.callback(snapshot())  # what the subscription would deliver
        assert pump(app, lambda: not window.view.gantt.model.is_empty)
        window.close()
        assert node.destroyed == ["subscription:/lab2/schedule"]
        spins = executor.spins
        pump(app, lambda: False, timeout_s=0.2)
        assert executor.spins == spins  # no spinning after close
        window.stop()  # idempotent
        assert node.destroyed == ["subscription:/lab2/schedule"]
    finally:
        window.deleteLater()
        app.processEvents()


# -- rqt plugin ---------------------------------------------------------------------------------


class FakeContext(QObject):
    """The parts of qt_gui's PluginContext the plugin uses (+ rqt_gui_py's ``node``)."""

    def __init__(self, serial: int = 1) -> None:
        super().__init__()
        self.node = FakeNode()
        self.widgets: list[QWidget] = []
        self._serial = serial

    def serial_number(self) -> int:
        return self._serial

    def add_widget(self, widget: QWidget) -> None:
        self.widgets.append(widget)


class FakeSettings:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set_value(self, key: str, value: Any) -> None:
        self.values[key] = value

    def value(self, key: str, default_value: Any = None) -> Any:
        return self.values.get(key, default_value)


@pytest.fixture
def rqt_plugin_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, RecordingSubscribe]]:
    if importlib.util.find_spec("rqt_gui_py") is None:  # no rqt here: the documented base
        plugin_double = types.ModuleType("rqt_gui_py.plugin")

        class Plugin(QObject):
            def __init__(self, context: QObject) -> None:
                super().__init__(context)

        plugin_double.Plugin = Plugin  # type: ignore[attr-defined]
        package_double = types.ModuleType("rqt_gui_py")
        package_double.plugin = plugin_double  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "rqt_gui_py", package_double)
        monkeypatch.setitem(sys.modules, "rqt_gui_py.plugin", plugin_double)
    monkeypatch.delitem(sys.modules, "octopus_client.gantt.rqt_plugin", raising=False)
    module = importlib.import_module("octopus_client.gantt.rqt_plugin")
    subscribe = RecordingSubscribe()
    monkeypatch.setattr(module, "subscribe_schedule", subscribe)
    yield module, subscribe
    sys.modules.pop("octopus_client.gantt.rqt_plugin", None)


def test_the_rqt_plugin_adds_the_view_subscribes_and_keeps_its_settings(
    app: QApplication, rqt_plugin_module: tuple[Any, RecordingSubscribe]
) -> None:
    module, subscribe = rqt_plugin_module
    context = FakeContext(serial=2)
    plugin = module.GanttPlugin(context)
    try:
        assert context.widgets == [plugin.view]
        assert plugin.view.windowTitle() == "OCTOPUS schedule (2)"
        assert subscribe.calls == [(context.node, SCHEDULE_TOPIC)]
        assert subscribe.callback is not None
        subscribe.callback(snapshot())
        assert pump(app, lambda: not plugin.view.gantt.model.is_empty)

        plugin.view.set_history_s(3600.0)
        saved = FakeSettings()
        plugin.save_settings(FakeSettings(), saved)
        assert saved.values == {"topic": SCHEDULE_TOPIC, "history_s": "3600.0"}

        saved.values["topic"] = "/lab2/schedule"
        saved.values["history_s"] = ""
        plugin.restore_settings(FakeSettings(), saved)
        assert plugin.topic == "/lab2/schedule" and plugin.view.history_s is None
        assert context.node.destroyed == [f"subscription:{SCHEDULE_TOPIC}"]
        assert subscribe.calls[-1] == (context.node, "/lab2/schedule")

        plugin.shutdown_plugin()
        assert context.node.destroyed[-1] == "subscription:/lab2/schedule"
    finally:
        plugin.view.deleteLater()
        context.deleteLater()
        app.processEvents()


def test_plugin_xml_names_the_plugin_class() -> None:
    root = ET.parse(PACKAGE_DIR / "plugin.xml").getroot()
    (entry,) = root.findall("class")
    assert entry.get("base_class_type") == "rqt_gui_py::Plugin"
    module_path, _, class_name = entry.get("type", "").rpartition(".")
    source = PACKAGE_DIR / (module_path.replace(".", "/") + ".py")
    assert source.is_file()
    assert f"class {class_name}(Plugin)" in source.read_text()
    assert entry.find("qtgui/label") is not None


def test_run_live_with_real_rclpy_spins_until_the_window_closes(app: QApplication) -> None:
    pytest.importorskip("rclpy")
    from python_qt_binding.QtCore import QTimer

    from octopus_client.gantt import live

    subscribe = RecordingSubscribe()
    seen: dict[str, Any] = {}

    def close_when_drawn() -> None:
        windows = [w for w in app.topLevelWidgets() if isinstance(w, LiveGanttWindow)]
        if not windows:
            QTimer.singleShot(20, close_when_drawn)
            return
        window = windows[0]
        if subscribe.callback is not None and "fed" not in seen:
            subscribe.callback(snapshot())
            seen["fed"] = True
        if window.view.gantt.model.is_empty:
            QTimer.singleShot(20, close_when_drawn)
            return
        seen["jobs"] = {j.job_id for j in window.view.gantt.model.jobs}
        seen["node"] = subscribe.calls[0][0].get_name()  # a real rclpy node, alive meanwhile
        window.close()

    QTimer.singleShot(0, close_when_drawn)
    code = live.run_live("/gantt_live_test", subscribe=subscribe)
    assert code == 0
    assert seen["jobs"] == {"J0001", "J0002"}
    assert subscribe.calls[0][1] == "/gantt_live_test"
    assert seen["node"] == live.NODE_NAME
    with pytest.raises(Exception, match="destruction"):  # torn down when the window closed
        subscribe.calls[0][0].get_name()
