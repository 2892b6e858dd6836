"""The examples in JOB_SCRIPT.md and SCENARIOS.md are valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from octopus_scheduler.jobscript import parse_job_script
from octopus_scheduler.scenario import load_scenario, parse_scenario
from octopus_scheduler.simulator import simulate

ROOT = Path(__file__).resolve().parents[1]


def yaml_blocks(name: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (ROOT / name).read_text(), re.S)


def test_job_script_examples_parse_against_the_fig8_lab():
    lab = load_scenario("fig8-platform-day").lab
    blocks = yaml_blocks("JOB_SCRIPT.md")
    kinds = [parse_job_script(b, lab).campaign.kind for b in blocks]
    assert kinds == ["manual", "sweep", "bayesian"]
    sweep = parse_job_script(blocks[1], lab)
    assert len(sweep.campaign.experiments) == 6


def test_scenario_example_runs():
    (block,) = yaml_blocks("SCENARIOS.md")
    report = simulate(parse_scenario(yaml.safe_load(block)), "planner", check=True)
    assert all(j["state"] == "succeeded" for j in report.jobs)
