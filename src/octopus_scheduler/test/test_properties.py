"""Property tests on random labs and jobs: the core's invariants hold under every policy.

After every event the simulator checks (octopus_scheduler.core.invariants): no device is held by two
steps, no slot type is over capacity (and the count matches the chunks holding it), no zoned slot
type holds samples with two different keys, no step started before its predecessors ended; at
the end every accepted job has ended (no deadlock).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octopus_scheduler.core.policies import available_policies
from octopus_scheduler.twin.generator import random_scenario
from octopus_scheduler.twin.simulator import simulate

FINAL = {"succeeded", "failed", "cancelled"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    jobs=st.integers(1, 12),
    modules=st.integers(1, 4),
    load=st.sampled_from([0.3, 1.0, 3.0]),
    noise=st.sampled_from([0.0, 0.3]),
    failures=st.sampled_from([0.0, 0.1]),
    events=st.booleans(),
    policy=st.sampled_from(available_policies()),
)
def test_invariants_hold_and_every_job_ends(
    seed, jobs, modules, load, noise, failures, events, policy
):
    sc = random_scenario(
        seed,
        jobs=jobs,
        modules=modules,
        load=load,
        noise_sigma=noise,
        failure_probability=failures,
        events=events,
    )
    report = simulate(sc, policy, check=True)
    assert {j["state"] for j in report.jobs} <= FINAL
    assert len(report.jobs) == jobs
    if failures == 0.0 and not events:
        assert all(j["state"] == "succeeded" for j in report.jobs)
    # device timelines never overlap (checked again on the finished timeline)
    by_device: dict[str, list[tuple[float, float]]] = {}
    for row in report.timeline:
        assert row["end"] is not None, row  # every attempt of every step ended (jobs all ended)
        for d in row["devices"]:
            by_device.setdefault(d, []).append((row["start"], row["end"]))
    for spans in by_device.values():
        spans.sort()
        for (_s0, e0), (s1, _) in zip(spans, spans[1:], strict=False):
            assert s1 >= e0 - 1e-9


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    jobs=st.integers(1, 12),
    modules=st.integers(1, 4),
    load=st.sampled_from([0.3, 1.0, 3.0]),
    failures=st.sampled_from([0.0, 0.1]),
    events=st.booleans(),
    policy=st.sampled_from(available_policies()),
)
def test_zones_hold_one_key_and_every_job_ends(seed, jobs, modules, load, failures, events, policy):
    # random labs with temperature zones (zone_by <Task>.Temp), jobs at 25/60/80 C, batches
    # that mix temperatures and BO campaigns that optimise the temperature
    sc = random_scenario(
        seed,
        jobs=jobs,
        modules=modules,
        load=load,
        failure_probability=failures,
        events=events,
        bo_share=0.4,
        zones=True,
    )
    report = simulate(sc, policy, check=True)  # checks the zone invariant after every event
    assert len(report.jobs) == jobs
    assert {j["state"] for j in report.jobs} <= FINAL
    if failures == 0.0 and not events:
        assert all(j["state"] == "succeeded" for j in report.jobs)


def test_random_zoned_labs_have_zones_and_change_schedules():
    # the zoned property test is not vacuous: zones are generated and they change schedules (the
    # zoned scenario is the plain one plus zones: same jobs, routes and durations)
    with_zones = changed = 0
    for seed in range(10):
        zoned = random_scenario(seed, jobs=10, load=3.0, zones=True)
        plain = random_scenario(seed, jobs=10, load=3.0)
        with_zones += any(s.zone_by for m in zoned.lab.modules.values() for s in m.slots.values())
        a = simulate(zoned, "closed_packing", check=True)
        b = simulate(plain, "closed_packing", check=True)
        assert [j["state"] for j in a.jobs] == [j["state"] for j in b.jobs]
        # zones split mixed batches and make chunks wait: other chunks or other start times
        changed += [(r["step_id"], r["start"]) for r in a.timeline] != [
            (r["step_id"], r["start"]) for r in b.timeline
        ]
    assert with_zones >= 8
    assert changed >= 5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), policy=st.sampled_from(available_policies()))
def test_same_seed_same_schedule(seed, policy):
    a = simulate(random_scenario(seed, jobs=6, noise_sigma=0.2), policy)
    b = simulate(random_scenario(seed, jobs=6, noise_sigma=0.2), policy)
    assert a.timeline == b.timeline


def test_two_jobs_each_needing_the_others_module_do_not_deadlock():
    # job A goes M0 -> M1, job B goes M1 -> M0, each module holds one sample: without the
    # banker's check both would enter their first module and wait forever for the other.
    lab = {
        "modules": {
            m: {
                "devices": [f"{m}_D"],
                "slots": {"pos": 1},
                "tasks": {
                    "T": {
                        "per": "batch",
                        "mask": [f"{m}_D"],
                        "steps": [
                            {"name": "w", "kind": "active", "duration": 10},
                            {"name": "s", "kind": "standby", "duration": 100},
                        ],
                    }
                },
            }
            for m in ("M0", "M1")
        }
    }

    def job(first: str, second: str) -> dict:
        return {
            "metadata": {"name": "x", "owner": "u"},
            "campaign": {"kind": "manual", "experiments": [{}]},
            "process": {
                "Synthesis": {first: {"sequence": ["T"]}},
                "Evaluation": {second: {"sequence": ["T"]}},
            },
        }

    from octopus_scheduler.twin.scenario import parse_scenario

    sc = parse_scenario(
        {
            "lab": lab,
            "jobs": [
                {"id": "A", "submit": 0, "script": job("M0", "M1")},
                {"id": "B", "submit": 0, "script": job("M1", "M0")},
            ],
        }
    )
    for policy in available_policies():
        report = simulate(sc, policy, check=True)
        assert [j["state"] for j in report.jobs] == ["succeeded", "succeeded"]
