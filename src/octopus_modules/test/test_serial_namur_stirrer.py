"""NAMUR stirrer/hotplate back end against the emulated hotplate on a pty (via pyserial)."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from octopus_modules.drivers.backend import DeviceCancelled, DeviceError
from octopus_modules.drivers.serial_link import DeviceDisconnected, DeviceTimeout
from octopus_modules.drivers.serial_namur_stirrer import NamurStirrer
from octopus_modules.emulators.namur_hotplate import NamurHotplateEmulator
from octopus_modules.lab_clock import VirtualClock

TIMEOUT_S = 0.2


@pytest.fixture(autouse=True)
def nothing_leaks() -> Iterator[None]:
    """Every pty, serial fd and thread a test opens is closed by the end of its teardown."""
    fds_before = set(os.listdir("/proc/self/fd"))
    threads_before = set(threading.enumerate())
    yield
    assert set(os.listdir("/proc/self/fd")) <= fds_before, "file descriptors leaked"
    assert set(threading.enumerate()) <= threads_before, "threads leaked"


@pytest.fixture
def clock() -> VirtualClock:
    """The emulator's lab clock, moved by hand: physics without waiting."""
    return VirtualClock(0.0)


@pytest.fixture
def hotplate(clock: VirtualClock) -> Iterator[NamurHotplateEmulator]:
    emulator = NamurHotplateEmulator(name="C-MAG HS 7", clock=clock)
    emulator.start()
    yield emulator
    emulator.close()


def make_stirrer(port: str, **settings: object) -> NamurStirrer:
    # ptys refuse 7-bit/even-parity framing (tcsetattr EINVAL), so tests use 8N1;
    # the bytes on the wire are the same.
    options: dict[str, object] = {
        "bytesize": 8,
        "parity": "N",
        "timeout_s": TIMEOUT_S,
        "reconnect_delay_s": 0.05,
        "poll_interval_s": 0.02,
    }
    options.update(settings)
    return NamurStirrer("hotplate1", port, **options)  # type: ignore[arg-type]


@pytest.fixture
def stirrer(hotplate: NamurHotplateEmulator) -> Iterator[NamurStirrer]:
    driver = make_stirrer(hotplate.port)
    driver.connect()
    yield driver
    driver.close()


