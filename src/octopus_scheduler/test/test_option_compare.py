"""`python -m octopus_scheduler.option_compare`: option sets of a policy over generated days."""

from __future__ import annotations

import pytest

from octopus_scheduler.generator import random_scenario
from octopus_scheduler.option_compare import compare, format_compare, main, parse_variant
from octopus_scheduler.simulator import simulate


def test_parse_variant_reads_values_and_lists():
    assert parse_variant("default:") == ("default", {})
    assert parse_variant("a:within_orders=ready+chunk,rollout_jobs=3,fifo=true") == (
        "a",
        {"within_orders": "ready,chunk", "rollout_jobs": 3, "fifo": True},
    )
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_variant("a:rollouts")
    with pytest.raises(ValueError, match="LABEL"):
        parse_variant(":rollouts=false")


def test_compare_reports_each_variant_against_the_first():
    seeds = range(9, 10)  # a day where the order within a job matters
    variants = [("ready", {"within_orders": "ready"}), ("default", {})]
    results = compare(variants, seeds, jobs=20)
    sc = random_scenario(9, jobs=20)
    for res in results:  # the same numbers as simulating the day directly
        direct = simulate(sc, "planner", policy_options=res.options, timeline=False)
        assert res.totals_h == [direct.sums["total"] / 3600]
    assert results[0].totals_h != results[1].totals_h
    change = results[1].totals_h[0] / results[0].totals_h[0] - 1
    text = format_compare(results, seeds)
    assert f"{change:+.1%} vs ready" in text


def test_bad_option_is_an_error_not_a_traceback(capsys):
    assert main(["--seeds", "0:1", "--jobs", "3", "--variant", "x:within_orders=depth"]) == 2
    assert "within_job orders are ready, chunk, admit_chunk" in capsys.readouterr().err
