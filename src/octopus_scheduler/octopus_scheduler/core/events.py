"""Events: the only inputs of the scheduler core. Each carries its clock time once stamped."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from octopus_scheduler.core.jobscript import JobSpec
    from octopus_scheduler.core.lab import Lab


@dataclass(frozen=True)
class Event:
    time: float | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class JobSubmitted(Event):
    job_id: str
    spec: JobSpec


@dataclass(frozen=True)
class StepStarted(Event):
    step_id: str


@dataclass(frozen=True)
class StepFinished(Event):
    step_id: str
    results: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StepFailed(Event):
    """``lost``: the module's process was lost under the step (not a device's fault)."""

    step_id: str
    reason: str = ""
    lost: bool = False


@dataclass(frozen=True)
class ModuleDown(Event):
    module: str


@dataclass(frozen=True)
class ModuleUp(Event):
    module: str


@dataclass(frozen=True)
class DeviceDown(Event):
    """A device is out of order (its module reports it in error or disconnected): no step that
    needs it starts until it is back."""

    device: str
    reason: str = ""


@dataclass(frozen=True)
class DeviceUp(Event):
    """A device is back. ``operator``: an operator cleared it, which also ends a hold for
    failing too often (a module's own report does not)."""

    device: str
    operator: bool = False


@dataclass(frozen=True)
class CancelJob(Event):
    job_id: str


@dataclass(frozen=True)
class HoldJob(Event):
    job_id: str


@dataclass(frozen=True)
class ResumeJob(Event):
    job_id: str


@dataclass(frozen=True)
class QuarantineJob(Event):
    """The job's data broke the scheduler (an exception while applying one of its events): it
    ends failed with ``reason`` and every other job goes on."""

    job_id: str
    reason: str = ""


@dataclass(frozen=True)
class SetPriority(Event):
    job_id: str
    priority: int


@dataclass(frozen=True)
class ProposalsReady(Event):
    job_id: str
    cycle: int
    parameter_sets: tuple[Mapping[str, float], ...]


@dataclass(frozen=True)
class Restock(Event):
    module: str
    item: str
    amount: int


@dataclass(frozen=True)
class ModuleAdded(Event):
    """A module joined the lab while it runs: ``lab`` is the lab with it (a superset of the
    current one). Not in EVENT_TYPES: a Lab is not JSON, so whoever persists the event stores
    what the lab was built from (a module description) and rebuilds the event on replay."""

    module: str
    lab: Lab


@dataclass(frozen=True)
class Tick(Event):
    pass


@dataclass(frozen=True)
class RulesChosen(Event):
    """What a deferred look-ahead chose, on a copy of the core outside the lab's lock: the
    policy's ``rules`` (its own JSON-safe token; empty keeps the current ones), for the replanning
    events up to the ``replan``-th (later ones still want a look-ahead). Logged, so a replay
    follows the same rules without looking ahead again."""

    rules: tuple[Any, ...] = ()
    replan: int = 0


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        JobSubmitted,
        StepStarted,
        StepFinished,
        StepFailed,
        ModuleDown,
        ModuleUp,
        DeviceDown,
        DeviceUp,
        CancelJob,
        HoldJob,
        ResumeJob,
        QuarantineJob,
        SetPriority,
        ProposalsReady,
        Restock,
        Tick,
        RulesChosen,
    )
}


def to_dict(event: Event) -> dict[str, Any]:
    """A JSON-safe mapping; a JobSubmitted carries its job script source mapping."""
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "spec":
            value = dict(value.source)
        elif f.name == "parameter_sets":
            value = [dict(p) for p in value]
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def from_dict(data: Mapping[str, Any], lab: Lab) -> Event:
    """Inverse of :func:`to_dict`; job scripts are re-validated against ``lab``."""
    from octopus_scheduler.core.jobscript import parse_job_script

    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"type: unknown event type {kind!r}")
    cls = EVENT_TYPES[kind]
    kwargs = {k: v for k, v in data.items() if k != "type"}
    if cls is JobSubmitted:
        kwargs["spec"] = parse_job_script(kwargs["spec"], lab)
    if cls is ProposalsReady:
        kwargs["parameter_sets"] = tuple(kwargs["parameter_sets"])
    if cls is RulesChosen:
        kwargs["rules"] = tuple(kwargs["rules"])
    return cls(**kwargs)


def job_of(event: Event) -> str:
    """The job an event is about ("" for lab events: modules, devices, ticks)."""
    job_id = getattr(event, "job_id", "")
    if job_id:
        return str(job_id)
    step_id = getattr(event, "step_id", "")
    return str(step_id).split("/", 1)[0] if step_id else ""
