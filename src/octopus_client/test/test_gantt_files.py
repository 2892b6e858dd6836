"""``octopus gantt --out``: the current schedule (captured) or a simulation, written to a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from octopus_modules.description import load_builtin_description
from octopus_scheduler.service.lab_from_modules import lab_from_modules

pytest.importorskip("matplotlib", reason="the file export needs matplotlib")

from octopus_client.gantt.files import (
    ScheduleUnavailable,
    export_current_schedule,
    export_simulation,
)
from octopus_client.gantt.messages import ScheduleSnapshot
from octopus_client.gantt.model import GanttStep

T0 = 1_760_000_000.0


def capture_returning(snapshot: ScheduleSnapshot | None):  # noqa: ANN201 - a test double
    calls: list[tuple[str, float]] = []

    def capture(topic: str, timeout_s: float) -> ScheduleSnapshot | None:
        calls.append((topic, timeout_s))
        return snapshot

    capture.calls = calls  # type: ignore[attr-defined]
    return capture


def test_the_current_schedule_is_written_with_a_title_naming_the_policy(tmp_path: Path) -> None:
    step = GanttStep("J0001", "alice", "UV-Vis", "Measure", "scan", "active",
                     ["UV_Spectrometer"], T0, T0 + 60, "running")  # fmt: skip
    capture = capture_returning(ScheduleSnapshot([step], stamp=T0 + 5, policy="planner"))
    path = export_current_schedule(
        tmp_path / "now.svg", topic="/lab/schedule", timeout_s=2.0, capture=capture,
        clock=lambda: T0 + 30,
    )  # fmt: skip
    text = path.read_text()
    assert capture.calls == [("/lab/schedule", 2.0)]  # type: ignore[attr-defined]
    assert "(planner)" in text and "UV_Spectrometer" in text and "J0001 (alice)" in text


def test_no_schedule_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScheduleUnavailable, match="no schedule on /octopus/schedule within 0.5 s"):
        export_current_schedule(tmp_path / "x.png", timeout_s=0.5, capture=capture_returning(None))
    assert not (tmp_path / "x.png").exists()


def test_a_simulation_is_written_with_the_labs_rows(tmp_path: Path) -> None:
    report = {
        "scenario": "tiny",
        "policy": "fcfs",
        "timeline": [
            {
                "step_id": "J1.s0",
                "job_id": "J1",
                "module": "UV-Vis",
                "task": "Measure",
                "step": "scan",
                "kind": "active",
                "devices": ["UV_Spectrometer"],
                "start": 0.0,
                "end": 60.0,
                "state": "done",
            },
        ],  # fmt: skip
        "jobs": [{"job_id": "J1", "owner": "alice", "name": "sweep"}],
    }
    lab = lab_from_modules([load_builtin_description(m) for m in ("batch_synthesis", "uv_vis")])
    text = export_simulation(report, tmp_path / "sim.svg", lab=lab).read_text()
    assert "tiny: policy fcfs" in text
    assert "UV_Pipette" in text and "Batch_Stirrer" in text  # idle devices still get their rows
    png = export_simulation(report, tmp_path / "sim.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
