"""SchedulerCore.fork: a cheap copy that behaves exactly like a deep copy of the live state.

The reference is the plain ``copy.deepcopy`` fork the core used before (kept here): on states
taken from whole simulated days, the fast fork must have the same object graph (same values, the
same sharing with the original), make the same decisions when run forward, and evolve
independently of the original in both directions.
"""

from __future__ import annotations

import copy
import dataclasses
import types
from typing import Any

import pytest

from octopus_scheduler.core import events as ev
from octopus_scheduler.core.policies import available_policies
from octopus_scheduler.core.runs import copy_data
from octopus_scheduler.core.scheduler_core import SchedulerCore
from octopus_scheduler.twin import simulator
from octopus_scheduler.twin.generator import random_scenario

ATOMIC = (int, float, str, bool, type(None), bytes, complex)


def reference_fork(core: SchedulerCore) -> SchedulerCore:
    """The fork as it was: a deepcopy of the live state sharing only the immutable parts."""
    saved = (core._jobs, core._steps, core.event_log)
    live = {k: j for k, j in core._jobs.items() if not j.finished}
    core._jobs = live
    core._steps = {k: s for k, s in core._steps.items() if not s.job.finished}
    core.event_log = []
    memo: dict[int, Any] = {id(core.lab): core.lab}
    for job in live.values():
        memo[id(job.spec)] = job.spec
        for group in job.groups:
            for sample in group.pending:
                memo[id(sample)] = sample
            for chunk in group.chunks:
                for visit in chunk.visits:
                    memo[id(visit.demand)] = visit.demand
                for sample in chunk.samples:
                    memo[id(sample)] = sample
    for step in core._steps.values():
        memo[id(step.params)] = step.params
        memo[id(step.consumes)] = step.consumes
        memo[id(step.devices)] = step.devices
        memo[id(step.samples)] = step.samples
    try:
        twin = copy.deepcopy(core, memo)
    finally:
        core._jobs, core._steps, core.event_log = saved
    twin.logging = False
    twin.retire_ended = False
    twin.policy.forked(twin)
    return twin


def mutable_ids(root: Any) -> set[int]:
    """Ids of the mutable objects reachable from ``root`` (the lab excluded)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        x = stack.pop()
        if isinstance(x, ATOMIC) or callable(x) and not hasattr(x, "__dict__"):
            continue
        if isinstance(x, types.FunctionType | type) or id(x) in seen:
            continue
        if not isinstance(x, tuple | frozenset):
            seen.add(id(x))
        if isinstance(x, dict):
            stack += [*x.keys(), *x.values()]
        elif isinstance(x, list | tuple | set | frozenset):
            stack += list(x)
        elif hasattr(x, "__dict__") and type(x).__name__ != "Lab":
            stack += list(vars(x).values())
    return seen


def canon(root: Any, original: set[int]) -> Any:
    """The object graph as a value: mutable objects are numbered by first visit (so aliasing
    shows), one of the original's is only marked as shared; tuples and frozensets are values."""
    numbers: dict[int, int] = {}

    def walk(x: Any) -> Any:
        if isinstance(x, ATOMIC):
            return x
        if isinstance(x, types.FunctionType | types.BuiltinFunctionType | type):
            return ("function", getattr(x, "__qualname__", repr(x)))
        if type(x).__name__ == "Lab":
            return ("lab", id(x))
        if isinstance(x, tuple):
            return ("tuple", *map(walk, x))
        if isinstance(x, frozenset):
            return ("frozenset", *sorted(map(walk, x), key=repr))
        if id(x) in original:
            return ("shared", type(x).__name__, id(x))
        if id(x) in numbers:
            return ("ref", numbers[id(x)])
        numbers[id(x)] = len(numbers)
        if isinstance(x, dict):
            return ("dict", tuple((walk(k), walk(v)) for k, v in x.items()))
        if isinstance(x, list):
            return ("list", tuple(map(walk, x)))
        if isinstance(x, set):
            return ("set", tuple(sorted(map(walk, x), key=repr)))
        shared = getattr(type(x), "SHARED_CACHES", ())  # by design the same in every fork
        return (
            type(x).__name__,
            tuple((k, walk(v)) for k, v in vars(x).items() if k not in shared),
        )

    return walk(root)


def advance(sim: SchedulerCore, n: int) -> list[Any]:
    """Finish the earliest running step ``n`` times (expected durations); the decisions."""
    out: list[Any] = []
    for _ in range(n):
        running = sim.running()
        if not running:
            break
        step = min(running, key=lambda s: ((s.start or sim.now) + s.expected, s.id))
        t = max(sim.now, (step.start or sim.now) + step.expected)
        out += sim.handle(ev.StepFinished(step.id, time=t))
    return out


def scenario(seed: int, jobs: int):
    return random_scenario(
        seed, jobs=jobs, modules=3, load=1.0, noise_sigma=0.3, failure_probability=0.1, events=True
    )


