"""`octopus lab up` of a two-module lab: nodes in processes, a task through one of them, and
every process gone after Ctrl-C (SIGINT)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import psutil

from octopus_interfaces.action import ExecuteTask
from octopus_interfaces.msg import SlotAssignment
from octopus_testing.futures import wait_for_future
from octopus_testing.goals import ResendingActionClient


def test_lab_up_runs_modules_and_stops_them_on_ctrl_c(ros, node_processes, tmp_path: Path) -> None:
    lab = tmp_path / "two.yaml"
    lab.write_text(
        "name: two\nnamespace: /t\n"
        "modules: [{description: uv_vis}, {description: batch_synthesis}]\n"
    )
    up = node_processes.start(
        "lab_up",
        [sys.executable, "-m", "octopus_client.cli", "lab", "up", str(lab), "--modules-only",
         "--time-scale", "100"],
    )  # fmt: skip
    up.wait_for_output(r"\[uv_vis\].*module UV-Vis ready", timeout=30)
    up.wait_for_output(r"\[batch_synthesis\].*module BatchSynthesis ready", timeout=30)
    children = psutil.Process(up.pid).children(recursive=True)
    assert len(children) >= 2

    client = ResendingActionClient(ros.node, ExecuteTask, "/t/modules/batch_synthesis/execute_task")
    assert client.wait_for_server(timeout_sec=20)
    goal = ExecuteTask.Goal(
        task_id="T1",
        experiment_id="E1",
        task="PrepareContainer",
        slots=[SlotAssignment(slot_type="stirrer", index=2)],
    )
    handle = client.send_goal_once(goal, 5.0)
    assert handle.accepted
    assert wait_for_future(handle.get_result_async(), 20.0).result.success

    up.popen.send_signal(signal.SIGINT)
    assert up.popen.wait(timeout=20) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
