from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from octopus_modules.sim.sample_ledger import SampleLedger

WRITER = """
import sys
from octopus_modules.sim.sample_ledger import SampleLedger
ledger = SampleLedger(sys.argv[1])
for _ in range(40):
    ledger.add_liquid("vial", sys.argv[2], 1.0, 10.0)
"""


def test_volumes_and_rates_accumulate() -> None:
    ledger = SampleLedger()
    ledger.add_liquid("v", "NaBH4", 100, 10)
    ledger.add_liquid("v", "NaBH4", 300, 50)
    ledger.add_powder("v", "TiO2", 12.5)
    record = ledger.record("v")
    assert record.liquids["NaBH4"].volume_ul == 400
    assert record.liquids["NaBH4"].mean_rate_ul_s == pytest.approx(40)  # volume-weighted
    assert record.powders_mg == {"TiO2": 12.5}
    assert record.total_volume_ul == 400
    assert ledger.record("other").liquids == {}


def test_processes_share_a_ledger_file_without_losing_updates(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), solution], env=env)
        for solution in ("AgNO3", "AgNO3", "NaBH4")
    ]
    assert [w.wait(timeout=20) for w in writers] == [0, 0, 0]
    record = SampleLedger(path).record("vial")
    assert record.liquids["AgNO3"].volume_ul == 80  # two writers x 40, none lost
    assert record.liquids["NaBH4"].volume_ul == 40
