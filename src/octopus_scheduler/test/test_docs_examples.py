"""The examples in JOB_SCRIPT.md and SCENARIOS.md are valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from octopus_modules.description import load_builtin_description
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.service.lab_from_modules import lab_from_modules
from octopus_scheduler.twin.scenario import parse_scenario
from octopus_scheduler.twin.simulator import simulate

ROOT = Path(__file__).resolve().parents[1]


def yaml_blocks(name: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (ROOT / name).read_text(), re.S)


def test_job_script_examples_parse_against_the_demo_lab():
    """They run on a live demo lab in octopus_client's test_docs_examples_e2e.py."""
    demo = ("batch_synthesis", "uv_vis", "solid_state", "electrochemical_rde")
    lab = lab_from_modules([load_builtin_description(m) for m in demo])
    blocks = yaml_blocks("JOB_SCRIPT.md")
    kinds = [parse_job_script(b, lab).campaign.kind for b in blocks]
    assert kinds == ["manual", "sweep", "bayesian"]
    sweep = parse_job_script(blocks[1], lab)
    assert len(sweep.campaign.experiments) == 6


def test_scenario_example_runs():
    (block,) = yaml_blocks("SCENARIOS.md")
    report = simulate(parse_scenario(yaml.safe_load(block)), "planner", check=True)
    assert all(j["state"] == "succeeded" for j in report.jobs)
