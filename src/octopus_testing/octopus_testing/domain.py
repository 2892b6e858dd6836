"""A ROS_DOMAIN_ID of our own for one test session.

Two sessions on one domain answer each other's calls at random, so each session takes a domain
that no other live session on this machine holds: an exclusive lock on a file per domain id,
held until the process exits (the kernel drops it even on SIGKILL).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

# Fast DDS derives ports from the domain id; ids above 101 overflow the port range on Linux.
LOWEST_DOMAIN_ID = 1
HIGHEST_DOMAIN_ID = 101

_held: list[IO[bytes]] = []


def claim_domain_id(lock_dir: Path | None = None) -> int:
    """Lock and return a free domain id, starting from one derived from our pid."""
    lock_dir = lock_dir or Path(tempfile.gettempdir())
    count = HIGHEST_DOMAIN_ID - LOWEST_DOMAIN_ID + 1
    start = os.getpid() % count
    for offset in range(count):
        domain_id = LOWEST_DOMAIN_ID + (start + offset) % count
        handle = open(lock_dir / f"octopus-ros-domain-{domain_id}.lock", "wb")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        return domain_id
    raise RuntimeError(f"all ROS domain ids {LOWEST_DOMAIN_ID}..{HIGHEST_DOMAIN_ID} are in use")


def release_domain_ids() -> None:
    while _held:
        _held.pop().close()
