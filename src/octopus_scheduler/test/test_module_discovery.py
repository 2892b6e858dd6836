"""A module that announces itself while the lab runs joins it: in the core (an event), in the
service (persisted, replayed after a restart), without changing what already runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from octopus_modules.description import load_builtin_description
from octopus_modules.lab_clock import VirtualClock as Clock
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.scheduler_core import EventRejected, SchedulerCore
from octopus_scheduler.service.lab_from_modules import lab_from_modules
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.store import Store

DEMO_PAIR = ("batch_synthesis", "uv_vis")

SOLID_STATE_JOB = """
metadata: {name: pellets, owner: ignored}
campaign: {kind: manual, experiments: [{}]}
process:
  Synthesis:
    SolidState: {sequence: [%s]}
"""


def descriptions(*names: str) -> list:
    return [load_builtin_description(n) for n in names]


def solid_state_yaml() -> str:
    return load_builtin_description("solid_state").to_yaml()


def first_task(module: str) -> str:
    return load_builtin_description(module).tasks[0].name


def test_the_core_adds_a_module_and_refuses_changes_to_the_ones_it_has() -> None:
    pair = descriptions(*DEMO_PAIR)  # the service builds every lab from the same descriptions
    small = lab_from_modules(pair)
    bigger = lab_from_modules([*pair, *descriptions("solid_state")])
    core = SchedulerCore(small, "planner", clock=lambda: 0.0)
    assert core.handle(ev.ModuleAdded("SolidState", bigger, time=1.0)) == []
    assert core.lab is bigger
    assert "SolidState" in {m for m, _ in core.slots()}
    assert set(core.devices()) == set(bigger.device_module)
    # the same module twice, or a "lab" that drops a module, is refused with the reason
    again = core.handle(ev.ModuleAdded("SolidState", bigger, time=2.0))
    assert isinstance(again[0], EventRejected) and "already in the lab" in again[0].reason
    core2 = SchedulerCore(bigger, "planner", clock=lambda: 0.0)
    fewer = lab_from_modules([*pair, *descriptions("electrochemical_rde")])
    refused = core2.handle(ev.ModuleAdded("ElectroChemicalRDE", fewer, time=1.0))
    assert isinstance(refused[0], EventRejected) and "remove" in refused[0].reason


def test_a_job_for_a_new_module_is_refused_before_it_joins_and_runs_after(tmp_path: Path) -> None:
    clock = Clock()
    service = LabService(descriptions(*DEMO_PAIR), Store(tmp_path / "db.sqlite"), clock=clock)
    script = SOLID_STATE_JOB % first_task("solid_state")
    before, _ = service.submit(script, "alice")
    assert not before.accepted and "SolidState" in before.error
    error, _ = service.add_module(solid_state_yaml())
    assert error == ""
    after, outbox = service.submit(script, "alice")
    assert after.accepted
    assert outbox.goals and outbox.goals[0].module == "SolidState"
    # a second announcement of the same module changes nothing
    error, outbox = service.add_module(solid_state_yaml())
    assert "already in the lab" in error and not outbox.goals


def test_a_bad_announcement_names_the_problem_and_changes_nothing(tmp_path: Path) -> None:
    service = LabService(descriptions(*DEMO_PAIR), Store(tmp_path / "db.sqlite"), clock=Clock())
    events_before = len(service.store.load_events())
    error, _ = service.add_module("module: Broken\ndevices: []\n")
    assert error.startswith("tasks")
    # a module whose device name is taken by another module
    clash = solid_state_yaml().replace("SS_RobotArm", "Batch_RobotArm")
    error, _ = service.add_module(clash)
    assert "SolidState.devices" in error and "already belongs to another module" in error
    assert set(service.lab.modules) == {"BatchSynthesis", "UV-Vis"}
    assert len(service.store.load_events()) == events_before


def test_a_restarted_scheduler_knows_the_modules_that_joined(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "db.sqlite"
    first = LabService(descriptions(*DEMO_PAIR), Store(path), clock=clock)
    first.add_module(solid_state_yaml())
    submission, outbox = first.submit(SOLID_STATE_JOB % first_task("solid_state"), "alice")
    assert submission.accepted
    in_flight = {g.step_id for g in outbox.goals}
    first.store.close()
    # the restart starts from the lab file's modules only; the log brings SolidState back
    again = LabService(descriptions(*DEMO_PAIR), Store(path), clock=clock)
    assert "SolidState" in again.lab.modules
    assert {g.step_id for g in again.recovered_goals} == in_flight
    assert again.job(submission.job_id).state == "running"


@pytest.mark.parametrize("module", ["electrochemical_rde", "solid_state"])
def test_every_shipped_extra_module_can_join_the_demo_pair(tmp_path: Path, module: str) -> None:
    service = LabService(descriptions(*DEMO_PAIR), Store(tmp_path / "db.sqlite"), clock=Clock())
    error, _ = service.add_module(load_builtin_description(module).to_yaml())
    assert error == ""
    assert load_builtin_description(module).module in service.lab.modules


def test_announcements_are_told_apart(tmp_path: Path) -> None:
    pair = descriptions(*DEMO_PAIR)
    service = LabService(pair, Store(tmp_path / "db.sqlite"), clock=Clock())
    assert service.announced(pair[0].to_yaml())[0] == "known"
    changed = pair[0].to_yaml().replace("capacity: 8", "capacity: 6", 1)
    assert service.announced(changed)[0] == "differs"  # the lab keeps its own description
    assert service.lab.modules["BatchSynthesis"].slots["stirrer"].capacity == 8
    verdict, detail, _ = service.announced("module: Broken\ndevices: []\n")
    assert verdict == "refused" and detail.startswith("tasks")
    assert service.announced(solid_state_yaml())[0] == "joined"
    assert service.announced(solid_state_yaml())[0] == "known"
