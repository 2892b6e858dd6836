"""Typed front ends: one small class per device kind over any :class:`DeviceBackend`.

For scripts, tests and drivers written by hand (the runtime itself executes the
generic ``{device, action, params}`` of a description). Each method is one action
of :mod:`octopus_modules.drivers.kinds`; swapping the back end (simulated, serial)
does not change the calling code::

    pump = Pump(create_backend(spec))
    pump.dispense(volume_ul=250, rate_ul_s=20, solution="AgNO3")
"""

from __future__ import annotations

import threading
from typing import Any

from octopus_modules.drivers.backend import DeviceBackend, DeviceError
from octopus_modules.drivers.kinds import kind_actions


class FrontEnd:
    KIND = "generic"

    def __init__(self, backend: DeviceBackend) -> None:
        if backend.kind not in (self.KIND, "generic"):
            raise TypeError(
                f"{type(self).__name__} needs a '{self.KIND}' back end; "
                f"{backend.name} is a '{backend.kind}'"
            )
        self.backend = backend

    @property
    def name(self) -> str:
        return self.backend.name

    def safe_state(self) -> None:
        self.backend.safe_state()

    def _call(
        self,
        action: str,
        cancel: threading.Event | None,
        expected_duration_s: float | None,
        **params: Any,
    ) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if v is not None}
        try:
            kind_actions(self.KIND)[action].check(params, "params")
        except ValueError as exc:
            raise DeviceError(self.name, action, str(exc)) from None
        if expected_duration_s is not None and self.backend.uses_expected_duration:
            params["expected_duration_s"] = expected_duration_s
        return self.backend.execute(action, params, cancel or threading.Event())


class RobotArm(FrontEnd):
    KIND = "robot_arm"

    def move(
        self,
        source: str,
        target: str,
        *,
        speed: float | None = None,
        cancel: threading.Event | None = None,
        expected_duration_s: float | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "move", cancel, expected_duration_s, source=source, target=target, speed=speed
        )

    def home(
        self, *, cancel: threading.Event | None = None, expected_duration_s: float | None = None
    ) -> dict[str, Any]:
        return self._call("home", cancel, expected_duration_s)


class Pump(FrontEnd):
    KIND = "pump"

    def dispense(
        self,
        volume_ul: float,
        rate_ul_s: float,
        *,
        solution: str | None = None,
        cancel: threading.Event | None = None,
        expected_duration_s: float | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "dispense",
            cancel,
            expected_duration_s,
            volume_ul=volume_ul,
            rate_ul_s=rate_ul_s,
            solution=solution,
        )

    def withdraw(
        self,
        volume_ul: float,
        rate_ul_s: float,
        *,
        cancel: threading.Event | None = None,
        expected_duration_s: float | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "withdraw", cancel, expected_duration_s, volume_ul=volume_ul, rate_ul_s=rate_ul_s
        )

    def stop(self) -> dict[str, Any]:
        return self._call("stop", None, None)


class Stirrer(FrontEnd):
    """Magnetic stirrer / hotplate."""

    KIND = "stirrer"

    def stir(
        self,
        speed_rpm: float,
        *,
        duration_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        return self._call("stir", cancel, duration_s, speed_rpm=speed_rpm, duration_s=duration_s)

    def heat(
        self,
        temperature_c: float,
        *,
        duration_s: float | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "heat", cancel, duration_s, temperature_c=temperature_c, duration_s=duration_s
        )

    def stop(self) -> dict[str, Any]:
        return self._call("stop", None, None)


class Spectrometer(FrontEnd):
    KIND = "spectrometer"

    def reference(
        self, *, integration_ms: float | None = None, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        return self._call("reference", cancel, None, integration_ms=integration_ms)

    def measure(
        self,
        *,
        integration_ms: float | None = None,
        samples: list[str] | None = None,
        cancel: threading.Event | None = None,
        expected_duration_s: float | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "measure", cancel, expected_duration_s, integration_ms=integration_ms, samples=samples
        )


class LinearActuator(FrontEnd):
    KIND = "actuator"

    def up(self, *, cancel: threading.Event | None = None) -> dict[str, Any]:
        return self._call("up", cancel, None)

    def down(self, *, cancel: threading.Event | None = None) -> dict[str, Any]:
        return self._call("down", cancel, None)

    def move_to(
        self, position_mm: float, *, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        return self._call("move_to", cancel, None, position_mm=position_mm)


class VialStorage(FrontEnd):
    KIND = "vial_storage"

    def open(self, *, cancel: threading.Event | None = None) -> dict[str, Any]:
        return self._call("open", cancel, None)

    def close(self, *, cancel: threading.Event | None = None) -> dict[str, Any]:
        return self._call("close", cancel, None)


class Pipette(FrontEnd):
    KIND = "pipette"

    def pick_tip(self, *, cancel: threading.Event | None = None) -> dict[str, Any]:
        return self._call("pick_tip", cancel, None)

    def aspirate(
        self, volume_ul: float, *, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        return self._call("aspirate", cancel, None, volume_ul=volume_ul)

    def dispense(
        self, volume_ul: float, *, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        return self._call("dispense", cancel, None, volume_ul=volume_ul)

    def eject_tip(self, *, cancel: threading.Event | None = None) -> dict[str, Any]:
        return self._call("eject_tip", cancel, None)


class Balance(FrontEnd):
    KIND = "balance"

    def tare(self) -> dict[str, Any]:
        return self._call("tare", None, None)

    def weigh(self, *, target_mg: float | None = None) -> dict[str, Any]:
        return self._call("weigh", None, None, target_mg=target_mg)


class Furnace(FrontEnd):
    KIND = "furnace"

    def start_program(
        self,
        temperature_c: float,
        *,
        ramp_c_min: float | None = None,
        hold_min: float | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "start_program",
            None,
            None,
            temperature_c=temperature_c,
            ramp_c_min=ramp_c_min,
            hold_min=hold_min,
        )

    def stop(self) -> dict[str, Any]:
        return self._call("stop", None, None)


class Potentiostat(FrontEnd):
    KIND = "potentiostat"

    def cv(
        self,
        start_v: float,
        end_v: float,
        scan_rate_mv_s: float,
        *,
        cycles: int | None = None,
        cancel: threading.Event | None = None,
        expected_duration_s: float | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "cv",
            cancel,
            expected_duration_s,
            start_v=start_v,
            end_v=end_v,
            scan_rate_mv_s=scan_rate_mv_s,
            cycles=cycles,
        )

    def stop(self) -> dict[str, Any]:
        return self._call("stop", None, None)


#: front-end class per kind (kinds without a class here are driven generically)
FRONT_ENDS: dict[str, type[FrontEnd]] = {
    cls.KIND: cls
    for cls in (
        RobotArm,
        Pump,
        Stirrer,
        Spectrometer,
        LinearActuator,
        VialStorage,
        Pipette,
        Balance,
        Furnace,
        Potentiostat,
    )
}


def front_end(backend: DeviceBackend) -> FrontEnd:
    """The typed front end for ``backend``'s kind."""
    try:
        return FRONT_ENDS[backend.kind](backend)
    except KeyError:
        raise TypeError(f"no typed front end for kind '{backend.kind}'") from None
