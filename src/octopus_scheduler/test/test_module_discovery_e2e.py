"""Over real DDS: a module node that is not in the lab file announces itself, joins the running
lab, runs a job, and is still known to a restarted scheduler."""

from __future__ import annotations

import time
from pathlib import Path

from octopus_interfaces.action import SubmitJob
from octopus_interfaces.msg import Job
from octopus_modules.description import load_builtin_description
from octopus_testing.futures import wait_for_future
from octopus_testing.goals import ResendingActionClient
from octopus_testing.lab import start_lab, start_module, start_scheduler

CRUCIBLE_JOB = """
metadata: {name: crucibles, owner: ignored}
campaign: {kind: manual, experiments: [{}, {}]}
process:
  Synthesis:
    SolidState: {sequence: [PrepareCrucible]}
"""


def submit(client: ResendingActionClient, user: str):
    handle = client.send_goal_once(SubmitJob.Goal(script=CRUCIBLE_JOB, user=user), 10.0)
    assert handle.accepted
    return wait_for_future(handle.get_result_async(), 60.0).result


def test_an_announced_module_joins_the_lab_and_survives_a_restart(
    ros, node_processes, tmp_path: Path
) -> None:
    assert load_builtin_description("solid_state").task("PrepareCrucible") is not None
    _, scheduler, lab_file = start_lab(node_processes, tmp_path)  # BatchSynthesis, UV-Vis
    client = ResendingActionClient(ros.node, SubmitJob, "/octopus/submit_job")
    assert client.wait_for_server(timeout_sec=20)
    refused = submit(client, "alice")
    assert refused.final_state == Job.STATE_FAILED and "SolidState" in refused.summary

    started = time.monotonic()
    start_module(node_processes, "solid_state", tmp_path / "samples.json")
    scheduler.wait_for_output("module SolidState joined the lab", timeout=30)
    print(f"SolidState joined {time.monotonic() - started:.2f} s after its process started")
    result = submit(client, "alice")
    assert result.final_state == Job.STATE_SUCCEEDED, result.summary

    # the restarted scheduler reads only BatchSynthesis and UV-Vis from the lab file; the
    # module that joined comes back from its event log, before any announcement is heard
    scheduler.stop()
    restarted = start_scheduler(node_processes, lab_file, name="scheduler_restarted")
    restarted.wait_for_output("scheduler ready: lab test, policy planner, 3 modules", 30)
    again = submit(client, "bob")
    assert again.final_state == Job.STATE_SUCCEEDED, again.summary
    assert "joined the lab" not in restarted.output()
