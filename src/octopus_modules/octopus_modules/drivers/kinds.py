"""The catalogue of device kinds: which actions each kind accepts, with which parameters.

This is the contract between module descriptions and back ends: a description's
``{device, action, params}`` is checked against it on load, and a back end of a kind
must accept them (``DeviceBackend.actions()``).

Every action also accepts the optional ``samples`` parameter (list of sample ids
the action works on): simulated back ends use it to track what is in a vial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ActionSignature:
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()

    def check(self, params: Mapping[str, object], where: str) -> None:
        """Raise ValueError naming ``where`` if params miss a required or have an unknown key."""
        missing = sorted(self.required - params.keys())
        if missing:
            raise ValueError(f"{where}: missing parameter(s) {', '.join(missing)}")
        allowed = self.required | self.optional | COMMON_OPTIONAL
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(
                f"{where}: unknown parameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed)) or 'none'}"
            )


COMMON_OPTIONAL = frozenset({"samples"})


def _sig(required: str = "", optional: str = "") -> ActionSignature:
    return ActionSignature(frozenset(required.split()), frozenset(optional.split()))


KINDS: dict[str, dict[str, ActionSignature]] = {
    "robot_arm": {
        "move": _sig("source target", "speed"),
        "pick": _sig("location"),
        "place": _sig("location"),
        "home": _sig(),
    },
    "pump": {
        "dispense": _sig("volume_ul rate_ul_s", "solution"),
        "withdraw": _sig("volume_ul rate_ul_s", "solution"),
        "prime": _sig("", "volume_ul solution"),
        "stop": _sig(),
    },
    "stirrer": {  # magnetic stirrer / hotplate
        "stir": _sig("speed_rpm", "duration_s"),
        "heat": _sig("temperature_c", "duration_s"),
        "stop": _sig(),
    },
    "spectrometer": {
        "measure": _sig("", "integration_ms reference"),
        "reference": _sig("", "integration_ms"),
    },
    "actuator": {  # linear actuator (e.g. the dispensing head of the batch module)
        "up": _sig(),
        "down": _sig(),
        "move_to": _sig("position_mm"),
    },
    "vial_storage": {
        "open": _sig(),
        "close": _sig(),
        "fetch": _sig("", "position"),
        "store": _sig("", "position"),
    },
    "pipette": {
        "pick_tip": _sig(),
        "aspirate": _sig("volume_ul"),
        "dispense": _sig("volume_ul"),
        "eject_tip": _sig(),
    },
    "balance": {
        "tare": _sig(),
        "weigh": _sig("", "target_mg"),
    },
    "powder_dispenser": {
        "dose": _sig("mass_mg", "powder"),
    },
    "mixer": {  # ball mill / vortex mixer
        "mix": _sig("speed_rpm duration_s"),
        "stop": _sig(),
    },
    "furnace": {
        "start_program": _sig("temperature_c", "ramp_c_min hold_min"),
        "stop": _sig(),
    },
    "press": {
        "press": _sig("force_kn", "hold_s"),
    },
    "potentiostat": {
        "cv": _sig("start_v end_v scan_rate_mv_s", "cycles"),
        "ocp": _sig("duration_s"),
        "stop": _sig(),
    },
    "rotator": {  # rotating disk electrode motor
        "rotate": _sig("speed_rpm"),
        "stop": _sig(),
    },
    "dryer": {
        "start": _sig("temperature_c"),
        "stop": _sig(),
    },
}


def kind_actions(kind: str) -> Mapping[str, ActionSignature]:
    """The actions of ``kind``; KeyError with the known kinds listed if unknown."""
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown device kind '{kind}'; known: {', '.join(sorted(KINDS))}") from None
