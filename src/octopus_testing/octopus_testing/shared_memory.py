"""Removes Fast DDS shared-memory files that killed processes left in /dev/shm."""

from __future__ import annotations

import shutil
import subprocess


def clean_fastdds_shared_memory() -> None:
    """``fastdds shm clean`` removes only segments no live process uses: safe while others run."""
    fastdds = shutil.which("fastdds")
    if fastdds is None:
        return
    subprocess.run([fastdds, "shm", "clean"], capture_output=True, timeout=60, check=False)
