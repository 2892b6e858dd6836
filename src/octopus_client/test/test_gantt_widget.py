"""The Qt widget, rendered offscreen to an image: what it drew where."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Skipped, not broken, where PyQt5 is not installed yet (the ROS workspace venv).
pytest.importorskip("python_qt_binding.QtWidgets", reason="needs PyQt5 + python_qt_binding")

from python_qt_binding.QtCore import QEvent, QPoint  # noqa: E402
from python_qt_binding.QtGui import QColor, QHelpEvent, QImage  # noqa: E402
from python_qt_binding.QtWidgets import QApplication, QToolTip  # noqa: E402

from octopus_client.gantt.model import Bar, GanttModel, GanttStep, build_model  # noqa: E402
from octopus_client.gantt.palette import FAILED_COLOR, NOW_COLOR, job_color  # noqa: E402
from octopus_client.gantt.widget import GanttWidget  # noqa: E402

MODULES = {"BatchSynthesis": ["Batch_Pump", "Stirrer"], "UV-Vis": ["UV_Spectrometer"]}
NOW = 230.0


def _step(job: str, owner: str, module: str, name: str, mode: str, devices: list[str],
          start: float, end: float, state: str, reason: str = "") -> GanttStep:  # fmt: skip
    task = "Measure" if module == "UV-Vis" else "Synthesis"
    return GanttStep(job, owner, module, task, name, mode, devices, start, end, state, reason)


SCHEDULE = [
    _step("J0001", "alice", "BatchSynthesis", "dose", "active", ["Batch_Pump"], 0, 100, "done"),
    _step("J0001", "alice", "BatchSynthesis", "react", "standby", [], 100, 400, "running"),
    _step("J0002", "bob", "BatchSynthesis", "react", "standby", [], 150, 300, "planned"),
    _step("J0003", "carol", "UV-Vis", "scan", "active", ["UV_Spectrometer"], 200, 260, "running"),
    _step(
        "J0003",
        "carol",
        "UV-Vis",
        "scan2",
        "active",
        ["UV_Spectrometer"],
        300,
        380,
        "planned",
        "devices UV_Spectrometer held by J0003.s1",
    ),  # fmt: skip
    _step(
        "J0004",
        "dan",
        "UV-Vis",
        "scan",
        "active",
        ["UV_Spectrometer"],
        110,
        180,
        "failed",
        "timeout",
    ),  # fmt: skip
]


@pytest.fixture(scope="module")
def app() -> Iterator[QApplication]:
    existing = QApplication.instance()
    application = existing or QApplication([])
    yield application
    application.processEvents()


@pytest.fixture
def widget(app: QApplication) -> Iterator[GanttWidget]:
    gantt = GanttWidget()
    gantt.set_model(build_model(SCHEDULE, now=NOW, module_devices=MODULES))
    gantt.resize(1000, gantt.preferred_height())
    yield gantt
    gantt.close()
    gantt.deleteLater()
    app.processEvents()


def render(widget: GanttWidget) -> QImage:
    return widget.grab().toImage()


def colour(image: QImage, x: int, y: int) -> str:
    return QColor(image.pixel(x, y)).name()


def find_bar(model: GanttModel, job: str, name: str, fill: str) -> Bar:
    return next(
        b
        for b in model.bars
        if b.step.job_id == job and b.step.step_name == name and b.fill == fill
    )


def test_an_executed_bar_is_filled_with_its_jobs_colour_at_its_row_and_time(
    widget: GanttWidget,
) -> None:
    image = render(widget)
    bar = find_bar(widget.model, "J0001", "dose", "filled")
    pump_row = widget.row_rect(0)
    assert widget.model.rows[0].device == "Batch_Pump"
    # Middle of the step's time span, middle of the Batch_Pump row.
    x = widget.x_of((bar.start + bar.end) / 2)
    y = pump_row.center().y()
    assert colour(image, x, y) == job_color("J0001")
    # The same row after the step ended is empty.
    assert colour(image, widget.x_of(150), y) != job_color("J0001")


def test_a_planned_bar_is_hollow_with_a_border_in_its_jobs_colour(widget: GanttWidget) -> None:
    image = render(widget)
    rect = widget.bar_rect(find_bar(widget.model, "J0003", "scan2", "hollow"))
    centre = QColor(image.pixel(rect.center()))
    border = colour(image, rect.center().x(), rect.top())
    assert border == job_color("J0003")
    assert centre.name() != job_color("J0003")
    assert centre.lightness() > QColor(job_color("J0003")).lightness() + 60  # pale inside


def test_a_running_bar_is_filled_before_now_and_hollow_after(widget: GanttWidget) -> None:
    image = render(widget)
    y = widget.bar_rect(find_bar(widget.model, "J0003", "scan", "filled")).center().y()
    colour_j3 = job_color("J0003")
    assert colour(image, widget.x_of(215), y) == colour_j3
    assert colour(image, widget.x_of(250), y) != colour_j3
    assert QColor(image.pixel(widget.x_of(250), y)).lightness() > 200


def test_the_now_line_is_drawn_at_now(widget: GanttWidget) -> None:
    image = render(widget)
    stirrer = widget.row_rect(1)  # an idle row: nothing but the now-line crosses it
    assert widget.model.rows[1].device == "Stirrer"
    x = widget.x_of(NOW)
    assert colour(image, x, stirrer.center().y()) == NOW_COLOR
    assert colour(image, x - 20, stirrer.center().y()) != NOW_COLOR
    assert colour(image, x + 20, stirrer.center().y()) != NOW_COLOR


def test_standby_work_is_thin_and_hatched_on_the_modules_standby_row(
    widget: GanttWidget,
) -> None:
    image = render(widget)
    standby_bar = find_bar(widget.model, "J0001", "react", "filled")
    assert widget.model.rows[standby_bar.row].is_standby
    rect = widget.bar_rect(standby_bar)
    active = widget.bar_rect(find_bar(widget.model, "J0001", "dose", "filled"))
    assert rect.height() < active.height()
    inner = rect.adjusted(2, 2, -2, -2)
    pixels = [
        colour(image, x, y)
        for x in range(inner.left(), inner.right() + 1)
        for y in range(inner.top(), inner.bottom() + 1)
        if x != widget.x_of(NOW) and abs(x - widget.x_of(NOW)) > 1
    ]
    share = pixels.count(job_color("J0001")) / len(pixels)
    assert 0.05 < share < 0.7  # hatched: partly the job's colour, partly background


def test_a_failed_step_is_framed_in_the_failure_colour(widget: GanttWidget) -> None:
    image = render(widget)
    rect = widget.bar_rect(find_bar(widget.model, "J0004", "scan", "filled"))
    assert colour(image, rect.center().x(), rect.top()) == FAILED_COLOR
    assert colour(image, rect.center().x(), rect.center().y()) == job_color("J0004")


def test_hovering_a_bar_gives_its_details_and_empty_space_gives_none(
    widget: GanttWidget,
) -> None:
    rect = widget.bar_rect(find_bar(widget.model, "J0003", "scan2", "hollow"))
    text = widget.tooltip_at(rect.center().x(), rect.center().y())
    assert text is not None
    for part in ("J0003", "carol", "UV-Vis / Measure", "scan2", "held by J0003.s1"):
        assert part in text
    assert widget.tooltip_at(widget.x_of(50), widget.row_rect(1).center().y()) is None


def test_the_tooltip_event_is_handled(widget: GanttWidget, app: QApplication) -> None:
    widget.show()
    rect = widget.bar_rect(find_bar(widget.model, "J0001", "dose", "filled"))
    pos = rect.center()
    event = QHelpEvent(QEvent.ToolTip, pos, widget.mapToGlobal(pos))
    assert widget.event(event) is True
    assert "J0001" in QToolTip.text()
    QToolTip.hideText()
    empty = QPoint(widget.x_of(50), widget.row_rect(1).center().y())
    assert widget.event(QHelpEvent(QEvent.ToolTip, empty, widget.mapToGlobal(empty))) is True
    app.processEvents()


def test_a_new_model_replaces_the_drawing(widget: GanttWidget) -> None:
    later = [_step("J0002", "bob", "UV-Vis", "scan", "active", ["UV_Spectrometer"], 0, 100, "done")]
    widget.set_model(build_model(later, now=50.0))
    image = render(widget)
    assert widget.model.rows[0].device == "UV_Spectrometer"
    assert colour(image, widget.x_of(25), widget.row_rect(0).center().y()) == job_color("J0002")


def test_an_empty_widget_says_so_and_paints(app: QApplication) -> None:
    gantt = GanttWidget()
    gantt.resize(400, 200)
    image = render(gantt)
    assert image.width() == 400
    colours = {colour(image, x, 100) for x in range(0, 400, 2)}
    assert len(colours) > 1  # the text is drawn
    gantt.deleteLater()
    app.processEvents()


def test_back_to_back_steps_of_one_job_stay_apart(app: QApplication) -> None:
    steps = [
        _step("J0005", "eve", "UV-Vis", f"scan{i}", "active", ["UV_Spectrometer"],
              i * 100.0, (i + 1) * 100.0, "done")
        for i in range(2)
    ]  # fmt: skip
    gantt = GanttWidget()
    gantt.set_model(build_model(steps))
    gantt.resize(800, gantt.preferred_height())
    try:
        image = render(gantt)
        y = gantt.row_rect(0).center().y()
        second = gantt.bar_rect(gantt.model.bars[1])
        edge = QColor(image.pixel(second.left(), y))
        inside = QColor(image.pixel(second.left() + 10, y))
        assert inside.name() == job_color("J0005")
        assert edge.lightness() < inside.lightness()  # a darker seam between the two steps
    finally:
        gantt.deleteLater()
        app.processEvents()


def test_the_legend_wraps_and_the_widget_grows_to_show_it(app: QApplication) -> None:
    steps = [
        _step(f"J{n:04d}", f"user{n}", "UV-Vis", "scan", "active", ["UV_Spectrometer"],
              n * 10.0, n * 10.0 + 5, "done")
        for n in range(1, 12)
    ]  # fmt: skip
    gantt = GanttWidget()
    gantt.set_model(build_model(steps))
    try:
        gantt.show()  # resize events reach visible widgets
        gantt.resize(1600, 300)
        app.processEvents()
        wide = gantt.preferred_height()
        gantt.resize(500, 300)
        app.processEvents()
        narrow = gantt.preferred_height()
        assert narrow > wide
        assert gantt.minimumHeight() == narrow  # kept in step on resize
        gantt.resize(500, narrow)
        image = render(gantt)
        last = gantt.model.jobs[-1]
        swatches = {
            colour(image, x, y) for x in range(0, 500, 2) for y in range(narrow - 22, narrow)
        }
        assert last.color in swatches  # the 11th job's swatch is drawn on a wrapped line
    finally:
        gantt.close()
        gantt.deleteLater()
        app.processEvents()
