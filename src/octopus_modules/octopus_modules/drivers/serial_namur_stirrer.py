"""Real back end for magnetic stirrer/hotplates speaking the NAMUR command set (IKA RCT/C-MAG).

Protocol (IKA RCT digital manual, "NAMUR commands"; details in SERIAL_DRIVERS.md):
requests end with CR LF; queries (``IN_*``) answer ``"<value> <channel>"``;
``OUT_SP_1 x`` / ``OUT_SP_4 x`` / ``START_n`` / ``STOP_n`` are not answered, and the
instrument silently ignores what it does not accept. So every setpoint is read
back (``IN_SP_n``) and compared: a refused setpoint becomes a DeviceError instead
of a silent no-op, and the read-back also proves the link is alive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import serial

from octopus_modules.drivers.backend import DeviceBackend, DeviceCancelled, DeviceError
from octopus_modules.drivers.serial_link import SerialLink, SerialSettings, as_action
from octopus_modules.drivers.serial_namur_watchdog import NamurWatchdog
from octopus_modules.drivers.serial_params import (
    check_duration,
    check_range,
    number_param,
    optional_number_param,
)

_log = logging.getLogger(__name__)

# Negative codes returned by IKA NAMUR devices that implement STATUS (e.g. LR 1000 manual).
NAMUR_STATUS_CODES = {
    -83: "wrong parity",
    -84: "unknown instruction",
    -85: "wrong instruction sequence",
    -86: "invalid rated value",
    -87: "not sufficient storage space",
}

TEMPERATURE_CHANNEL_EXTERNAL = 1  # IN_PV_1: external probe (PT1000) in the medium
TEMPERATURE_CHANNEL_PLATE = 2  # IN_PV_2: hotplate sensor
SPEED_CHANNEL = 4


class NamurStirrer(DeviceBackend):
    """IKA-style stirrer/hotplate on a serial port; kind ``stirrer``."""

    kind = "stirrer"

    def __init__(
        self,
        name: str,
        port: str,
        *,
        baudrate: int = 9600,
        bytesize: int = serial.SEVENBITS,
        parity: str = serial.PARITY_EVEN,
        stopbits: float = serial.STOPBITS_ONE,
        timeout_s: float = 1.0,
        reconnect_attempts: int = 3,
        reconnect_delay_s: float = 0.2,
        max_temperature_c: float = 310.0,
        max_speed_rpm: float = 1500.0,
        temperature_probe: str = "external",
        poll_interval_s: float = 1.0,
        watchdog_s: int | None = None,
        watchdog_keepalive_s: float | None = None,
    ) -> None:
        super().__init__(name)
        if temperature_probe not in ("external", "plate"):
            raise ValueError(
                f"{name}: temperature_probe must be 'external' or 'plate', "
                f"got {temperature_probe!r}"
            )
        self.settings = SerialSettings(
            port=port,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout_s=timeout_s,
            reconnect_attempts=reconnect_attempts,
            reconnect_delay_s=reconnect_delay_s,
        )
        self.link = SerialLink(name, self.settings)
        self.max_temperature_c = max_temperature_c
        self.max_speed_rpm = max_speed_rpm
        self.temperature_channel = (
            TEMPERATURE_CHANNEL_EXTERNAL
            if temperature_probe == "external"
            else TEMPERATURE_CHANNEL_PLATE
        )
        self.poll_interval_s = poll_interval_s
        self.identity = ""
        self.watchdog = (
            None
            if watchdog_s is None
            else NamurWatchdog(self.link, watchdog_s, watchdog_keepalive_s)
        )

    # ---- DeviceBackend -------------------------------------------------

    def actions(self) -> frozenset[str]:
        return frozenset({"stir", "heat", "stop"})

    def connect(self) -> None:
        self.link.open()
        self.identity = self.read_name()
        self._ensure_watchdog("connect")

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        self.link.close()

    def _ensure_watchdog(self, action: str) -> None:
        """With ``watchdog_s`` set, the device is supervised before it is told to heat."""
        if self.watchdog is not None and not self.watchdog.running:
            self.watchdog.start(action)

    def execute(
        self, action: str, params: Mapping[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        with as_action(self.name, action):
            self._ensure_watchdog(action)
            return self._execute(action, params, cancel)

    def _execute(
        self, action: str, params: Mapping[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        if action == "stir":
            return self.stir(
                number_param(self, action, params, "speed_rpm"),
                optional_number_param(self, action, params, "duration_s"),
                cancel,
            )
        if action == "heat":
            return self.heat(
                number_param(self, action, params, "temperature_c"),
                optional_number_param(self, action, params, "duration_s"),
                cancel,
            )
        if action == "stop":
            self.stop_heating()
            self.stop_stirring()
            return self.read_status()
        raise DeviceError(
            self.name, action, f"unknown action; known: {', '.join(sorted(self.actions()))}"
        )

    def safe_state(self) -> None:
        """Heater and motor off; one attempt each, errors swallowed (port may be gone)."""
        for command in ("STOP_1", "STOP_4"):
            try:
                self.link.send(_frame(command), "safe_state", urgent=True)
            except Exception as exc:  # noqa: BLE001 - safe_state must never raise
                _log.warning("%s: safe_state could not send %s: %s", self.name, command, exc)

    # ---- task-level actions --------------------------------------------

    def stir(
        self,
        speed_rpm: float,
        duration_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Stir at ``speed_rpm``; with a duration, stop the motor after it (cancellable)."""
        check_duration(self, "stir", duration_s)
        self.set_speed(speed_rpm)
        self.start_stirring()
        if duration_s is not None:
            self._hold(duration_s, cancel, "stir")
            self.stop_stirring()
        return {"speed_setpoint_rpm": speed_rpm, "speed_rpm": self.read_speed_rpm()}

    def heat(
        self,
        temperature_c: float,
        duration_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Heat to ``temperature_c``; with a duration, switch the heater off after it."""
        check_duration(self, "heat", duration_s)
        self.set_temperature(temperature_c)
        self.start_heating()
        if duration_s is not None:
            self._hold(duration_s, cancel, "heat")
            self.stop_heating()
        return {"temperature_setpoint_c": temperature_c, "temperature_c": self.read_temperature_c()}

    def _hold(self, duration_s: float, cancel: threading.Event | None, action: str) -> None:
        """Wait for the duration, polling the device so a lost link is noticed early."""
        cancel = cancel or threading.Event()
        remaining = duration_s
        while remaining > 0:
            step = min(self.poll_interval_s, remaining)
            if cancel.wait(step):
                self.safe_state()
                raise DeviceCancelled(self.name, action)
            remaining -= step
            try:
                self.read_speed_rpm()  # keeps the watch on the link during long holds
            except DeviceError:
                self.safe_state()  # a hold we cannot supervise must not keep heating
                raise

    # ---- typed front end ------------------------------------------------

    def read_name(self) -> str:
        return self._query("IN_NAME", "read_name").strip()

    def read_temperature_c(self) -> float:
        """Temperature from the configured probe (external medium probe by default)."""
        return self._read_value(f"IN_PV_{self.temperature_channel}", self.temperature_channel)

    def read_plate_temperature_c(self) -> float:
        return self._read_value("IN_PV_2", TEMPERATURE_CHANNEL_PLATE)

    def read_external_temperature_c(self) -> float:
        return self._read_value("IN_PV_1", TEMPERATURE_CHANNEL_EXTERNAL)

    def read_speed_rpm(self) -> float:
        return self._read_value("IN_PV_4", SPEED_CHANNEL)

    def read_temperature_setpoint_c(self) -> float:
        return self._read_value("IN_SP_1", 1)

    def read_speed_setpoint_rpm(self) -> float:
        return self._read_value("IN_SP_4", SPEED_CHANNEL)

    def read_status(self) -> dict[str, Any]:
        return {
            "temperature_c": self.read_temperature_c(),
            "plate_temperature_c": self.read_plate_temperature_c(),
            "speed_rpm": self.read_speed_rpm(),
        }

    def set_temperature(self, celsius: float) -> None:
        check_range(self, "set_temperature", "temperature_c", celsius, 0.0, self.max_temperature_c)
        value = round(float(celsius), 1)
        self._send(f"OUT_SP_1 {value:.1f}", "set_temperature")
        self._verify_setpoint("set_temperature", "IN_SP_1", 1, value, tolerance=0.05)

    def set_speed(self, rpm: float) -> None:
        check_range(self, "set_speed", "speed_rpm", rpm, 0.0, self.max_speed_rpm)
        value = round(float(rpm))
        self._send(f"OUT_SP_4 {value}", "set_speed")
        self._verify_setpoint("set_speed", "IN_SP_4", SPEED_CHANNEL, value, tolerance=0.5)

    def start_heating(self) -> None:
        self._send("START_1", "start_heating")

    def stop_heating(self) -> None:
        self._send("STOP_1", "stop_heating")

    def start_stirring(self) -> None:
        self._send("START_4", "start_stirring")

    def stop_stirring(self) -> None:
        self._send("STOP_4", "stop_stirring")

    # ---- wire ------------------------------------------------------------

    def _send(self, command: str, action: str) -> None:
        self.link.send(_frame(command), action)

    def _query(self, command: str, action: str) -> str:
        reply = self.link.exchange(_frame(command), b"\n", action)
        return reply.decode("ascii", errors="replace").strip()

    def _read_value(self, command: str, channel: int) -> float:
        action = f"read {command}"
        return parse_value(self.name, action, self._query(command, action), channel)

    def _verify_setpoint(
        self, action: str, query: str, channel: int, sent: float, tolerance: float
    ) -> None:
        actual = parse_value(self.name, action, self._query(query, action), channel)
        if abs(actual - sent) > tolerance:
            raise DeviceError(
                self.name,
                action,
                f"instrument did not accept the setpoint: sent {sent:g}, {query} reads {actual:g} "
                f"(NAMUR devices ignore values outside their own range)",
            )


def _frame(command: str) -> bytes:
    return command.encode("ascii") + b"\r\n"


def parse_value(device: str, action: str, reply: str, channel: int) -> float:
    """Parse ``"<value> <channel>"``; map anything else to a DeviceError quoting the reply."""
    words = reply.split()
    code = _int_or_none(words[0]) if len(words) == 1 else None
    if code is not None and code in NAMUR_STATUS_CODES:
        raise DeviceError(
            device, action, f"instrument error {code} ({NAMUR_STATUS_CODES[code]}): {reply!r}"
        )
    try:
        value = float(words[0])
    except (IndexError, ValueError):
        raise DeviceError(device, action, f"unexpected reply {reply!r}") from None
    if len(words) > 1 and words[1] != str(channel):
        raise DeviceError(
            device, action, f"reply {reply!r} is for channel {words[1]}, expected {channel}"
        )
    return value


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
