"""Simulated back end for any device kind: timing, noise, faults, simulated chemistry.

An action takes the description's expected duration (``params["expected_duration_s"]``,
passed by the runtime) with seeded multiplicative noise, in lab time: the lab-wide
:class:`~octopus_modules.lab_clock.LabClock` waits it out (a ScaledClock of 600: a
10-hour day in a minute). Waiting is done on the cancel event, so a cancel is honoured
within microseconds, never after a sleep. ``params["lab_elapsed_s"]`` (passed by the runtime):
lab seconds of the action that passed before the call (the goal's planned start lies before
it), which it does not wait again.

Fault injection (settings of the device in the description, or ``backend.faults``):
``failure_rate`` (action fails part-way with a DeviceError), ``hang_rate`` (action
never finishes until cancelled), ``disconnect_rate`` (connection lost: this and
every later action raise DeviceDisconnected until ``connect()``), and the
deterministic ``fail_actions`` / ``hang_actions`` / ``disconnect_actions`` lists.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from octopus_modules.drivers.backend import (
    DeviceBackend,
    DeviceCancelled,
    DeviceDisconnected,
    DeviceError,
)
from octopus_modules.drivers.kinds import kind_actions
from octopus_modules.lab_clock import LabClock, resolve_clock
from octopus_modules.sim.sample_ledger import SampleLedger
from octopus_modules.sim.simulated_data import measured_data

if TYPE_CHECKING:
    from octopus_modules.description import DeviceSpec
    from octopus_modules.drivers.registry import DriverContext

DEFAULT_DURATION_S = 1.0  # when neither the runtime nor the params say how long


@dataclass
class FaultSettings:
    failure_rate: float = 0.0
    hang_rate: float = 0.0
    disconnect_rate: float = 0.0
    fail_actions: frozenset[str] = frozenset()
    hang_actions: frozenset[str] = frozenset()
    disconnect_actions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("failure_rate", "hang_rate", "disconnect_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be within [0, 1], got {value}")
        total = self.failure_rate + self.hang_rate + self.disconnect_rate
        if total > 1.0:
            raise ValueError(f"failure_rate + hang_rate + disconnect_rate: {total} exceeds 1")


@dataclass
class SimulatedSettings:
    """Settings of a simulated device (``settings:`` of the device in its description)."""

    duration_noise: float = 0.05  # relative standard deviation of action durations
    seed: int | None = None  # None: derived from the lab seed and the device name
    faults: FaultSettings = field(default_factory=FaultSettings)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> SimulatedSettings:
        fault_keys = {f.name for f in fields(FaultSettings)}
        known = fault_keys | {"duration_noise", "seed"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: unknown setting of a simulated device "
                f"(known: {', '.join(sorted(known))})"
            )
        fault_args: dict[str, Any] = {}
        for key in fault_keys & set(data):
            value = data[key]
            fault_args[key] = frozenset(value) if key.endswith("_actions") else float(value)
        try:
            faults = FaultSettings(**fault_args)
        except ValueError as exc:
            raise ValueError(f"{where}.{exc}") from None
        noise = float(data.get("duration_noise", 0.05))
        if not 0.0 <= noise < 1.0:
            raise ValueError(f"{where}.duration_noise: must be within [0, 1), got {noise}")
        seed = data.get("seed")
        return cls(noise, None if seed is None else int(seed), faults)


class SimulatedBackend(DeviceBackend):
    """A device of any kind in the catalogue, simulated in lab time (``clock``, or a
    ScaledClock of ``time_scale``)."""

    uses_expected_duration = True

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        clock: LabClock | None = None,
        time_scale: float | None = None,
        seed: int = 0,
        settings: SimulatedSettings | None = None,
        ledger: SampleLedger | None = None,
    ) -> None:
        super().__init__(name)
        self.clock = resolve_clock(clock, time_scale)
        self.kind = kind
        self._signatures = kind_actions(kind)
        self.settings = settings or SimulatedSettings()
        self.faults = self.settings.faults
        self.ledger = ledger or SampleLedger()
        own_seed = self.settings.seed
        if own_seed is None:
            own_seed = zlib.crc32(name.encode())
        self.seed = seed
        self._rng = np.random.default_rng([seed, own_seed])
        self._rng_lock = threading.Lock()
        self.connected = True
        #: observable state for tests and status: "idle", "running <action>", "safe"
        self.state = "idle"
        self.safe_state_calls = 0
        self.executed: list[str] = []

    def actions(self) -> frozenset[str]:
        return frozenset(self._signatures)

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def safe_state(self) -> None:
        self.safe_state_calls += 1
        self.state = "safe"

    def execute(
        self, action: str, params: Mapping[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        signature = self._signatures.get(action)
        if signature is None:
            known = ", ".join(sorted(self._signatures))
            raise DeviceError(self.name, action, f"unknown action (known: {known})")
        params = dict(params)
        # lab time of this action that passed before the call (see ModuleRuntime.accept)
        elapsed = float(params.pop("lab_elapsed_s", 0.0))
        if "expected_duration_s" in params:
            expected = float(params.pop("expected_duration_s"))
        elif "duration_s" in params:  # e.g. stir for 300 s, called without a runtime
            expected = float(params["duration_s"])
        else:
            expected = DEFAULT_DURATION_S
        try:
            signature.check(params, "params")
        except ValueError as exc:
            raise DeviceError(self.name, action, str(exc)) from None
        if not self.connected:
            raise DeviceDisconnected(self.name, action, "not connected")
        fault, fraction, duration = self._draw(action, expected)
        self.state = f"running {action}"
        self.executed.append(action)
        try:
            if fault == "hang":
                cancel.wait()  # a hung device answers nothing; only a cancel gets us out
                raise DeviceCancelled(self.name, action)
            if fault == "disconnect":
                self.connected = False
                raise DeviceDisconnected(self.name, action, "connection lost (simulated)")
            lab_s = duration * (fraction if fault == "fail" else 1.0)
            if self.clock.wait(cancel, lab_s - elapsed):
                raise DeviceCancelled(self.name, action)
            if fault == "fail":
                raise DeviceError(self.name, action, "simulated device fault")
            with self._rng_lock:
                data = measured_data(self.kind, self.ledger, action, params, self._rng)
        finally:
            self.state = "idle"
        data["duration_s"] = duration
        return data

    def _draw(self, action: str, expected: float) -> tuple[str, float, float]:
        """Fault kind ("", fail, hang, disconnect), fraction done before failing, duration."""
        with self._rng_lock:
            u = float(self._rng.random())
            fraction = float(self._rng.uniform(0.1, 0.9))
            noise = float(self._rng.normal(0.0, self.settings.duration_noise))
        f = self.faults
        if action in f.disconnect_actions or u < f.disconnect_rate:
            fault = "disconnect"
        elif action in f.hang_actions or u < f.disconnect_rate + f.hang_rate:
            fault = "hang"
        elif action in f.fail_actions or u < f.disconnect_rate + f.hang_rate + f.failure_rate:
            fault = "fail"
        else:
            fault = ""
        return fault, fraction, max(expected * (1.0 + noise), 0.0)


def create_simulated_backend(spec: DeviceSpec, context: DriverContext) -> SimulatedBackend:
    """Registry factory for ``driver: simulated``."""
    settings = SimulatedSettings.from_mapping(spec.settings, f"devices.{spec.name}.settings")
    return SimulatedBackend(
        spec.name,
        spec.kind,
        clock=context.clock,
        seed=context.seed,
        settings=settings,
        ledger=context.ledger,
    )
