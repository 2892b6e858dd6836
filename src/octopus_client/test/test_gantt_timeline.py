"""Step records from the scheduler core's plan and the simulator's timeline."""

from __future__ import annotations

import pytest

from octopus_client.gantt.model import build_model
from octopus_client.gantt.timeline import (
    module_devices_of_lab,
    steps_from_plan,
    steps_from_records,
    steps_from_sim_report,
)
from octopus_scheduler.core.projection import Placement


def test_placements_become_running_and_planned_steps() -> None:
    plan = [
        Placement(
            "J0001.s0",
            "J0001",
            "BatchSynthesis",
            "Synthesis",
            "dose",
            "active",
            ("Batch_Pump",),
            0.0,
            60.0,
            "running",
            "running",
        ),  # fmt: skip
        Placement(
            "J0002.s0",
            "J0002",
            "BatchSynthesis",
            "Synthesis",
            "react",
            "standby",
            (),
            60.0,
            660.0,
            "planned",
            "predecessor J0002.s-1",
        ),  # fmt: skip
    ]
    steps = steps_from_plan(plan, jobs={"J0001": "alice"})
    first, second = steps
    assert (first.state, first.mode, first.devices, first.owner) == (
        "running",
        "active",
        ("Batch_Pump",),
        "alice",
    )
    assert (second.state, second.mode, second.step_name, second.reason) == (
        "planned",
        "standby",
        "react",
        "predecessor J0002.s-1",
    )
    assert second.owner == ""  # not given


def test_timeline_rows_with_job_rows_give_owners_names_and_outcomes() -> None:
    report = {
        "timeline": [
            {
                "step_id": "J0001.a",
                "job_id": "J0001",
                "module": "UV-Vis",
                "task": "Measure",
                "step": "scan",
                "kind": "active",
                "devices": ["UV_Spectrometer"],
                "samples": 1,
                "start": 10.0,
                "end": 70.0,
                "state": "done",
            },
            {
                "step_id": "J0001.b",
                "job_id": "J0001",
                "module": "UV-Vis",
                "task": "Measure",
                "step": "scan",
                "kind": "active",
                "devices": ["UV_Spectrometer"],
                "samples": 1,
                "start": 70.0,
                "end": 75.0,
                "state": "aborted",
            },
            {
                "step_id": "J0002.a",
                "job_id": "J0002",
                "module": "UV-Vis",
                "task": "Measure",
                "step": "scan",
                "kind": "active",
                "devices": ["UV_Spectrometer"],
                "samples": 1,
                "start": 80.0,
                "end": None,
                "state": "running",
            },
        ],  # fmt: skip
        "jobs": [
            {"job_id": "J0001", "name": "AgNP sweep", "owner": "alice"},
            {"job_id": "J0002", "name": "BO", "owner": "bob"},
        ],
    }
    steps = steps_from_sim_report(report)
    assert [(s.job_id, s.state, s.end) for s in steps] == [
        ("J0001", "done", 70.0),
        ("J0001", "failed", 75.0),
        ("J0002", "running", 80.0),
    ]
    assert steps[1].reason == "aborted"
    assert (steps[0].owner, steps[0].job_name) == ("alice", "AgNP sweep")
    still = steps_from_records(report["timeline"][2:], now=95.0)
    assert still[0].end == 95.0


def test_a_record_without_a_required_field_or_with_an_odd_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="no field 'module'"):
        steps_from_records([{"job_id": "J1", "start": 0.0, "end": 1.0}])
    with pytest.raises(ValueError, match="unknown state 'weird'"):
        steps_from_records(
            [
                {
                    "job_id": "J1",
                    "module": "M",
                    "task": "T",
                    "step": "s",
                    "start": 0,
                    "end": 1,
                    "state": "weird",
                }
            ]  # fmt: skip
        )


def test_a_real_simulation_renders_as_a_model() -> None:
    # Runs where the scheduler package is importable (the workspace); skipped in a bare venv.
    scenario_module = pytest.importorskip("octopus_scheduler.twin.scenario")
    simulator = pytest.importorskip("octopus_scheduler.twin.simulator")
    scenario = scenario_module.load_scenario("fig5d-parallelisation")
    report = simulator.simulate(scenario, policy="planner")
    steps = steps_from_sim_report(report.to_dict())
    assert steps and all(s.state in ("done", "failed") for s in steps)
    modules = module_devices_of_lab(scenario.lab)
    model = build_model(steps, module_devices=modules)
    device_rows = {r.device for r in model.rows if not r.is_standby}
    assert {d for s in steps for d in s.devices} <= device_rows
    assert {j.job_id for j in model.jobs} == {j["job_id"] for j in report.to_dict()["jobs"]}
