from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from octopus_modules.description import DeviceSpec, load_builtin_description
from octopus_modules.drivers import registry
from octopus_modules.drivers.backend import DeviceBackend
from octopus_modules.drivers.kinds import KINDS
from octopus_modules.drivers.registry import (
    DriverContext,
    DriverError,
    check_backends,
    create_backend,
    create_backends,
)
from octopus_modules.drivers.simulated import SimulatedBackend


class LabStirrer(DeviceBackend):
    """A third-party back end registered by dotted path (built as Class(name, **settings))."""

    kind = "stirrer"

    def __init__(self, name: str, port: str, baudrate: int = 9600) -> None:
        super().__init__(name)
        self.port, self.baudrate = port, baudrate

    def actions(self) -> frozenset[str]:
        return frozenset({"stir", "stop"})

    def execute(
        self, action: str, params: Mapping[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        return {}

    def safe_state(self) -> None:
        pass


@pytest.fixture
def drivers(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    table = dict(registry.DRIVERS)
    table["lab_stirrer"] = f"{__name__}:LabStirrer"
    table["ghost"] = "octopus_modules.drivers.does_not_exist:Ghost"
    monkeypatch.setattr(registry, "DRIVERS", table)
    return table


def test_simulated_back_ends_for_a_whole_module() -> None:
    description = load_builtin_description("uv_vis")
    context = DriverContext(time_scale=10.0)
    backends = create_backends(description, context)
    assert set(backends) == {"UV_RobotArm", "UV_Pipette", "UV_Spectrometer"}
    assert all(isinstance(b, SimulatedBackend) for b in backends.values())
    assert backends["UV_Pipette"].kind == "pipette"
    check_backends(description, backends)


def test_class_drivers_get_settings_as_keywords(drivers: dict[str, str]) -> None:
    spec = DeviceSpec("S", "stirrer", "lab_stirrer", {"port": "/dev/ttyUSB0", "baudrate": 19200})
    backend = create_backend(spec)
    assert isinstance(backend, LabStirrer)
    assert (backend.port, backend.baudrate) == ("/dev/ttyUSB0", 19200)
    with pytest.raises(DriverError, match=r"^devices\.S\.settings: driver 'lab_stirrer' refused"):
        create_backend(DeviceSpec("S", "stirrer", "lab_stirrer", {"prt": "x"}))
    with pytest.raises(DriverError, match=r"^devices\.S\.kind: driver 'lab_stirrer' drives a"):
        create_backend(DeviceSpec("S", "pump", "lab_stirrer", {"port": "x"}))


def test_missing_driver_fails_only_when_used(drivers: dict[str, str]) -> None:
    with pytest.raises(DriverError, match=r"^devices\.G\.driver: driver 'ghost': cannot import"):
        create_backend(DeviceSpec("G", "pump", "ghost"))
    with pytest.raises(DriverError, match=r"unknown driver 'warp'; known: .*simulated"):
        create_backend(DeviceSpec("G", "pump", "warp"))


def test_back_end_must_accept_the_described_actions(drivers: dict[str, str]) -> None:
    description = load_builtin_description("batch_synthesis")
    backends = create_backends(description)
    backends["Batch_Stirrer"] = LabStirrer("Batch_Stirrer", port="x")  # no 'heat'
    with pytest.raises(
        DriverError,
        match=r"^tasks\.Mix\.steps\[0\]\.actions\[0\]\.action: "
        r"back end of 'Batch_Stirrer' does not accept 'heat'",
    ):
        check_backends(description, backends)


@pytest.mark.parametrize(
    ("driver", "kind"), [("namur_stirrer", "stirrer"), ("syringe_pump", "pump")]
)
def test_serial_drivers_are_registered_and_accept_their_kind(driver: str, kind: str) -> None:
    """Building the back end opens no port; its actions are the kind's catalogue actions."""
    spec = DeviceSpec("D", kind, driver, {"port": "/tmp/no-such-port", "baudrate": 9600})
    backend = create_backend(spec)
    assert backend.kind == kind
    assert backend.actions() <= set(KINDS[kind])
