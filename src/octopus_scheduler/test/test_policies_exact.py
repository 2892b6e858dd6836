"""Each policy on small hand-checked scenarios, with the exact expected timelines."""

from __future__ import annotations

from typing import Any

import pytest

from octopus_scheduler.twin.examples import synth_job, tiny_lab_data
from octopus_scheduler.twin.examples import task_spans as timeline
from octopus_scheduler.twin.scenario import parse_scenario
from octopus_scheduler.twin.simulator import simulate


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
    from octopus_scheduler.core import events as ev
    from octopus_scheduler.core.jobscript import parse_job_script
    from octopus_scheduler.core.policies.planner import Planner
    from octopus_scheduler.core.scheduler_core import SchedulerCore

    sc = scenario([{"script": synth_job(batch=2, react="300 s")}], capacity=3)
    core = SchedulerCore(sc.lab, "planner", clock=lambda: 0.0)
    for i, batch in enumerate((2, 1, 1)):
        core.handle(ev.JobSubmitted(f"j{i}", parse_job_script(synth_job(batch=batch), sc.lab)))
    policy = core.policy
    assert isinstance(policy, Planner) and policy.mode_history
    _, chosen, scores = policy.mode_history[-1]
    assert set(scores) == set(policy.modes)
    assert scores[chosen] == min(scores.values())
    assert (
        policy.protect_critical,
        policy.admitted_first,
        policy.fifo,
        policy.within_job,
        policy.reference,
    ) == chosen
    assert {mode[3] for mode in policy.modes} == {"ready", "chunk"}
    # the reference systems' exact rules are candidates too
    assert {mode[4] for mode in policy.modes} == {"", "closed_packing", "backfill"}


def dosing_lab_scenario(read_s: int) -> Any:
    """One job of 3 vials: Prep (Arm, 2 s), two Adds (Pump, 10 s each), React (standby, 30 s),
    then Read (Spec, ``read_s``) on another module: the pump is the bottleneck."""
    lab = {
        "modules": {
            "Synth": {
                "devices": ["Arm", "Pump"],
                "slots": {"stirrer": 3},
                "tasks": {
                    "Prep": {"per": "sample", "mask": ["Arm"], "duration": {"per_sample": 2}},
                    "Add": {"per": "sample", "mask": ["Pump"], "duration": {"per_sample": 10}},
                    "React": {"per": "batch", "kind": "standby", "duration": 30},
                },
            },
            "Meas": {
                "devices": ["Spec"],
                "slots": {"holder": 1},
                "tasks": {"Read": {"per": "sample", "mask": ["Spec"], "duration": read_s}},
            },
        }
    }
    job = {
        "metadata": {"name": "dose", "owner": "alice"},
        "campaign": {"kind": "manual", "experiments": [{}, {}, {}]},
        "process": {
            "Synthesis": {"Synth": {"sequence": ["Prep", "Add", "Add", "React"]}},
            "Characterization": {"Meas": {"sequence": ["Read"]}},
        },
    }
    return parse_scenario({"lab": lab, "jobs": [{"id": "0", "submit": 0, "script": job}]})


def test_planner_doses_the_oldest_vial_first_so_reactions_end_one_by_one():
    sc = dosing_lab_scenario(read_s=15)
    ends = {}
    for order in ("ready", "chunk"):
        options = {"rollouts": False, "within_job": order}
        rep = simulate(sc, "planner", policy_options=options, check=True)
        tl = timeline(rep)
        # (a manual campaign: one group per vial) the containers are prepared back to back
        assert [tl[f"0:g{v}c0:Prep#0"] for v in range(3)] == [(0, 2), (2, 4), (4, 6)]
        ends[order] = {v: tl[f"0:g{v}c0:Read#0"] for v in range(3)}
        assert rep.jobs[0]["end"] == ends[order][2][1]
    # earliest-ready first: every vial's first Add before any second Add, so the three
    # reactions end 10 s apart (72, 82, 92) and the 15 s reads queue behind each other
    assert ends["ready"] == {0: (72, 87), 1: (87, 102), 2: (102, 117)}
    # oldest work first: vial 0 is dosed by 22 and reacts while vial 1 is dosed, so reactions
    # end at 52, 72, 92 and each read starts as its reaction ends
    assert ends["chunk"] == {0: (52, 67), 1: (72, 87), 2: (92, 107)}


