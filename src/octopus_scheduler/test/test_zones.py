"""Slot zones: samples holding a zoned slot type at once agree on its parameter (one hot plate,
one temperature). Small hand-checked scenarios with exact timelines, under every policy."""

from __future__ import annotations

from typing import Any

import pytest

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.errors import LabError
from octopus_scheduler.core.invariants import InvariantError, check_invariants
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.core.lab import load_lab, zone_key
from octopus_scheduler.core.policies import available_policies
from octopus_scheduler.core.scheduler_core import SchedulerCore
from octopus_scheduler.twin.examples import task_spans as timeline
from octopus_scheduler.twin.scenario import parse_scenario
from octopus_scheduler.twin.simulator import simulate

POLICIES = available_policies()


def hot_lab(capacity: int = 8, zoned: bool = True, reader: int = 1) -> dict[str, Any]:
    """Hot: an arm loads samples (10 s each) onto an 8-place plate; React (standby, Time) heats
    them at Temperature; Stir (standby) has no temperature. Reader: one holder, Read 20 s."""
    plate: Any = {"capacity": capacity, "zone_by": "React.Temperature"} if zoned else capacity
    return {
        "modules": {
            "Hot": {
                "devices": ["Arm"],
                "slots": {"plate": plate},
                "tasks": {
                    "Load": {"per": "sample", "mask": ["Arm"], "duration": {"per_sample": 10}},
                    "React": {
                        "per": "batch",
                        "kind": "standby",
                        "params": {
                            "Time": {"unit": "s", "min": 0, "max": 10000},
                            "Temperature": {"unit": "C", "min": 20, "max": 200},
                        },
                        "duration": {"param": "Time"},
                    },
                    "Stir": {
                        "per": "batch",
                        "kind": "standby",
                        "params": {"Time": {"unit": "s", "min": 0, "max": 10000}},
                        "duration": {"param": "Time"},
                    },
                },
            },
            "Reader": {
                "devices": ["Spec"],
                "slots": {"holder": reader},
                "tasks": {"Read": {"per": "sample", "mask": ["Spec"], "duration": 20}},
            },
        }
    }


def react_job(
    temp: float | None = None,
    batch: int = 1,
    temps: list[Any] | None = None,
    read: str | None = None,
) -> dict[str, Any]:
    """Load then React 100 s at ``temp`` (or per experiment ``temps``) on Hot; ``read``: the
    stage of a Read on Reader ("before" or "after" the plate)."""
    react: dict[str, Any] = {"task": "React", "params": {"Time": 100}}
    if temp is not None:
        react["params"]["Temperature"] = temp
    exps = [{"Temperature": t} for t in temps] if temps else [{} for _ in range(batch)]
    process: dict[str, Any] = {}
    if read == "before":
        process["Synthesis"] = {"Reader": {"sequence": ["Read"]}}
        process["Evaluation"] = {"Hot": {"sequence": ["Load", react]}}
    else:
        process["Synthesis"] = {"Hot": {"sequence": ["Load", react]}}
        if read == "after":
            process["Evaluation"] = {"Reader": {"sequence": ["Read"]}}
    return {
        "metadata": {"name": "j", "owner": "u"},
        "campaign": {"kind": "manual", "experiments": exps},
        "process": process,
    }


def stir_job(seconds: int = 300) -> dict[str, Any]:
    """Load then Stir: on the plate, but no React, so no temperature."""
    return {
        "metadata": {"name": "s", "owner": "u"},
        "campaign": {"kind": "manual", "experiments": [{}]},
        "process": {
            "Synthesis": {
                "Hot": {"sequence": ["Load", {"task": "Stir", "params": {"Time": seconds}}]}
            }
        },
    }


def scenario(jobs: dict[str, dict[str, Any]], **lab: Any) -> Any:
    return parse_scenario(
        {
            "lab": hot_lab(**lab),
            "jobs": [{"id": jid, "submit": 0, "script": s} for jid, s in jobs.items()],
        }
    )


# the exact timelines below are written for whole batches; the planner's one-sample chunks have
# their own test (test_the_planner_starts_each_sample_reacting_as_soon_as_it_is_loaded)
WHOLE = {"planner": {"split_samples": False}}


