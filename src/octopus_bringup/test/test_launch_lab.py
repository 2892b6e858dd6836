"""lab.launch.py under the real launch: runs the launch_testing test lab.test.py with
`launch_test`, on the demo lab with its database in the test's folder, with launch arguments."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from octopus_testing.ros2_tools import require

HERE = Path(__file__).resolve().parent
DEMO_LAB = HERE.parent / "config" / "demo_lab.yaml"


def demo_lab_in(folder: Path) -> Path:
    """The demo lab with its database in ``folder``."""
    text = DEMO_LAB.read_text()
    moved = text.replace("database: octopus_demo.sqlite", f"database: {folder / 'lab.sqlite'}")
    assert moved != text, "demo_lab.yaml no longer names its database as this test expects"
    path = folder / "lab.yaml"
    path.write_text(moved)
    return path


def run_to_end(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a process group of its own; on timeout, SIGINT it, then SIGKILL."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        try:
            out, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
        pytest.fail(f"{argv[0]} did not end within {timeout} s:\n{out}")
    return subprocess.CompletedProcess(argv, process.returncode, out, "")


def test_the_launch_file_brings_up_a_lab_that_runs_a_job_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    require(executables=("launch_test",), modules=("launch_ros", "launch_testing"))
    lab = demo_lab_in(tmp_path)
    started = time.monotonic()
    result = run_to_end(
        [
            "launch_test", str(HERE / "lab.test.py"), f"lab:={lab}", "time_scale:=1200",
            "policy:=closed_packing", "--junit-xml", str(tmp_path / "junit.xml"),
        ],
        cwd=tmp_path,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    # both test classes ran, and the lab ran with the launch arguments
    assert re.search(r"Ran 1 test.*\n\s*\nOK", result.stdout), result.stdout
    assert "scheduler ready: lab demo, policy closed_packing" in result.stdout
    for line in re.findall(r"MEASURED .*", result.stdout):
        print(line)
    print(f"launch_test took {time.monotonic() - started:.1f} s")
    assert not list(tmp_path.glob("octopus_demo.sqlite*")), "the database went to the cwd"
    junit = (tmp_path / "junit.xml").read_text()
    assert 'failures="0"' in junit and 'errors="0"' in junit, junit