def test_planner_refuses_an_unknown_order_within_a_job():
    sc = dosing_lab_scenario(read_s=15)
    with pytest.raises(ValueError, match="within_job orders are ready, chunk, admit_chunk"):
        simulate(sc, "planner", policy_options={"within_orders": "ready,depth"})
    with pytest.raises(ValueError, match="within_orders needs at least one order"):
        simulate(sc, "planner", policy_options={"within_orders": []})


@pytest.mark.parametrize("reference", ["closed_packing", "backfill", "fcfs"])
def test_planner_reference_mode_decides_exactly_as_the_reference_policy(reference):
    """The look-ahead's reference candidates are the reference policies' exact rules: followed
    for good (no look-ahead), the planner's timeline is that policy's, step for step."""
    from octopus_scheduler.twin.generator import random_scenario

    for seed in (2, 7):
        sc = random_scenario(seed, jobs=12)
        ref = simulate(sc, reference)
        options = {"rollouts": False, "reference": reference}
        rep = simulate(sc, "planner", policy_options=options, check=True)
        assert rep.timeline == ref.timeline
        assert rep.sums == ref.sums


def test_planner_refuses_an_unknown_reference():
    sc = dosing_lab_scenario(read_s=15)
    with pytest.raises(ValueError, match="references are closed_packing, backfill, fcfs"):
        simulate(sc, "planner", policy_options={"references": "srpt"})
    with pytest.raises(ValueError, match="reference is one of closed_packing, backfill, fcfs"):
        simulate(sc, "planner", policy_options={"reference": "srpt"})


def test_the_priority_guard_keeps_the_promise_by_class_by_job_or_not_at_all():
    from octopus_scheduler.core.policies.planner import keeps_promises_of

    priorities = {"low": 0, "a": 1, "b": 1, "top": 2}
    own = {"low": 50.0, "a": 10.0, "b": 20.0, "top": 5.0}
    swapped = {"low": 40.0, "a": 20.0, "b": 10.0, "top": 5.0}  # a and b swap places
    later = {"low": 10.0, "a": 10.0, "b": 21.0, "top": 5.0}  # class 1 ends later in sum

    def keeps(guard: str, ends: dict[str, float], deadlines: tuple[str, ...] = ()) -> bool:
        return keeps_promises_of(guard, priorities, deadlines, ends, own)

    # "class": jobs of one priority may swap places, the class may not end later in sum
    assert keeps("class", swapped) and not keeps("class", later)
    # "job": no job above the lowest priority may end later
    assert not keeps("job", swapped) and not keeps("job", later)
    assert keeps("job", {**own, "low": 60.0})
    # "off": priorities are not weighed, but a deadline job never ends later
    assert keeps("off", later) and not keeps("off", later, deadlines=("b",))
    # a deadline is kept whatever the guard; the lowest priority class is never protected
    assert not keeps("class", swapped, deadlines=("a",))
    assert keeps("class", {**own, "low": 99.0})


def test_planner_refuses_an_unknown_priority_guard():
    sc = dosing_lab_scenario(read_s=15)
    with pytest.raises(ValueError, match="priority_guard is one of class, job, off, not 'all'"):
        simulate(sc, "planner", policy_options={"priority_guard": "all"})


