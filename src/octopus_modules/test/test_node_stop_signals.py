"""The nodes stop cleanly on the signals that launch and `octopus lab up` send: exit code 0, no
traceback.

- `octopus lab up`, systemd, docker: SIGTERM.
- Ctrl-C under `ros2 launch`: SIGINT from the terminal and SIGINT from launch a moment later.
- launch escalating: SIGINT, then SIGTERM while the node is still cleaning up.

The nodes run from their installed executables, as launch_ros starts them, once ready.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from octopus_testing.lab import write_lab_file

SEQUENCES = {
    "SIGTERM": (signal.SIGTERM,),
    "ctrl-c under launch": (signal.SIGINT, signal.SIGINT),
    "SIGINT then SIGTERM": (signal.SIGINT, signal.SIGTERM),
}


def executable(package: str, name: str) -> str:
    from ament_index_python.packages import get_package_prefix

    return str(Path(get_package_prefix(package)) / "lib" / package / name)


def argv_of(node: str, folder: Path) -> list[str]:
    if node == "module_node":
        ledger = folder / "samples.json"
        return [
            executable("octopus_modules", "module_node"),
            *("--ros-args", "-p", "description:=uv_vis", "-p", f"sample_ledger:={ledger}"),
        ]
    lab = write_lab_file(folder, ("batch_synthesis", "uv_vis"))
    return [
        executable("octopus_scheduler", "scheduler_node"),
        *("--ros-args", "-p", f"lab_file:={lab}"),
    ]


@pytest.mark.parametrize("sequence", SEQUENCES, ids=list(SEQUENCES))
@pytest.mark.parametrize("node", ["module_node", "scheduler_node"])
def test_a_node_exits_0_without_a_traceback(node: str, sequence: str, tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    process = subprocess.Popen(
        argv_of(node, tmp_path), stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        for sig in SEQUENCES[sequence]:
            process.send_signal(sig)
            time.sleep(0.05)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
