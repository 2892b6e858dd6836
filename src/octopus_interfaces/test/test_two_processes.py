"""Two processes exchange SubmitJob and ExecuteTask goals, feedback, results and a cancel over
real DDS (the peer is a labelled test double of the servers; see contract_peer.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from octopus_interfaces.action import ExecuteTask, SubmitJob
from octopus_interfaces.msg import Job
from octopus_testing.futures import wait_for_future, wait_until
from octopus_testing.goals import ResendingActionClient

PEER = Path(__file__).with_name("contract_peer.py")


def send_goal(client: ResendingActionClient, goal: object, feedback: list) -> object:
    handle = client.send_goal_once(goal, 3.0, feedback_callback=feedback.append, attempts=5)
    assert handle.accepted
    return handle


def test_submit_job_and_execute_task_with_cancel(ros, node_processes) -> None:
    peer = node_processes.start("contract_peer", [sys.executable, str(PEER)])
    peer.wait_for_output("contract peer ready", timeout=20)

    submit = ResendingActionClient(ros.node, SubmitJob, "/octopus/submit_job")
    assert submit.wait_for_server(timeout_sec=20)
    feedback: list = []
    handle = send_goal(submit, SubmitJob.Goal(script="name: x", user="alice"), feedback)
    result = wait_for_future(handle.get_result_async(), 10.0).result
    assert result.final_state == Job.STATE_SUCCEEDED
    assert result.summary == "owner: alice"
    assert result.job_id.startswith("J") and len(result.job_id) == 7
    # feedback after the result may be dropped: at least one arrived, all about this job
    assert feedback and {f.feedback.job_id for f in feedback} == {result.job_id}

    execute = ResendingActionClient(ros.node, ExecuteTask, "/octopus/modules/test/execute_task")
    assert execute.wait_for_server(timeout_sec=20)
    task_feedback: list = []
    task = send_goal(execute, ExecuteTask.Goal(task="Wait"), task_feedback)
    wait_until(lambda: len(task_feedback) >= 2, timeout=10)
    cancel = wait_for_future(task.cancel_goal_async(), 5.0)
    assert len(cancel.goals_canceling) == 1
    outcome = wait_for_future(task.get_result_async(), 10.0)
    assert outcome.result.success is False and outcome.result.error == "cancelled"
    assert outcome.status == 5  # GoalStatus.STATUS_CANCELED
