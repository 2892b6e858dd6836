"""Emulated New Era NE-1000 syringe pump, Basic-mode RS-232 protocol (TEST DOUBLE).

Implements the command subset documented in SERIAL_DRIVERS.md (DIA, RAT, VOL, DIR,
RUN, STP, DIS, CLD and the empty status request) with the pump's replies,
prompts, alarms and error codes. Behaviour modelled on the NE-1000 manual:

* volume units follow the syringe diameter (<= 14.00 mm: µL, above: mL) and can
  be set with ``VOL UL|ML``; rates outside what the plunger can do give ``?OOR``;
* ``RUN`` pumps the target volume at the rate (0 means pump until stopped);
  the prompt returns to ``S`` when done; the first ``STP`` pauses (``P``),
  a second one stops; diameter, rate units and direction changes while pumping
  give ``?NA``;
* an alarm is reported (``A?c``) in reply to the next request, which is then
  ignored; switching on raises the reset alarm ``R``; running the syringe
  empty (or full when withdrawing) stalls the motor (alarm ``S``).

Physics: dispensed volume = rate x elapsed lab time (the emulator's ``clock``, or a
ScaledClock of ``time_scale``). Test switches besides the base ones: ``error_reply`` (answer the
next requests with that error, e.g. ``"?COM"``) and ``raise_alarm(code)``.

Run ``python -m octopus_modules.emulators.ne1000_pump`` to get a port to play with.
"""

from __future__ import annotations

import math

from octopus_modules.drivers.serial_ne1000_protocol import (
    CR,
    RATE_UNITS_UL_PER_S,
    VOLUME_UNITS_UL,
    encode_reply,
    format_number,
)
from octopus_modules.emulators.pty_emulator import (
    PtyEmulator,
    emulator_arguments,
    serve_until_interrupted,
)
from octopus_modules.lab_clock import LabClock, ScaledClock, resolve_clock

# Plunger speed limits of the emulated mechanism (order of magnitude of an NE-1000).
MAX_PLUNGER_MM_PER_MIN = 44.0
MIN_PLUNGER_MM_PER_H = 0.04
MAX_DIAMETER_MM = 50.0
MIN_DIAMETER_MM = 0.1


