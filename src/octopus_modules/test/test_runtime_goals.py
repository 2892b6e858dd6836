"""Goals are checked before anything moves; results carry data and timings."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from octopus_modules.description import load_builtin_description
from octopus_modules.drivers.simulated import SimulatedBackend
from octopus_modules.runtime.goals import GoalRejected, prepare_goal
from octopus_modules.runtime.module_runtime import ModuleRuntime
from octopus_modules.runtime.results import TaskFeedback
from octopus_modules.runtime.status import ModuleStatus

TIME_SCALE = 1000.0


@pytest.mark.parametrize(
    ("task", "params", "slots", "field", "reason"),
    [
        ("Fly", {}, {}, "task", "unknown task 'Fly' of TestBench"),
        ("Dose", {}, {"rack": [0]}, "params.Volume", "missing required parameter"),
        ("Dose", {"Volume": 5000}, {"rack": [0]}, "params.Volume", "above maximum 1000"),
        ("Dose", {"Volume": "lots"}, {"rack": [0]}, "params.Volume", "expected a float"),
        ("Dose", {"Volume": 5, "Colour": 1}, {"rack": [0]}, "params.Colour", "unknown parameter"),
        ("Dose", {"Volume": 5}, {"rack": [4]}, "slots.rack[0]", "position 4 out of range 0..3"),
        ("Dose", {"Volume": 5}, {"rack": [1, 1]}, "slots.rack[1]", "position 1 given twice"),
        ("Dose", {"Volume": 5}, {}, "slots.rack", "needs one rack position per sample"),
        ("Dose", {"Volume": 5}, {"shelf": [0]}, "slots.shelf", "unknown slot type"),
    ],
)
def test_bad_goals_are_rejected_before_anything_moves(
    runtime: ModuleRuntime,
    task: str,
    params: dict[str, Any],
    slots: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    before = runtime.status()
    with pytest.raises(GoalRejected) as info:
        runtime.accept("g1", task, params, slots)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")
    after = runtime.status()
    assert (after.slots, after.consumables, after.running_goals) == (
        before.slots,
        before.consumables,
        before.running_goals,
    )
    assert all(
        not b.executed
        for b in runtime.backends.values()  # type: ignore[attr-defined]
        if isinstance(b, SimulatedBackend)
    )


def test_samples_must_match_positions(runtime: ModuleRuntime) -> None:
    with pytest.raises(GoalRejected, match=r"^slots\.rack: 1 position\(s\) for 2 sample\(s\)"):
        runtime.accept("g", "Dose", {"Volume": 5}, {"rack": [0]}, samples=["a", "b"])


def test_result_has_timings_data_and_feedback(runtime: ModuleRuntime) -> None:
    feedback: list[TaskFeedback] = []
    result = runtime.execute_task(
        "g1",
        "Dose",
        {"Volume": 100, "Rate": 100},
        {"rack": [2, 3]},
        feedback.append,
        samples=["a", "b"],
    )
    assert result.success and result.outcome == "succeeded" and not result.error
    assert [(t.device, t.action, t.sample) for t in result.timings] == [
        ("Pump", "dispense", "a"),
        ("Pump", "dispense", "b"),
    ]
    assert all(t.ok and t.end >= t.start for t in result.timings)
    assert result.measured_data["a/Pump.dispense"]["dispensed_ul"] == pytest.approx(100, rel=0.03)
    assert "b/Pump.dispense" in result.measured_data
    assert [(f.event, f.sample) for f in feedback] == [
        ("action_started", "a"),
        ("action_finished", "a"),
        ("action_started", "b"),
        ("action_finished", "b"),
    ]
    assert feedback[2].progress == pytest.approx(0.5)


def test_durations_follow_the_description_scaled(make_runtime: Any, description: Any) -> None:
    runtime = make_runtime(description, time_scale=TIME_SCALE)
    runtime.backends["Arm"].settings.duration_noise = 0.0
    result = runtime.execute_task("g", "Move", {"Seconds": 150}, {})
    (timing,) = result.timings
    wall = timing.end - timing.start
    assert 0.150 <= wall < 0.150 + 0.05  # 150 s at 1000x; +50 ms for a loaded box
    assert result.measured_data["Arm.move"]["duration_s"] == pytest.approx(150)
    assert runtime.expected_duration_s("Move", {"Seconds": 150}) == pytest.approx(150)


def test_slots_and_consumables_are_tracked(runtime: ModuleRuntime) -> None:
    changes: list[ModuleStatus] = []
    runtime.add_change_listener(changes.append)
    assert runtime.execute_task(
        "g1", "Dose", {"Volume": 1}, {"rack": [0, 1]}, samples=["a", "b"]
    ).success
    status = runtime.status()
    assert status.slot("rack").free == 2
    assert status.slot("rack").occupied == ((0, "a"), (1, "b"))
    assert status.consumable("tip").stock == 1 and status.consumable("tip").low
    assert any("low stock: tip" in w for w in status.warnings)
    with pytest.raises(GoalRejected, match=r"^slots\.rack\[0\]: position 1 is occupied by"):
        runtime.accept("g2", "Dose", {"Volume": 1}, {"rack": [1]}, samples=["c"])
    with pytest.raises(GoalRejected, match=r"^consumables\.tip: needs 2, only 1 in stock"):
        runtime.accept("g3", "Dose", {"Volume": 1}, {"rack": [2, 3]})
    # Wait releases its rack positions when it succeeds
    assert runtime.execute_task("g4", "Wait", {"Minutes": 0}, {"rack": [0, 1]}).success
    assert runtime.status().slot("rack").free == 4
    runtime.restock("tip", 10)
    assert not runtime.status().consumable("tip").low
    assert changes and changes[-1].consumable("tip").stock == 11
    assert [c.revision for c in changes] == sorted(c.revision for c in changes)
    assert any(
        c.device("Pump").state == "busy" and c.device("Pump").holder == "g1" for c in changes
    )


def test_cancel_before_any_action_gives_slots_and_stock_back(runtime: ModuleRuntime) -> None:
    cancel = threading.Event()
    runtime.accept("g1", "Dose", {"Volume": 1}, {"rack": [0]}, cancel_event=cancel)
    assert runtime.status().consumable("tip").stock == 2
    cancel.set()
    result = runtime.run("g1")
    assert result.outcome == "cancelled" and not result.success
    status = runtime.status()
    assert status.consumable("tip").stock == 3 and status.slot("rack").free == 4
    assert not runtime.backends["Pump"].executed  # type: ignore[attr-defined]


def test_discarding_an_accepted_goal_frees_everything(runtime: ModuleRuntime) -> None:
    runtime.accept("g1", "Dose", {"Volume": 1}, {"rack": [0]})
    assert runtime.status().device("Pump").holder == "g1"
    assert runtime.discard("g1")
    status = runtime.status()
    assert status.device("Pump").state == "idle" and status.slot("rack").free == 4
    assert status.consumable("tip").stock == 3 and not status.running_goals
    assert not runtime.discard("g1")


def test_step_estimates_for_planners() -> None:
    batch = load_builtin_description("batch_synthesis")
    goal = prepare_goal(batch, "g", "React", {"Time": 30}, {"stirrer": [0, 1]}, ["a", "b"])
    steps = goal.step_estimates()
    assert [(s.name, s.mode) for s in steps] == [
        ("close_reactor", "active"),
        ("react", "standby"),
        ("open_reactor", "active"),
    ]
    assert steps[1].duration_s == 1800 and steps[1].mask == ()
    assert steps[0].mask == ("Batch_LinearActuator", "Batch_RobotArm", "UV-Vis/UV_RobotArm")
    assert sum(s.duration_s for s in steps) == pytest.approx(goal.expected_duration_s)
    per_sample = prepare_goal(batch, "h", "PrepareContainer", {}, {"stirrer": [3, 4]}, ["a", "b"])
    assert [s.sample for s in per_sample.step_estimates()] == ["a", "b"]