def test_the_look_ahead_runs_by_default_while_up_to_30_jobs_are_live():
    from octopus_scheduler.core import events as ev
    from octopus_scheduler.core.jobscript import parse_job_script
    from octopus_scheduler.core.policies.planner import Planner
    from octopus_scheduler.core.scheduler_core import SchedulerCore

    sc = scenario([{"script": synth_job()}], capacity=3)
    core = SchedulerCore(sc.lab, "planner", clock=lambda: 0.0)
    for i in range(32):
        core.handle(ev.JobSubmitted(f"j{i}", parse_job_script(synth_job(), sc.lab)))
    policy = core.policy
    assert isinstance(policy, Planner)
    # one look-ahead per submission from the second (2 live jobs) to the 30th
    assert len(policy.mode_history) == 29


def test_a_deferred_look_ahead_answers_only_the_events_before_its_copy():
    """A live lab looks ahead on a copy outside its lock; a job submitted meanwhile still gets a
    look-ahead of its own, and the logged choice replays as it was made."""
    from octopus_scheduler.core import events as ev
    from octopus_scheduler.core.jobscript import parse_job_script
    from octopus_scheduler.core.scheduler_core import SchedulerCore

    sc = scenario([{"script": synth_job()}], capacity=3)
    options = {"inline_jobs": 0}  # (by default up to 5 live jobs are looked at in the event)
    core = SchedulerCore(
        sc.lab, "planner", clock=lambda: 0.0, defer_lookahead=True, policy_options=options
    )

    def submit(job_id: str) -> None:
        core.handle(ev.JobSubmitted(job_id, parse_job_script(synth_job(batch=2), sc.lab)))

    for i in range(3):
        submit(f"j{i}")
    policy = core.policy
    assert policy.rules_due() and policy.mode_history == []  # nothing ran in the submissions
    assert core.next_wake() == core.now  # a Tick is wanted now
    replan = policy.rules_due()
    assert replan == 3  # the choice will answer the three submissions
    copy = core.fork()
    rules = copy.policy.choose_rules(copy)
    assert rules in policy.modes
    submit("late")  # arrives while the look-ahead runs
    core.handle(ev.RulesChosen(rules, replan))
    assert policy.mode_history[-1][1] == rules
    assert policy.rules_due()  # the late job still wants one
    latest = policy.rules_due()
    copy = core.fork()
    core.handle(ev.RulesChosen(copy.policy.choose_rules(copy), latest))
    assert not policy.rules_due() and core.next_wake() is None
    # a choice older than the newest one applied is not followed
    mode = policy._mode()
    stale = next(m for m in policy.modes if m != mode)
    core.handle(ev.RulesChosen(stale, replan))
    assert policy._mode() == mode
    # the stored form of the choice reads back as the same event
    event = ev.RulesChosen(rules, replan, time=1.0)
    assert ev.from_dict(ev.to_dict(event), sc.lab) == event


def test_a_live_lab_asks_for_no_tick_when_too_many_jobs_are_live_to_look_ahead():
    from octopus_scheduler.core import events as ev
    from octopus_scheduler.core.jobscript import parse_job_script
    from octopus_scheduler.core.scheduler_core import SchedulerCore

    sc = scenario([{"script": synth_job()}], capacity=3)
    options = {"inline_jobs": 0, "rollout_jobs": 3}
    core = SchedulerCore(
        sc.lab, "planner", clock=lambda: 0.0, defer_lookahead=True, policy_options=options
    )
    for i in range(3):
        core.handle(ev.JobSubmitted(f"j{i}", parse_job_script(synth_job(), sc.lab)))
    assert core.policy.rules_due()  # 3 live jobs: a look-ahead for the next tick
    core.handle(ev.JobSubmitted("j3", parse_job_script(synth_job(), sc.lab)))
    # 4 live jobs: none is looked at (as in the twin), so no tick and no copy of the core
    assert not core.policy.rules_due() and core.next_wake() is None


def test_a_planner_remembers_its_last_choices_only() -> None:
    # one look-ahead per submission: a lab that runs for months must not keep them all
    from octopus_scheduler.core.policies.planner import HISTORY_KEPT, _remember

    history: list[int] = []
    for entry in range(HISTORY_KEPT + 500):
        _remember(history, entry)
    assert history == list(range(500, HISTORY_KEPT + 500))
