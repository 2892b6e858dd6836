"""The per-sample relaxation of tradeoff.py on a lab small enough to solve by hand.

One module, one robot arm, two stirrers. Load and Unload take the arm 60 s per vial; Cook is a
600 s standby per batch. Job A (2 vials) and job B (1 vial) arrive at 0.

By hand: a third vial can only be loaded when a stirrer frees, i.e. after the first vial's
Unload, which ends at >= 60 + 600 + 60 = 720 s; so the last vial ends at >= 720 + 720 = 1440 s
(the makespan can never be below 1440 s). Best: B and A's first vial first (loads 0-60, 60-120),
B unloads 660-720 (B = 720), A's second vial loads 720-780 while A's first vial waits cooked,
unloads 780-840, A's second cooks 780-1380 and unloads 1380-1440 (A = 1440): Σ = 2160 s, which
needs A split into two chunks. With A as one chunk of 2 the best is B first: 720 + 1560 = 2280 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from octopus_scheduler.twin.offline import _solve
from octopus_scheduler.twin.scenario import Scenario, parse_scenario
from octopus_scheduler.twin.tradeoff import (
    partition_bound,
    per_sample_chunking,
    per_sample_hint,
    simulate_one_vial,
    solve_per_sample,
    verify_in_offline,
)

pytest.importorskip("ortools")

OPTIMUM_S = 2160.0  # over all chunkings (by hand, module docstring)
WHOLE_BATCH_S = 2280.0  # job A as one chunk of 2
MIN_MAKESPAN_S = 1440.0


def _tiny(active_cook: bool = False) -> Scenario:
    def job(jid: str, n: int) -> dict[str, Any]:
        return {
            "id": jid,
            "submit": 0,
            "script": {
                "metadata": {"name": f"job{jid}", "owner": "u"},
                "campaign": {"kind": "manual", "experiments": [{} for _ in range(n)]},
                "process": {"Synthesis": {"Cooker": {"sequence": ["Load", "Cook", "Unload"]}}},
            },
        }

    data = {
        "name": "tiny-cooker",
        "lab": {
            "modules": {
                "Cooker": {
                    "devices": ["Arm"],
                    "slots": {"stirrer": 2},
                    "tasks": {
                        "Load": {"per": "sample", "mask": ["Arm"], "duration": {"per_sample": 60}},
                        "Cook": {
                            "per": "batch",
                            "kind": "active" if active_cook else "standby",
                            "mask": ["Arm"],
                            "duration": 600,
                        },
                        "Unload": {
                            "per": "sample",
                            "mask": ["Arm"],
                            "duration": {"per_sample": 60},
                        },
                    },
                }
            }
        },
        "jobs": [job("A", 2), job("B", 1)],
    }
    return parse_scenario(data, "tiny-cooker")


def test_relaxed_bound_is_at_most_the_true_optimum_and_reaches_it() -> None:
    sc = _tiny()
    relaxed = solve_per_sample(sc, time_limit_s=10)
    assert relaxed.status == "OPTIMAL"
    assert relaxed.proven_bound_s <= OPTIMUM_S + 1e-6  # a valid lower bound
    assert relaxed.objective_s == pytest.approx(OPTIMUM_S)  # and tight on this lab
    # the whole-batch chunking's own optimum is above the bound, as it must be
    whole = _solve(sc, {"A": {0: [2]}, "B": {0: [1]}}, time_limit_s=10)
    assert whole.status == "OPTIMAL"
    assert whole.objective_s == pytest.approx(WHOLE_BATCH_S)
    assert relaxed.proven_bound_s <= whole.objective_s


def test_found_schedule_is_feasible_in_the_offline_model() -> None:
    sc = _tiny()
    found = solve_per_sample(sc, exact_slots=True, time_limit_s=10)
    assert found.status == "OPTIMAL"
    assert found.objective_s == pytest.approx(OPTIMUM_S)
    assert found.makespan_s == pytest.approx(MIN_MAKESPAN_S)
    assert found.per_job_total_s == pytest.approx({"A": 1440.0, "B": 720.0})
    # every start fixed in offline._solve: accepted, same score
    assert verify_in_offline(sc, found.starts, MIN_MAKESPAN_S) == pytest.approx(OPTIMUM_S)
    # a start moved onto a busy arm is rejected
    bad = dict(found.starts)
    step = next(k for k in bad if k.startswith("B/") and ".Load." in k)
    other = next(k for k in bad if k.startswith("A/") and ".Load." in k and bad[k] != bad[step])
    bad[step] = bad[other]
    assert verify_in_offline(sc, bad, None) is None


def test_makespan_limit_below_the_hand_minimum_is_infeasible() -> None:
    sc = _tiny()
    assert solve_per_sample(sc, makespan_limit_s=MIN_MAKESPAN_S - 60, time_limit_s=10).status == (
        "INFEASIBLE"
    )
    ok = solve_per_sample(sc, makespan_limit_s=MIN_MAKESPAN_S, time_limit_s=10)
    assert ok.objective_s == pytest.approx(OPTIMUM_S)


def test_partition_bound_and_simulated_seed() -> None:
    sc = _tiny()
    bound = partition_bound(sc, None, seconds=10)
    # A and B are paired (both synthesise, no UV-only jobs): the pair is the whole lab
    assert bound.bound_s <= OPTIMUM_S + 1e-6
    assert bound.bound_s == pytest.approx(OPTIMUM_S)
    rep = simulate_one_vial(sc)
    assert all(size == 1 for groups in rep.chunking.values() for g in groups.values() for size in g)
    hint = per_sample_hint(rep)
    assert set(hint) <= _solve_ids(sc)  # the simulated schedule maps onto per-sample ids
    assert verify_in_offline(sc, hint, None) == pytest.approx(rep.sums["total"])
    assert rep.sums["total"] >= OPTIMUM_S - 1e-6


def _solve_ids(sc: Scenario) -> set[str]:
    from octopus_scheduler.twin.tradeoff import _per_sample_chunks

    assert per_sample_chunking(sc) == {"A": {0: [1, 1]}, "B": {0: [1]}}
    return {s.id for _, gs in _per_sample_chunks(sc) for cs in gs for c in cs for s in c.steps}


def test_relaxation_refuses_an_active_batch_step() -> None:
    # a copy of an active batch step per sample would add device time: not a relaxation
    with pytest.raises(ValueError, match="active batch step"):
        solve_per_sample(_tiny(active_cook=True), time_limit_s=1)