def all_succeeded(report: Any) -> bool:
    return all(j["state"] == "succeeded" for j in report.jobs)


# ---------------------------------------------------------------------- exact timelines
@pytest.mark.parametrize("policy", POLICIES)
def test_two_temperatures_on_one_plate_run_one_after_the_other(policy: str) -> None:
    sc = scenario({"a": react_job(60, batch=2), "b": react_job(80, batch=2)})
    rep = simulate(sc, policy, check=True, policy_options=WHOLE.get(policy))
    tl = timeline(rep)
    assert tl["a:g0c0:Load#0"] == (0, 10)
    assert tl["a:g0c0:Load#1"] == (10, 20)
    assert tl["a:g0c0:React#b"] == (20, 120)
    # the plate has room for b's two samples, but it is at 60 C until a's samples leave
    assert tl["b:g0c0:Load#0"] == (120, 130)
    assert tl["b:g0c0:Load#1"] == (130, 140)
    assert tl["b:g0c0:React#b"] == (140, 240)
    assert rep.sums["total"] == 120 + 240


@pytest.mark.parametrize("policy", ["backfill", "closed_packing", "planner"])
def test_same_temperature_shares_the_plate(policy: str) -> None:
    sc = scenario({"a": react_job(60, batch=2), "b": react_job(60, batch=2)})
    rep = simulate(sc, policy, check=True, policy_options=WHOLE.get(policy))
    tl = timeline(rep)
    assert tl["a:g0c0:React#b"] == (20, 120)
    # b loads while a reacts: both batches on the plate at 60 C from 40 to 120
    assert tl["b:g0c0:Load#0"] == (20, 30)
    assert tl["b:g0c0:Load#1"] == (30, 40)
    assert tl["b:g0c0:React#b"] == (40, 140)
    assert rep.sums["total"] == 120 + 140


def test_same_temperatures_without_the_zone_match_the_unzoned_lab() -> None:
    jobs = {"a": react_job(60, batch=2), "b": react_job(60, batch=2)}
    for policy in POLICIES:
        zoned = simulate(scenario(jobs), policy, check=True)
        plain = simulate(scenario(jobs, zoned=False), policy, check=True)
        assert zoned.timeline == plain.timeline


@pytest.mark.parametrize("policy", POLICIES)
def test_a_batch_with_two_temperatures_is_split_by_temperature(policy: str) -> None:
    sc = scenario({"a": react_job(temps=[60, 80, "60 C"])})
    tl = timeline(simulate(sc, policy, check=True, policy_options=WHOLE.get(policy)))
    # samples 0 and 2 (60 C) form the first chunk, sample 1 (80 C) waits for the plate
    assert tl["a:g0c0:Load#0"] == (0, 10)
    assert tl["a:g0c0:Load#1"] == (10, 20)
    assert tl["a:g0c0:React#b"] == (20, 120)
    assert tl["a:g0c1:Load#0"] == (120, 130)
    assert tl["a:g0c1:React#b"] == (130, 230)
    assert "a:g0c2:Load#0" not in tl


def test_split_chunks_hold_the_samples_of_one_temperature() -> None:
    lab = load_lab(hot_lab())
    core = SchedulerCore(lab, "backfill", clock=lambda: 0.0)
    spec = parse_job_script(react_job(temps=[60, 80, 60]), lab)
    out = core.handle(ev.JobSubmitted("a", spec, time=0.0))
    (start,) = [d for d in out if isinstance(d, dc.StartStep)]
    assert start.samples == ("a/g0s0",)
    assert start.slots == (dc.SlotUse("Hot", "plate", 2),)  # samples 0 and 2
    chunk = core.all_jobs()[0].groups[0].chunks[0]
    assert [s.id for s in chunk.samples] == ["a/g0s0", "a/g0s2"]
    assert [s.id for s in core.all_jobs()[0].groups[0].pending] == ["a/g0s1"]


