"""The exit deadline of a node process: it ends a process whose last step hangs with the GIL held
(as Fast DDS's participant teardown can), with the exit code asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

HANGS_HOLDING_THE_GIL = r"""
import ctypes, sys
from octopus_modules.ros.exit_deadline import exit_after
print("said before")  # buffered (a pipe): arming flushes it, _exit would not
sys.stderr.write("armed\n" if exit_after(0.5, int(sys.argv[1])) else "not armed\n")
ctypes.PyDLL(None).sleep(30)  # libc's sleep without releasing the GIL: no Python thread can run
print("never")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX timers: Linux only")
@pytest.mark.parametrize("code", [0, 3])
def test_a_process_stuck_with_the_gil_held_ends_at_its_deadline(code: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HANGS_HOLDING_THE_GIL, str(code)],
        capture_output=True, text=True, timeout=20, env=env,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.stderr == "armed\n"
    assert done.stdout == "said before\n"
    assert done.returncode == code
    assert took < 10, f"ended after {took:.1f} s, not at its 0.5 s deadline"
