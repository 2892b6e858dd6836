"""The planner's CP-SAT improvement (option ``improve: cpsat``, policies/improver.py)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.invariants import check_invariants
from octopus_scheduler.core.policies.planner import Planner
from octopus_scheduler.core.scheduler_core import SchedulerCore
from octopus_scheduler.twin import simulate_cli
from octopus_scheduler.twin.generator import random_scenario
from octopus_scheduler.twin.scenario import Scenario, parse_scenario
from octopus_scheduler.twin.simulator import simulate

IMPROVE = {"improve": "cpsat"}
FINAL = {"succeeded", "failed", "cancelled"}
# a two-machine flow shop: each job mixes on the arm (a s), then is read on the spectrometer (b s)
FLOW_SHOP = [(90, 10), (40, 80), (30, 90)]


def flow_shop_lab() -> dict[str, Any]:
    def module(device: str, task: str) -> dict[str, Any]:
        return {
            "devices": [device],
            "slots": {"pos": 4},
            "tasks": {
                task: {
                    "per": "sample",
                    "mask": [device],
                    "params": {"Time": {"unit": "s", "min": 0, "max": 10000}},
                    "duration": {"param": "Time"},
                }
            },
        }

    return {"modules": {"Synth": module("Arm", "Mix"), "Meas": module("Spec", "Read")}}


def flow_shop_jobs(times: list[tuple[int, int]]) -> list[dict[str, Any]]:
    def job(a: int, b: int) -> dict[str, Any]:
        return {
            "metadata": {"name": "j", "owner": "u"},
            "campaign": {"kind": "manual", "experiments": [{}]},
            "process": {
                "Synthesis": {
                    "Synth": {"sequence": [{"task": "Mix", "params": {"Time": f"{a} s"}}]}
                },
                "Characterization": {
                    "Meas": {"sequence": [{"task": "Read", "params": {"Time": f"{b} s"}}]}
                },
            },
        }

    return [{"id": str(i), "submit": 0, "script": job(a, b)} for i, (a, b) in enumerate(times)]


def flow_shop(times: list[tuple[int, int]]) -> Scenario:
    return parse_scenario({"lab": flow_shop_lab(), "jobs": flow_shop_jobs(times)})


def best_permutation_total(times: list[tuple[int, int]]) -> float:
    """Σ completion of the best job order (for two machines in series an order is optimal)."""
    best = float("inf")
    for order in itertools.permutations(times):
        arm = spec = total = 0
        for a, b in order:
            arm += a
            spec = max(spec, arm) + b
            total += spec
        best = min(best, total)
    return best


def starts(report: Any) -> list[tuple[str, float, float]]:
    return [(r["step_id"], r["start"], r["end"]) for r in report.timeline]


def test_improver_finds_the_optimal_order_the_rules_miss():
    sc = flow_shop(FLOW_SHOP)
    optimum = best_permutation_total(FLOW_SHOP)
    assert optimum == 490
    plain = simulate(sc, "planner", check=True)
    assert plain.sums["total"] == 550  # every rule mode runs job 1's mix first
    improved = simulate(sc, "planner", policy_options=IMPROVE, check=True)
    assert [j["state"] for j in improved.jobs] == ["succeeded"] * 3
    assert improved.sums["total"] == optimum
    tl = {r["step_id"]: (r["start"], r["end"]) for r in improved.timeline}
    # mix order 2, 0, 1: the long mix of job 0 runs while job 2 is read
    assert tl["2/g0c0/0.Mix.Mix#0"] == (0, 30)
    assert tl["0/g0c0/0.Mix.Mix#0"] == (30, 120)
    assert tl["1/g0c0/0.Mix.Mix#0"] == (120, 160)
    assert [j["total"] for j in improved.jobs] == [130, 240, 120]


def test_the_published_plan_is_the_improved_one_and_says_why():
    sc = flow_shop(FLOW_SHOP)
    core = SchedulerCore(sc.lab, "planner", clock=lambda: 0.0, policy_options=IMPROVE)
    out = core.handle([ev.JobSubmitted(j.job_id, j.spec, time=0.0) for j in sc.jobs])
    assert [d.step_id for d in out if isinstance(d, dc.StartStep)] == ["2/g0c0/0.Mix.Mix#0"]
    policy = core.policy
    assert isinstance(policy, Planner)
    (made_at, rules, improved, status) = policy.improve_history[-1]
    assert (made_at, rules, improved) == (0.0, 550.0, 490.0)
    assert status == "OPTIMAL"
    plan = {p.step_id: p for p in core.plan()}
    assert (plan["0/g0c0/0.Mix.Mix#0"].start, plan["1/g0c0/0.Mix.Mix#0"].start) == (30, 120)
    assert plan["1/g0c0/0.Mix.Mix#0"].reason == "devices Arm held by 0/g0c0/0.Mix.Mix#0 until 120"
    ends = {p.job_id: p.end for p in plan.values()}
    assert sum(ends.values()) == 490


def test_improved_runs_are_deterministic_and_replay_exactly():
    sc = flow_shop(FLOW_SHOP + [(20, 60)])
    a = simulate(sc, "planner", policy_options=IMPROVE)
    b = simulate(sc, "planner", policy_options=IMPROVE)
    assert starts(a) == starts(b)
    # drive a core by hand, one event per call as replay applies them, then rebuild it from its
    # event log: the same steps at the same times
    now = 0.0
    core = SchedulerCore(sc.lab, "planner", clock=lambda: now, policy_options=IMPROVE)
    pending: list[tuple[float, str]] = []
    out = []
    for j in sc.jobs:
        out += core.handle(ev.JobSubmitted(j.job_id, j.spec, time=0.0))
    while True:
        pending += [(now + d.expected_s, d.step_id) for d in out if isinstance(d, dc.StartStep)]
        if not pending:
            break
        pending.sort()
        now, step_id = pending.pop(0)
        out = core.handle(ev.StepFinished(step_id, time=now))
    twin = SchedulerCore.replay(sc.lab, "planner", core.event_log, policy_options=IMPROVE)
    assert [(s.id, s.start, s.end) for s in twin._steps.values()] == [
        (s.id, s.start, s.end) for s in core._steps.values()
    ]
    policy = core.policy
    assert isinstance(policy, Planner) and len(policy.improve_history) == len(sc.jobs) - 1
    assert any(
        better is not None and better < rules for _, rules, better, _ in policy.improve_history
    )


def test_off_by_default_and_validated():
    sc = flow_shop(FLOW_SHOP)
    core = SchedulerCore(sc.lab, "planner", clock=lambda: 0.0)
    core.handle([ev.JobSubmitted(j.job_id, j.spec, time=0.0) for j in sc.jobs])
    policy = core.policy
    assert isinstance(policy, Planner)
    assert not policy.improve and policy.improve_history == [] and policy._override is None
    with pytest.raises(ValueError, match="improve"):
        Planner({"improve": "milp"})


def test_an_override_is_dropped_when_a_job_arrives():
    sc = flow_shop(FLOW_SHOP)
    now = 0.0
    core = SchedulerCore(sc.lab, "planner", clock=lambda: now, policy_options=IMPROVE)
    core.handle([ev.JobSubmitted(j.job_id, j.spec, time=0.0) for j in sc.jobs])
    policy = core.policy
    assert isinstance(policy, Planner) and policy._override is not None
    now = 10.0
    extra = flow_shop([(5, 5)]).jobs[0]
    core.handle(ev.JobSubmitted("late", extra.spec, time=now))
    # the new job was planned for: a new improvement ran on the live state at t = 10
    assert policy.improve_history[-1][0] == 10.0
    check_invariants(core)


def test_a_generated_day_improves_and_keeps_every_rule():
    sc = random_scenario(4, jobs=10, modules=3, load=1.5)
    plain = simulate(sc, "planner", check=True)
    improved = simulate(sc, "planner", policy_options=IMPROVE, check=True)
    assert all(j["state"] == "succeeded" for j in improved.jobs)
    assert improved.sums["total"] < plain.sums["total"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    jobs=st.integers(2, 8),
    modules=st.integers(1, 3),
    noise=st.sampled_from([0.0, 0.3]),
    failures=st.sampled_from([0.0, 0.1]),
    events=st.booleans(),
)
def test_invariants_hold_and_every_job_ends_with_improvement(
    seed, jobs, modules, noise, failures, events
):
    sc = random_scenario(
        seed,
        jobs=jobs,
        modules=modules,
        load=3.0,
        noise_sigma=noise,
        failure_probability=failures,
        events=events,
    )
    report = simulate(sc, "planner", policy_options=IMPROVE, check=True)
    assert {j["state"] for j in report.jobs} <= FINAL


def test_simulate_cli_takes_policy_options(tmp_path, capsys):
    path = tmp_path / "flow-shop.yaml"
    path.write_text(json.dumps({"lab": flow_shop_lab(), "jobs": flow_shop_jobs(FLOW_SHOP)}))
    args = [str(path), "--policy", "planner", "--json"]
    assert simulate_cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)["sums"]["total"] == 550
    assert simulate_cli.main([*args, "--policy-option", "improve=cpsat"]) == 0
    assert json.loads(capsys.readouterr().out)["sums"]["total"] == 490
    assert simulate_cli.main([*args, "--policy-option", "improve"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert simulate_cli.main([*args, "--policy-option", "improve=milp"]) == 2
    assert "improve must be" in capsys.readouterr().err
