"""What is in each simulated sample: the liquids dosed into it and the powders weighed in.

Simulated pumps, pipettes and powder dispensers write to the ledger; the simulated
spectrometer reads it, so a spectrum depends on how the sample was made. Modules
of one simulated lab share a ledger: in one process by sharing the object, across
processes (one node per module) by giving every ledger the same ``path``: a JSON
file updated under an exclusive file lock and replaced atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Liquid:
    volume_ul: float = 0.0
    #: volume-weighted mean dosing rate (uL/s): how fast the reagent went in matters
    mean_rate_ul_s: float = 0.0


@dataclass
class SampleRecord:
    liquids: dict[str, Liquid] = field(default_factory=dict)
    powders_mg: dict[str, float] = field(default_factory=dict)

    @property
    def total_volume_ul(self) -> float:
        return sum(liquid.volume_ul for liquid in self.liquids.values())


class SampleLedger:
    """Thread-safe (and, with ``path``, process-safe) record of sample contents."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._records: dict[str, SampleRecord] = {}

    def add_liquid(self, sample: str, solution: str, volume_ul: float, rate_ul_s: float) -> None:
        with self._edit() as records:
            record = records.setdefault(sample, SampleRecord())
            liquid = record.liquids.setdefault(solution, Liquid())
            total = liquid.volume_ul + volume_ul
            if total > 0:
                liquid.mean_rate_ul_s = (
                    liquid.mean_rate_ul_s * liquid.volume_ul + rate_ul_s * volume_ul
                ) / total
            liquid.volume_ul = total

    def add_powder(self, sample: str, powder: str, mass_mg: float) -> None:
        with self._edit() as records:
            record = records.setdefault(sample, SampleRecord())
            record.powders_mg[powder] = record.powders_mg.get(powder, 0.0) + mass_mg

    def record(self, sample: str) -> SampleRecord:
        """The contents of ``sample`` (empty if nothing was recorded)."""
        with self._lock:
            records = self._load() if self.path else self._records
            return records.get(sample, SampleRecord())

    # ---- storage ----------------------------------------------------------

    @contextmanager
    def _edit(self) -> Iterator[dict[str, SampleRecord]]:
        with self._lock:
            if self.path is None:
                yield self._records
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_suffix(".lock"), "w") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                records = self._load()
                yield records
                tmp = self.path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(_dump(records)), encoding="utf-8")
                os.replace(tmp, self.path)

    def _load(self) -> dict[str, SampleRecord]:
        assert self.path is not None
        if not self.path.exists():
            return {}
        return _parse(json.loads(self.path.read_text(encoding="utf-8")))


def _dump(records: dict[str, SampleRecord]) -> dict[str, Any]:
    return {
        sample: {
            "liquids": {k: [v.volume_ul, v.mean_rate_ul_s] for k, v in r.liquids.items()},
            "powders_mg": r.powders_mg,
        }
        for sample, r in records.items()
    }


def _parse(data: dict[str, Any]) -> dict[str, SampleRecord]:
    return {
        sample: SampleRecord(
            {k: Liquid(float(v[0]), float(v[1])) for k, v in r["liquids"].items()},
            {k: float(v) for k, v in r["powders_mg"].items()},
        )
        for sample, r in data.items()
    }
