"""The ROS-free Gantt model: rows, lanes, bar pieces, colours, time axis, hover text."""

from __future__ import annotations

import pytest

from octopus_client.gantt.geometry import RowGeometry
from octopus_client.gantt.hover import describe_step
from octopus_client.gantt.model import GanttStep, build_model
from octopus_client.gantt.palette import JOB_PALETTE, NOW_COLOR, job_color
from octopus_client.gantt.timeaxis import format_time, tick_times


def step(
    job: str,
    start: float,
    end: float,
    *,
    module: str = "BatchSynthesis",
    devices: tuple[str, ...] = ("Batch_Pump",),
    mode: str = "active",
    state: str = "done",
    name: str = "dose",
) -> GanttStep:
    return GanttStep(job, "alice", module, "Synthesis", name, mode, devices, start, end, state)


def test_rows_follow_the_given_modules_then_devices_only_seen_in_steps() -> None:
    steps = [
        step("J0001", 0, 10, module="UV-Vis", devices=("UV_Spectrometer", "Robot_Arm")),
        step("J0001", 10, 20, devices=("Batch_Pump",)),
    ]
    model = build_model(steps, module_devices={"BatchSynthesis": ["Stirrer", "Batch_Pump"]})
    labels = [(r.module, r.device) for r in model.rows]
    assert labels == [
        ("BatchSynthesis", "Stirrer"),
        ("BatchSynthesis", "Batch_Pump"),
        ("UV-Vis", "Robot_Arm"),
        ("UV-Vis", "UV_Spectrometer"),
    ]
    assert model.module_groups() == [("BatchSynthesis", 0, 2), ("UV-Vis", 2, 4)]


def test_a_device_of_another_module_stays_in_its_own_modules_group() -> None:
    # The UV-Vis step borrows the synthesis module's pump: the bar goes on that pump's row.
    steps = [step("J0001", 0, 10, module="UV-Vis", devices=("Batch_Pump",))]
    model = build_model(steps, module_devices={"BatchSynthesis": ["Batch_Pump"], "UV-Vis": []})
    (bar,) = model.bars
    assert model.rows[bar.row] == model.rows[0]
    assert model.rows[0].module == "BatchSynthesis"


def test_an_active_step_on_two_devices_is_drawn_on_both_rows() -> None:
    model = build_model([step("J0001", 0, 10, devices=("Batch_Pump", "Stirrer"))])
    assert sorted(model.rows[b.row].device for b in model.bars) == ["Batch_Pump", "Stirrer"]


def test_standby_steps_get_a_module_row_with_a_lane_per_overlap() -> None:
    steps = [
        step("J0001", 0, 100, mode="standby", devices=()),
        step("J0002", 50, 150, mode="standby", devices=()),
        step("J0003", 60, 70, mode="standby", devices=()),
        step("J0004", 100, 120, mode="standby", devices=()),  # J0001's lane is free again
        step("J0005", 0, 10, module="UV-Vis", devices=("UV_Spectrometer",)),
    ]
    model = build_model(steps)
    standby_rows = [r for r in model.rows if r.is_standby]
    assert [(r.module, r.lanes) for r in standby_rows] == [("BatchSynthesis", 3)]
    lanes = {b.step.job_id: b.lane for b in model.bars if model.rows[b.row].is_standby}
    assert lanes == {"J0001": 0, "J0002": 1, "J0003": 2, "J0004": 0}
    geometry = RowGeometry.of(model)
    standby_index = model.rows.index(standby_rows[0])
    assert geometry.heights[standby_index] > 1.0  # three lanes need more than a device row
    spans = [geometry.bar_span(model, b) for b in model.bars]
    assert len({top for top, _ in spans}) >= 3


def test_a_running_step_is_filled_up_to_now_and_hollow_after() -> None:
    model = build_model([step("J0001", 100, 200, state="running")], now=130)
    pieces = sorted((b.start, b.end, b.fill) for b in model.bars)
    assert pieces == [(100, 130, "filled"), (130, 200, "hollow")]


def test_an_overrunning_step_grows_to_now() -> None:
    model = build_model([step("J0001", 100, 200, state="running")], now=260)
    assert [(b.start, b.end, b.fill) for b in model.bars] == [(100, 260, "filled")]
    assert model.t_max == 260
    assert "Overrunning by" in describe_step(model.bars[0].step, model.now)


