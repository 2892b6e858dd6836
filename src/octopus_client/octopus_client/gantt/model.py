"""ROS-free model of the Gantt: rows per device grouped by module, bars per step.

Input is a flat list of :class:`GanttStep` records (built from a Schedule message, the scheduler
core's plan or the simulator's timeline); output is a :class:`GanttModel` that the Qt widget and
the matplotlib export both draw the same way.

Standby steps (a reaction, drying) hold no device, only slots. Drawing them on the module's
device rows would show those devices busy when other jobs' active steps use them at the same
time, so each module that has standby work gets one extra "standby" row under its devices, in
which overlapping standby steps are stacked in thin lanes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from octopus_client.gantt.palette import job_color

Mode = Literal["active", "standby"]
State = Literal["planned", "running", "done", "failed"]
Fill = Literal["filled", "hollow"]

MODES: tuple[str, ...] = ("active", "standby")
STATES: tuple[str, ...] = ("planned", "running", "done", "failed")

# Range shown when there is nothing or a single instant to show.
_EMPTY_SPAN_S = 60.0


@dataclass(frozen=True)
class GanttStep:
    """One step of a job: planned (the plan ahead) or actual (running, done, failed).

    ``start``/``end`` are the actual times for done/failed steps, the actual start and the
    expected end for a running step, the planned times for a planned one (seconds, any clock).
    ``reason`` is what a planned step waits for, or the outcome of an ended one.
    """

    job_id: str
    owner: str
    module: str
    task: str
    step_name: str
    mode: Mode
    devices: Sequence[str]
    start: float
    end: float
    state: State
    reason: str = ""
    step_id: str = ""
    job_name: str = ""
    experiment_id: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {self.state!r}")
        if self.end < self.start:
            raise ValueError(f"step ends before it starts ({self.start} > {self.end})")
        # A tuple keeps the record immutable and hashable whatever sequence was given.
        object.__setattr__(self, "devices", tuple(self.devices))


@dataclass(frozen=True)
class Row:
    """A device of a module, or (``device is None``) the module's standby row."""

    module: str
    device: str | None
    lanes: int = 1

    @property
    def is_standby(self) -> bool:
        return self.device is None

    @property
    def label(self) -> str:
        return "standby" if self.device is None else self.device


@dataclass(frozen=True)
class Bar:
    """A drawn piece of a step: ``filled`` for what ran, ``hollow`` for what is planned.

    A running step yields two bars: filled up to now, hollow for the rest it is expected to take.
    """

    row: int
    lane: int
    start: float
    end: float
    fill: Fill
    step: GanttStep
    color: str


@dataclass(frozen=True)
class JobEntry:
    """A legend entry."""

    job_id: str
    label: str
    color: str


@dataclass(frozen=True)
class GanttModel:
    rows: tuple[Row, ...]
    bars: tuple[Bar, ...]
    jobs: tuple[JobEntry, ...]
    now: float | None
    t_min: float
    t_max: float

    @property
    def is_empty(self) -> bool:
        return not self.bars

    def module_groups(self) -> list[tuple[str, int, int]]:
        """(module, first row, one past its last row) in display order."""
        groups: list[tuple[str, int, int]] = []
        for index, row in enumerate(self.rows):
            if groups and groups[-1][0] == row.module:
                module, first, _ = groups[-1]
                groups[-1] = (module, first, index + 1)
            else:
                groups.append((row.module, index, index + 1))
        return groups

    def bars_of_row(self, row: int) -> list[Bar]:
        return [bar for bar in self.bars if bar.row == row]


