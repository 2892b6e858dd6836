"""NE-1000 syringe pump back end against the emulated pump on a pty (via pyserial)."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from octopus_modules.drivers.backend import DeviceCancelled, DeviceError
from octopus_modules.drivers.serial_link import DeviceDisconnected, DeviceTimeout
from octopus_modules.drivers.serial_ne1000_pump import Ne1000Pump
from octopus_modules.emulators.ne1000_pump import Ne1000PumpEmulator
from octopus_modules.lab_clock import VirtualClock

TIMEOUT_S = 0.2
POLL_S = 0.02
TIME_SCALE = 100.0  # emulated seconds per real second


@pytest.fixture(autouse=True)
def nothing_leaks() -> Iterator[None]:
    """Every pty, serial fd and thread a test opens is closed by the end of its teardown."""
    fds_before = set(os.listdir("/proc/self/fd"))
    threads_before = set(threading.enumerate())
    yield
    assert set(os.listdir("/proc/self/fd")) <= fds_before, "file descriptors leaked"
    assert set(threading.enumerate()) <= threads_before, "threads leaked"


@pytest.fixture
def emulator() -> Iterator[Ne1000PumpEmulator]:
    pump = Ne1000PumpEmulator(address=3, time_scale=TIME_SCALE)
    pump.start()
    yield pump
    pump.close()


def make_pump(port: str, **settings: object) -> Ne1000Pump:
    options: dict[str, object] = {
        "address": 3,
        "syringe_diameter_mm": 14.57,
        "timeout_s": TIMEOUT_S,
        "poll_interval_s": POLL_S,
        "reconnect_delay_s": 0.05,
    }
    options.update(settings)
    return Ne1000Pump("pump1", port, **options)  # type: ignore[arg-type]


@pytest.fixture
def pump(emulator: Ne1000PumpEmulator) -> Iterator[Ne1000Pump]:
    driver = make_pump(emulator.port)
    driver.connect()
    yield driver
    driver.close()


@pytest.fixture
def background() -> Iterator[Callable[..., Future[dict[str, object]]]]:
    """Run a blocking driver call in a worker thread, joined at the end of the test."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit


def wait_for(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        threading.Event().wait(0.005)


def test_connect_clears_the_power_up_alarm_and_sets_the_syringe(
    emulator: Ne1000PumpEmulator,
) -> None:
    driver = make_pump(emulator.port, syringe_diameter_mm=23.03)
    try:
        driver.connect()
        assert driver.power_cycles_seen == 1  # the pump reported A?R once, then worked
        assert emulator.diameter_mm == 23.03
        assert emulator.volume_units == "ML"  # > 14 mm: the pump switched to mL itself
        assert driver.read_diameter_mm() == 23.03
        assert emulator.received[0] == b"3\r" and emulator.received[-1] == b"3DIA\r"
    finally:
        driver.close()


def test_dispense_runs_until_the_pump_reports_done(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    emulator.received.clear()
    started = time.monotonic()
    result = pump.execute("dispense", {"volume_ul": 500.0, "rate_ul_s": 50.0}, threading.Event())
    elapsed = time.monotonic() - started

    expected_s = 500.0 / 50.0 / TIME_SCALE  # 10 s of pumping, time-scaled
    assert elapsed >= expected_s * 0.9  # it really waited for the pump
    assert result["volume_ul"] == pytest.approx(500.0, abs=0.5)
    assert result["rate_ul_s"] == pytest.approx(50.0)
    assert emulator.infused_ul == pytest.approx(500.0, abs=0.5)
    assert emulator.content_ul == pytest.approx(9500.0, abs=0.5)
    assert emulator.prompt == "S"
    sent = [r.decode().strip() for r in emulator.received]
    assert sent[:7] == ["3", "3DIRINF", "3RAT3000UM", "3VOLUL", "3VOL500.0", "3CLDINF", "3RUN"]
    assert set(sent[7:]) == {"3DIS"}


def test_first_dispense_without_connect_configures_the_syringe(
    emulator: Ne1000PumpEmulator,
) -> None:
    driver = make_pump(emulator.port, syringe_diameter_mm=4.78)  # a 1 mL syringe
    try:
        result = driver.dispense(5.0, 1.0)
        assert result["volume_ul"] == pytest.approx(5.0)
        assert emulator.diameter_mm == 4.78
    finally:
        driver.close()


def test_withdraw_and_prime(pump: Ne1000Pump, emulator: Ne1000PumpEmulator) -> None:
    emulator.content_ul = 5000.0  # half full: room to withdraw
    withdrawn = pump.execute(
        "withdraw", {"volume_ul": 250.0, "rate_ul_s": 100.0}, threading.Event()
    )
    assert withdrawn["volume_ul"] == pytest.approx(250.0, abs=0.5)
    assert emulator.withdrawn_ul == pytest.approx(250.0, abs=0.5)
    assert emulator.direction == "WDR"

    primed = pump.execute("prime", {}, threading.Event())
    assert primed["volume_ul"] == pytest.approx(100.0, abs=0.5)  # default prime volume
    assert emulator.direction == "INF"
    assert emulator.content_ul == pytest.approx(5000.0 + 250.0 - 100.0, abs=1.0)


def test_small_rates_and_volumes_keep_their_precision(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    assert pump.set_rate(0.01) == pytest.approx(0.01)  # 36.00 µL/h
    assert (emulator.rate_value, emulator.rate_units) == (36.0, "UH")
    assert pump.set_volume(12_345.0) == pytest.approx(12_350.0)  # 4 digits: 12.35 mL
    assert (emulator.volume_target, emulator.volume_units) == (12.35, "ML")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"volume_ul": -5.0, "rate_ul_s": 10.0}, "volume_ul"),
        ({"volume_ul": 0.0, "rate_ul_s": 10.0}, "volume_ul"),
        ({"volume_ul": math.nan, "rate_ul_s": 10.0}, "volume_ul"),
        ({"volume_ul": 20_000_000.0, "rate_ul_s": 10.0}, "volume_ul"),
        ({"volume_ul": 10.0, "rate_ul_s": 0.0}, "rate_ul_s"),
        ({"volume_ul": 10.0, "rate_ul_s": -1.0}, "rate_ul_s"),
        ({"volume_ul": 10.0, "rate_ul_s": math.inf}, "rate_ul_s"),
        ({"volume_ul": 10.0}, "rate_ul_s"),
        ({"volume_ul": "a lot", "rate_ul_s": 1.0}, "volume_ul"),
    ],
)
def test_invalid_parameters_are_rejected_before_anything_is_sent(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator, params: dict[str, object], named: str
) -> None:
    sent_before = len(emulator.received)
    with pytest.raises(DeviceError, match=named) as info:
        pump.execute("dispense", params, threading.Event())
    assert (info.value.device, info.value.action) == ("pump1", "dispense")
    assert len(emulator.received) == sent_before


