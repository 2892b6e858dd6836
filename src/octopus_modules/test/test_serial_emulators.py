"""The emulators as stand-alone processes (``python -m ...``) for demos and manual tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import serial

SRC = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("module", "request_bytes", "reply_end"),
    [
        ("octopus_modules.emulators.namur_hotplate", b"IN_NAME\r\n", b"\n"),
        ("octopus_modules.emulators.ne1000_pump", b"DIA\r", b"\x03"),
    ],
)
def test_module_entry_point_prints_a_port_that_answers(
    tmp_path: Path, module: str, request_bytes: bytes, reply_end: bytes
) -> None:
    link = tmp_path / "instrument"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--link", str(link)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        port, arrow, pty_path = process.stdout.readline().split()
        assert (port, arrow) == (str(link), "->") and pty_path.startswith("/dev/pts/")
        with serial.Serial(port, 9600, timeout=2.0) as instrument:
            instrument.write(request_bytes)
            assert instrument.read_until(reply_end).endswith(reply_end)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the emulator cleans up its port
        try:
            process.wait(timeout=10.0)
        finally:
            if process.poll() is None:  # never leave it behind, even when the test fails
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
    assert not link.exists()
