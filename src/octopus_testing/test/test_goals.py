"""ResendingActionClient: a goal whose answer comes late is looked for before it is sent again,
and sent again under its own id; it runs once. A real rclpy action server in a second participant;
its first answer is delayed past the client's timeout, which is what a dropped answer looks like
to the client (a short ``fate_wait`` makes the client send again before that answer comes)."""

from __future__ import annotations

import time

import pytest
from rclpy.action import ActionServer, GoalResponse

from octopus_interfaces.action import SubmitJob
from octopus_testing.futures import wait_for_future
from octopus_testing.goals import ResendingActionClient
from octopus_testing.ros_session import RosSession

NAME = "/resend_probe/submit_job"
LATE_S = 1.0  # the server's first answer: after the first wait, within the second
WAIT_S = 0.8


class SlowFirstAnswer:
    """An action server that takes LATE_S to answer its first goal request."""

    def __init__(self, verdict: GoalResponse) -> None:
        self.session = RosSession("resend_probe_server")
        self.requests = 0
        self.executed: list[str] = []
        self.verdict = verdict
        self.server = ActionServer(
            self.session.node,
            SubmitJob,
            NAME,
            execute_callback=self._execute,
            goal_callback=self._decide,
        )

    def _decide(self, goal: SubmitJob.Goal) -> GoalResponse:
        self.requests += 1
        if self.requests == 1:
            time.sleep(LATE_S)
        return self.verdict

    def _execute(self, handle) -> SubmitJob.Result:
        self.executed.append(handle.request.script)
        handle.succeed()
        return SubmitJob.Result(job_id="J0001", summary=handle.request.script)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def client(ros) -> ResendingActionClient:
    return ResendingActionClient(ros.node, SubmitJob, NAME)  # destroyed by the session


def test_a_goal_whose_answer_is_late_is_not_sent_again(ros, client) -> None:
    server = SlowFirstAnswer(GoalResponse.ACCEPT)
    try:
        assert client.wait_for_server(timeout_sec=20)
        started = time.monotonic()
        handle = client.send_goal_once(SubmitJob.Goal(script="once", user="ann"), WAIT_S)
        assert handle.accepted and time.monotonic() - started > LATE_S
        assert wait_for_future(handle.get_result_async(), 10.0).result.summary == "once"
        time.sleep(0.5)
        assert server.requests == 1 and server.executed == ["once"]
    finally:
        server.close()


def test_an_accepted_goal_sent_again_runs_once(ros, client) -> None:
    server = SlowFirstAnswer(GoalResponse.ACCEPT)
    try:
        assert client.wait_for_server(timeout_sec=20)
        goal = SubmitJob.Goal(script="once", user="ann")
        handle = client.send_goal_once(goal, WAIT_S, fate_wait=0.05)  # resent at 0.85 s
        assert handle.accepted
        outcome = wait_for_future(handle.get_result_async(), 10.0)
        assert outcome.result.summary == "once"
        time.sleep(0.5)
        # one goal: the server refused the resend's id before asking its callback
        assert server.requests == 1 and server.executed == ["once"]
    finally:
        server.close()


def test_a_goal_refused_on_its_merits_stays_refused_after_a_resend(ros, client) -> None:
    server = SlowFirstAnswer(GoalResponse.REJECT)
    try:
        assert client.wait_for_server(timeout_sec=20)
        goal = SubmitJob.Goal(script="never", user="ann")
        handle = client.send_goal_once(goal, WAIT_S, fate_wait=0.05)
        assert not handle.accepted
        assert server.requests >= 2 and server.executed == []
    finally:
        server.close()


def test_a_goal_never_answered_times_out(ros, client) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="unanswered after 2 sends"):
        goal = SubmitJob.Goal(script="void", user="ann")
        client.send_goal_once(goal, 0.3, attempts=2, fate_wait=0.2)
    assert time.monotonic() - started < 5.0
