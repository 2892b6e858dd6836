"""Cancel, emergency stop, device faults and timeouts leave devices safe and say why."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from octopus_modules.description import ModuleDescription
from octopus_modules.drivers.simulated import FaultSettings, SimulatedBackend
from octopus_modules.runtime.goals import GoalRejected
from octopus_modules.runtime.module_runtime import ModuleRuntime
from octopus_modules.runtime.results import TaskFeedback, TaskResult

TIMEOUT_S = 5.0
LONG = {"Seconds": 10_000}  # 10 s wall at 1000x: only ever ends by cancel / e-stop


def start(
    runtime: ModuleRuntime,
    goal_id: str,
    task: str,
    params: dict[str, Any],
    slots: dict[str, list[int]] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[threading.Event, dict[str, TaskResult], threading.Thread]:
    """Accept and run in a thread; returns (first action started, results, thread)."""
    started = threading.Event()
    results: dict[str, TaskResult] = {}

    def feedback(fb: TaskFeedback) -> None:
        if fb.event == "action_started":
            started.set()

    runtime.accept(goal_id, task, params, slots or {}, cancel_event=cancel)
    thread = threading.Thread(
        target=lambda: results.update({goal_id: runtime.run(goal_id, feedback)})
    )
    thread.start()
    assert started.wait(TIMEOUT_S)
    return started, results, thread


def sim(runtime: ModuleRuntime, device: str) -> SimulatedBackend:
    backend = runtime.backends[device]
    assert isinstance(backend, SimulatedBackend)
    return backend


def test_cancel_stops_the_device_promptly_and_leaves_it_safe(runtime: ModuleRuntime) -> None:
    _, results, thread = start(runtime, "g", "Move", LONG)
    assert runtime.status().device("Arm").state == "busy"
    t0 = time.perf_counter()
    assert runtime.cancel("g")
    thread.join(TIMEOUT_S)
    latency = time.perf_counter() - t0
    result = results["g"]
    assert result.outcome == "cancelled" and not result.success
    assert latency < 0.05, latency
    print(f"\ncancel latency (cancel() -> run() returned, device safe): {latency * 1000:.2f} ms")
    assert sim(runtime, "Arm").safe_state_calls == 1
    assert sim(runtime, "Arm").state == "safe"
    assert not result.timings[0].ok
    assert runtime.status().device("Arm").state == "idle"
    assert runtime.execute_task("next", "Move", {"Seconds": 1}).success


def test_client_cancel_event_works_too(runtime: ModuleRuntime) -> None:
    cancel = threading.Event()
    _, results, thread = start(runtime, "g", "Move", LONG, cancel=cancel)
    cancel.set()
    thread.join(TIMEOUT_S)
    assert results["g"].outcome == "cancelled"


def test_emergency_stop_aborts_everything_and_refuses_until_reset(
    runtime: ModuleRuntime,
) -> None:
    _, arm_results, arm_thread = start(runtime, "arm", "Move", LONG)
    _, pump_results, pump_thread = start(
        runtime, "pump", "Dose", {"Volume": 1000, "Rate": 1}, {"rack": [0]}
    )
    report = runtime.engage_estop("operator pressed the red button")
    arm_thread.join(TIMEOUT_S)
    pump_thread.join(TIMEOUT_S)
    assert set(report.aborted_goals) == {"arm", "pump"}
    assert report.latency_s is not None and report.latency_s < 0.1, report
    for result in (arm_results["arm"], pump_results["pump"]):
        assert result.outcome == "aborted"
        assert "operator pressed the red button" in result.error
    for name in ("Arm", "Pump", "Spec"):  # every device, also the idle one
        assert sim(runtime, name).safe_state_calls >= 1
    status = runtime.status()
    assert status.estop_engaged and not status.running_goals
    with pytest.raises(GoalRejected, match=r"^estop: emergency stop engaged: operator"):
        runtime.accept("late", "Move", {"Seconds": 1})
    runtime.reset_estop()
    assert runtime.execute_task("late", "Move", {"Seconds": 1}).success
    print(f"\ne-stop latency, engage -> 2 goals aborted: {report.latency_s * 1000:.2f} ms")


def test_emergency_stop_latency_over_repeats(runtime: ModuleRuntime) -> None:
    latencies = []
    for i in range(20):
        threads = [
            start(runtime, f"a{i}", "Move", LONG)[2],
            start(runtime, f"p{i}", "Dose", {"Volume": 1000, "Rate": 1}, {"rack": [0]})[2],
        ]
        report = runtime.engage_estop("drill")
        for thread in threads:
            thread.join(TIMEOUT_S)
        assert report.latency_s is not None
        latencies.append(report.latency_s)
        runtime.reset_estop()
        runtime.free_slots("rack", [0])
        runtime.restock("tip", 1)
    latencies.sort()
    print(
        f"\ne-stop latency over 20 runs: median {latencies[10] * 1000:.2f} ms, "
        f"max {latencies[-1] * 1000:.2f} ms"
    )
    assert latencies[-1] < 0.1


def test_device_failure_names_device_and_action_and_blocks_until_cleared(
    runtime: ModuleRuntime,
) -> None:
    sim(runtime, "Pump").faults = FaultSettings(fail_actions=frozenset({"dispense"}))
    result = runtime.execute_task("g", "Dose", {"Volume": 10}, {"rack": [0]}, samples=["s1"])
    assert result.outcome == "failed"
    assert result.error == "Dose.steps[0] active (sample s1): Pump.dispense: simulated device fault"
    assert sim(runtime, "Pump").safe_state_calls == 1
    # the result says so too: a scheduler may read it before the status
    assert [(d.name, d.state) for d in result.device_faults] == [("Pump", "error")]
    status = runtime.status()
    assert status.device("Pump").state == "error"
    assert status.slot("rack").occupied == ((0, "s1"),)  # the vial may be there: kept
    with pytest.raises(GoalRejected, match=r"^devices: device Pump is error: simulated"):
        runtime.accept("g2", "Dose", {"Volume": 10}, {"rack": [1]})
    sim(runtime, "Pump").faults = FaultSettings()
    runtime.clear_device_error("Pump")
    after = runtime.execute_task("g2", "Dose", {"Volume": 10}, {"rack": [1]})
    assert after.success and after.device_faults == ()


def test_hung_device_times_out(
    make_runtime: Callable[..., ModuleRuntime], description: ModuleDescription
) -> None:
    runtime = make_runtime(description, action_timeout_factor=2.0, action_timeout_margin_s=0.05)
    sim(runtime, "Arm").faults = FaultSettings(hang_actions=frozenset({"move"}))
    t0 = time.perf_counter()
    result = runtime.execute_task("g", "Move", {"Seconds": 20})  # 20 ms expected, 90 ms limit
    elapsed = time.perf_counter() - t0
    assert result.outcome == "failed"
    assert "Arm.move: no answer within 0.09 s (timeout)" in result.error
    assert 0.09 <= elapsed < 0.3
    assert runtime.status().device("Arm").state == "error"
    assert sim(runtime, "Arm").safe_state_calls == 1


def test_lost_connection_is_reported_and_reconnected(runtime: ModuleRuntime) -> None:
    sim(runtime, "Arm").faults = FaultSettings(disconnect_actions=frozenset({"move"}))
    result = runtime.execute_task("g", "Move", {"Seconds": 1})
    assert result.outcome == "failed" and "Arm.move: connection lost" in result.error
    status = runtime.status()
    assert status.device("Arm").state == "disconnected"
    assert any("Arm disconnected" in w for w in status.warnings)
    sim(runtime, "Arm").faults = FaultSettings()
    # the next goal that needs the arm reconnects it first
    assert runtime.execute_task("g2", "Move", {"Seconds": 1}).success
    assert runtime.status().device("Arm").state == "idle"


def test_random_faults_never_leave_a_device_held(
    make_runtime: Callable[..., ModuleRuntime], description: ModuleDescription
) -> None:
    runtime = make_runtime(description, time_scale=20_000.0)
    for name in ("Arm", "Pump"):
        sim(runtime, name).faults = FaultSettings(failure_rate=0.3)
    outcomes = []
    for i in range(40):
        for name in ("Arm", "Pump"):
            runtime.clear_device_error(name)
        outcomes.append(runtime.execute_task(f"g{i}", "MoveAndDose", {"Seconds": 5}).outcome)
        assert all(d.holder == "" for d in runtime.status().devices)
    assert {"succeeded", "failed"} <= set(outcomes)


class UnpluggedPump(SimulatedBackend):
    """A pump whose cable is out until ``plugged`` is set (a real back end's connect() raising)."""

    plugged = False

    def connect(self) -> None:
        if not self.plugged:
            raise OSError("could not open port /dev/ttyUSB7")
        super().connect()


def test_module_comes_up_with_a_missing_device_and_retries_it(
    description: ModuleDescription, closing: Callable[[ModuleRuntime], ModuleRuntime]
) -> None:
    pump = UnpluggedPump("Pump", "pump", time_scale=1000.0)
    backends = {
        "Arm": SimulatedBackend("Arm", "robot_arm", time_scale=1000.0),
        "Pump": pump,
        "Spec": SimulatedBackend("Spec", "spectrometer", time_scale=1000.0),
    }
    runtime = closing(ModuleRuntime(description, backends, time_scale=1000.0))
    status = runtime.status()
    assert status.device("Pump").state == "disconnected"
    assert "/dev/ttyUSB7" in status.device("Pump").message
    assert runtime.execute_task("arm", "Move", {"Seconds": 1}).success  # the rest works
    with pytest.raises(GoalRejected, match=r"^devices: device Pump is disconnected: could not"):
        runtime.accept("dose", "Dose", {"Volume": 1}, {"rack": [0]})
    pump.plugged = True
    assert runtime.execute_task("dose", "Dose", {"Volume": 1}, {"rack": [0]}).success


class StuckArm(SimulatedBackend):
    """A robot arm whose firmware stops answering: it ignores cancel until ``unstick``."""

    def __init__(self) -> None:
        super().__init__("Arm", "robot_arm", time_scale=1000.0)
        self.unstick = threading.Event()
        self.inside = threading.Event()
        self.concurrent = 0
        self._busy = False

    def execute(self, action: str, params: Any, cancel: threading.Event) -> dict[str, Any]:
        if self._busy:
            self.concurrent += 1
        self._busy = True
        try:
            if action == "move":
                self.inside.set()
                self.unstick.wait()
            return super().execute(action, params, cancel)
        finally:
            self._busy = False


def stuck_runtime(description: ModuleDescription, arm: StuckArm) -> ModuleRuntime:
    backends = {
        "Arm": arm,
        "Pump": SimulatedBackend("Pump", "pump", time_scale=1000.0),
        "Spec": SimulatedBackend("Spec", "spectrometer", time_scale=1000.0),
    }
    return ModuleRuntime(description, backends, time_scale=1000.0, stop_grace_s=0.1)


def test_a_device_that_ignores_cancel_is_abandoned_after_the_grace(
    description: ModuleDescription, closing: Callable[[ModuleRuntime], ModuleRuntime]
) -> None:
    arm = StuckArm()
    runtime = closing(stuck_runtime(description, arm))
    results: dict[str, TaskResult] = {}
    runtime.accept("g", "Move", {"Seconds": 1})
    thread = threading.Thread(target=lambda: results.update(g=runtime.run("g")))
    thread.start()
    assert arm.inside.wait(TIMEOUT_S)
    t0 = time.perf_counter()
    runtime.cancel("g")
    thread.join(TIMEOUT_S)
    elapsed = time.perf_counter() - t0
    assert 0.1 <= elapsed < 0.3
    assert results["g"].outcome == "failed"
    assert "Arm.move: did not stop within 0.1 s after cancel" in results["g"].error
    assert runtime.status().device("Arm").state == "error"
    with pytest.raises(GoalRejected, match="^devices: device Arm is error: did not stop"):
        runtime.accept("g2", "Move", {"Seconds": 1})
    # the operator clears it while the firmware is still stuck: the next call queues behind
    # the stuck one instead of driving the arm at the same time
    runtime.clear_device_error("Arm")
    runtime.accept("g3", "Move", {"Seconds": 1})
    later = threading.Thread(target=lambda: results.update(g3=runtime.run("g3")))
    later.start()
    arm.unstick.set()
    later.join(TIMEOUT_S)
    assert results["g3"].success and arm.concurrent == 0


def test_emergency_stop_is_bounded_even_with_a_stuck_device(
    description: ModuleDescription, closing: Callable[[ModuleRuntime], ModuleRuntime]
) -> None:
    arm = StuckArm()
    runtime = closing(stuck_runtime(description, arm))
    runtime.accept("g", "Move", {"Seconds": 1})
    results: dict[str, TaskResult] = {}
    thread = threading.Thread(target=lambda: results.update(g=runtime.run("g")))
    thread.start()
    assert arm.inside.wait(TIMEOUT_S)
    report = runtime.engage_estop("stuck arm drill")
    thread.join(TIMEOUT_S)
    arm.unstick.set()
    assert report.latency_s is not None and 0.1 <= report.latency_s < 0.3
    assert results["g"].outcome == "aborted"
    assert runtime.status().device("Arm").state == "error"