@pytest.mark.parametrize("policy", ["backfill", "closed_packing", "planner"])
def test_samples_without_the_zone_task_share_with_any_temperature(policy: str) -> None:
    # c stirs (no React, no temperature) from 10 to 320: it joins a at 60 C and does not stop
    # b at 80 C from entering once a has left
    sc = scenario({"a": react_job(60), "b": react_job(80), "c": stir_job(300)})
    tl = timeline(simulate(sc, policy, check=True))
    assert tl["a:g0c0:Load#0"] == (0, 10)
    assert tl["a:g0c0:React#b"] == (10, 110)
    assert tl["c:g0c0:Load#0"] == (10, 20)
    assert tl["c:g0c0:Stir#b"] == (20, 320)
    assert tl["b:g0c0:Load#0"] == (110, 120)
    assert tl["b:g0c0:React#b"] == (120, 220)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_chunk_waiting_for_a_zone_does_not_deadlock(policy: str) -> None:
    # a: plate (60 C) -> reader; b: reader -> plate (80 C); the reader holds one sample. If b
    # entered the reader while a is on the plate, b would wait for the plate to cool down and
    # a for the reader: the banker's check must see the zone and keep b out until a is done.
    sc = scenario({"a": react_job(60, read="after"), "b": react_job(80, read="before")})
    rep = simulate(sc, policy, check=True)
    assert all_succeeded(rep)
    tl = timeline(rep)
    assert tl["a:g0c0:Load#0"] == (0, 10)
    assert tl["a:g0c0:React#b"] == (10, 110)
    assert tl["a:g0c0:Read#0"] == (110, 130)
    assert tl["b:g0c0:Read#0"] == (130, 150)
    assert tl["b:g0c0:Load#0"] == (150, 160)
    assert tl["b:g0c0:React#b"] == (160, 260)


def test_why_a_chunk_waits_and_the_plan_respect_the_zone() -> None:
    lab = load_lab(hot_lab())
    for policy in POLICIES:
        core = SchedulerCore(lab, policy, clock=lambda: 0.0)
        core.handle(
            [
                ev.JobSubmitted("a", parse_job_script(react_job(60), lab), time=0.0),
                ev.JobSubmitted("b", parse_job_script(react_job(80), lab), time=0.0),
            ]
        )
        (a_load,) = core.running_steps()
        core.handle(ev.StepFinished(a_load.step_id, time=10.0))  # the arm is free from 10
        b_group = core.all_jobs()[1].groups[0]
        plan = {(p.job_id, p.task): p for p in core.plan()}
        assert (plan[("a", "React")].start, plan[("a", "React")].end) == (10, 110), policy
        assert plan[("a", "React")].state == "running"
        assert plan[("b", "Load")].start == 110, policy
        assert plan[("b", "React")].start == 120, policy
        if policy != "fcfs":  # fcfs does not even try b while a runs
            assert b_group.blocked == "zone Hot.plate at Temperature 60 (needs 80)", policy
            assert plan[("b", "Load")].reason == "zone Hot.plate at Temperature 60 (needs 80)"


def test_invariant_catches_a_plate_at_two_temperatures() -> None:
    # an unzoned core puts 60 C and 80 C samples on the plate together; judged by the zoned lab
    # that state breaks the invariant
    plain, zoned = load_lab(hot_lab(zoned=False)), load_lab(hot_lab())
    core = SchedulerCore(plain, "backfill", clock=lambda: 0.0)
    core.handle(ev.JobSubmitted("a", parse_job_script(react_job(60), plain), time=0.0))
    a_load = core.running_steps()[0].step_id
    core.handle(ev.StepFinished(a_load, time=10.0))
    core.handle(ev.JobSubmitted("b", parse_job_script(react_job(80), plain), time=10.0))
    assert core.slots()[("Hot", "plate")] == (2, 8)
    check_invariants(core)
    core.lab = zoned
    with pytest.raises(InvariantError, match=r"zone Hot.plate holds two keys"):
        check_invariants(core)


