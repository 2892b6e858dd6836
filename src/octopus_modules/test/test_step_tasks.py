"""One goal per step: a standby step holds no device, slots live from the first step to the last."""

from __future__ import annotations

import threading

import pytest

from octopus_modules.description import load_builtin_description
from octopus_modules.drivers.registry import DriverContext, create_backends
from octopus_modules.runtime.goals import GoalRejected
from octopus_modules.runtime.module_runtime import ModuleRuntime
from octopus_modules.runtime.step_tasks import runtime_task, with_step_tasks

SCALE = 2000.0


@pytest.fixture
def runtime():
    description = load_builtin_description("batch_synthesis")
    backends = create_backends(description, DriverContext(time_scale=SCALE))
    runtime = ModuleRuntime(with_step_tasks(description), backends, time_scale=SCALE)
    yield description, runtime
    runtime.close()


def test_step_indices_pick_the_step_task(runtime) -> None:
    description, _ = runtime
    assert runtime_task(description, "React", [1]) == "React#1"
    assert runtime_task(description, "React", []) == "React"
    assert runtime_task(description, "React", [0, 1, 2]) == "React"
    assert runtime_task(description, "Mix", [0]) == "Mix"  # a one-step task is itself
    with pytest.raises(GoalRejected, match=r"step_indices\[0\]"):
        runtime_task(description, "React", [3])
    with pytest.raises(GoalRejected, match="step_indices"):
        runtime_task(description, "React", [0, 2])


def test_devices_are_free_during_a_standby_step_and_slots_held_until_the_last(runtime) -> None:
    _, module = runtime
    slots = {"stirrer": [0]}
    assert module.execute_task("p", "PrepareContainer", {}, slots, samples=["s1"]).success
    assert module.execute_task("r0", "React#0", {"Time": 10}, slots, samples=["s1"]).success
    react = threading.Thread(
        target=module.execute_task,
        args=("r1", "React#1", {"Time": 60}, slots),
        kwargs={"samples": ["s1"]},
    )
    react.start()  # 60 min standby = 1.8 s wall at this scale
    for _ in range(200):
        if "r1" in module.status().running_goals:
            break
        threading.Event().wait(0.01)
    assert "r1" in module.status().running_goals
    # meanwhile another sample uses the arm, storage and actuator the React mask names
    other = module.execute_task("p2", "PrepareContainer", {}, {"stirrer": [1]}, samples=["s2"])
    assert other.success
    assert "r1" in module.status().running_goals  # p2 ran inside the standby
    react.join(timeout=10)
    assert module.status().slot("stirrer").free == 6
    assert module.execute_task("r2", "React#2", {"Time": 60}, slots, samples=["s1"]).success
    done = module.execute_task("m", "MoveContainer", {}, slots, samples=["s1"])
    assert done.success
    assert module.status().slot("stirrer").free == 7  # s1 left, s2 still there
