"""The README's setup on a fresh clone with a fresh venv (opt-in: about two minutes).

Run with OCTOPUS_TEST_FRESH_SETUP=1 tools/test.sh -k fresh_setup
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(
    not os.environ.get("OCTOPUS_TEST_FRESH_SETUP"), reason="opt-in: OCTOPUS_TEST_FRESH_SETUP=1"
)
def test_setup_in_a_fresh_clone_builds_and_a_second_run_does_nothing(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # the clone must not see this workspace's venv or build
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMENT", "COLCON", "VIRTUAL"))}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if str(ROOT) not in p)
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    cold = subprocess.run(
        ["tools/setup.sh"], cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    cold_s = time.monotonic() - started
    assert cold.returncode == 0, cold.stderr
    started = time.monotonic()
    warm = subprocess.run(
        ["tools/setup.sh"], cwd=clone, env=env, capture_output=True, text=True, timeout=120
    )
    warm_s = time.monotonic() - started
    assert warm.returncode == 0 and "colcon build" not in warm.stderr
    print(f"\ncold setup {cold_s:.0f} s, warm re-run {warm_s:.2f} s")
    check = subprocess.run(
        ["bash", "-c", ". ./env.sh && python -c 'import octopus_interfaces.action, rclpy'"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert warm_s < 5
