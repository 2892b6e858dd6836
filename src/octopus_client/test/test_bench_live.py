"""``octopus bench-live`` runs end to end on tiny sizes and writes its JSON and PNG (a smoke
test: no timing is asserted; the numbers are the README's, from full runs). And the live twin's
module descriptions are the scenario's model: simulated on them, a day gives the same numbers."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import psutil
import pytest

from octopus_client.bench_live import main
from octopus_client.twin_lab import lab_masks, module_description, scenario_scripts
from octopus_modules.description import parse_description
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.service.lab_from_modules import lab_from_modules
from octopus_scheduler.twin.generator import random_scenario
from octopus_scheduler.twin.scenario import load_scenario
from octopus_scheduler.twin.simulator import simulate


@pytest.mark.parametrize(
    "scenario",
    [load_scenario("fig8-platform-day"), random_scenario(3, jobs=12, modules=4, bo_share=0.0)],
    ids=["fig8", "generated"],
)
def test_the_twin_lab_is_the_scenarios_model(scenario) -> None:
    descriptions = [
        parse_description(module_description(scenario.lab, m))
        for m in scenario.lab.modules.values()
    ]
    lab = lab_from_modules(descriptions, lab_masks(scenario.lab))
    jobs = tuple(
        dataclasses.replace(job, spec=parse_job_script(script, lab))
        for job, (_id, _at, script) in zip(scenario.jobs, scenario_scripts(scenario), strict=True)
    )
    live_model = dataclasses.replace(scenario, lab=lab, jobs=jobs)
    for policy in ("planner", "closed_packing"):
        twin, live = simulate(scenario, policy), simulate(live_model, policy)
        assert live.sums == twin.sums and live.makespan == twin.makespan, policy


def test_bench_live_runs_end_to_end(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    argv = ["--quick", "--out", str(tmp_path), "--domain-id", os.environ["ROS_DOMAIN_ID"]]
    argv += ["--pick", "2"]  # --quick: 30 actions, one twin job at 4,000x, 3 modules for 8 s
    assert main(argv) == 0
    results = json.loads((tmp_path / "bench_live.json").read_text())
    overhead = results["overhead"]
    assert overhead["floor_s"]["n"] == overhead["floor_kept_s"]["n"] == 30
    assert overhead["ours"]["actions"] >= 30 and overhead["ours"]["steps_in_sqlite"] > 30
    assert overhead["ours"]["jobs_succeeded"] == overhead["ours"]["jobs"]
    (twin,) = results["twin"]
    assert [j["state"] for j in twin["live"]["jobs"]] == [3]  # succeeded
    assert twin["twin"]["jobs"][0]["job_id"] == "2"
    (scale,) = results["scale"]
    assert scale["modules"] == 3 and scale["jobs_submitted"] >= 1
    assert scale["discovery_s"] > 0
    (depth,) = results["depth"]
    assert depth["decision_s"]["n"] > 0 and depth["plan_s"]
    memory = results["memory"]
    assert memory["samples"][-1]["ended"] == memory["jobs"] == 60
    # an ended job lets its steps go: 29 KB were kept per ended job at these sizes, now 13
    assert memory["kb_per_ended_job"] < 20
    assert (tmp_path / "bench_live.png").stat().st_size > 0
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert left == []
