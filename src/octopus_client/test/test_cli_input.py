"""A job script that cannot be read is refused by the CLI with a clear error before any ROS
traffic (the real `octopus` command in a process of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.run(
        [sys.executable, "-m", "octopus_client.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_script_that_is_not_utf8_is_refused_naming_the_byte(tmp_path: Path) -> None:
    script = tmp_path / "latin1.yaml"
    script.write_bytes("metadata: {name: Lösung}\n".encode("latin-1"))
    done = run_cli("submit", str(script))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"octopus submit: {script}: not UTF-8 text (byte 0xf6 at offset 18); "
        "save the job script as UTF-8"
    )
    assert "Traceback" not in done.stderr and "UnicodeDecodeError" not in done.stderr


def test_a_missing_script_is_refused(tmp_path: Path) -> None:
    done = run_cli("submit", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "cannot read job script" in done.stderr and "No such file" in done.stderr