def test_connect_reads_the_instrument_name(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    assert stirrer.identity == "C-MAG HS 7"
    assert hotplate.received == [b"IN_NAME\r\n"]


def test_heat_sets_the_setpoint_and_the_plate_approaches_it(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator, clock: VirtualClock
) -> None:
    result = stirrer.execute("heat", {"temperature_c": 80.0}, threading.Event())

    assert hotplate.heater_on and hotplate.temperature_setpoint_c == 80.0
    assert result["temperature_setpoint_c"] == 80.0
    assert result["temperature_c"] == pytest.approx(22.0, abs=0.2)  # nothing heated yet
    clock.advance(120.0)  # ramp-limited: at most 0.25 K/s
    plate_after_2_min = stirrer.read_plate_temperature_c()
    assert 40.0 < plate_after_2_min < 53.0
    clock.advance(1800.0)
    assert stirrer.read_plate_temperature_c() == pytest.approx(80.0, abs=0.5)
    assert stirrer.read_temperature_c() == pytest.approx(80.0, abs=1.0)  # medium probe followed


def test_stir_reaches_the_speed_and_duration_stops_the_motor(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator, clock: VirtualClock
) -> None:
    stirrer.execute("stir", {"speed_rpm": 600}, threading.Event())
    assert hotplate.motor_on and hotplate.speed_setpoint_rpm == 600
    clock.advance(10.0)
    assert stirrer.read_speed_rpm() == pytest.approx(600, abs=1)

    stirrer.execute("stir", {"speed_rpm": 300, "duration_s": 0.05}, threading.Event())
    assert not hotplate.motor_on
    commands = [r.split()[0] for r in hotplate.received]
    assert commands.index(b"START_4") < len(commands) - commands[::-1].index(b"STOP_4")


def test_stop_switches_heater_and_motor_off(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    stirrer.execute("heat", {"temperature_c": 50}, threading.Event())
    stirrer.execute("stir", {"speed_rpm": 400}, threading.Event())
    result = stirrer.execute("stop", {}, threading.Event())
    assert not hotplate.heater_on and not hotplate.motor_on
    assert set(result) == {"temperature_c", "plate_temperature_c", "speed_rpm"}


@pytest.mark.parametrize(
    ("action", "params", "named"),
    [
        ("heat", {"temperature_c": 311.0}, "temperature_c"),
        ("heat", {"temperature_c": -1.0}, "temperature_c"),
        ("heat", {"temperature_c": math.nan}, "temperature_c"),
        ("stir", {"speed_rpm": 1501}, "speed_rpm"),
        ("stir", {"speed_rpm": -10}, "speed_rpm"),
        ("stir", {"speed_rpm": "fast"}, "speed_rpm"),
        ("stir", {"speed_rpm": 100, "duration_s": -1}, "duration_s"),
        ("stir", {}, "speed_rpm"),
    ],
)
def test_invalid_parameters_are_rejected_before_anything_is_sent(
    stirrer: NamurStirrer,
    hotplate: NamurHotplateEmulator,
    action: str,
    params: dict[str, object],
    named: str,
) -> None:
    sent_before = len(hotplate.received)
    with pytest.raises(DeviceError, match=named) as info:
        stirrer.execute(action, params, threading.Event())
    assert info.value.device == "hotplate1" and info.value.action == action
    assert len(hotplate.received) == sent_before


def test_unknown_action_is_an_error(stirrer: NamurStirrer) -> None:
    with pytest.raises(DeviceError, match="unknown action"):
        stirrer.execute("boil", {}, threading.Event())


def test_setpoint_the_instrument_ignores_is_detected_by_read_back(
    hotplate: NamurHotplateEmulator,
) -> None:
    # Driver configured for a bigger model than the connected one: the device
    # silently ignores OUT_SP_4 2000, the read-back exposes it.
    driver = make_stirrer(hotplate.port, max_speed_rpm=3000)
    try:
        with pytest.raises(DeviceError, match="did not accept the setpoint: sent 2000"):
            driver.set_speed(2000)
        assert hotplate.speed_setpoint_rpm == 0.0
    finally:
        driver.close()


def test_silent_instrument_times_out_after_the_reply_timeout(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    hotplate.silent = True
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no reply to 'IN_PV_4.*within 0.2 s") as info:
        stirrer.read_speed_rpm()
    elapsed = time.monotonic() - started
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 0.2
    assert info.value.device == "hotplate1"
    hotplate.silent = False
    assert stirrer.read_speed_rpm() == 0.0


def test_a_reply_arriving_after_the_timeout_is_not_taken_for_the_next_one(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    hotplate.reply_delay_s = TIMEOUT_S * 1.5
    with pytest.raises(DeviceTimeout):
        stirrer.read_name()  # "C-MAG HS 7" arrives 0.1 s too late
    hotplate.reply_delay_s = 0.0
    assert stirrer.read_speed_rpm() == 0.0  # not "unexpected reply 'C-MAG HS 7'"


def test_slow_replies_within_the_timeout_are_fine(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    hotplate.reply_delay_s = TIMEOUT_S / 2
    assert stirrer.read_name() == "C-MAG HS 7"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("-84", r"instrument error -84 \(unknown instruction\)"),
        ("-86", r"instrument error -86 \(invalid rated value\)"),
        ("Er 4", r"unexpected reply 'Er 4'"),
        ("25.0 2", r"reply '25.0 2' is for channel 2, expected 4"),
    ],
)
def test_error_replies_are_mapped_to_device_errors(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator, reply: str, message: str
) -> None:
    hotplate.error_reply = reply
    with pytest.raises(DeviceError, match=message) as info:
        stirrer.execute("stir", {"speed_rpm": 200}, threading.Event())
    assert str(info.value).startswith("hotplate1.stir: ")


def test_reconnects_after_the_instrument_is_power_cycled(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    old_pty = hotplate.pty_path
    hotplate.restart()
    assert hotplate.pty_path != old_pty  # a genuinely new pty behind the same port path
    started = time.monotonic()
    assert stirrer.read_name() == "C-MAG HS 7"
    assert time.monotonic() - started < 0.2
    assert stirrer.link.opens == 2


def test_reopens_a_port_closed_under_it(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    assert stirrer.link._port is not None
    stirrer.link._port.close()
    stirrer.set_temperature(42.5)
    assert hotplate.temperature_setpoint_c == 42.5
    assert stirrer.link.opens == 2


def test_port_that_stays_down_gives_a_clear_error_after_bounded_retries(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    hotplate.stop()
    started = time.monotonic()
    with pytest.raises(DeviceDisconnected, match=r"cannot open serial port .* after 3 attempt"):
        stirrer.read_speed_rpm()
    assert time.monotonic() - started < 0.5  # 2 waits of 0.05 s between 3 attempts
    hotplate.start()
    assert stirrer.read_speed_rpm() == 0.0  # and it comes back once the device is there


def test_lost_port_while_waiting_for_a_reply_is_reported_then_reopened(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    hotplate.reply_delay_s = 1.0
    timer = threading.Timer(0.05, hotplate.restart)
    timer.start()
    try:
        with pytest.raises(DeviceDisconnected, match="lost while waiting for the reply"):
            stirrer.read_name()
    finally:
        timer.join()
    hotplate.reply_delay_s = 0.0
    assert stirrer.read_name() == "C-MAG HS 7"


def test_safe_state_stops_heater_and_motor(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    stirrer.execute("heat", {"temperature_c": 70}, threading.Event())
    stirrer.execute("stir", {"speed_rpm": 700}, threading.Event())
    stirrer.safe_state()
    stirrer.read_name()  # a round trip: the emulator has processed both STOPs
    assert not hotplate.heater_on and not hotplate.motor_on


def test_safe_state_returns_quickly_without_raising_when_the_port_is_gone(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    hotplate.stop()
    started = time.monotonic()
    stirrer.safe_state()
    assert time.monotonic() - started < 0.1


def test_cancel_during_a_timed_stir_stops_the_motor_promptly(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.1, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(DeviceCancelled):
            stirrer.execute("stir", {"speed_rpm": 500, "duration_s": 30}, cancel)
    finally:
        timer.join()
    assert time.monotonic() - started < 0.1 + 0.1
    stirrer.read_name()
    assert not hotplate.motor_on and not hotplate.heater_on


def test_a_timed_hold_that_loses_the_instrument_switches_it_off(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    timer = threading.Timer(0.05, setattr, (hotplate, "silent", True))
    timer.start()
    try:
        with pytest.raises(DeviceTimeout, match=r"hotplate1.heat: read IN_PV_4: no reply"):
            stirrer.execute("heat", {"temperature_c": 60, "duration_s": 30}, threading.Event())
    finally:
        timer.join()
    wait_until(lambda: not hotplate.heater_on)  # STOP_1 went out although replies did not come


def wait_until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        threading.Event().wait(0.005)


def test_safe_state_after_a_timeout_goes_out_at_once(
    stirrer: NamurStirrer, hotplate: NamurHotplateEmulator
) -> None:
    stirrer.execute("stir", {"speed_rpm": 300}, threading.Event())
    hotplate.silent = True
    with pytest.raises(DeviceTimeout):
        stirrer.read_speed_rpm()
    started = time.monotonic()
    stirrer.safe_state()  # does not wait for the late reply a normal request would drain
    assert time.monotonic() - started < 0.05
    wait_until(lambda: not hotplate.motor_on)


def test_watchdog_is_armed_and_kept_alive_while_the_driver_lives(
    hotplate: NamurHotplateEmulator,
) -> None:
    driver = make_stirrer(hotplate.port, watchdog_s=20, watchdog_keepalive_s=0.02)
    try:
        driver.connect()
        assert hotplate.watchdog_deadline_s == 20.0  # armed on connect, before any heating
        wait_until(lambda: hotplate.received.count(b"OUT_WD1@20\r\n") >= 3)
        driver.execute("heat", {"temperature_c": 50}, threading.Event())  # shares the link
        assert hotplate.heater_on
    finally:
        driver.close()  # stops the keep-alive thread (checked by nothing_leaks)


def test_watchdog_switches_the_hotplate_off_when_the_host_goes_quiet(
    hotplate: NamurHotplateEmulator, clock: VirtualClock
) -> None:
    driver = make_stirrer(hotplate.port, watchdog_s=20, watchdog_keepalive_s=3600)
    try:
        driver.execute("heat", {"temperature_c": 80}, threading.Event())  # arms lazily
        driver.execute("stir", {"speed_rpm": 400}, threading.Event())
        clock.advance(19.0)
        driver.read_speed_rpm()
        assert hotplate.heater_on and not hotplate.watchdog_tripped
        clock.advance(2.0)  # 21 s without OUT_WD1: the host process is presumed dead
        driver.read_speed_rpm()
        assert not hotplate.heater_on and not hotplate.motor_on
        assert hotplate.watchdog_tripped
    finally:
        driver.close()


@pytest.mark.parametrize("watchdog_s", [5, 2000, 20.5])
def test_watchdog_period_outside_the_device_range_is_refused(watchdog_s: float) -> None:
    with pytest.raises(
        ValueError, match="watchdog_s must be a whole number of seconds in 20..1500"
    ):
        NamurStirrer("hotplate1", "/dev/null", watchdog_s=watchdog_s)  # type: ignore[arg-type]
