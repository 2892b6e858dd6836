"""Each policy on small hand-checked scenarios, with the exact expected timelines."""

from __future__ import annotations

from typing import Any

import pytest

from octopus_scheduler.examples import synth_job, tiny_lab_data
from octopus_scheduler.examples import task_spans as timeline
from octopus_scheduler.scenario import parse_scenario
from octopus_scheduler.simulator import simulate


def scenario(jobs: list[dict[str, Any]], capacity: int = 2) -> Any:
    return parse_scenario(
        {
            "lab": tiny_lab_data(capacity),
            "jobs": [
                {"id": j.get("id", str(i)), "submit": j.get("submit", 0), "script": j["script"]}
                for i, j in enumerate(jobs)
            ],
        }
    )


def test_standby_frees_devices_for_the_next_job():
    sc = scenario([{"script": synth_job()}, {"script": synth_job()}])
    for policy in ("backfill", "closed_packing"):
        tl = timeline(simulate(sc, policy, check=True))
        assert tl["0:g0c0:Prep#0"] == (0, 10)
        assert tl["0:g0c0:Add#0"] == (10, 15)
        assert tl["0:g0c0:React#b"] == (15, 115)
        # job 1 uses the arm while job 0 reacts
        assert tl["1:g0c0:Prep#0"] == (10, 20)
        assert tl["1:g0c0:Add#0"] == (20, 25)
        assert tl["1:g0c0:React#b"] == (25, 125)


def test_fcfs_runs_one_job_at_a_time():
    sc = scenario([{"script": synth_job()}, {"script": synth_job()}])
    rep = simulate(sc, "fcfs", check=True)
    tl = timeline(rep)
    assert tl["0:g0c0:React#b"] == (15, 115)
    assert tl["1:g0c0:Prep#0"] == (115, 125)
    assert tl["1:g0c0:React#b"] == (130, 230)
    assert [j["waiting"] for j in rep.jobs] == [0, 115]
    assert rep.sums["total"] == 115 + 230


def test_fcfs_module_scope_holds_the_module_for_the_whole_task():
    sc = scenario([{"script": synth_job()}, {"script": synth_job()}])
    rep = simulate(sc, "fcfs", policy_options={"scope": "module"}, check=True)
    tl = timeline(rep)
    # React holds no device even unshared (its task has no active step), so job 1 overlaps it
    assert tl["1:g0c0:Prep#0"] == (10, 20)


def test_slots_limit_admission_backfill_waits_closed_packing_splits():
    jobs = [{"script": synth_job(batch=2)}, {"script": synth_job(batch=2)}]
    sc = scenario(jobs, capacity=3)
    tl = timeline(simulate(sc, "backfill", check=True))
    # job 0: Prep#0 0-10, Prep#1 10-20, Add#0 10-15, Add#1 20-25, React 25-125
    assert tl["0:g0c0:Add#0"] == (10, 15)
    assert tl["0:g0c0:React#b"] == (25, 125)
    # job 1 needs 2 of the 3 stirrers: it waits until job 0's samples leave at 125
    assert tl["1:g0c0:Prep#0"] == (125, 135)
    assert tl["1:g0c0:React#b"] == (150, 250)
    tl = timeline(simulate(sc, "closed_packing", check=True))
    # closed packing admits one sample into the free stirrer as soon as the arm is free
    assert tl["1:g0c0:Prep#0"] == (20, 30)
    assert tl["1:g0c0:React#b"] == (35, 135)
    # the second sample waits for a stirrer: chunk 0 of job 0 leaves at 125
    assert tl["1:g0c1:Prep#0"] == (125, 135)
    assert tl["1:g0c1:React#b"] == (140, 240)


def test_planner_runs_the_short_job_first():
    long_job = synth_job(batch=2, react="10 s")
    short_job = synth_job(batch=1, react="10 s")
    sc = scenario([{"script": long_job}, {"script": short_job}], capacity=3)
    fifo = simulate(sc, "closed_packing", check=True)
    assert [j["end"] for j in fifo.jobs] == [35, 45]
    rep = simulate(
        sc, "planner", policy_options={"protect_critical": False, "rollouts": False}, check=True
    )
    tl = timeline(rep)
    assert tl["1:g0c0:Prep#0"] == (0, 10)
    assert tl["1:g0c0:React#b"] == (15, 25)
    assert tl["0:g0c0:Prep#0"] == (10, 20)
    assert [j["end"] for j in rep.jobs] == [45, 25]
    assert rep.sums["total"] < fifo.sums["total"]


def test_planner_priority_beats_arrival_order():
    low = synth_job(react="10 s")
    high = synth_job(react="10 s")
    high["metadata"]["priority"] = 5
    sc = scenario([{"script": low}, {"script": high}], capacity=3)
    tl = timeline(simulate(sc, "planner", check=True))  # priority holds in every rule mode
    assert tl["1:g0c0:Prep#0"] == (0, 10)
    assert tl["0:g0c0:Prep#0"] == (10, 20)


def test_planner_does_not_delay_the_reserved_step():
    # job 0 (higher priority) measures after reacting: its Read (Spec + ArmA) becomes ready at 25.
    # Job 1 arrives at 24; its 10 s Prep would hold the arm past 25 and delay that measurement,
    # so it waits for the measurement to end.
    first = synth_job(react="10 s", measure=True)
    first["metadata"]["priority"] = 1
    second = synth_job(react="10 s")
    sc = scenario([{"script": first}, {"id": "1", "submit": 24, "script": second}], capacity=3)
    tl = timeline(simulate(sc, "planner", policy_options={"rollouts": False}, check=True))
    assert tl["0:g0c0:Read#0"] == (25, 45)
    assert tl["1:g0c0:Prep#0"][0] == 45


@pytest.mark.parametrize("policy", ["fcfs", "backfill", "closed_packing", "planner"])
def test_every_policy_finishes_every_job(policy):
    jobs = [{"script": synth_job(batch=2, measure=True), "submit": 7 * i} for i in range(4)]
    rep = simulate(scenario(jobs), policy, check=True)
    assert all(j["state"] == "succeeded" for j in rep.jobs)


def test_planner_rollouts_keep_the_mode_with_the_smallest_projected_sum():
    from octopus_scheduler import events as ev
    from octopus_scheduler.core import SchedulerCore
    from octopus_scheduler.jobscript import parse_job_script
    from octopus_scheduler.policies.planner import Planner

    sc = scenario([{"script": synth_job(batch=2, react="300 s")}], capacity=3)
    core = SchedulerCore(sc.lab, "planner", clock=lambda: 0.0)
    for i, batch in enumerate((2, 1, 1)):
        core.handle(ev.JobSubmitted(f"j{i}", parse_job_script(synth_job(batch=batch), sc.lab)))
    policy = core.policy
    assert isinstance(policy, Planner) and policy.mode_history
    _, chosen, scores = policy.mode_history[-1]
    assert set(scores) == set(policy.modes)
    assert scores[chosen] == min(scores.values())
    assert (policy.protect_critical, policy.admitted_first, policy.fifo) == chosen
