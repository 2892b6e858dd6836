"""The one lab clock: conversions, waits, validation, and the module runtime timed by it."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from octopus_modules.description import ModuleDescription
from octopus_modules.drivers.registry import DriverContext, create_backends
from octopus_modules.drivers.simulated import FaultSettings, SimulatedBackend
from octopus_modules.lab_clock import LabClock, ScaledClock, VirtualClock, resolve_clock
from octopus_modules.module_factory import build_module, build_module_runtime
from octopus_modules.runtime.module_runtime import ModuleRuntime

Closing = Callable[[ModuleRuntime], ModuleRuntime]  # the `closing` fixture (conftest.py)

T = TypeVar("T")


def timed(function: Callable[..., T], *args: Any) -> tuple[T, float]:
    """The function's value and the wall seconds it took."""
    started = time.monotonic()
    value = function(*args)
    return value, time.monotonic() - started


def simulated(runtime: ModuleRuntime) -> list[SimulatedBackend]:
    backends = [b for b in runtime.backends.values() if isinstance(b, SimulatedBackend)]
    assert len(backends) == len(runtime.backends)
    return backends


def runtime_on(description: ModuleDescription, clock: LabClock, **kwargs: float) -> ModuleRuntime:
    """A runtime whose simulated devices share its clock, as the factory builds it."""
    backends = create_backends(description, DriverContext(clock=clock, seed=7))
    return ModuleRuntime(description, backends, clock=clock, **kwargs)


# ---- ScaledClock ----------------------------------------------------------------------------


def test_scaled_clock_starts_at_the_wall_and_runs_scale_times_faster() -> None:
    before = time.time()
    clock = ScaledClock(100.0)
    start = clock.now()
    assert before - 1.0 <= start <= time.time() + 1.0
    time.sleep(0.05)
    elapsed_lab = clock() - start  # callable: a drop-in for the scheduler's lab-time callables
    assert 0.05 * 100.0 * 0.9 <= elapsed_lab <= 0.05 * 100.0 * 20  # loaded machine: late only


def test_scaled_clock_never_starts_before_not_before() -> None:
    later = time.time() + 3600.0  # the last recorded event is ahead of the wall
    assert ScaledClock(2.0, not_before=later).now() >= later
    earlier = time.time() - 3600.0  # an old event does not move the origin back
    assert ScaledClock(2.0, not_before=earlier).now() >= time.time() - 1.0


def test_scaled_clock_converts_between_lab_and_wall() -> None:
    clock = ScaledClock(600.0)
    assert clock.wall_s(600.0) == pytest.approx(1.0)
    assert clock.lab_s(1.0) == pytest.approx(600.0)
    assert clock.lab_s(clock.wall_s(123.4)) == pytest.approx(123.4)
    assert ScaledClock(1.0).wall_s(5.0) == 5.0


def test_two_scaled_clocks_of_one_lab_agree_on_when_through_the_wall() -> None:
    # two processes of one lab start their clocks at different times: their lab times differ by
    # (1 - scale) x the gap, so they speak of moments in wall time and convert on each side
    scheduler = ScaledClock(400.0)
    time.sleep(0.02)
    module = ScaledClock(400.0)
    assert abs(scheduler.now() - module.now()) > 5.0  # lab times do not compare across processes
    started = scheduler.now() - 120.0  # a step the scheduler started two lab minutes ago
    wall = scheduler.wall_time_at(started)
    assert wall == pytest.approx(time.time() - 0.3, abs=0.01)
    assert module.lab_time_at(wall) == pytest.approx(module.now() - 120.0, abs=4.0)
    assert scheduler.lab_time_at(scheduler.wall_time_at(started)) == pytest.approx(started, abs=4.0)


def test_a_virtual_clock_reads_now_at_any_wall_time() -> None:
    clock = VirtualClock(50.0)
    assert clock.lab_time_at(time.time() - 3600.0) == 50.0
    assert clock.wall_time_at(10.0) == pytest.approx(time.time(), abs=1.0)


def test_scaled_clock_waits_lab_time_on_the_wall() -> None:
    clock = ScaledClock(1000.0)
    stopped, wall = timed(clock.wait, threading.Event(), 200.0)  # 0.2 s of wall
    assert stopped is False
    assert 0.2 * 0.9 <= wall <= 0.2 * 5


