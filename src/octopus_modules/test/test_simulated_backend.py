from __future__ import annotations

import threading
import time

import pytest

from octopus_modules.description import DeviceSpec
from octopus_modules.drivers.backend import DeviceCancelled, DeviceDisconnected, DeviceError
from octopus_modules.drivers.registry import DriverContext
from octopus_modules.drivers.simulated import (
    FaultSettings,
    SimulatedBackend,
    SimulatedSettings,
    create_simulated_backend,
)


def pump(time_scale: float = 1000.0, **faults: object) -> SimulatedBackend:
    settings = SimulatedSettings(duration_noise=0.0, faults=FaultSettings(**faults))  # type: ignore[arg-type]
    return SimulatedBackend("P", "pump", time_scale=time_scale, settings=settings)


DISPENSE = {"volume_ul": 100.0, "rate_ul_s": 10.0, "expected_duration_s": 100.0}


def test_duration_is_expected_over_time_scale() -> None:
    backend = pump(time_scale=1000.0)  # 100 s expected -> 0.1 s wall
    t0 = time.perf_counter()
    data = backend.execute("dispense", DISPENSE, threading.Event())
    wall = time.perf_counter() - t0
    assert 0.1 <= wall < 0.15
    assert data["duration_s"] == pytest.approx(100.0)
    assert data["dispensed_ul"] == pytest.approx(100.0, rel=0.03)


def test_noise_is_seeded_and_bounded() -> None:
    def durations(seed: int) -> list[float]:
        backend = SimulatedBackend("A", "robot_arm", time_scale=1e6, seed=seed)
        params = {"source": "a", "target": "b", "expected_duration_s": 30.0}
        return [
            backend.execute("move", params, threading.Event())["duration_s"] for _ in range(200)
        ]

    first, again, other = durations(1), durations(1), durations(2)
    assert first == again and first != other
    mean = sum(first) / len(first)
    assert mean == pytest.approx(30.0, rel=0.02)  # 5 % noise, 200 draws
    assert min(first) > 20 and max(first) < 40


def test_cancel_is_honoured_promptly() -> None:
    backend = pump(time_scale=1.0)  # a 100 s action, really
    cancel = threading.Event()
    t0 = time.perf_counter()
    threading.Timer(0.05, cancel.set).start()
    with pytest.raises(DeviceCancelled):
        backend.execute("dispense", DISPENSE, cancel)
    latency = time.perf_counter() - t0 - 0.05
    assert latency < 0.05


def test_failure_rate_is_respected_and_names_device_and_action() -> None:
    backend = SimulatedBackend(
        "P",
        "pump",
        time_scale=1e6,
        seed=3,
        settings=SimulatedSettings(faults=FaultSettings(failure_rate=0.2)),
    )
    failures = 0
    for _ in range(500):
        try:
            backend.execute("dispense", DISPENSE, threading.Event())
        except DeviceError as exc:
            assert str(exc) == "P.dispense: simulated device fault"
            failures += 1
    assert 70 <= failures <= 130  # 100 expected, binomial sd ~9


def test_hang_waits_for_cancel() -> None:
    backend = pump(hang_actions=frozenset({"dispense"}))
    cancel = threading.Event()
    t0 = time.perf_counter()
    threading.Timer(0.1, cancel.set).start()
    with pytest.raises(DeviceCancelled):
        backend.execute("dispense", {**DISPENSE, "expected_duration_s": 1.0}, cancel)
    assert time.perf_counter() - t0 >= 0.1  # 1 s / 1000 would have been 1 ms


def test_lost_connection_until_reconnect() -> None:
    backend = pump(disconnect_actions=frozenset({"prime"}))
    with pytest.raises(DeviceDisconnected):
        backend.execute("prime", {}, threading.Event())
    with pytest.raises(DeviceDisconnected, match="not connected"):
        backend.execute("dispense", DISPENSE, threading.Event())
    backend.connect()
    backend.execute("dispense", DISPENSE, threading.Event())


def test_bad_params_and_actions_are_device_errors() -> None:
    backend = pump()
    with pytest.raises(DeviceError, match=r"P\.dispense: params: missing parameter\(s\) rate_ul_s"):
        backend.execute("dispense", {"volume_ul": 1}, threading.Event())
    with pytest.raises(DeviceError, match=r"P\.squirt: unknown action"):
        backend.execute("squirt", {}, threading.Event())


def test_factory_reads_settings_strictly() -> None:
    context = DriverContext(time_scale=50.0, seed=1)
    spec = DeviceSpec("P", "pump", "simulated", {"failure_rate": 0.5, "hang_actions": ["prime"]})
    backend = create_simulated_backend(spec, context)
    assert backend.clock is context.clock and backend.clock.wall_s(50.0) == 1.0
    assert backend.faults.failure_rate == 0.5 and backend.faults.hang_actions == {"prime"}
    with pytest.raises(ValueError, match=r"devices\.P\.settings\.failur_rate: unknown setting"):
        create_simulated_backend(DeviceSpec("P", "pump", "simulated", {"failur_rate": 1}), context)
    with pytest.raises(ValueError, match=r"devices\.P\.settings\.failure_rate: must be within"):
        create_simulated_backend(DeviceSpec("P", "pump", "simulated", {"failure_rate": 2}), context)