def test_configured_syringe_limit_is_enforced(emulator: Ne1000PumpEmulator) -> None:
    driver = make_pump(emulator.port, max_volume_ul=1000.0)
    try:
        with pytest.raises(DeviceError, match=r"volume_ul=1500 out of range \[0, 1000\]"):
            driver.dispense(1500.0, 10.0)
    finally:
        driver.close()


def test_rate_the_pump_refuses_is_mapped_and_nothing_runs(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    # 1 mL/s is beyond the plunger speed for a 14.57 mm syringe: the pump answers ?OOR.
    with pytest.raises(
        DeviceError, match=r"pump rejected 'RAT60.00MM': \?OOR \(value out of range\)"
    ):
        pump.execute("dispense", {"volume_ul": 100.0, "rate_ul_s": 1000.0}, threading.Event())
    assert b"3RUN\r" not in emulator.received


@pytest.mark.parametrize(
    ("reply", "meaning"),
    [
        ("?", "command not recognised"),
        ("?NA", "command not applicable now"),
        ("?COM", "invalid communications packet"),
        ("?IGN", "command ignored"),
    ],
)
def test_error_replies_are_mapped(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator, reply: str, meaning: str
) -> None:
    emulator.error_reply = reply
    with pytest.raises(DeviceError) as info:
        pump.execute("withdraw", {"volume_ul": 10.0, "rate_ul_s": 1.0}, threading.Event())
    assert str(info.value) == f"pump1.withdraw: read_status: pump rejected '': {reply} ({meaning})"


def test_withdrawing_into_a_full_syringe_stalls_with_an_alarm(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    with pytest.raises(DeviceError, match=r"pump1.withdraw: pump alarm 'S' \(pump motor stalled\)"):
        pump.execute("withdraw", {"volume_ul": 10.0, "rate_ul_s": 10.0}, threading.Event())
    assert emulator.withdrawn_ul == 0.0


def test_stall_alarm_while_dispensing_is_reported(emulator: Ne1000PumpEmulator) -> None:
    emulator.content_ul = 100.0  # only 100 µL left in the syringe
    driver = make_pump(emulator.port)
    try:
        driver.connect()
        with pytest.raises(DeviceError, match=r"pump alarm 'S' \(pump motor stalled\)"):
            driver.dispense(500.0, 100.0)
    finally:
        driver.close()
    assert emulator.infused_ul == pytest.approx(100.0)


def test_silent_pump_times_out(pump: Ne1000Pump, emulator: Ne1000PumpEmulator) -> None:
    emulator.silent = True
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match=r"pump1.stop: no reply to '3STP\\r' within 0.2 s"):
        pump.execute("stop", {}, threading.Event())
    assert TIMEOUT_S <= time.monotonic() - started < TIMEOUT_S + 0.2


def test_pump_that_never_finishes_is_stopped_and_reported(
    emulator: Ne1000PumpEmulator,
) -> None:
    # lab time stops for the emulator: the plunger does not move (jammed drive, no alarm)
    emulator.clock = VirtualClock(emulator.clock.now())
    driver = make_pump(emulator.port, overrun_factor=1.0, overrun_margin_s=0.1)
    try:
        driver.connect()
        started = time.monotonic()
        with pytest.raises(DeviceError, match=r"pump still infusing after .* moved 0 of 10 µL"):
            driver.dispense(10.0, 100.0)  # expected 0.1 s; gives up at 0.2 s
        assert time.monotonic() - started < 0.2 + 2 * POLL_S + 0.1
        driver.read_prompt()
        assert emulator.prompt == "S"
    finally:
        driver.close()


def test_cancel_during_dispense_stops_the_pump_promptly(
    pump: Ne1000Pump,
    emulator: Ne1000PumpEmulator,
    background: Callable[..., Future[dict[str, object]]],
) -> None:
    cancel = threading.Event()
    run = background(pump.execute, "dispense", {"volume_ul": 5000.0, "rate_ul_s": 10.0}, cancel)
    wait_for(lambda: emulator.prompt == "I")
    cancel.set()
    cancelled_at = time.monotonic()
    with pytest.raises(DeviceCancelled, match="pump1.dispense: cancelled"):
        run.result(timeout=2.0)
    latency = time.monotonic() - cancelled_at
    assert latency < POLL_S + 0.2  # typically ~2 ms: the wait wakes at once, then 2 STP round trips
    assert emulator.prompt == "S"  # STP twice: paused, then stopped
    assert 0 < emulator.infused_ul < 5000.0
    # the next dispense starts cleanly from the stopped state
    result = pump.execute("dispense", {"volume_ul": 20.0, "rate_ul_s": 20.0}, threading.Event())
    assert result["volume_ul"] == pytest.approx(20.0, abs=0.1)


def test_safe_state_stops_a_running_dispense(
    pump: Ne1000Pump,
    emulator: Ne1000PumpEmulator,
    background: Callable[..., Future[dict[str, object]]],
) -> None:
    run = background(pump.dispense, 5000.0, 10.0)
    wait_for(lambda: emulator.prompt == "I")
    pump.safe_state()  # e.g. emergency stop from the runtime thread
    with pytest.raises(DeviceError, match="pump stopped early"):
        run.result(timeout=2.0)
    assert emulator.prompt == "S"


def test_safe_state_never_raises_when_the_pump_is_gone(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    emulator.stop()
    started = time.monotonic()
    pump.safe_state()
    assert time.monotonic() - started < 0.1


def test_reconnects_after_the_pump_is_power_cycled(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    emulator.restart()
    started = time.monotonic()
    result = pump.execute("dispense", {"volume_ul": 50.0, "rate_ul_s": 50.0}, threading.Event())
    assert result["volume_ul"] == pytest.approx(50.0, abs=0.1)
    assert pump.link.opens == 2
    assert pump.power_cycles_seen == 2  # connect + after the restart
    assert emulator.received.count(b"3DIA14.57\r") == 2  # syringe re-sent on the new link
    assert time.monotonic() - started < 1.0


def test_power_loss_during_a_dispense_is_an_error_not_a_silent_restart(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    timer = threading.Timer(0.1, emulator.restart)
    timer.start()
    try:
        with pytest.raises(DeviceError, match=r"pump alarm 'R' \(pump was reset"):
            pump.dispense(5000.0, 10.0)
    finally:
        timer.join()
    assert emulator.prompt == "S"  # the restarted pump is not pumping


def test_port_that_stays_down_gives_a_clear_error(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    emulator.stop()
    with pytest.raises(DeviceDisconnected, match=r"pump1.dispense: .*after 3 attempt"):
        pump.execute("dispense", {"volume_ul": 5.0, "rate_ul_s": 1.0}, threading.Event())


def test_requests_for_another_address_get_no_reply(emulator: Ne1000PumpEmulator) -> None:
    emulator.address = 3
    driver = make_pump(emulator.port, address=4)  # pump 4 is not on the line
    try:
        with pytest.raises(DeviceTimeout):
            driver.read_prompt()
    finally:
        driver.close()


def test_a_dispense_that_loses_the_pump_stops_it(
    pump: Ne1000Pump, emulator: Ne1000PumpEmulator
) -> None:
    timer = threading.Timer(0.05, setattr, (emulator, "silent", True))
    timer.start()
    try:
        with pytest.raises(DeviceTimeout, match=r"pump1.dispense: no reply to '3DIS\\r'"):
            pump.dispense(5000.0, 10.0)
    finally:
        timer.join()
    wait_for(lambda: emulator.prompt in ("P", "S"))  # STP reached it; only replies were lost