# ---------------------------------------------------------------------- the lab description
def test_zone_by_is_parsed_and_keys_compare_after_units() -> None:
    lab = load_lab(hot_lab())
    assert lab.modules["Hot"].slots["plate"].zone_by == ("React", "Temperature")
    assert lab.modules["Reader"].slots["holder"].zone_by is None
    assert zone_key([]) is None
    assert zone_key([60]) == zone_key([60.0000000001]) == (60.0,)
    assert zone_key([60, 80]) != zone_key([80, 60])
    assert zone_key(["DMF"]) == ("DMF",)


def _with_plate(plate: Any, sample_slots: list[str] | None = None) -> dict[str, Any]:
    data = hot_lab()
    data["modules"]["Hot"]["slots"] = {"plate": plate, "rack": 4}
    if sample_slots is not None:
        data["modules"]["Hot"]["sample_slots"] = sample_slots
    return data


@pytest.mark.parametrize(
    ("plate", "sample_slots", "field", "message"),
    [
        (
            {"capacity": 8, "zone_by": "Heat.Temperature"},
            None,
            "lab.modules.Hot.slots.plate.zone_by",
            "unknown task 'Heat' (module has: Load, React, Stir)",
        ),
        (
            {"capacity": 8, "zone_by": "React.Temp"},
            None,
            "lab.modules.Hot.slots.plate.zone_by",
            "task React has no parameter 'Temp' (it has: Time, Temperature)",
        ),
        (
            {"capacity": 8, "zone_by": "Temperature"},
            None,
            "lab.modules.Hot.slots.plate.zone_by",
            "expected '<Task>.<parameter>', got 'Temperature'",
        ),
        (
            {"capacity": 8, "zone_by": "React.Temperature"},
            ["rack"],
            "lab.modules.Hot.slots.plate.zone_by",
            "slot type 'plate' is not in sample_slots (rack)",
        ),
        (
            {"capacity": 8, "zone": "hot"},
            None,
            "lab.modules.Hot.slots.plate.zone",
            "replaced by 'zone_by: <Task>.<parameter>'",
        ),
        (
            {"capacity": 8, "zone_on": "React.Temperature"},
            None,
            "lab.modules.Hot.slots.plate.zone_on",
            "unknown field (allowed: capacity, zone_by)",
        ),
    ],
)
def test_bad_zones_are_rejected_naming_the_field(
    plate: Any, sample_slots: list[str] | None, field: str, message: str
) -> None:
    with pytest.raises(LabError) as err:
        load_lab(_with_plate(plate, sample_slots))
    assert err.value.field == field
    assert err.value.message.startswith(message)


def test_a_zone_on_a_second_sample_slot_type() -> None:
    # the zone may sit on any sample slot type, not only the first
    lab = load_lab(_with_plate({"capacity": 8}, ["rack", "plate"]))
    assert lab.modules["Hot"].capacity() == 4
    data = _with_plate(8, ["rack", "plate"])
    data["modules"]["Hot"]["slots"]["plate"] = {"capacity": 8, "zone_by": "React.Temperature"}
    sc = parse_scenario(
        {
            "lab": data,
            "jobs": [
                {"id": "a", "submit": 0, "script": react_job(60)},
                {"id": "b", "submit": 0, "script": react_job(80)},
            ],
        }
    )
    tl = timeline(simulate(sc, "backfill", check=True))
    assert tl["a:g0c0:React#b"] == (10, 110)
    assert tl["b:g0c0:Load#0"] == (110, 120)


def test_the_planner_starts_each_sample_reacting_as_soon_as_it_is_loaded() -> None:
    """React only waits (no device): one-sample chunks cost nothing, and sample 0 need not wait
    for sample 1's loading. The zone still holds (both at 60 C share the plate)."""
    sc = scenario({"a": react_job(60, batch=2)})
    tl = timeline(simulate(sc, "planner", check=True))
    assert tl["a:g0c0:Load#0"] == (0, 10)
    assert tl["a:g0c0:React#b"] == (10, 110)
    assert tl["a:g0c1:Load#0"] == (10, 20)
    assert tl["a:g0c1:React#b"] == (20, 120)
    whole = timeline(simulate(sc, "planner", check=True, policy_options=WHOLE["planner"]))
    assert whole["a:g0c0:React#b"] == (20, 120)
