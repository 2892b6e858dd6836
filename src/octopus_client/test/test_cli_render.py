"""What the commands print, from real messages (no DDS): tables, progress, results, watch frames."""

from __future__ import annotations

import csv
import io
import json
import time

from builtin_interfaces.msg import Time

from octopus_client.cli import build_parser
from octopus_client.commands.results import to_csv, to_json, to_text
from octopus_client.commands.text import clock_time, job_row, jobs_table, progress_bar, table
from octopus_client.commands.watch import LiveState, render
from octopus_interfaces.msg import (
    ConsumableState,
    DeviceState,
    EmergencyStop,
    Job,
    ModuleResources,
    ModuleStatus,
    ResourceState,
    Schedule,
    SlotState,
    TaskStep,
)

NOW = time.mktime((2026, 3, 2, 10, 0, 0, 0, 0, -1))


def _t(epoch: float) -> Time:
    return Time(sec=int(epoch), nanosec=0)


def test_table_aligns_columns_under_a_rule() -> None:
    text = table(("A", "LONGER"), [["xyz", "1"], ["x", "22"]])
    assert text.splitlines() == ["A    LONGER", "---  ------", "xyz  1", "x    22"]


def test_progress_bar_is_clamped_and_proportional() -> None:
    assert progress_bar(0.5, width=10) == "[#####.....]  50%"
    assert progress_bar(1.7, width=4) == "[####] 100%"
    assert progress_bar(-1, width=4) == "[....]   0%"


def test_job_rows_show_the_estimate_or_the_end_in_local_time() -> None:
    running = Job(id="J0002", owner="bob", name="rods", state=Job.STATE_RUNNING, progress=0.25)
    running.experiments_done, running.experiments_total = 1, 4
    running.estimated_finish = _t(NOW + 3600)
    ended = Job(id="J0001", owner="alice", name="seeds", state=Job.STATE_SUCCEEDED, progress=1.0)
    ended.experiments_done, ended.experiments_total, ended.finished = 2, 2, _t(NOW - 60)
    unknown = Job(id="J0003", owner="carol", name="x", state=Job.STATE_QUEUED)
    unknown.message = "device UV_Spectrometer out of order: " + "lamp failed " * 10
    assert job_row(running, NOW) == [
        "J0002", "bob", "rods", "running", "25%", "1/4", "~11:00:00", ""
    ]  # fmt: skip
    assert job_row(ended, NOW)[3:] == ["succeeded", "100%", "2/2", "09:59:00", ""]
    assert job_row(unknown, NOW)[-2] == "-"
    note = job_row(unknown, NOW)[-1]  # what it waits for, cut to fit a terminal
    assert note.startswith("device UV_Spectrometer out of order: lamp") and len(note) == 60
    assert clock_time(NOW + 86400 * 2, NOW) == "2026-03-04 10:00"
    assert jobs_table([], NOW) == "no jobs"
    assert jobs_table([running, ended], NOW).splitlines()[0].split() == [
        "ID", "OWNER", "NAME", "STATE", "PROGRESS", "EXPERIMENTS", "FINISH", "NOTE"
    ]  # fmt: skip


EXPERIMENTS = [
    {
        "experiment": "J0001/g0s0",
        "parameters": {"React.Time": 1800.0},
        "measured": {"UV-Vis": {"peak_nm": 520.5, "spectrum": [0.1, 0.2]}},
        "derived": {"loss": 0.25},
    },
    {"experiment": "J0001/g0s1", "parameters": {"React.Time": 600.0}, "measured": {}},
]


def test_results_csv_flattens_scalars_and_keeps_arrays_in_one_cell() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv("J0001", EXPERIMENTS))))
    assert list(rows[0]) == [
        "job_id", "experiment_id", "param.React.Time", "measured.UV-Vis.peak_nm",
        "measured.UV-Vis.spectrum", "derived.loss",
    ]  # fmt: skip
    assert rows[0]["measured.UV-Vis.peak_nm"] == "520.5"
    assert json.loads(rows[0]["measured.UV-Vis.spectrum"]) == [0.1, 0.2]
    assert rows[1]["derived.loss"] == "" and rows[1]["param.React.Time"] == "600.0"


