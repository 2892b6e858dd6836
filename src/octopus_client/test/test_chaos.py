"""Chaos in CI (issue 10): a busy simulated lab, its scheduler and modules SIGKILLed at random
while two users submit good jobs, bad jobs and bursts. Bounded to about a minute; the longer
run is `python -m octopus_client.chaos --duration 600` (README: "Chaos")."""

from __future__ import annotations

import random
from pathlib import Path

import psutil

from octopus_client.chaos import run_chaos


def test_random_kills_and_bad_input_lose_nothing(tmp_path: Path) -> None:
    seed = random.SystemRandom().randrange(1_000_000)
    print(f"chaos seed {seed} (repeat: python -m octopus_client.chaos --seed {seed})")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    report = run_chaos(30.0, seed, out=tmp_path, kill_every_s=(4.0, 8.0), settle_timeout_s=120.0)
    print(report)
    log = (tmp_path / "nodes.log").read_text(errors="replace")
    assert sum(report.kills.values()) >= 2, log[-3000:]
    assert report.accepted > 5 and report.rejected_bad > 0
    assert report.accepted_bad == 0  # every bad script was refused
    assert report.jobs_lost == [] and report.jobs_stuck == [], log[-5000:]
    assert report.jobs_quarantined == []  # only bad data is set aside, and none got in
    assert report.jobs_ended == report.jobs_in_store >= report.accepted
    assert report.measurements_found == report.measurements_expected > 0
    assert report.device_overlaps == []
    # every node process is gone
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert left == []
