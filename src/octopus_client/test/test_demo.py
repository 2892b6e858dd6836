"""The demo: the day file against the live lab, the report's arithmetic, and a quick live run."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest
import yaml

from octopus_client.demo import default_day_file
from octopus_client.demo_day import Day, DayJob, JobTimes, job_hours, load_day, report
from octopus_modules.description import load_builtin_description
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.service.lab_from_modules import lab_from_modules

DEMO_MODULES = ("batch_synthesis", "uv_vis", "solid_state", "electrochemical_rde")


def test_the_published_day_is_valid_for_the_demo_lab() -> None:
    day = load_day(default_day_file())
    assert len(day.jobs) == 11
    assert [j.offset_s for j in day.jobs[:3]] == [0.0, 7 * 60.0, 54 * 60.0]
    lab = lab_from_modules([load_builtin_description(m) for m in DEMO_MODULES])
    kinds = [parse_job_script(yaml.safe_load(j.script), lab).campaign.kind for j in day.jobs]
    assert kinds.count("bayesian") == 2  # jobs 0 and 10
    assert len(day.published["octopus"]["total"]) == 11


def test_report_computes_hours_and_sums() -> None:
    assert job_hours(JobTimes(0.0, 1800.0, 9000.0)) == (0.5, 2.0, 2.5)
    with pytest.raises(ValueError, match="not run to its end"):
        job_hours(JobTimes(0.0, 10.0, None))
    day = Day(
        "t",
        (DayJob(0, "a", 0.0, ""), DayJob(1, "b", 3600.0, "")),
        {"octopus": {"total": [1.0, 2.0, 9.0], "waiting": [0, 0, 9], "turnaround": [1, 2, 0]}},
    )
    text = report(day, [JobTimes(0.0, 0.0, 3600.0), JobTimes(3600.0, 5400.0, 9000.0)], 0.0)
    sums = next(line for line in text.splitlines() if line.strip().startswith("sum"))
    assert sums.split("|")[1].split() == ["0.50", "2.00", "2.50"]
    assert sums.split("|")[3].split() == ["0.00", "3.00", "3.00"]  # published, same jobs only
    assert "2.50" in text.splitlines()[-1]  # makespan: 9000 s after the day's start


def test_a_quick_live_day_runs_and_stops_everything(node_processes, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    demo = node_processes.start(
        "demo",
        [sys.executable, "-m", "octopus_client.demo", "--pick", "1,2,3",
         "--time-scale", "1200", "--out", str(out), "--timeout", "240"],
    )  # fmt: skip
    demo.wait_for_output("submits job  3", timeout=120)
    children = psutil.Process(demo.pid).children(recursive=True)
    assert len(children) >= 5  # scheduler + four modules
    assert demo.popen.wait(timeout=240) == 0, demo.output()
    output = demo.output()
    rows = [line for line in output.splitlines() if line.strip()[:1].isdigit() and "|" in line]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    assert "every node stopped" in output
    assert (out / "demo.sqlite").is_file()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    pytest.importorskip("matplotlib")
    assert (out / "gantt.png").stat().st_size > 10_000
