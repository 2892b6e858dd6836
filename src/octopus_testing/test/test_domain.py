"""The session's ROS domain: one holder per id, and no lock file left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from octopus_testing import domain

# One process: claims the only id over and over; while it holds it, a marker file that must not
# exist yet (O_EXCL) shows that nobody else holds the id at the same time.
CONTENDER = """
import os, sys
from pathlib import Path
from octopus_testing import domain
domain.HIGHEST_DOMAIN_ID = domain.LOWEST_DOMAIN_ID  # a single id for everybody
folder, rounds = Path(sys.argv[1]), int(sys.argv[2])
done = 0
while done < rounds:
    try:
        domain.claim_domain_id(folder)
    except RuntimeError:
        continue
    marker = os.open(folder / "holder", os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # raises if shared
    os.close(marker)
    os.unlink(folder / "holder")
    domain.release_domain_ids()
    done += 1
"""


def test_claimed_ids_differ_and_their_files_go_on_release(tmp_path: Path) -> None:
    first = domain.claim_domain_id(tmp_path)
    second = domain.claim_domain_id(tmp_path)
    try:
        assert first != second
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            f"octopus-ros-domain-{i}.lock" for i in (first, second)
        )
    finally:
        domain.release_domain_ids()
    assert list(tmp_path.iterdir()) == []


def test_a_file_a_killed_holder_left_is_claimed_and_then_removed(tmp_path: Path) -> None:
    # the kernel drops a killed process's lock, but its file stays
    code = (
        "import os, sys, pathlib; from octopus_testing import domain; "
        f"print(domain.claim_domain_id(pathlib.Path({str(tmp_path)!r})), flush=True); "
        "os._exit(0)"  # no atexit: as if killed
    )
    left = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip
    assert (tmp_path / f"octopus-ros-domain-{left}.lock").exists()
    domain.HIGHEST_DOMAIN_ID, saved = left, domain.HIGHEST_DOMAIN_ID
    domain.LOWEST_DOMAIN_ID, saved_low = left, domain.LOWEST_DOMAIN_ID
    try:
        assert domain.claim_domain_id(tmp_path) == left
    finally:
        domain.HIGHEST_DOMAIN_ID, domain.LOWEST_DOMAIN_ID = saved, saved_low
        domain.release_domain_ids()
    assert list(tmp_path.iterdir()) == []


def test_processes_racing_for_one_id_never_hold_it_together(tmp_path: Path) -> None:
    contenders = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(tmp_path), "300"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in contenders]
    assert [p.returncode for p in contenders] == [0] * 4, errors
    assert list(tmp_path.iterdir()) == []
