"""Over real DDS: what a scheduler restart must keep. A module that was down when the scheduler
stopped is taken back when it is heard again; an engaged emergency stop stays engaged."""

from __future__ import annotations

from pathlib import Path

from octopus_interfaces.action import SubmitJob
from octopus_interfaces.msg import Job
from octopus_interfaces.srv import SetEmergencyStop
from octopus_testing.futures import call_with_retry, wait_for_future
from octopus_testing.goals import ResendingActionClient
from octopus_testing.lab import SYNTHESIS_JOB, start_lab, start_module, start_scheduler


def run_job(ros, name: str) -> Job:
    client = ResendingActionClient(ros.node, SubmitJob, "/octopus/submit_job")
    assert client.wait_for_server(timeout_sec=20)
    script = SYNTHESIS_JOB.format(name=name, react=10)
    handle = client.send_goal_once(SubmitJob.Goal(script=script, user="alice"), 10.0)
    return wait_for_future(handle.get_result_async(), 60.0).result


def set_estop(ros, engaged: bool, source: str) -> SetEmergencyStop.Response:
    client = ros.node.create_client(SetEmergencyStop, "/octopus/set_emergency_stop")
    assert client.wait_for_service(timeout_sec=20)
    request = SetEmergencyStop.Request(engaged=engaged, reason="test", source=source)
    return call_with_retry(lambda: client.call_async(request), 10.0)


def test_a_module_lost_before_a_restart_is_taken_back(ros, node_processes, tmp_path: Path) -> None:
    modules, scheduler, lab_file = start_lab(node_processes, tmp_path)
    modules["batch_synthesis"].kill()
    scheduler.wait_for_output("module BatchSynthesis went down: no heartbeat", timeout=10)
    scheduler.stop()
    start_module(node_processes, "batch_synthesis", tmp_path / "samples.json")
    restarted = start_scheduler(node_processes, lab_file, name="scheduler_restarted")
    restarted.wait_for_output("module BatchSynthesis is back", timeout=30)
    result = run_job(ros, "after-restart")
    assert result.final_state == Job.STATE_SUCCEEDED, result.summary


def test_an_engaged_emergency_stop_survives_a_restart(ros, node_processes, tmp_path: Path) -> None:
    _, scheduler, lab_file = start_lab(node_processes, tmp_path)
    assert set_estop(ros, True, "alice").state.engaged
    scheduler.stop()
    restarted = start_scheduler(node_processes, lab_file, name="scheduler_restarted")
    restarted.wait_for_output("scheduler ready", timeout=30)
    refused = set_estop(ros, False, "alice")  # not an admin: the stop holds
    assert not refused.success and refused.state.engaged
    assert "module BatchSynthesis is back" not in restarted.output()
    reset = set_estop(ros, False, "boss")
    assert reset.success and not reset.state.engaged
    result = run_job(ros, "after-reset")
    assert result.final_state == Job.STATE_SUCCEEDED, result.summary
