"""The ROS 2 user tools (the ros2 command, launch, launch_pytest, rqt) for the tests that run them.

They have no wheels: tools/setup.sh builds them from ../shared/ros2-underlay into .underlay, or
a sourced ROS 2 Jazzy installation brings them. Where they are missing, those tests skip and say
how to get them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

import pytest

HOW_TO_GET_THEM = (
    "the ROS 2 user tools are missing; to get them, put the ros2-underlay sources at "
    "../shared/ros2-underlay beside the repository and run tools/setup.sh (it builds them into "
    ".underlay, sourced by env.sh), or source a ROS 2 Jazzy installation before tools/setup.sh"
)


def missing(executables: tuple[str, ...] = (), modules: tuple[str, ...] = ()) -> list[str]:
    """The executables (on PATH) and Python modules of ``executables``/``modules`` not found."""
    gone = [name for name in executables if shutil.which(name) is None]
    gone += [name for name in modules if importlib.util.find_spec(name) is None]
    return gone


def require(executables: tuple[str, ...] = (), modules: tuple[str, ...] = ()) -> None:
    """Skip the calling test (or module, at import) unless every tool named is there."""
    gone = missing(executables, modules)
    if gone:
        pytest.skip(f"{', '.join(gone)}: {HOW_TO_GET_THEM}", allow_module_level=True)


def stop_ros2_daemon(env: dict[str, str] | None = None) -> None:
    """Stop the ros2 CLI's daemon of this test's domain (the first `ros2 ...` call starts one,
    and it would outlive the test)."""
    if shutil.which("ros2") is None:
        return
    subprocess.run(
        ["ros2", "daemon", "stop"],
        env=env or dict(os.environ),
        capture_output=True,
        timeout=30,
        check=False,
    )
