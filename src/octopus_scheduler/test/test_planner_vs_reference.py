"""The planner against the reference system's rules on generated lab days (issue 15).

A property test over the generator's settings and seeds: the planner's Σ total job time is
never more than 5 % above closed packing's on a day. Bounded for CI (a few small days,
derandomised so a CI run is repeatable); ``python -m octopus_scheduler.twin.option_compare
--policies`` is the benchmark over hundreds of larger days.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octopus_scheduler.twin.generator import random_scenario
from octopus_scheduler.twin.simulator import simulate


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(10**6, 10**9),
    jobs=st.integers(4, 14),
    load=st.sampled_from([0.5, 0.7, 0.9]),
    bo_share=st.sampled_from([0.0, 0.3, 0.6]),
)
def test_planner_is_never_more_than_5_percent_above_closed_packing(seed, jobs, load, bo_share):
    sc = random_scenario(seed, jobs=jobs, load=load, bo_share=bo_share)
    ours = simulate(sc, "planner", timeline=False)  # the defaults
    ours = ours.sums["total"]
    reference = simulate(sc, "closed_packing", timeline=False).sums["total"]
    assert ours <= 1.05 * reference, (seed, jobs, load, bo_share, ours / reference - 1)
