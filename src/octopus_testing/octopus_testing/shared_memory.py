"""Removes Fast DDS shared-memory files that killed processes left in /dev/shm."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

SHM = Path("/dev/shm")
# a port is created a moment before its lock file: leave young files alone
ORPHAN_AGE_S = 30.0


def clean_fastdds_shared_memory(shm: Path = SHM) -> int:
    """``fastdds shm clean`` removes segments and ports no live process uses (safe while others
    run); it leaves behind port files whose lock file (``_el``) is already gone, with their
    mutexes. A live port always has its lock file, so those are removed too. Returns how many
    orphan files went."""
    fastdds = shutil.which("fastdds")
    if fastdds is not None:
        subprocess.run([fastdds, "shm", "clean"], capture_output=True, timeout=60, check=False)
    removed = 0
    now = time.time()
    for port in shm.glob("fastrtps_port*"):
        if port.name.endswith(("_el", "_sl")) or (shm / f"{port.name}_el").exists():
            continue
        try:
            if now - port.stat().st_mtime < ORPHAN_AGE_S:
                continue
            port.unlink()
            removed += 1
            (shm / f"sem.{port.name}_mutex").unlink(missing_ok=True)
        except FileNotFoundError:
            pass  # another session cleaned it meanwhile
    return removed
