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


def test_policies_mode_adds_planner_variants_and_the_high_priority_sum(capsys):
    from octopus_scheduler.twin.option_compare import compare_policies, day_seeds

    setting = (8, 0.9, 0.3)
    args = ["--policies", "planner,closed_packing", "--days", "1", "--setting", "8/0.9/0.3"]
    variant = "strict:priority_guard=job,rollout_jobs=5"
    assert main([*args, "--seed", "5", "--planner-variant", variant]) == 0
    out = capsys.readouterr().out
    assert f"--planner-variant {variant}" in out.splitlines()[0]  # the repeat line has it
    seeds = day_seeds(5, [setting], 1)
    days, cpu = compare_policies(
        ["planner", "closed_packing"],
        [setting],
        seeds,
        variants={"strict": ("planner", {"priority_guard": "job", "rollout_jobs": 5})},
    )
    assert list(cpu) == ["planner", "closed_packing", "strict"]
    sc = random_scenario(seeds[0][0], jobs=8, load=0.9, bo_share=0.3)
    strict = simulate(sc, "planner", policy_options={"priority_guard": "job", "rollout_jobs": 5})
    assert days[0].totals_h["strict"] == strict.sums["total"] / 3600
    low = min(j.spec.metadata.priority for j in sc.jobs)
    high = {j.job_id for j in sc.jobs if j.spec.metadata.priority > low}
    assert high  # the day has jobs above its lowest priority
    expected = sum(j["total"] for j in strict.jobs if j["job_id"] in high) / 3600
    assert days[0].high_totals_h["strict"] == pytest.approx(expected)
    assert f"strict {expected:.1f} h" in out.split("lowest priority:")[1]
    assert main([*args, "--seed", "5", "--planner-variant", "x:priority_guard=all"]) == 2
    assert "priority_guard is one of class, job, off" in capsys.readouterr().err