@pytest.mark.parametrize("policy", available_policies())
def test_fork_is_a_deepcopy_of_the_live_state_and_evolves_independently(policy, monkeypatch):
    checked: list[int] = []
    earlier: list[tuple[SchedulerCore, Any, set[int]]] = []

    def check(core: SchedulerCore) -> None:
        checked.append(1)
        if len(checked) % 7:
            return
        original = mutable_ids(core)
        before = canon(core, set())
        fast, ref = core.fork(), reference_fork(core)
        assert canon(fast, original) == canon(ref, original)
        assert list(fast._steps) == list(ref._steps)
        assert fast.policy is not core.policy and fast._jobs is not core._jobs
        # run both forward: same decisions, and the original does not move
        assert advance(fast, 25) == advance(ref, 25)
        assert canon(fast, original) == canon(ref, original)
        assert canon(core, set()) == before
        # a fork taken earlier did not move while the original went on
        for twin, state, shared in earlier:
            assert canon(twin, shared) == state
        earlier[:] = [(fast, canon(fast, original), original)]

    for seed in (3, 11):
        simulator.simulate(scenario(seed, 14), policy, observe=check)
    assert len(checked) >= 70


@pytest.mark.parametrize("policy", available_policies())
def test_plan_is_the_same_as_with_a_deepcopy_fork(policy, monkeypatch):
    plans: list[tuple[Any, Any]] = []

    def check(core: SchedulerCore) -> None:
        if core.now >= 0 and len(plans) < 40:
            fast = core.plan()
            with monkeypatch.context() as m:
                m.setattr(SchedulerCore, "fork", reference_fork)
                ref = core.plan()
            plans.append((fast, ref))

    simulator.simulate(scenario(5, 10), policy, observe=check)
    assert plans and any(fast for fast, _ in plans)
    for fast, ref in plans:
        assert fast == ref


def report(monkeypatch, fork: Any, seed: int) -> dict[str, Any]:
    cores: list[SchedulerCore] = []
    with monkeypatch.context() as m:
        m.setattr(SchedulerCore, "fork", fork)
        out = simulator.simulate(scenario(seed, 40), "planner", observe=cores.append).to_dict()
    out.pop("wall_s"), out.pop("decision_latency_ms")
    out["mode_history"] = cores[-1].policy.mode_history  # the rollouts' scores, exactly
    return out


@pytest.mark.parametrize("seed", [1, 8])
def test_planner_decides_exactly_as_with_a_deepcopy_fork(seed, monkeypatch):
    fast = report(monkeypatch, SchedulerCore.fork, seed)
    ref = report(monkeypatch, reference_fork, seed)
    assert len(fast["mode_history"]) > 5
    assert fast == ref


class Solver:
    def __deepcopy__(self, memo: dict[int, Any]) -> Solver:
        return self  # e.g. a solver handle: every copy uses the same one


def test_copy_data_copies_plain_data_and_keeps_what_the_memo_maps():
    @dataclasses.dataclass
    class Marker:  # a local class cannot be pickled: copy_data falls back to deepcopy
        n: int

    shared, twin = object.__new__(SchedulerCore), object.__new__(SchedulerCore)
    data = {"a": [1.5, (2, frozenset({"x"}))], "b": {("k", 1): {"n": None}}, "s": shared}
    data["again"] = data["a"]
    out = copy_data(data, {id(shared): twin})
    assert out == {**data, "s": twin, "again": out["a"]}
    assert out["s"] is twin and out["again"] is out["a"]  # aliasing is kept
    assert out["a"] is not data["a"] and out["b"][("k", 1)] is not data["b"][("k", 1)]
    solver = Solver()
    assert copy_data([solver, {"x": [solver]}], {})[1]["x"][0] is solver  # its own copy rule
    local = {"m": Marker(1), "f": lambda: 1}
    out = copy_data(local, {})
    assert out["m"] == local["m"] and out["m"] is not local["m"] and out["f"] is local["f"]


@pytest.mark.parametrize("policy", available_policies())
def test_a_checkpoint_goes_on_as_the_core_would(policy):
    # the live core keeps its events since its last checkpoint, to rebuild itself after an
    # event that fails: the checkpoint must be the core, not a look-ahead's fork
    checked: list[int] = []

    def check(core: SchedulerCore) -> None:
        checked.append(1)
        if len(checked) % 7:
            return
        ref = copy.deepcopy(core)  # everything copied
        views = core.jobs()
        base = core.checkpoint()
        assert core.event_log == [] and base.event_log == []
        assert base.jobs() == ref.jobs() == views
        assert (base.slots(), base.devices()) == (ref.slots(), ref.devices())
        assert advance(base, 25) == advance(ref, 25)
        assert base.jobs() == ref.jobs()
        assert core.jobs() == views  # the core did not move

    for seed in (3, 11):
        simulator.simulate(scenario(seed, 14), policy, observe=check)
    assert len(checked) >= 70