def test_results_json_and_text_carry_the_job() -> None:
    job = Job(id="J0001", owner="alice", name="seeds", state=Job.STATE_SUCCEEDED)
    data = json.loads(to_json(job, EXPERIMENTS))
    assert data["state"] == "succeeded" and data["experiments"] == EXPERIMENTS
    text = to_text(job, EXPERIMENTS)
    assert "React.Time=1800" in text and "loss=0.25" in text
    assert "no experiment results yet" in to_text(job, [])


def test_watch_frame_shows_running_steps_per_module_next_steps_jobs_and_the_estop() -> None:
    react = TaskStep(job_id="J0002", experiment_id="g0c0", module="BatchSynthesis", task="React",
                     step_name="react", mode=TaskStep.MODE_STANDBY, state=TaskStep.STATE_RUNNING,
                     actual_start=_t(NOW - 60), planned_end=_t(NOW + 600))  # fmt: skip
    later = TaskStep(job_id="J0002", module="UV-Vis", task="GetAbs", step_name="measure",
                     state=TaskStep.STATE_PLANNED, planned_start=_t(NOW + 700))  # fmt: skip
    schedule = Schedule(policy="planner", steps=[react, later])
    schedule.header.stamp = _t(NOW)
    schedule.jobs = [Job(id="J0002", owner="bob", name="rods", state=Job.STATE_RUNNING)]
    state = LiveState()
    state.on_schedule(schedule)
    state.on_job(Job(id="J0003", owner="carol", name="new", state=Job.STATE_QUEUED))
    frame = render(state, "/octopus")
    assert "schedule of 10:00:00, policy planner" in frame
    assert "BatchSynthesis: J0002 g0c0 React/react (standby), since 09:59:00" in frame
    assert "UV-Vis: idle" in frame
    assert "~10:11:40 UV-Vis: J0002 GetAbs/measure" in frame
    jobs = frame.split("\nJobs\n", 1)[1]
    assert jobs.index("J0003") < jobs.index("J0002")  # newest first
    assert "EMERGENCY" not in frame
    assert "Modules" not in frame  # no module heard from yet
    busy = ModuleStatus(module="BatchSynthesis", state=ModuleStatus.STATE_BUSY, running_goals=1)
    busy.devices = [DeviceState(name="Batch_Stirrer", state=DeviceState.STATE_BUSY)]
    busy.slots = [SlotState(slot_type="stirrer", free=6, total=8)]
    busy.consumables = [ConsumableState(name="vial", stock=3.0, low=True)]
    state.on_module(busy)
    state.on_module(ModuleStatus(module="UV-Vis", state=ModuleStatus.STATE_READY))
    state.modules["UV-Vis"] = (state.modules["UV-Vis"][0], time.monotonic() - 10)  # gone quiet
    modules = render(state, "/octopus").split("\nModules\n", 1)[1].split("\n\n", 1)[0]
    assert modules.splitlines() == [
        "  BatchSynthesis: busy, 1 goal(s); busy: Batch_Stirrer; stirrer 6/8 free; LOW: vial 3",
        "  UV-Vis:         silent for 10 s (down?)",
    ]
    state.on_estop(EmergencyStop(engaged=True, reason="spill", source="alice"))
    assert "!! EMERGENCY STOP ENGAGED by alice: spill" in render(state, "/octopus")


def test_watch_once_waits_for_every_module_the_scheduler_lists() -> None:
    # the graph of a loaded lab may show one module's status topic seconds after another's
    topic = "/octopus/modules/batch_synthesis/status"
    state = LiveState()
    state.on_module(ModuleStatus(module="BatchSynthesis", state=ModuleStatus.STATE_READY))
    assert state.heard_every_module({topic})  # nothing says there is more
    resources = ResourceState(modules=[ModuleResources(module="BatchSynthesis"),
                                       ModuleResources(module="UV-Vis")])  # fmt: skip
    state.on_resources(resources)
    assert not state.heard_every_module({topic})
    state.on_module(ModuleStatus(module="UV-Vis", state=ModuleStatus.STATE_READY))
    assert state.heard_every_module({topic})
    assert not LiveState().heard_every_module(set())  # no module seen at all


def test_options_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--user", "bob", "--namespace", "/lab2", "hold", "J0001"])
    after = parser.parse_args(["hold", "J0001", "--user", "bob", "--namespace", "/lab2"])
    for args in (before, after):
        assert (args.user, args.namespace, args.job_id, args.timeout) == (
            "bob", "/lab2", "J0001", 5.0
        )  # fmt: skip
    assert parser.parse_args(["status"]).user is None  # resolved later: $OCTOPUS_USER or login
