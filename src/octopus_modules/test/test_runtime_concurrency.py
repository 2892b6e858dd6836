"""Several goals at once: different devices overlap, the same device never does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from octopus_modules.runtime.goals import GoalRejected
from octopus_modules.runtime.module_runtime import ModuleRuntime
from octopus_modules.runtime.results import TaskFeedback, TaskResult

TIMEOUT_S = 5.0


class Runner:
    """Runs accepted goals in threads; signals when a given feedback event arrives."""

    def __init__(self, runtime: ModuleRuntime) -> None:
        self.runtime = runtime
        self.results: dict[str, TaskResult] = {}
        self.events: dict[tuple[str, str], threading.Event] = {}
        self.threads: list[threading.Thread] = []

    def seen(self, goal_id: str, event: str) -> threading.Event:
        return self.events.setdefault((goal_id, event), threading.Event())

    def feedback(self, fb: TaskFeedback) -> None:
        self.seen(fb.goal_id, fb.event).set()

    def start(self, goal_id: str, task: str, params: dict[str, Any], **kw: Any) -> None:
        self.runtime.accept(goal_id, task, params, kw.pop("slots", {}), **kw)
        thread = threading.Thread(target=self._run, args=(goal_id,))
        thread.start()
        self.threads.append(thread)

    def _run(self, goal_id: str) -> None:
        self.results[goal_id] = self.runtime.run(goal_id, self.feedback)

    def join(self) -> dict[str, TaskResult]:
        for thread in self.threads:
            thread.join(TIMEOUT_S)
            assert not thread.is_alive()
        return self.results


def overlap(a: TaskResult, b: TaskResult) -> float:
    start = max(a.timings[0].start, b.timings[0].start)
    end = min(a.timings[-1].end, b.timings[-1].end)
    return end - start


def test_goals_on_different_devices_run_at_the_same_time(runtime: ModuleRuntime) -> None:
    runner = Runner(runtime)
    runner.start("arm", "Move", {"Seconds": 300})  # 0.3 s wall on the arm
    runner.start("pump", "Dose", {"Volume": 200, "Rate": 1}, slots={"rack": [0]})  # 0.2 s pump
    results = runner.join()
    assert results["arm"].success and results["pump"].success
    assert overlap(results["arm"], results["pump"]) > 0.15  # nearly all of the shorter one


def test_same_device_is_refused_with_the_holder_named(runtime: ModuleRuntime) -> None:
    runner = Runner(runtime)
    runner.start("first", "Move", {"Seconds": 300})
    with pytest.raises(GoalRejected) as info:
        runtime.accept("second", "MoveAndDose", {"Seconds": 1})
    assert info.value.field == "devices"
    assert info.value.reason == "device Arm is busy with goal first"
    runner.join()
    # free again: accepted now
    assert runtime.execute_task("second", "MoveAndDose", {"Seconds": 1}).success


def test_racing_clients_get_the_device_exactly_once(runtime: ModuleRuntime) -> None:
    """Many clients ask for the arm at the same instant: reservation is atomic."""
    barrier = threading.Barrier(16)
    accepted: list[str] = []
    refused: list[str] = []

    def client(i: int) -> None:
        barrier.wait()
        task = "Move" if i % 2 else "MoveAndDose"
        try:
            runtime.accept(f"g{i}", task, {"Seconds": 100})
            accepted.append(f"g{i}")
        except GoalRejected:
            refused.append(f"g{i}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert len(accepted) == 1 and len(refused) == 15
    assert runtime.status().device("Arm").holder == accepted[0]
    runtime.cancel(accepted[0])
    assert runtime.run(accepted[0]).outcome == "cancelled"


def test_standby_frees_the_devices_for_another_goal(runtime: ModuleRuntime) -> None:
    runner = Runner(runtime)
    # load (arm 1 s), react 5 min standby (0.3 s wall), unload (arm 1 s)
    runner.start("react", "Wait", {"Minutes": 5}, slots={"rack": [0]})
    assert runner.seen("react", "standby_started").wait(TIMEOUT_S)
    assert runtime.status().device("Arm").state == "idle"
    runner.start("move", "Move", {"Seconds": 50})  # uses the arm during the standby
    results = runner.join()
    react, move = results["react"], results["move"]
    assert react.success and move.success
    load, unload = react.timings
    assert load.end <= move.timings[0].start and move.timings[0].end <= unload.start


def test_wait_mode_queues_without_ever_sharing_the_device(runtime: ModuleRuntime) -> None:
    runner = Runner(runtime)
    runner.start("a", "Move", {"Seconds": 100})
    runner.start("b", "MoveAndDose", {"Seconds": 100}, on_conflict="wait")
    results = runner.join()
    a, b = results["a"], results["b"]
    assert a.success and b.success
    assert runner.seen("b", "waiting_for_devices").is_set()
    assert overlap(a, b) <= 0  # b's arm action started after a's ended


def test_many_goals_never_drive_one_device_twice(
    make_runtime: Callable[..., ModuleRuntime], description: Any
) -> None:
    """Stress: 12 waiting goals over two devices; per device, action intervals never overlap."""
    runtime = make_runtime(description, time_scale=5000.0)
    runner = Runner(runtime)
    for i in range(12):
        task = ("Move", "MoveAndDose", "Wait")[i % 3]
        params = {"Minutes": 0.2} if task == "Wait" else {"Seconds": 20}
        slots = {"rack": [i % 4]} if task == "Wait" else {}
        runner.start(f"g{i}", task, params, slots=slots, on_conflict="wait")
    results = runner.join()
    assert all(r.success for r in results.values()), [r.error for r in results.values()]
    for device in ("Arm", "Pump"):
        spans = sorted(
            (t.start, t.end) for r in results.values() for t in r.timings if t.device == device
        )
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
