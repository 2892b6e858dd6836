"""Real back end for New Era NE-1000-family syringe pumps (RS-232, Basic mode).

A dispense is: make sure the pump is stopped, set direction, rate and target
volume (units chosen so the 4-digit numbers keep their precision), clear the
dispensed-volume counter, ``RUN``, then poll ``DIS`` until the prompt returns to
``S`` (done) — stopping the pump at once on cancel, on an alarm, or when it
takes far longer than rate and volume imply. Wire format: serial_ne1000_protocol.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import serial

from octopus_modules.drivers.backend import DeviceBackend, DeviceCancelled, DeviceError
from octopus_modules.drivers.serial_link import SerialLink, SerialSettings, as_action
from octopus_modules.drivers.serial_ne1000_protocol import (
    ALARMS,
    ERRORS,
    ETX,
    MAX_NUMBER,
    PROMPTS,
    RATE_UNITS_UL_PER_S,
    VOLUME_UNITS_UL,
    Reply,
    best_rate_units,
    best_volume_units,
    decode_reply,
    encode_request,
    format_number,
)
from octopus_modules.drivers.serial_params import check_range, number_param, optional_number_param

_log = logging.getLogger(__name__)
SAFE_STATE_TIMEOUT_S = 0.5
_DISPENSED = re.compile(r"^I(?P<infused>[0-9.]+)W(?P<withdrawn>[0-9.]+)(?P<units>UL|ML)$")


class Ne1000Pump(DeviceBackend):
    """NE-1000-style syringe pump on a serial port; kind ``pump``."""

    kind = "pump"

    def __init__(
        self,
        name: str,
        port: str,
        *,
        syringe_diameter_mm: float = 14.57,
        address: int = 0,
        baudrate: int = 19200,
        timeout_s: float = 1.0,
        reconnect_attempts: int = 3,
        reconnect_delay_s: float = 0.2,
        poll_interval_s: float = 0.1,
        max_volume_ul: float | None = None,
        max_rate_ul_s: float | None = None,
        prime_volume_ul: float = 100.0,
        prime_rate_ul_s: float = 50.0,
        overrun_factor: float = 1.5,
        overrun_margin_s: float = 5.0,
    ) -> None:
        super().__init__(name)
        if not 0 <= address <= 99:
            raise ValueError(f"{name}: address must be 0..99, got {address}")
        self.settings = SerialSettings(
            port=port,
            baudrate=baudrate,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout_s=timeout_s,
            reconnect_attempts=reconnect_attempts,
            reconnect_delay_s=reconnect_delay_s,
        )
        self.link = SerialLink(name, self.settings)
        self.address = address
        self.syringe_diameter_mm = syringe_diameter_mm
        self.poll_interval_s = poll_interval_s
        self.max_volume_ul = max_volume_ul
        self.max_rate_ul_s = max_rate_ul_s
        self.prime_volume_ul = prime_volume_ul
        self.prime_rate_ul_s = prime_rate_ul_s
        self.overrun_factor = overrun_factor
        self.overrun_margin_s = overrun_margin_s
        self.power_cycles_seen = 0  # reset alarms cleared: the pump lost power that often
        self._configured_on_open = -1  # link.opens when the diameter was last sent

    # ---- DeviceBackend -------------------------------------------------

    def actions(self) -> frozenset[str]:
        return frozenset({"dispense", "withdraw", "prime", "stop"})

    def connect(self) -> None:
        self.link.open()
        self.read_prompt()  # clears the power-up reset alarm
        self._ensure_configured()

    def _ensure_configured(self) -> None:
        """(Re)send the syringe diameter on a fresh connection: the pump may have been swapped."""
        if self._configured_on_open != self.link.opens:
            self.set_diameter(self.syringe_diameter_mm)
            self._configured_on_open = self.link.opens

    def close(self) -> None:
        self.link.close()

    def execute(
        self, action: str, params: Mapping[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        with as_action(self.name, action):
            return self._execute(action, params, cancel)

    def _execute(
        self, action: str, params: Mapping[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        if action in ("dispense", "withdraw"):
            volume = number_param(self, action, params, "volume_ul")
            rate = number_param(self, action, params, "rate_ul_s")
            pump = self.dispense if action == "dispense" else self.withdraw
            return pump(volume, rate, cancel)
        if action == "prime":
            volume = optional_number_param(self, action, params, "volume_ul")
            volume = self.prime_volume_ul if volume is None else volume
            return self._pump("prime", "INF", volume, self.prime_rate_ul_s, cancel)
        if action == "stop":
            self.stop()
            return {"prompt": self.read_prompt()}
        raise DeviceError(
            self.name, action, f"unknown action; known: {', '.join(sorted(self.actions()))}"
        )

    def safe_state(self) -> None:
        """Stop the plunger: STP until the pump says stopped (the first STP only pauses).

        One attempt per request and a short reply timeout, so it returns quickly even
        with the port gone; never raises.
        """
        request = encode_request(self.address, "STP")
        timeout_s = min(self.settings.timeout_s, SAFE_STATE_TIMEOUT_S)
        for _ in range(2):
            try:
                frame = self.link.exchange(request, ETX, "safe_state", timeout_s, urgent=True)
                if decode_reply(frame).prompt == "S":
                    return
            except Exception as exc:  # noqa: BLE001 - safe_state must never raise
                _log.warning("%s: safe_state could not stop the pump: %s", self.name, exc)
                return

    # ---- typed front end ------------------------------------------------

    def dispense(
        self, volume_ul: float, rate_ul_s: float, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        """Infuse ``volume_ul`` at ``rate_ul_s``; blocks until the pump reports done."""
        return self._pump("dispense", "INF", volume_ul, rate_ul_s, cancel)

    def withdraw(
        self, volume_ul: float, rate_ul_s: float, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        """Withdraw (aspirate) ``volume_ul`` at ``rate_ul_s``; blocks until done."""
        return self._pump("withdraw", "WDR", volume_ul, rate_ul_s, cancel)

    def stop(self) -> None:
        """Stop pumping: the first STP pauses, a second one ends the run."""
        if self._command("STP", "stop").prompt == "P":
            self._command("STP", "stop")

    def set_diameter(self, diameter_mm: float) -> None:
        check_range(self, "set_diameter", "syringe_diameter_mm", diameter_mm, 0.1, 50.0)
        self._command(f"DIA{format_number(diameter_mm)}", "set_diameter")
        self.syringe_diameter_mm = diameter_mm

    def read_diameter_mm(self) -> float:
        data = self._command("DIA", "read_diameter").data
        try:
            return float(data)
        except ValueError:
            raise DeviceError(
                self.name, "read_diameter", f"unexpected DIA reply {data!r}"
            ) from None

    def set_rate(self, rate_ul_s: float) -> float:
        """Set the pumping rate; returns the rate actually set (4-digit rounding)."""
        self._check_rate("set_rate", rate_ul_s)
        value, units = best_rate_units(rate_ul_s)
        text = format_number(value)
        self._command(f"RAT{text}{units}", "set_rate")
        return float(text) * RATE_UNITS_UL_PER_S[units]

    def set_volume(self, volume_ul: float) -> float:
        """Set the target volume; returns the volume actually set."""
        self._check_volume("set_volume", volume_ul)
        value, units = best_volume_units(volume_ul)
        self._command(f"VOL{units}", "set_volume")
        text = format_number(value)
        self._command(f"VOL{text}", "set_volume")
        return float(text) * VOLUME_UNITS_UL[units]

    def read_prompt(self) -> str:
        """Pump state: one of PROMPTS (``S`` stopped, ``I`` infusing, ...)."""
        return self._command("", "read_status").prompt

    def read_dispensed_ul(self) -> tuple[float, float]:
        """(infused, withdrawn) volume since the counters were cleared, in µL."""
        return _dispensed(self.name, "read_dispensed", self._command("DIS", "read_dispensed"))

    # ---- dispensing ------------------------------------------------------

    def _pump(
        self,
        action: str,
        direction: str,
        volume_ul: float,
        rate_ul_s: float,
        cancel: threading.Event | None,
    ) -> dict[str, Any]:
        self._check_volume(action, volume_ul)
        self._check_rate(action, rate_ul_s)
        cancel = cancel or threading.Event()
        prompt = self.read_prompt()  # also reopens a lost port
        self._ensure_configured()
        if prompt in ("I", "W", "X"):
            raise DeviceError(self.name, action, f"pump is busy ({PROMPTS[prompt]})")
        if prompt == "P":
            self.stop()  # a paused run from an earlier cancel must not resume
        self._command(f"DIR{direction}", action)
        rate_set = self.set_rate(rate_ul_s)
        volume_set = self.set_volume(volume_ul)
        self._command(f"CLD{direction}", action)
        started = time.monotonic()
        try:
            self._command("RUN", action)
            moved = self._wait_until_done(action, direction, volume_set, rate_set, cancel, started)
        except DeviceCancelled:
            raise  # already stopped
        except DeviceError:
            self.safe_state()  # whatever went wrong, do not leave the plunger moving
            raise
        elapsed = time.monotonic() - started
        if moved < volume_set * 0.995 - 0.01:
            raise DeviceError(
                self.name,
                action,
                f"pump stopped early: {moved:g} of {volume_set:g} µL after {elapsed:.2f} s",
            )
        return {
            "volume_ul": moved,
            "requested_volume_ul": volume_ul,
            "rate_ul_s": rate_set,
            "duration_s": elapsed,
        }

    def _wait_until_done(
        self,
        action: str,
        direction: str,
        volume_ul: float,
        rate_ul_s: float,
        cancel: threading.Event,
        started: float,
    ) -> float:
        """Poll until the pump stops by itself; returns the volume moved in µL."""
        expected_s = volume_ul / rate_ul_s
        deadline = started + expected_s * self.overrun_factor + self.overrun_margin_s
        while True:
            if cancel.wait(self.poll_interval_s):
                self.safe_state()
                raise DeviceCancelled(self.name, action)
            reply = self._command("DIS", action, retry_after_reset=False)
            infused, withdrawn = _dispensed(self.name, action, reply)
            moved = infused if direction == "INF" else withdrawn
            if reply.prompt == "S":
                return moved
            if time.monotonic() > deadline:
                self.safe_state()
                raise DeviceError(
                    self.name,
                    action,
                    f"pump still {PROMPTS.get(reply.prompt, reply.prompt)} after "
                    f"{time.monotonic() - started:.1f} s (expected {expected_s:.1f} s); "
                    f"moved {moved:g} of {volume_ul:g} µL; stopped it",
                )

    def _check_volume(self, action: str, volume_ul: float) -> None:
        high = self.max_volume_ul if self.max_volume_ul is not None else MAX_NUMBER * 1000.0
        if not volume_ul > 0:
            raise DeviceError(self.name, action, f"volume_ul={volume_ul:g} must be > 0")
        check_range(self, action, "volume_ul", volume_ul, 0.0, high)

    def _check_rate(self, action: str, rate_ul_s: float) -> None:
        if not (rate_ul_s > 0 and math.isfinite(rate_ul_s)):
            raise DeviceError(self.name, action, f"rate_ul_s={rate_ul_s:g} must be > 0")
        if self.max_rate_ul_s is not None:
            check_range(self, action, "rate_ul_s", rate_ul_s, 0.0, self.max_rate_ul_s)
        try:
            best_rate_units(rate_ul_s)
        except ValueError as exc:
            raise DeviceError(self.name, action, f"rate_ul_s: {exc}") from None

    # ---- wire ------------------------------------------------------------

    def _command(self, command: str, action: str, retry_after_reset: bool = True) -> Reply:
        """One request/reply; error and alarm replies become DeviceErrors.

        A reset alarm means the pump was power-cycled and ignored the request:
        outside a run it is only news, so the request is sent once more.
        """
        reply = self._exchange(command, action)
        if reply.alarm == "R" and retry_after_reset:
            self.power_cycles_seen += 1
            _log.warning("%s: pump reports a power interruption; resending %r", self.name, command)
            reply = self._exchange(command, action)
        if reply.alarm is not None:
            meaning = ALARMS.get(reply.alarm, "unknown alarm")
            raise DeviceError(
                self.name, action, f"pump alarm {reply.alarm!r} ({meaning}) in reply to {command!r}"
            )
        if reply.error is not None:
            meaning = ERRORS.get(reply.error, "unknown error")
            raise DeviceError(
                self.name, action, f"pump rejected {command!r}: {reply.error} ({meaning})"
            )
        return reply

    def _exchange(self, command: str, action: str) -> Reply:
        frame = self.link.exchange(encode_request(self.address, command), ETX, action)
        try:
            reply = decode_reply(frame)
        except ValueError as exc:
            raise DeviceError(self.name, action, f"reply to {command!r}: {exc}") from None
        if reply.address != self.address:
            raise DeviceError(
                self.name,
                action,
                f"reply to {command!r} came from address {reply.address}, expected {self.address}",
            )
        return reply


def _dispensed(device: str, action: str, reply: Reply) -> tuple[float, float]:
    match = _DISPENSED.match(reply.data)
    if match is None:
        raise DeviceError(device, action, f"unexpected DIS reply data {reply.data!r}")
    scale = VOLUME_UNITS_UL[match["units"]]
    return float(match["infused"]) * scale, float(match["withdrawn"]) * scale
