"""Every `octopus` lab command as a user runs it: a subprocess against a running lab (scheduler,
BatchSynthesis and UV-Vis nodes in processes of their own, real DDS, time scale 600).

One lab for the whole file (starting one costs ~6 s); the tests use their own jobs and the
e-stop test runs last, after every long job has been cancelled.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from octopus_testing.lab import SYNTHESIS_JOB, start_lab
from octopus_testing.processes import NodeProcess, NodeProcesses

JOB_ID = re.compile(r"^J\d{4}$")


@dataclass
class Lab:
    dir: Path
    modules: dict[str, NodeProcess]
    scheduler: NodeProcess

    def script(self, name: str, react: float) -> Path:
        path = self.dir / f"{name}.yaml"
        path.write_text(SYNTHESIS_JOB.format(name=name, react=react))
        return path


def octopus(*args: str, user: str = "alice", timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run the CLI as a user would, with this session's ROS environment."""
    env = {**os.environ, "OCTOPUS_USER": user}
    return subprocess.run(
        [sys.executable, "-m", "octopus_client.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def octopus_together(*calls: tuple[str, ...], user: str = "alice") -> list:
    """Independent CLI calls at once (each is a process of its own): the file stays fast."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: octopus(*call[1:], user=call[0]), calls))


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("cli_lab")
    processes = NodeProcesses(root)
    try:
        modules, scheduler, _lab_file = start_lab(processes, root)
        yield Lab(root, modules, scheduler)
    finally:
        processes.stop_all()


@pytest.fixture(scope="module")
def finished(lab: Lab) -> tuple[subprocess.CompletedProcess, float]:
    """A short job of alice's, submitted with --wait and followed to its end."""
    started = time.monotonic()
    result = octopus("submit", str(lab.script("short", 1)), "--wait")
    return result, time.monotonic() - started


@dataclass
class Follower:
    """`octopus submit --wait` of a long job, running in the background."""

    process: subprocess.Popen
    out: Path
    job_id: str = ""


@pytest.fixture(scope="module")
def follower(lab: Lab) -> Iterator[Follower]:
    """Alice's job that runs for a minute, followed by --wait; the hold/cancel test ends it.

    Only one job is ever cancelled, and last: no later job depends on a cancelled job's samples
    being released from the module's slots (they were not, when this was written).
    """
    out = lab.dir / "follow.txt"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "octopus_client.cli", "submit", str(lab.script("long", 600)),
             "--wait"],
            stdout=sink, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OCTOPUS_USER": "alice", "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    following = Follower(process, out)
    try:
        deadline = time.monotonic() + 20
        while not (match := re.match(r"(J\d{4}) \[", out.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        following.job_id = match.group(1)
        yield following
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.fixture(scope="module")
def long_job(follower: Follower) -> str:
    return follower.job_id


def _job_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip().splitlines()[-1]
    assert JOB_ID.match(job_id), result.stdout
    return job_id


def test_client_api_in_process(lab: Lab, finished) -> None:
    """The library under the CLI, for scripts: typed answers, ClientError with exit codes."""
    import gc

    from octopus_client.client import ClientError, OctopusClient, Submission
    from octopus_interfaces.msg import Job

    finished_id = finished[0].stdout.strip().split()[-2]
    client = OctopusClient(user="alice", timeout_s=5.0)
    try:
        done = client.list_jobs(owner="alice", states=[Job.STATE_SUCCEEDED])
        assert [j.id for j in done] == [finished_id]
        assert client.list_jobs(owner="nobody") == []
        schedule = client.get_schedule(finished_id)
        assert {s.job_id for s in schedule.steps} == {finished_id} and len(schedule.steps) == 8
        with pytest.raises(ClientError) as unknown:
            client.get_job("J4242")
        assert unknown.value.exit_code == 2 and "J4242" in str(unknown.value)
        rejected = client.submit(lab.script("typo", -1).read_text(), follow=True)
        assert not rejected.accepted and "React.Time" in rejected.summary
        # the fallback when a goal's answer is lost: find the new job, follow it through get_job
        seen: list = []
        adopted = client._adopt_new_job(set(), Submission("", True), True, seen.append, 0.1)
        assert (adopted.job_id, adopted.final_state) == (finished_id, Job.STATE_SUCCEEDED)
        assert [j.id for j in seen] == [finished_id]
        with pytest.raises(ClientError):  # nothing new: an error, never a second submission
            client._adopt_new_job({finished_id}, Submission("", True), False, None, 0.1)
    finally:
        client.close()
        del client
        gc.collect()  # the DDS participant goes with the last reference


def _row(result: subprocess.CompletedProcess, job_id: str) -> list[str]:
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    return next((row for row in rows if row and row[0] == job_id), [])


def _status_row(job_id: str, user: str = "alice", *flags: str) -> list[str]:
    return _row(octopus("status", *flags, user=user), job_id)


# ---- without a lab -------------------------------------------------------------------------------


def test_help_is_fast_and_imports_no_ros() -> None:
    probe = (
        "import sys, time; t = time.perf_counter(); from octopus_client.cli import build_parser; "
        "build_parser().format_help(); print(time.perf_counter() - t, 'rclpy' in sys.modules)"
    )
    elapsed, ros_loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert float(elapsed) < 0.3 and ros_loaded == "False"
    help_text = octopus("--help").stdout
    for command in ("submit", "status", "watch", "hold", "estop", "results", "gantt", "examples:"):
        assert command in help_text
    assert "octopus submit nanoparticles.yaml --wait" in octopus("submit", "--help").stdout


def test_without_a_lab_each_command_fails_clearly_and_soon(tmp_path: Path) -> None:
    script = tmp_path / "job.yaml"
    script.write_text(SYNTHESIS_JOB.format(name="x", react=1))
    commands = {
        "status": ["status"],
        "submit": ["submit", str(script)],
        "watch": ["watch", "--once"],
        "hold": ["hold", "J0001"],
    }
    env = {**os.environ, "OCTOPUS_NAMESPACE": "/no_lab_here"}
    started = time.monotonic()
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "octopus_client.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, argv in commands.items()
    }
    for name, process in running.items():
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 3, (name, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "/no_lab_here/" in err and "is the lab up? (octopus lab up)" in err, err
    assert time.monotonic() - started < 12.0
    missing = octopus("submit", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read job script" in missing.stderr
    _no_traceback(missing)


# ---- against the lab -----------------------------------------------------------------------------


def test_submit_wait_follows_the_job_to_success(finished) -> None:
    result, elapsed = finished
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"J\d{4} succeeded", lines[-1]), result.stdout
    bars = [line for line in lines if "[" in line and "experiments" in line]
    assert bars, result.stdout  # the feedback was shown as a progress bar
    assert "%" in bars[0] and "/2 experiments" in bars[0]
    assert elapsed < 40


def test_rejected_script_names_the_field_and_exits_2(lab: Lab) -> None:
    result = octopus("submit", str(lab.script("bad", -5)))
    assert result.returncode == 2, result.stdout
    assert "rejected" in result.stderr
    assert "campaign.experiments[0].React.Time" in result.stderr
    _no_traceback(result)


def test_status_and_watch_show_a_running_job(lab: Lab, finished, long_job: str) -> None:
    finished_id = finished[0].stdout.strip().split()[-2]
    everyone, alices, bobs, frame = octopus_together(
        ("bob", "status"), ("alice", "status", "--mine"), ("bob", "status", "--mine"),
        ("bob", "watch", "--once"),
    )  # fmt: skip
    row = _row(everyone, long_job)
    assert row[1:3] == ["alice", "long"] and row[3] in ("queued", "running"), row
    assert row[4].endswith("%") and re.fullmatch(r"\d+/2", row[5]), row
    assert row[6].startswith("~")  # the planner's estimate of the finish
    done = _row(alices, finished_id)
    assert done[1:4] == ["alice", "short", "succeeded"] and done[4:6] == ["100%", "2/2"], done
    assert _row(bobs, long_job) == [] and "no jobs" in bobs.stdout  # only alice has jobs

    assert frame.returncode == 0, frame.stderr
    text = frame.stdout
    assert "Running steps" in text and "Jobs" in text
    running = text.split("Running steps", 1)[1].split("\nJobs", 1)[0]
    assert "BatchSynthesis:" in running and long_job in running, text
    assert re.search(rf"^{long_job}\s+alice\s+long\s+(queued|running)", text, re.M), text
    modules = text.split("\nModules\n", 1)[1].split("\nJobs", 1)[0]
    assert re.search(r"^  BatchSynthesis: busy, 1 goal", modules, re.M), text
    assert re.search(r"^  UV-Vis: +ready; vial_holder \d/8 free", modules, re.M), text


def test_watch_redraws_until_ctrl_c_and_exits_cleanly(lab: Lab, long_job: str) -> None:
    out = lab.dir / "watch.txt"
    with out.open("w") as sink:
        watching = subprocess.Popen(
            [sys.executable, "-m", "octopus_client.cli", "watch", "--interval", "0.2"],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 15
            while long_job not in out.read_text():
                assert watching.poll() is None and time.monotonic() < deadline, out.read_text()
                time.sleep(0.1)
        finally:
            watching.send_signal(signal.SIGINT)
            try:
                _out, err = watching.communicate(timeout=20)
            finally:
                if watching.poll() is None:  # never leave it behind, even when the test fails
                    watching.kill()
                    watching.communicate()
    assert watching.returncode == 0, err
    assert "Traceback" not in err, err
    assert "Running steps" in out.read_text()


def test_owner_holds_resumes_and_cancels_others_are_refused(
    long_job: str, follower: Follower
) -> None:
    job_id = long_job
    refused, not_bobs, unknown = octopus_together(
        ("mallory", "hold", job_id), ("bob", "cancel", job_id), ("alice", "hold", "J9999")
    )
    assert refused.returncode == 1 and "owner or admin" in refused.stderr, refused.stderr
    _no_traceback(refused)
    assert not_bobs.returncode == 1 and "owner or admin" in not_bobs.stderr, not_bobs.stderr
    assert unknown.returncode == 2 and "J9999" in unknown.stderr
    held = octopus("hold", job_id, "--reason", "checking the stock")
    assert held.returncode == 0 and "the job is held" in held.stdout, held.stderr
    assert _status_row(job_id)[3] == "held"
    resumed = octopus("resume", job_id)
    assert resumed.returncode == 0 and resumed.stdout.split()[-1] in ("running", "queued")
    assert octopus("cancel", job_id).returncode == 0
    # the --wait that followed the job ends with it: exit 1, the state, the reason in one line
    _out, err = follower.process.communicate(timeout=30)
    assert follower.process.returncode == 1, err
    progress = follower.out.read_text().splitlines()
    assert progress[-1] == f"{job_id} cancelled" and any(" held" in p for p in progress)
    assert f"{job_id} cancelled" in err and len(err.strip().splitlines()) == 1, err
    assert _status_row(job_id)[3] == "cancelled"


def test_results_as_json_and_csv(lab: Lab, finished) -> None:
    job_id = finished[0].stdout.strip().split()[-2]
    out = lab.dir / "results.csv"
    as_json, written, as_text = octopus_together(
        ("alice", "results", job_id, "--json"),
        ("bob", "results", job_id, "--csv", "--out", str(out)),
        ("alice", "results", job_id),
    )
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert (data["job_id"], data["owner"], data["state"]) == (job_id, "alice", "succeeded")
    assert len(data["experiments"]) == 2
    assert all(e["measured"] for e in data["experiments"])  # the modules' measurements

    assert written.returncode == 0 and str(out) in written.stdout, written.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["experiment_id"] for r in rows] == [e["experiment"] for e in data["experiments"]]
    assert {r["job_id"] for r in rows} == {job_id}
    measured = [c for c in rows[0] if c.startswith("measured.")]
    assert measured and any(rows[0][c] for c in measured)
    assert all(isinstance(json.loads(r[c] or "0"), float | int) for r in rows for c in measured)
    assert as_text.returncode == 0 and "EXPERIMENT" in as_text.stdout


def test_gantt_of_the_lab_and_of_a_simulation(lab: Lab, finished) -> None:
    pytest.importorskip("matplotlib")
    png, svg = lab.dir / "now.png", lab.dir / "sim.svg"
    result, simulated, bad = octopus_together(
        ("alice", "gantt", "--out", str(png)),
        ("alice", "gantt", "--scenario", "fig5d-parallelisation", "--policy", "fcfs",
         "--out", str(svg)),
        ("alice", "gantt", "--scenario", "no-such-scenario", "--out", str(lab.dir / "x.svg")),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert simulated.returncode == 0, simulated.stderr
    assert "<svg" in svg.read_text()[:2000] and "fcfs" in svg.read_text()
    assert bad.returncode == 2 and "no-such-scenario" in bad.stderr
    _no_traceback(bad)


def test_gantt_live_opens_a_window_and_closes_on_ctrl_c(lab: Lab) -> None:
    pytest.importorskip("PyQt5")
    window = subprocess.Popen(
        [sys.executable, "-m", "octopus_client.cli", "gantt", "--live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    time.sleep(2.0)  # the window is up and spinning (no way to look at it offscreen)
    assert window.poll() is None, window.communicate()
    window.send_signal(signal.SIGINT)
    _out, err = window.communicate(timeout=10)
    assert window.returncode == 0 and "Traceback" not in err, err


def test_estop_stops_the_modules_and_only_an_admin_resets_it(lab: Lab, ros) -> None:
    from octopus_interfaces.action import ExecuteTask
    from octopus_interfaces.msg import SlotAssignment
    from octopus_testing.futures import wait_for_future
    from octopus_testing.goals import ResendingActionClient

    module = ResendingActionClient(ros.node, ExecuteTask, "/octopus/modules/uv_vis/execute_task")
    assert module.wait_for_server(timeout_sec=20)

    def goal_accepted(task_id: str) -> bool:
        goal = ExecuteTask.Goal(
            task_id=task_id,
            experiment_id="E-estop",
            task="PrepareCuvette",
            slots=[SlotAssignment(slot_type="vial_holder", index=7)],
        )
        handle = module.send_goal_once(goal, 5.0)
        if handle.accepted:
            wait_for_future(handle.get_result_async(), 30.0)
        return handle.accepted

    engaged = octopus("estop", "--reason", "spill at the stirrer")
    assert engaged.returncode == 0 and "ENGAGED by alice" in engaged.stdout, engaged.stderr
    for process in lab.modules.values():
        process.wait_for_output("EMERGENCY STOP: spill at the stirrer", timeout=10)
    assert not goal_accepted("estop-1")
    frame = octopus("watch", "--once").stdout
    assert "!! EMERGENCY STOP ENGAGED by alice: spill at the stirrer" in frame
    assert re.search(r"^  UV-Vis: +E-STOPPED", frame, re.M), frame

    refused = octopus("estop", "--reset")
    assert refused.returncode == 1 and "only an admin" in refused.stderr, refused.stderr
    _no_traceback(refused)
    reset = octopus("estop", "--reset", "--reason", "cleaned up", user="boss")
    assert reset.returncode == 0 and "reset by boss" in reset.stdout, reset.stderr
    lab.modules["uv_vis"].wait_for_output("emergency stop reset by boss", timeout=10)
    assert goal_accepted("estop-2")