def test_scaled_clock_wait_ends_early_when_stopped() -> None:
    clock = ScaledClock(1.0)
    stop = threading.Event()
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    try:
        stopped, wall = timed(clock.wait, stop, 60.0)  # a minute, cut short
    finally:
        timer.cancel()
    assert stopped is True
    assert wall < 5.0
    already, wall = timed(clock.wait, stop, 60.0)
    assert already is True and wall < 1.0
    assert clock.wait(threading.Event(), -1.0) is False  # a negative wait is no wait


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
def test_scale_must_be_positive_and_finite(scale: float) -> None:
    with pytest.raises(ValueError, match=r"time_scale: must be positive"):
        ScaledClock(scale)


def test_every_time_scale_convenience_is_validated(description: ModuleDescription) -> None:
    with pytest.raises(ValueError, match=r"time_scale"):
        ModuleRuntime(description, {}, time_scale=0.0)
    with pytest.raises(ValueError, match=r"time_scale"):
        SimulatedBackend("P", "pump", time_scale=-5.0)
    with pytest.raises(ValueError, match=r"time_scale"):
        DriverContext(time_scale=0.0)
    with pytest.raises(ValueError, match=r"time_scale: give a clock or a time scale"):
        build_module_runtime("uv_vis", clock=VirtualClock(), time_scale=10.0)


def test_resolve_clock_keeps_a_given_clock_or_builds_a_scaled_one() -> None:
    clock = VirtualClock()
    assert resolve_clock(clock, None) is clock
    built = resolve_clock(None, 50.0)
    assert isinstance(built, ScaledClock) and built.scale == 50.0
    default = resolve_clock(None, None)
    assert isinstance(default, ScaledClock) and default.scale == 1.0


# ---- VirtualClock ---------------------------------------------------------------------------


def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock()
    assert clock.now() == 1000.0 and clock() == 1000.0
    time.sleep(0.01)
    assert clock.now() == 1000.0
    assert clock.advance(30.0) == 1030.0
    clock.set(5.0)
    assert clock.now() == 5.0


def test_virtual_clock_waits_cost_no_wall_time_and_advance_nothing() -> None:
    clock = VirtualClock(10.0)
    assert clock.wall_s(3600.0) == 0.0 and clock.lab_s(3600.0) == 0.0
    stopped, wall = timed(clock.wait, threading.Event(), 3600.0)
    assert stopped is False and wall < 1.0
    assert clock.now() == 10.0
    stop = threading.Event()
    stop.set()
    assert clock.wait(stop, 3600.0) is True


# ---- through the module: one clock, handed to everything that waits -------------------------


def test_the_factory_hands_one_clock_to_the_runtime_and_every_device(closing: Closing) -> None:
    clock = ScaledClock(300.0)
    runtime = closing(build_module_runtime("uv_vis", clock=clock))
    assert runtime.clock is clock
    assert all(backend.clock is clock for backend in simulated(runtime))
    book = build_module("batch_synthesis", clock=clock)
    assert closing(book.runtime).clock is clock
    by_scale = closing(build_module_runtime("uv_vis", time_scale=300.0))  # the convenience keyword
    assert isinstance(by_scale.clock, ScaledClock) and by_scale.clock.scale == 300.0
    assert all(backend.clock is by_scale.clock for backend in simulated(by_scale))


@pytest.mark.parametrize(("lab_s", "scale"), [(200.0, 1000.0), (30.0, 100.0)])
def test_a_simulated_action_of_n_lab_seconds_takes_n_over_s_wall_seconds(
    description: ModuleDescription, closing: Closing, lab_s: float, scale: float
) -> None:
    runtime = closing(runtime_on(description, ScaledClock(scale)))
    result, wall = timed(runtime.execute_task, "g1", "Move", {"Seconds": lab_s})
    assert result.success, result.error
    expected_wall = lab_s / scale
    assert 0.5 * expected_wall <= wall <= 5 * expected_wall


def test_a_standby_step_waits_its_lab_time_on_the_clock(
    description: ModuleDescription, closing: Closing
) -> None:
    runtime = closing(runtime_on(description, ScaledClock(1000.0)))
    # 1 s arm, 5 min standby, 1 s arm: 302 lab s = 0.302 s of wall
    result, wall = timed(runtime.execute_task, "g1", "Wait", {"Minutes": 5.0}, {"rack": [0]})
    assert result.success, result.error
    assert 0.5 * 0.302 <= wall <= 5 * 0.302


