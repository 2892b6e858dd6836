"""The matplotlib export: the same schedule drawn to PNG (pixels checked) and SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the file export needs matplotlib")

from matplotlib.image import imread

from octopus_client.gantt.export import export_gantt, export_schedule, render_figure, save_figure
from octopus_client.gantt.geometry import RowGeometry
from octopus_client.gantt.model import GanttModel, GanttStep, build_model
from octopus_client.gantt.palette import FAILED_COLOR, NOW_COLOR, hex_to_rgb, job_color

MODULES = {"BatchSynthesis": ["Batch_Pump", "Stirrer"], "UV-Vis": ["UV_Spectrometer"]}
NOW = 230.0
S = GanttStep
SCHEDULE = [
    S("J0001", "alice", "BatchSynthesis", "Syn", "dose", "active", ["Batch_Pump"], 0, 100, "done"),
    S("J0001", "alice", "BatchSynthesis", "Syn", "react", "standby", [], 100, 400, "running"),
    S(
        "J0003",
        "carol",
        "UV-Vis",
        "Measure",
        "scan",
        "active",
        ["UV_Spectrometer"],
        300,
        380,
        "planned",
    ),  # fmt: skip
    S(
        "J0004",
        "dan",
        "UV-Vis",
        "Measure",
        "scan",
        "active",
        ["UV_Spectrometer"],
        110,
        180,
        "failed",
        "timeout",
    ),  # fmt: skip
]


@pytest.fixture
def model() -> GanttModel:
    return build_model(SCHEDULE, now=NOW, module_devices=MODULES)


class Picture:
    """A saved PNG and the figure that made it, to look up data positions in pixels."""

    def __init__(self, model: GanttModel, path: Path) -> None:
        self.model = model
        self.figure = render_figure(model, title="test")
        save_figure(self.figure, path)
        self.pixels = (imread(path)[:, :, :3] * 255).round().astype(int)
        self.axes = self.figure.axes[0]
        self.geometry = RowGeometry.of(model)

    def at(self, t: float, y_units: float) -> tuple[int, int, int]:
        x, y = self.axes.transData.transform((t, y_units))
        row = self.pixels.shape[0] - int(round(y))
        return tuple(self.pixels[row, int(round(x))])  # type: ignore[return-value]

    def row_centre(self, row: int) -> float:
        return self.geometry.tops[row] + self.geometry.heights[row] / 2


def close_to(rgb: tuple[int, int, int], color: str, tolerance: int = 3) -> bool:
    return bool(np.all(np.abs(np.array(rgb) - np.array(hex_to_rgb(color))) <= tolerance))


def test_a_done_step_is_filled_with_its_jobs_colour(model: GanttModel, tmp_path: Path) -> None:
    picture = Picture(model, tmp_path / "gantt.png")
    pump = picture.row_centre(0)
    assert close_to(picture.at(50, pump), job_color("J0001"))
    assert not close_to(picture.at(150, pump), job_color("J0001"))


def test_a_planned_step_is_hollow_and_pale(model: GanttModel, tmp_path: Path) -> None:
    picture = Picture(model, tmp_path / "gantt.png")
    spectrometer = picture.row_centre(3)
    inside = np.array(picture.at(340, spectrometer))
    assert not close_to(tuple(inside), job_color("J0003"), tolerance=30)
    assert inside.min() > 200  # pale tint inside the outline


def test_the_now_line_and_a_failed_frame(model: GanttModel, tmp_path: Path) -> None:
    picture = Picture(model, tmp_path / "gantt.png")
    stirrer = picture.row_centre(1)
    assert close_to(picture.at(NOW, stirrer), NOW_COLOR, tolerance=25)
    assert not close_to(picture.at(NOW - 20, stirrer), NOW_COLOR, tolerance=25)
    bar = next(b for b in model.bars if b.step.job_id == "J0004")
    top, _ = picture.geometry.bar_span(model, bar)
    assert close_to(picture.at(145, top + 0.02), FAILED_COLOR, tolerance=40)
    assert close_to(picture.at(145, picture.row_centre(3)), job_color("J0004"))


def test_standby_is_hatched_on_its_own_row(model: GanttModel, tmp_path: Path) -> None:
    picture = Picture(model, tmp_path / "gantt.png")
    assert model.rows[2].is_standby
    bar = next(b for b in model.bars if b.step.step_name == "react" and b.fill == "filled")
    top, height = picture.geometry.bar_span(model, bar)
    samples = [
        picture.at(t, top + height * f)
        for t in np.linspace(bar.start + 10, bar.end - 10, 40)
        for f in (0.3, 0.5, 0.7)
    ]
    share = sum(close_to(s, job_color("J0001"), tolerance=60) for s in samples) / len(samples)
    assert 0.05 < share < 0.8


def test_svg_keeps_labels_as_text(model: GanttModel, tmp_path: Path) -> None:
    path = export_gantt(model, tmp_path / "out" / "gantt.svg", title="Demo day")
    text = path.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for label in ("Demo day", "J0001 (alice)", "UV_Spectrometer", "BatchSynthesis", "now"):
        assert label in text


def test_export_schedule_from_records_and_suffix_check(tmp_path: Path) -> None:
    path = export_schedule(SCHEDULE, tmp_path / "g.png", now=NOW, module_devices=MODULES)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"\.png"):
        export_schedule(SCHEDULE, tmp_path / "g.jpg")


def test_an_empty_schedule_exports(tmp_path: Path) -> None:
    path = export_gantt(build_model([], now=0.0), tmp_path / "empty.png")
    assert path.stat().st_size > 0