def build_model(
    steps: Iterable[GanttStep],
    now: float | None = None,
    module_devices: Mapping[str, Sequence[str]] | None = None,
    *,
    t_from: float | None = None,
    t_to: float | None = None,
) -> GanttModel:
    """Lay out ``steps`` in rows and bars.

    ``module_devices`` orders modules and their device rows (devices of a module with no step
    still get an empty row); modules and devices only seen in steps follow, sorted. A device
    listed under no module is shown under the module of the step that uses it. ``t_from`` /
    ``t_to`` crop the time window (bars are clipped to it).
    """
    module_devices = module_devices or {}
    kept = [s for s in steps if _overlaps(s, now, t_from, t_to)]
    kept.sort(key=lambda s: (s.start, s.end, s.job_id, s.step_id))

    device_module = {d: m for m, devices in module_devices.items() for d in devices}
    layout: dict[str, list[str]] = {m: list(devices) for m, devices in module_devices.items()}
    for step in kept:
        if step.mode == "standby" or not step.devices:
            layout.setdefault(step.module, [])
            continue
        for device in step.devices:
            module = device_module.setdefault(device, step.module)
            listed = layout.setdefault(module, [])
            if device not in listed:
                listed.append(device)

    lanes_by_module, lane_of_step = _standby_lanes(kept)
    rows: list[Row] = []
    row_of: dict[tuple[str, str | None], int] = {}
    known_order = list(module_devices)
    extra = sorted(m for m in layout if m not in module_devices)
    for module in known_order + extra:
        given = list(module_devices.get(module, ()))
        devices = given + sorted(d for d in layout[module] if d not in given)
        for device in devices:
            row_of[(module, device)] = len(rows)
            rows.append(Row(module, device))
        if module in lanes_by_module:
            row_of[(module, None)] = len(rows)
            rows.append(Row(module, None, lanes=lanes_by_module[module]))

    bars: list[Bar] = []
    for step in kept:
        color = job_color(step.job_id)
        if step.mode == "standby" or not step.devices:
            targets = [(row_of[(step.module, None)], lane_of_step[id(step)])]
        else:
            targets = [(row_of[(device_module[d], d)], 0) for d in step.devices]
        for start, end, fill in _pieces(step, now, t_from, t_to):
            for row, lane in targets:
                bars.append(Bar(row, lane, start, end, fill, step, color))

    t_min, t_max = _time_range(bars, now, t_from, t_to)
    return GanttModel(tuple(rows), tuple(bars), _legend(kept), now, t_min, t_max)


def _overlaps(step: GanttStep, now: float | None, t_from: float | None, t_to: float | None) -> bool:
    end = step.end
    if step.state == "running" and now is not None:
        end = max(end, now)
    return (t_from is None or end >= t_from) and (t_to is None or step.start <= t_to)


def _pieces(
    step: GanttStep, now: float | None, t_from: float | None, t_to: float | None
) -> list[tuple[float, float, Fill]]:
    """Time pieces of a step: (start, end, fill), clipped to the window."""
    if step.state in ("done", "failed"):
        raw: list[tuple[float, float, Fill]] = [(step.start, step.end, "filled")]
    elif step.state == "planned" or now is None:
        raw = [(step.start, step.end, "hollow")]
    else:  # running: what ran so far is filled, the expected rest hollow; an overrun grows
        ran_until = max(now, step.start)
        raw = [(step.start, ran_until, "filled")]
        if step.end > ran_until:
            raw.append((ran_until, step.end, "hollow"))
    pieces: list[tuple[float, float, Fill]] = []
    for start, end, fill in raw:
        start = start if t_from is None else max(start, t_from)
        end = end if t_to is None else min(end, t_to)
        if end > start or (end == start and len(raw) == 1):
            pieces.append((start, end, fill))
    return pieces


def _standby_lanes(steps: Sequence[GanttStep]) -> tuple[dict[str, int], dict[int, int]]:
    """Stack overlapping standby steps of a module in lanes (first free lane, by start time)."""
    lane_ends: dict[str, list[float]] = {}
    lane_of_step: dict[int, int] = {}
    for step in steps:  # sorted by start
        if step.mode != "standby" and step.devices:
            continue
        ends = lane_ends.setdefault(step.module, [])
        lane = next((i for i, end in enumerate(ends) if end <= step.start), len(ends))
        if lane == len(ends):
            ends.append(step.end)
        else:
            ends[lane] = step.end
        lane_of_step[id(step)] = lane
    return {m: len(ends) for m, ends in lane_ends.items()}, lane_of_step


def _time_range(
    bars: Sequence[Bar], now: float | None, t_from: float | None, t_to: float | None
) -> tuple[float, float]:
    times = [b.start for b in bars] + [b.end for b in bars]
    if now is not None:
        times.append(now)
    t_min = t_from if t_from is not None else min(times, default=0.0)
    t_max = t_to if t_to is not None else max(times, default=t_min)
    if t_max - t_min <= 0:
        t_max = t_min + _EMPTY_SPAN_S
    return t_min, t_max


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """'J2' before 'J10': digit runs compare as numbers."""
    parts = re.split(r"(\d+)", text)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def _legend(steps: Sequence[GanttStep]) -> tuple[JobEntry, ...]:
    entries: dict[str, JobEntry] = {}
    for step in sorted(steps, key=lambda s: _natural_key(s.job_id)):
        if step.job_id in entries:
            continue
        label = step.job_id
        if step.job_name:
            label += f" {step.job_name}"
        if step.owner:
            label += f" ({step.owner})"
        entries[step.job_id] = JobEntry(step.job_id, label, job_color(step.job_id))
    return tuple(entries.values())
