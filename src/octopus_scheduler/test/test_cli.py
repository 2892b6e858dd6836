"""`octopus simulate` and `octopus bench` entry points."""

from __future__ import annotations

import json

from octopus_scheduler import bench, simulate_cli


def test_simulate_json(capsys):
    assert simulate_cli.main(["fig5d-parallelisation", "--policy", "backfill", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"] == "backfill"
    assert report["sums"]["waiting"] == 2.5 * 3600
    assert report["makespan"] == 9 * 3600
    # a work and a standby step per module visit: 6 + 4 + 5 + 5 + 3 + 3 + 4 visits
    assert len(report["timeline"]) == 2 * 30


def test_simulate_table_and_bad_scenario(capsys):
    assert simulate_cli.main(["fig8-platform-day", "--policy", "fcfs", "--all-at-start"]) == 0
    out = capsys.readouterr().out
    assert "makespan 16.86 h" in out
    assert simulate_cli.main(["no-such-scenario"]) == 2


def test_bench_prints_every_policy_next_to_the_published_numbers():
    text = bench.format_bench(bench.collect(offline_seconds=0, latency=False))
    for word in (
        "published fcfs",
        "published octopus",
        "fcfs",
        "backfill",
        "closed_packing",
        "planner",
        "147.02",
        "21.29",
        "bounds",
    ):
        assert word in text
