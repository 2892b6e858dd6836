"""Emulated IKA-style magnetic stirrer/hotplate speaking NAMUR (TEST DOUBLE).

Wire behaviour follows the IKA RCT digital NAMUR table (see SERIAL_DRIVERS.md):
requests and replies end with CR LF, queries answer ``"<value> <channel>"``,
``OUT_SP_*``/``START_*``/``STOP_*``/``RESET`` are not answered, and commands the
device does not accept (unknown, or a setpoint out of its range) are silently
ignored: IKA devices never send error messages on their own.

Physics, advanced lazily on every request in lab time (a LabClock): the plate
temperature approaches the setpoint (first order, ramp limited) while the heater
runs and cools to ambient otherwise; the medium probe (IN_PV_1) follows the plate;
the motor speed follows its setpoint while the motor runs.

Watchdog mode 1 (``OUT_WD1@m``, echoed): without a new ``OUT_WD1@m`` within ``m``
simulated seconds, heating and stirring switch off (``watchdog_tripped``, Er 2).

Test switches besides the base ones: ``error_reply`` answers every query with a
fixed text (e.g. ``"-84"``, the NAMUR STATUS code for "unknown instruction" on
IKA devices that report one) to exercise the driver's error mapping.

Run ``python -m octopus_modules.emulators.namur_hotplate`` to get a port to play with.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from octopus_modules.emulators.pty_emulator import (
    PtyEmulator,
    emulator_arguments,
    serve_until_interrupted,
)
from octopus_modules.lab_clock import LabClock, ScaledClock, resolve_clock

AMBIENT_C = 22.0


class NamurHotplateEmulator(PtyEmulator):
    request_terminator = b"\n"

    def __init__(
        self,
        link_path: str | None = None,
        *,
        name: str = "RCT digital",
        max_temperature_c: float = 310.0,
        max_speed_rpm: float = 1500.0,
        safety_temperature_c: float = 360.0,
        clock: LabClock | None = None,
        time_scale: float | None = None,
    ) -> None:
        super().__init__(link_path)
        self.name = name
        self.max_temperature_c = max_temperature_c
        self.max_speed_rpm = max_speed_rpm
        self.safety_temperature_c = safety_temperature_c
        #: the physics advances in lab time (``time_scale``: a ScaledClock of it); a test
        #: may swap in a VirtualClock it moves by hand
        self.clock = resolve_clock(clock, time_scale)
        self.error_reply: str | None = None
        self.heating_time_constant_s = 60.0
        self.max_ramp_c_per_s = 0.25  # ~15 K/min, a typical hotplate with a filled vial
        self.medium_time_constant_s = 30.0
        self.motor_time_constant_s = 1.0
        self.on_power_up()

    def on_power_up(self) -> None:
        self.sim_time_s = 0.0
        self.watchdog_deadline_s: float | None = None  # OUT_WD1 armed: trip at this time
        self.watchdog_tripped = False  # "Er 2" on the display
        self.plate_c = AMBIENT_C
        self.medium_c = AMBIENT_C
        self.temperature_setpoint_c = 0.0
        self.speed_setpoint_rpm = 0.0
        self.speed_rpm = 0.0
        self.heater_on = False
        self.motor_on = False
        self._last_s = self.clock.now()

    # ---- physics -------------------------------------------------------

    def advance(self) -> None:
        """Bring the simulated physics up to the current lab time."""
        now = self.clock.now()
        dt = max(0.0, now - self._last_s)  # lab seconds
        self._last_s = now
        deadline = self.watchdog_deadline_s
        if deadline is not None and self.sim_time_s + dt >= deadline:
            self._integrate(deadline - self.sim_time_s)
            self._trip_watchdog()
            dt -= deadline - self.sim_time_s
            self.sim_time_s = deadline
        self._integrate(dt)
        self.sim_time_s += dt

    def _integrate(self, dt: float) -> None:
        steps = max(1, min(10_000, math.ceil(dt)))  # 1 s steps keep the ramp limit exact
        for _ in range(steps):
            self._step(dt / steps)

    def _trip_watchdog(self) -> None:
        """Watchdog mode 1: heating and stirring off, Er 2 on the display."""
        self.heater_on = False
        self.motor_on = False
        self.watchdog_tripped = True
        self.watchdog_deadline_s = None

    def _step(self, dt: float) -> None:
        target = self.temperature_setpoint_c if self.heater_on else AMBIENT_C
        target = max(target, AMBIENT_C)  # the plate only heats
        change = (target - self.plate_c) * (1.0 - math.exp(-dt / self.heating_time_constant_s))
        limit = self.max_ramp_c_per_s * dt
        self.plate_c += max(-limit, min(limit, change))
        self.medium_c += (self.plate_c - self.medium_c) * (
            1.0 - math.exp(-dt / self.medium_time_constant_s)
        )
        target_rpm = self.speed_setpoint_rpm if self.motor_on else 0.0
        self.speed_rpm += (target_rpm - self.speed_rpm) * (
            1.0 - math.exp(-dt / self.motor_time_constant_s)
        )

    # ---- protocol ------------------------------------------------------

    def handle(self, request: bytes) -> bytes | None:
        self.advance()
        words = request.decode("ascii", errors="replace").split()
        if not words:
            return None
        command, args = words[0], words[1:]
        queries: dict[str, Callable[[], str]] = {
            "IN_NAME": lambda: self.name,
            "IN_PV_1": lambda: f"{self.medium_c:.1f} 1",
            "IN_PV_2": lambda: f"{self.plate_c:.1f} 2",
            "IN_PV_4": lambda: f"{round(self.speed_rpm)} 4",
            "IN_SP_1": lambda: f"{self.temperature_setpoint_c:.1f} 1",
            "IN_SP_3": lambda: f"{self.safety_temperature_c:.1f} 3",
            "IN_SP_4": lambda: f"{self.speed_setpoint_rpm:g} 4",
        }
        if command in queries:
            text = self.error_reply if self.error_reply is not None else queries[command]()
            return text.encode("ascii") + b"\r\n"
        if command.startswith("OUT_WD1@"):
            return self._arm_watchdog(command.partition("@")[2])
        self._command(command, args)
        return None

    def _arm_watchdog(self, text: str) -> bytes | None:
        value = _number(text)
        if value is None or not 20 <= value <= 1500:
            return None  # refused silently, like any command the device does not accept
        self.watchdog_deadline_s = self.sim_time_s + value
        self.watchdog_tripped = False
        return f"{value:g}".encode("ascii") + b"\r\n"  # echo of the watchdog time

    def _command(self, command: str, args: list[str]) -> None:
        if command == "OUT_SP_1" and args:
            value = _number(args[0])
            limit = min(self.max_temperature_c, self.safety_temperature_c)
            if value is not None and 0.0 <= value <= limit:
                self.temperature_setpoint_c = value
        elif command == "OUT_SP_4" and args:
            value = _number(args[0])
            if value is not None and 0.0 <= value <= self.max_speed_rpm:
                self.speed_setpoint_rpm = value
        elif command == "START_1":
            self.heater_on = True
        elif command == "STOP_1":
            self.heater_on = False
        elif command == "START_4":
            self.motor_on = True
        elif command == "STOP_4":
            self.motor_on = False
        elif command == "RESET":  # back to normal (local) operation: functions off
            self.heater_on = False
            self.motor_on = False
        # anything else: ignored without a reply, as the real device does


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def main() -> None:
    """Run an emulated hotplate until Ctrl-C and print its port path."""
    options = emulator_arguments(__doc__).parse_args()
    serve_until_interrupted(
        NamurHotplateEmulator(options.link, clock=ScaledClock(options.time_scale))
    )


if __name__ == "__main__":
    main()
