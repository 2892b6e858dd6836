"""A ROS_DOMAIN_ID of our own for one test session.

Two sessions on one domain answer each other's calls at random, so each session takes a domain
that no other live session on this machine holds: an exclusive lock on a file per domain id,
held until it is released or the process exits (the kernel drops it even on SIGKILL). A release
deletes the file while it still holds the lock; a claimer that locked a file deleted meanwhile
sees that the path no longer names it and tries again, so two never hold one id.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

# Fast DDS derives ports from the domain id; ids above 101 overflow the port range on Linux.
LOWEST_DOMAIN_ID = 1
HIGHEST_DOMAIN_ID = 101

_held: list[tuple[Path, IO[bytes]]] = []


def claim_domain_id(lock_dir: Path | None = None) -> int:
    """Lock and return a free domain id, starting from one derived from our pid. The id is
    released by :func:`release_domain_ids`, at the latest when the process exits."""
    lock_dir = lock_dir or Path(tempfile.gettempdir())
    count = HIGHEST_DOMAIN_ID - LOWEST_DOMAIN_ID + 1
    start = os.getpid() % count
    for offset in range(count):
        domain_id = LOWEST_DOMAIN_ID + (start + offset) % count
        path = lock_dir / f"octopus-ros-domain-{domain_id}.lock"
        handle = _lock(path)
        if handle is None:
            continue
        _held.append((path, handle))
        return domain_id
    raise RuntimeError(f"all ROS domain ids {LOWEST_DOMAIN_ID}..{HIGHEST_DOMAIN_ID} are in use")


def _lock(path: Path) -> IO[bytes] | None:
    """An open, exclusively locked handle on the file at ``path``, or None if another process
    holds it."""
    while True:
        handle = open(path, "ab")  # noqa: SIM115 - held until released
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # its holder deleted it on release before we locked it: the path is free


def release_domain_ids() -> None:
    """Release every id this process holds and delete their lock files."""
    while _held:
        path, handle = _held.pop()
        path.unlink(missing_ok=True)  # while locked: nobody can lock this file and keep it
        handle.close()


atexit.register(release_domain_ids)
