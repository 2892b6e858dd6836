"""`python -m octopus_scheduler.twin.option_compare`: option sets of a policy over generated
days."""

from __future__ import annotations

import pytest

from octopus_scheduler.twin.generator import random_scenario
from octopus_scheduler.twin.option_compare import compare, format_compare, main, parse_variant
from octopus_scheduler.twin.simulator import simulate


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


def test_policies_mode_prints_its_seed_and_repeats_with_it(capsys):
    from octopus_scheduler.twin.option_compare import compare_policies, day_seeds

    args = ["--policies", "planner,closed_packing", "--days", "1", "--setting", "6/0.7/0.2"]
    assert main([*args, "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("seed 3 (repeat: --policies planner,closed_packing --days 1 --seed 3")
    assert main([*args, "--seed", "3"]) == 0
    assert (
        capsys.readouterr().out.replace("CPU", "\0").split("\0")[0]
        == (first.replace("CPU", "\0").split("\0")[0])
    )  # the same days, the same table (CPU times differ)
    seeds = day_seeds(3, [(6, 0.7, 0.2)], 1)
    days, _ = compare_policies(["planner", "closed_packing"], [(6, 0.7, 0.2)], seeds)
    sc = random_scenario(seeds[0][0], jobs=6, load=0.7, bo_share=0.2)
    direct = simulate(sc, "closed_packing", timeline=False)
    assert days[0].totals_h["closed_packing"] == direct.sums["total"] / 3600
    rel = days[0].totals_h["planner"] / days[0].totals_h["closed_packing"] - 1
    assert f"worst day: setting 6/0.7/0.2 seed {seeds[0][0]}" in first
    assert f"({rel:+.1%})" in first
    with pytest.raises(SystemExit):
        main(["--policies", "planner", "--days", "1", "--setting", "6/0.7"])
    assert "wants JOBS/LOAD/BO_SHARE" in capsys.readouterr().err


def test_policies_mode_draws_a_seed_when_none_is_given(capsys):
    assert main(["--policies", "closed_packing", "--days", "1", "--setting", "4/0.5/0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seed ") and "--seed " in out.splitlines()[0]