@pytest.mark.parametrize(("task", "params", "lab_s"), [("Move", {"Seconds": 300.0}, 300.0),
    ("Wait", {"Minutes": 5.0}, 302.0)])  # fmt: skip
def test_a_goal_counts_its_lab_time_from_its_planned_start(
    description: ModuleDescription,
    closing: Closing,
    task: str,
    params: dict[str, float],
    lab_s: float,
) -> None:
    # 300 lab s at 1000x = 0.3 s of wall; the scheduler started the step 0.2 s ago (its message
    # took that long): a simulated device and a standby wait make it up, so the step ends in lab
    # time where the scheduler's plan says, 0.1 s from now
    runtime = closing(runtime_on(description, ScaledClock(1000.0)))
    slots = {"rack": [0]} if task == "Wait" else None
    planned = time.time() - 0.2
    result, wall = timed(
        lambda: runtime.execute_task("g1", task, params, slots, planned_start=planned)
    )
    plain, plain_wall = timed(runtime.execute_task, "g2", task, params, slots)
    assert result.success and plain.success, (result.error, plain.error)
    assert wall < 0.75 * plain_wall  # 0.1 s against 0.3 s, on a busy machine too
    assert result.timings[0].start == planned
    assert result.ended_at == pytest.approx(planned + lab_s / 1000.0, abs=0.05)
    assert result.ended_at <= time.time()
    assert plain.timings[0].start >= planned + 0.2  # without one, a goal counts from its run


def test_a_planned_start_counts_at_most_one_second_back(
    description: ModuleDescription, closing: Closing
) -> None:
    # a goal re-sent after a restart carries the start of long ago: its lab time is not all
    # spent already (30 lab s at 100x = 0.3 s of wall, inside the 1 s it may make up)
    runtime = closing(runtime_on(description, ScaledClock(100.0)))
    sent = time.time()
    result, wall = timed(
        lambda: runtime.execute_task("g1", "Move", {"Seconds": 30.0}, planned_start=sent - 600.0)
    )
    assert result.success, result.error
    assert wall < 0.2
    assert result.timings[0].start == pytest.approx(sent - 1.0, abs=0.05)
    assert result.ended_at == pytest.approx(sent - 1.0 + 0.3, abs=0.05)


def test_under_a_virtual_clock_a_day_long_action_ends_at_once(
    description: ModuleDescription,
    closing: Closing,
) -> None:
    runtime = closing(runtime_on(description, VirtualClock()))
    result, wall = timed(runtime.execute_task, "g1", "Move", {"Seconds": 9000.0})
    assert result.success, result.error
    assert wall < 2.0


def test_the_action_timeout_is_the_expected_lab_time_on_the_wall(
    description: ModuleDescription,
    closing: Closing,
) -> None:
    # 200 lab s at 1000x = 0.2 s of wall, x factor 1 + margin 0.1 s: the hung arm is given up
    # after 0.3 s (it would be 200.1 s if the timeout ignored the clock)
    runtime = closing(
        runtime_on(
            description,
            ScaledClock(1000.0),
            action_timeout_factor=1.0,
            action_timeout_margin_s=0.1,
        )
    )
    arm = runtime.backends["Arm"]
    assert isinstance(arm, SimulatedBackend)
    arm.faults = FaultSettings(hang_actions=frozenset({"move"}))
    result, wall = timed(runtime.execute_task, "g1", "Move", {"Seconds": 200.0})
    assert not result.success
    assert "within 0.3 s (timeout)" in result.error
    assert 0.3 * 0.9 <= wall <= 0.3 * 10


def test_a_copy_of_what_holds_the_clock_reads_the_same_clock() -> None:
    """The scheduler forks its core (a deep copy) for every look-ahead: one clock per process."""
    import copy

    virtual = VirtualClock(5.0)
    holder = copy.deepcopy({"clock": virtual, "scaled": ScaledClock(10.0)})
    assert holder["clock"] is virtual
    virtual.advance(2.0)
    assert holder["clock"]() == 7.0