def test_planned_is_hollow_and_ended_is_filled() -> None:
    model = build_model(
        [step("J0001", 0, 10, state="done"), step("J0002", 10, 20, state="failed"),
         step("J0003", 20, 30, state="planned")],
        now=15,
    )  # fmt: skip
    assert {b.step.job_id: b.fill for b in model.bars} == {
        "J0001": "filled",
        "J0002": "filled",
        "J0003": "hollow",
    }
    assert (model.t_min, model.t_max) == (0, 30)


def test_the_time_window_crops_and_clips_bars() -> None:
    steps = [step("J0001", 0, 50), step("J0002", 60, 120), step("J0003", 200, 300)]
    model = build_model(steps, now=100, t_from=70, t_to=250)
    assert sorted((b.step.job_id, b.start, b.end) for b in model.bars) == [
        ("J0002", 70, 120),
        ("J0003", 200, 250),
    ]
    assert (model.t_min, model.t_max) == (70, 250)


def test_steps_are_validated() -> None:
    with pytest.raises(ValueError, match="mode"):
        step("J0001", 0, 1, mode="busy")
    with pytest.raises(ValueError, match="state"):
        step("J0001", 0, 1, state="succeeded")
    with pytest.raises(ValueError, match="ends before"):
        step("J0001", 5, 1)


def test_job_colours_are_stable_and_twelve_consecutive_jobs_differ() -> None:
    ids = [f"J{n:04d}" for n in range(7, 19)]
    colours = [job_color(i) for i in ids]
    assert len(set(colours)) == len(JOB_PALETTE) == 12
    assert colours == [job_color(i) for i in ids]
    assert job_color("campaign-x") == job_color("campaign-x") in JOB_PALETTE
    assert NOW_COLOR not in JOB_PALETTE


def test_the_legend_lists_each_job_once_with_its_owner() -> None:
    steps = [
        GanttStep("J0002", "bob", "M", "T", "s", "active", ["D"], 0, 1, "done", job_name="AgNP"),
        GanttStep("J0002", "bob", "M", "T", "s2", "active", ["D"], 1, 2, "done", job_name="AgNP"),
        GanttStep("J0001", "alice", "M", "T", "s", "active", ["D"], 2, 3, "planned"),
    ]
    legend = build_model(steps).jobs
    assert [(e.job_id, e.label) for e in legend] == [
        ("J0001", "J0001 (alice)"),
        ("J0002", "J0002 AgNP (bob)"),
    ]
    assert legend[0].color == job_color("J0001")


def test_hover_text_names_job_task_step_devices_and_reason() -> None:
    planned = GanttStep(
        "J0003", "carol", "UV-Vis", "Measure", "scan", "active", ["UV_Spectrometer"],
        3600, 3660, "planned", "devices UV_Spectrometer held by J0002.s4 until 3600",
        step_id="J0003.e1.t2.s0", experiment_id="e1",
    )  # fmt: skip
    text = describe_step(planned)
    expected = ["J0003", "carol", "UV-Vis / Measure", "scan (active)", "UV_Spectrometer"]
    expected += ["1:00:00 - 1:01:00", "1.0 min", "held by J0002.s4", "J0003.e1.t2.s0"]
    for part in expected:
        assert part in text
    standby = GanttStep("J0001", "a", "M", "T", "react", "standby", [], 0, 5, "running")
    assert "none (holds slots)" in describe_step(standby)


def test_ticks_are_round_and_inside_the_range() -> None:
    ticks = tick_times(37.0, 1337.0, max_ticks=8)
    assert 2 <= len(ticks) <= 8
    assert all(37.0 <= t <= 1337.0 for t in ticks)
    steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() % 60 == 0
    assert format_time(3725) == "1:02:05"
    assert format_time(1.7e9).count(":") == 2  # wall clock: HH:MM:SS


def test_an_empty_schedule_still_has_a_time_range() -> None:
    model = build_model([], now=1000.0)
    assert model.is_empty and model.rows == ()
    assert model.t_min == 1000.0 < model.t_max


def test_the_legend_orders_numbered_jobs_naturally() -> None:
    steps = [step(job, 0, 1) for job in ("10", "2", "J10", "J2", "0")]
    assert [e.job_id for e in build_model(steps).jobs] == ["0", "2", "10", "J2", "J10"]
