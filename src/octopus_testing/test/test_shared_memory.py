from __future__ import annotations

import os
import time
from pathlib import Path

from octopus_testing.shared_memory import clean_fastdds_shared_memory


def test_orphan_ports_go_and_live_or_young_ones_stay(tmp_path: Path) -> None:
    old = time.time() - 120
    files = {
        "fastrtps_port7411": old,  # orphan: no lock file
        "sem.fastrtps_port7411_mutex": old,
        "fastrtps_port7413": old,  # live: has its lock file
        "fastrtps_port7413_el": old,
        "fastrtps_port7415": time.time(),  # young: may be being created
    }
    for name, mtime in files.items():
        path = tmp_path / name
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))
    assert clean_fastdds_shared_memory(tmp_path) == 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["fastrtps_port7413", "fastrtps_port7413_el", "fastrtps_port7415"]
