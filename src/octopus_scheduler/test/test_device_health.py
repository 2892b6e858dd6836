"""A device in error is out of order: steps that need it wait (they do not fail), the rest of the
lab goes on, and the device's return releases them. Persisted like every event."""

from __future__ import annotations

from pathlib import Path

from octopus_modules.description import load_builtin_description
from octopus_modules.lab_clock import VirtualClock as Clock
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.scheduler_core import EventRejected
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.store import Store

MEASUREMENT = """
metadata: {name: absorbance, owner: ignored}
campaign: {kind: manual, experiments: [{}]}
process:
  Characterization:
    UV-Vis: {sequence: [GetAbs]}
"""

SYNTHESIS = """
metadata: {name: seeds, owner: ignored}
campaign: {kind: manual, experiments: [{React.Time: 20 min}]}
process:
  Synthesis:
    BatchSynthesis: {sequence: [PrepareContainer, Mix, React, MoveContainer]}
"""


def lab(path: Path) -> LabService:
    descriptions = [load_builtin_description(m) for m in ("batch_synthesis", "uv_vis")]
    return LabService(descriptions, Store(path), clock=Clock())


def test_steps_wait_for_a_device_out_of_order_and_start_when_it_is_back(tmp_path: Path) -> None:
    service = lab(tmp_path / "db.sqlite")
    assert not service.device_health("UV-Vis", {"UV_Spectrometer": "lamp failed"}).goals
    assert service.core.out_of_order() == {"UV_Spectrometer": "lamp failed"}
    # a measurement job waits for the spectrometer; a synthesis job on the other module runs
    _, waiting = service.submit(MEASUREMENT, "ann")
    _, running = service.submit(SYNTHESIS, "bob")
    assert not [g for g in waiting.goals if "UV_Spectrometer" in str(g)]
    assert running.goals and running.goals[0].module == "BatchSynthesis"
    assert service.job("J0001").reason == "device UV_Spectrometer out of order: lamp failed"
    # the same report again changes nothing (no event); the device's return starts the work
    events = len(service.store.load_events())
    service.device_health("UV-Vis", {"UV_Spectrometer": "lamp failed"})
    assert len(service.store.load_events()) == events
    back = service.device_health("UV-Vis", {})
    assert service.core.out_of_order() == {}
    # it starts now, or waits only for the shared arm bob's synthesis holds
    started = [g.job_id for g in back.goals] == ["J0001"]
    assert started or service.job("J0001").reason.startswith("devices UV_RobotArm held by J0002")


def test_out_of_order_survives_a_restart(tmp_path: Path) -> None:
    first = lab(tmp_path / "db.sqlite")
    first.device_health("UV-Vis", {"UV_Pipette": "tip jammed"})
    first.store.close()
    again = lab(tmp_path / "db.sqlite")
    assert again.core.out_of_order() == {"UV_Pipette": "tip jammed"}


def test_an_unknown_device_is_refused_by_the_core(tmp_path: Path) -> None:
    service = lab(tmp_path / "db.sqlite")
    out = service.core.handle(ev.DeviceDown("Teleporter", "gone", time=5.0))
    assert isinstance(out[0], EventRejected) and "unknown device 'Teleporter'" in out[0].reason
    # a report about a module the lab does not have is ignored
    assert not service.device_health("Moon", {"Rover": "stuck"}).goals


def test_an_operator_cannot_clear_a_device_its_module_still_reports_in_error(
    tmp_path: Path,
) -> None:
    """The race of `octopus clear-error`: it clears the module, the retry fails again before
    the scheduler is told; clearing the scheduler then would send goals the module refuses."""
    service = lab(tmp_path / "db.sqlite")
    service.device_health("UV-Vis", {"UV_Spectrometer": "lamp failed"})
    _, outbox = service.submit(MEASUREMENT, "ann")
    assert not outbox.goals
    refused, nothing = service.clear_device("UV_Spectrometer", "operator")
    assert not refused.success and not nothing.goals
    assert refused.message.startswith("device: UV_Spectrometer is in error on UV-Vis (lamp failed)")
    assert service.core.out_of_order() == {"UV_Spectrometer": "lamp failed"}
    # cleared on the module: its report brings the device back, the waiting step starts
    assert service.device_health("UV-Vis", {}).goals
    assert service.clear_device("UV_Spectrometer", "operator")[0].message == (
        "UV_Spectrometer is in order"
    )
