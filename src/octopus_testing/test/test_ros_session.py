"""RosSession: a test can retire the nodes it added while the session spins, what it made on the
session's node goes at close, and an executor that dies says so (destroying an action client
under the spinning executor killed it silently, and the CI's third submission burst then sent
nothing)."""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from rclpy.action import ActionClient, ActionServer

from octopus_interfaces.action import SubmitJob
from octopus_testing.goals import ResendingActionClient
from octopus_testing.ros_session import RosSession


def test_a_retired_node_is_no_longer_spun_and_the_session_goes_on(ros) -> None:
    fired: list[int] = []
    for round_ in range(20):
        node = rclpy.create_node(f"retire_probe_{round_}", context=ros.context)
        client = ActionClient(node, SubmitJob, "/retire_probe/submit_job")
        node.create_timer(0.001, lambda r=round_: fired.append(r))
        ros.executor.add_node(node)
        time.sleep(0.01)
        ros.retire(node, client.destroy)
    time.sleep(0.2)  # a callback already handed out may still run
    count = len(fired)
    time.sleep(0.3)
    assert len(fired) == count, "a retired node's timer still fires"
    assert ros.spinning(), ros.spin_failure
    ran = threading.Event()
    ros.node.create_guard_condition(ran.set).trigger()
    assert ran.wait(timeout=5.0), "the session's executor no longer runs callbacks"


def test_an_executor_that_died_is_reported_at_close() -> None:
    session = RosSession("octopus_test_dying")

    def fail() -> None:
        raise ValueError("a callback that raises")

    session.node.create_guard_condition(fail).trigger()
    deadline = time.monotonic() + 5.0
    while session.spinning() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not session.spinning()
    with pytest.raises(RuntimeError, match="a callback that raises"):
        session.close()


def test_what_a_test_made_on_the_session_node_goes_at_close() -> None:
    # destroyed under the spinning executor, an action client or a subscription's event handler
    # kills its thread (InvalidHandle, seen in CI): the session destroys them once it stopped
    session = RosSession("octopus_test_leftovers")
    node = session.node
    ResendingActionClient(node, SubmitJob, "/leftovers/submit_job")
    ActionServer(node, SubmitJob, "/leftovers/submit_job", execute_callback=lambda _: None)
    assert len([w for w in node.waitables if isinstance(w, ActionClient | ActionServer)]) == 2
    session.close()
    assert not [w for w in node.waitables if isinstance(w, ActionClient | ActionServer)]
