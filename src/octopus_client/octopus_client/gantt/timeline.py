"""Step records from the scheduler core: ``core.plan()`` placements and the simulator's timeline.

Both are read by field name, as objects or mappings, so this module imports nothing of the
scheduler. Field names (octopus_scheduler/core/projection.py ``Placement`` and the rows of
``SimReport.timeline`` / ``SimReport.to_dict()["timeline"]``):

    step_id, job_id, module, task, step, kind ("active"|"standby"), devices, start, end, state

``state`` is ``running``/``planned`` for placements (with a ``reason``), and the core's step
state for timeline rows: ``done``, ``aborted``, or ``running``/``ready``/``pending`` with
``end = None`` for a step that never ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from octopus_client.gantt.model import GanttStep, State

_STATE_OF: dict[str, State] = {
    "planned": "planned",
    "pending": "planned",
    "ready": "planned",
    "running": "running",
    "done": "done",
    "succeeded": "done",
    "finished": "done",
    "aborted": "failed",
    "failed": "failed",
    "cancelled": "failed",
}


def steps_from_records(
    records: Iterable[Any],
    *,
    jobs: Iterable[Any] | Mapping[str, str] | None = None,
    now: float | None = None,
) -> list[GanttStep]:
    """Convert placements or timeline rows to :class:`GanttStep` records.

    ``jobs`` gives owners and names: the simulator's job rows (``report.to_dict()["jobs"]``),
    ``core.jobs()`` views, or a plain ``{job_id: owner}`` mapping. A step that never ended
    (``end`` None) is shown running until ``now`` (or as an instant if ``now`` is unknown).
    """
    owners, names = _job_info(jobs)
    steps: list[GanttStep] = []
    for record in records:
        state_text = str(_get(record, "state", "planned"))
        state = _STATE_OF.get(state_text)
        if state is None:
            raise ValueError(f"step {_get(record, 'step_id', '?')}: unknown state {state_text!r}")
        start = float(_get(record, "start"))
        end_value = _get(record, "end", None)
        if end_value is None:
            state = "running" if state != "failed" else state
            end = max(start, now if now is not None else start)
        else:
            end = max(float(end_value), start)
        kind = str(_get(record, "kind", "active"))
        job_id = str(_get(record, "job_id"))
        reason = str(_get(record, "reason", "") or "")
        if not reason and state_text == "aborted":
            reason = "aborted"
        steps.append(
            GanttStep(
                job_id=job_id,
                owner=owners.get(job_id, ""),
                module=str(_get(record, "module")),
                task=str(_get(record, "task")),
                step_name=str(_get(record, "step", _get(record, "step_name", ""))),
                mode="standby" if kind == "standby" else "active",
                devices=[str(d) for d in _get(record, "devices", ())],
                start=start,
                end=end,
                state=state,
                reason=reason,
                step_id=str(_get(record, "step_id", "")),
                job_name=names.get(job_id, ""),
            )
        )
    return steps


def steps_from_plan(
    placements: Iterable[Any], *, jobs: Iterable[Any] | Mapping[str, str] | None = None
) -> list[GanttStep]:
    """``core.plan()`` -> steps: running steps (actual start) and the projected plan ahead."""
    return steps_from_records(placements, jobs=jobs)


def steps_from_sim_report(report: Any) -> list[GanttStep]:
    """A ``SimReport`` or its ``to_dict()`` -> the steps that ran, with owners and job names."""
    data = report if isinstance(report, Mapping) else None
    timeline = data["timeline"] if data is not None else report.timeline
    jobs = data["jobs"] if data is not None else report.jobs
    return steps_from_records(timeline, jobs=jobs)


def module_devices_of_lab(lab: Any) -> dict[str, list[str]]:
    """Device rows per module from a ``octopus_scheduler.core.lab.Lab`` (its modules' devices)."""
    return {name: list(spec.devices) for name, spec in lab.modules.items()}


def _job_info(
    jobs: Iterable[Any] | Mapping[str, str] | None,
) -> tuple[dict[str, str], dict[str, str]]:
    if jobs is None:
        return {}, {}
    if isinstance(jobs, Mapping):
        return {str(k): str(v) for k, v in jobs.items()}, {}
    owners: dict[str, str] = {}
    names: dict[str, str] = {}
    for job in jobs:
        job_id = str(_get(job, "job_id"))
        owners[job_id] = str(_get(job, "owner", "") or "")
        names[job_id] = str(_get(job, "name", "") or "")
    return owners, names


_MISSING = object()


def _get(record: Any, name: str, default: Any = _MISSING) -> Any:
    """A field of a mapping or an object; a missing required field is a clear error."""
    if isinstance(record, Mapping):
        value = record.get(name, default)
    else:
        value = getattr(record, name, default)
    if value is _MISSING:
        raise ValueError(f"schedule record {record!r} has no field {name!r}")
    return value