class Ne1000PumpEmulator(PtyEmulator):
    request_terminator = CR

    def __init__(
        self,
        link_path: str | None = None,
        *,
        address: int = 0,
        syringe_capacity_ul: float = 10_000.0,
        syringe_content_ul: float = 10_000.0,
        clock: LabClock | None = None,
        time_scale: float | None = None,
    ) -> None:
        super().__init__(link_path)
        self.address = address
        self.syringe_capacity_ul = syringe_capacity_ul
        self.initial_content_ul = syringe_content_ul
        #: the physics advances in lab time (``time_scale``: a ScaledClock of it); a test
        #: may swap in a VirtualClock it moves by hand
        self.clock = resolve_clock(clock, time_scale)
        self.error_reply: str | None = None
        # settings kept in the pump's non-volatile memory survive a power cycle
        self.diameter_mm = 14.57
        self.rate_value = 1.0
        self.rate_units = "MM"
        self.volume_target = 0.0
        self.volume_units = "UL"
        self.direction = "INF"
        self.content_ul = syringe_content_ul
        self.on_power_up()

    def on_power_up(self) -> None:
        self.prompt = "S"
        self.pending_alarm: str | None = "R"  # the pump reports that it was (re)powered
        self.infused_ul = 0.0
        self.withdrawn_ul = 0.0
        self._run_remaining_ul = 0.0
        self._last_s = self.clock.now()

    # ---- physics -------------------------------------------------------

    @property
    def rate_ul_s(self) -> float:
        return self.rate_value * RATE_UNITS_UL_PER_S[self.rate_units]

    def _rate_limits_ul_s(self) -> tuple[float, float]:
        area_mm2 = math.pi / 4.0 * self.diameter_mm**2  # mm^3 == µL per mm of travel
        return area_mm2 * MIN_PLUNGER_MM_PER_H / 3600.0, area_mm2 * MAX_PLUNGER_MM_PER_MIN / 60.0

    def advance(self) -> None:
        now = self.clock.now()
        dt = max(0.0, now - self._last_s)  # lab seconds
        self._last_s = now
        if self.prompt not in ("I", "W"):
            return
        moved = self.rate_ul_s * dt
        if self._run_remaining_ul > 0:
            moved = min(moved, self._run_remaining_ul)
        room = self.content_ul if self.prompt == "I" else self.syringe_capacity_ul - self.content_ul
        stalled = moved > room
        moved = min(moved, room)
        if self.prompt == "I":
            self.infused_ul += moved
            self.content_ul -= moved
        else:
            self.withdrawn_ul += moved
            self.content_ul += moved
        if self._run_remaining_ul > 0:
            self._run_remaining_ul -= moved
            if self._run_remaining_ul <= 1e-9:
                self.prompt = "S"
        if stalled:
            self.prompt = "S"
            self.pending_alarm = "S"

    def raise_alarm(self, code: str) -> None:
        """Latch an alarm (e.g. ``"S"`` stall); pumping stops as on the real pump."""
        with self._lock:
            self.advance()
            self.prompt = "S"
            self.pending_alarm = code

    # ---- protocol ------------------------------------------------------

    def handle(self, request: bytes) -> bytes | None:
        self.advance()
        text = request.decode("ascii", errors="replace").replace(" ", "").strip().upper()
        digits = len(text) - len(text.lstrip("0123456789"))
        if digits:
            if int(text[:digits]) != self.address:
                return None  # addressed to another pump on the network
            text = text[digits:]
        if self.pending_alarm is not None:
            code, self.pending_alarm = self.pending_alarm, None
            return self._reply("A", "?" + code)  # the request itself is ignored
        if self.error_reply is not None:
            return self._reply(self.prompt, self.error_reply)
        command, data = text[:3], text[3:]
        handler = {
            "": self._status,
            "DIA": self._dia,
            "RAT": self._rat,
            "VOL": self._vol,
            "DIR": self._dir,
            "RUN": self._run,
            "STP": self._stp,
            "DIS": self._dis,
            "CLD": self._cld,
        }.get(command)
        if handler is None:
            return self._reply(self.prompt, "?")
        return self._reply(self.prompt, handler(data))

    def _reply(self, prompt: str, data: str = "") -> bytes:
        return encode_reply(self.address, prompt, data)

    @property
    def _pumping(self) -> bool:
        return self.prompt in ("I", "W")

    def _status(self, data: str) -> str:
        return ""

    def _dia(self, data: str) -> str:
        if not data:
            return format_number(self.diameter_mm)
        if self._pumping:
            return "?NA"
        value = _number(data)
        if value is None or not MIN_DIAMETER_MM <= value <= MAX_DIAMETER_MM:
            return "?OOR"
        self.diameter_mm = value
        self.volume_units = "UL" if value <= 14.0 else "ML"  # as the NE-1000 does
        return ""

    def _rat(self, data: str) -> str:
        if not data:
            return format_number(self.rate_value) + self.rate_units
        units = data[-2:] if data[-2:] in RATE_UNITS_UL_PER_S else self.rate_units
        value = _number(data[:-2] if data[-2:] in RATE_UNITS_UL_PER_S else data)
        if value is None:
            return "?"
        if units != self.rate_units and self._pumping:
            return "?NA"
        low, high = self._rate_limits_ul_s()
        if not low <= value * RATE_UNITS_UL_PER_S[units] <= high:
            return "?OOR"
        self.rate_value, self.rate_units = value, units
        return ""

    def _vol(self, data: str) -> str:
        if not data:
            return format_number(self.volume_target) + self.volume_units
        if data in VOLUME_UNITS_UL:
            self.volume_target *= VOLUME_UNITS_UL[self.volume_units] / VOLUME_UNITS_UL[data]
            self.volume_units = data
            return ""
        value = _number(data)
        if value is None or not 0 <= value <= 9999:
            return "?OOR"
        self.volume_target = value
        return ""

    def _dir(self, data: str) -> str:
        if not data:
            return self.direction
        if data not in ("INF", "WDR", "REV"):
            return "?"
        if self._pumping:
            return "?NA"
        if data == "REV":
            data = "WDR" if self.direction == "INF" else "INF"
        self.direction = data
        return ""

    def _run(self, data: str) -> str:
        if self._pumping:
            return ""
        if self.prompt != "P":  # a fresh run delivers the whole target volume
            self._run_remaining_ul = self.volume_target * VOLUME_UNITS_UL[self.volume_units]
        self.prompt = "I" if self.direction == "INF" else "W"
        return ""

    def _stp(self, data: str) -> str:
        self.prompt = "P" if self._pumping else "S"
        if self.prompt == "S":
            self._run_remaining_ul = 0.0
        return ""

    def _dis(self, data: str) -> str:
        scale = VOLUME_UNITS_UL[self.volume_units]
        infused = format_number(min(self.infused_ul / scale, 9999.0))
        withdrawn = format_number(min(self.withdrawn_ul / scale, 9999.0))
        return f"I{infused}W{withdrawn}{self.volume_units}"

    def _cld(self, data: str) -> str:
        if data == "INF":
            self.infused_ul = 0.0
        elif data == "WDR":
            self.withdrawn_ul = 0.0
        else:
            return "?"
        return ""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def main() -> None:
    """Run an emulated NE-1000 until Ctrl-C and print its port path."""
    options = emulator_arguments(__doc__).parse_args()
    serve_until_interrupted(Ne1000PumpEmulator(options.link, clock=ScaledClock(options.time_scale)))


if __name__ == "__main__":
    main()
