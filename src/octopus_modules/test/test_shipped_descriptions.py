"""Every shipped task gives sane durations, amounts and action params for any valid goal."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octopus_modules.description import (
    ModuleDescription,
    TaskSpec,
    builtin_description_names,
    load_builtin_description,
)
from octopus_modules.drivers.kinds import KINDS
from octopus_modules.parameters import ParameterSpec
from octopus_modules.runtime.goals import prepare_goal

MODULES = {name: load_builtin_description(name) for name in builtin_description_names()}
TASKS = [(m, t.name) for m in MODULES.values() for t in m.tasks]


def value_strategy(spec: ParameterSpec) -> st.SearchStrategy[Any]:
    if spec.choices:
        return st.sampled_from(spec.choices)
    low = spec.minimum if spec.minimum is not None else -1e3
    high = spec.maximum if spec.maximum is not None else 1e3
    if spec.type == "int":
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False)


@pytest.mark.parametrize(("module", "task_name"), TASKS, ids=[f"{m.module}.{t}" for m, t in TASKS])
@settings(max_examples=25, deadline=None)
@given(data=st.data(), n_samples=st.integers(1, 4))
def test_any_valid_goal_gives_sane_numbers(
    module: ModuleDescription, task_name: str, data: st.DataObject, n_samples: int
) -> None:
    task = module.task(task_name)
    assert isinstance(task, TaskSpec)
    params = {p.name: data.draw(value_strategy(p), label=p.name) for p in task.parameters}
    slots = {use.type: list(range(n_samples)) for use in task.slots}
    samples = [f"s{i}" for i in range(n_samples)]
    goal = prepare_goal(module, "g", task_name, params, slots, samples)
    assert goal.expected_duration_s >= 0
    assert all(amount >= 0 for amount in goal.consumption.values())
    for sample_index, _, step in goal.schedule():
        env = goal.environment(sample_index)
        assert step.expected_duration_s(env) >= 0
        for action in step.actions:
            rendered = action.params.render(env)
            kind = module.device(action.device).kind
            KINDS[kind][action.action].check(rendered, f"{task_name}.{action.action}")
