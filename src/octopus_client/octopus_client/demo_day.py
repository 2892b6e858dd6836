"""A lab day to replay (jobs, who submits them, when) and its report beside published numbers.

ROS-free: the demo (``octopus_client.demo``) feeds it what the scheduler reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class DayJob:
    index: int
    user: str
    offset_s: float  # lab seconds after the day's start
    script: str


@dataclass(frozen=True)
class Day:
    name: str
    jobs: tuple[DayJob, ...]
    published: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class JobTimes:
    """Lab-time seconds of one job as the scheduler recorded them."""

    submitted: float
    started: float | None
    finished: float | None


def _minutes(clock: str, where: str) -> float:
    try:
        hours, minutes = str(clock).split(":")
        return int(hours) * 60 + int(minutes)
    except ValueError:
        raise ValueError(f"{where}: expected a clock time HH:MM, got {clock!r}") from None


def load_day(path: str | Path) -> Day:
    data = yaml.safe_load(Path(path).read_text())
    start = _minutes(data.get("start_clock", "00:00"), "start_clock")
    jobs = []
    for index, entry in enumerate(data["jobs"]):
        where = f"jobs[{index}]"
        offset = (_minutes(entry["submit"], f"{where}.submit") - start) * 60.0
        if offset < 0:
            raise ValueError(f"{where}.submit: before the day's start_clock")
        jobs.append(
            DayJob(
                index=int(entry.get("id", index)),
                user=str(entry["user"]),
                offset_s=offset,
                script=yaml.safe_dump(entry["script"], sort_keys=False),
            )
        )
    return Day(str(data.get("name", Path(path).stem)), tuple(jobs), data.get("published", {}))


def job_hours(times: JobTimes) -> tuple[float, float, float]:
    """(waiting, turnaround, total) in hours: start - submit, finish - start, finish - submit."""
    if times.started is None or times.finished is None:
        raise ValueError("the job has not run to its end")
    waiting = (times.started - times.submitted) / 3600.0
    turnaround = (times.finished - times.started) / 3600.0
    return waiting, turnaround, waiting + turnaround


def report(day: Day, measured: Sequence[JobTimes], day_start: float) -> str:
    """Per-job hours of this run beside the published FCFS and OCTOPUS runs, with sums."""
    fcfs = day.published.get("fcfs", {})
    octopus = day.published.get("octopus", {})
    header = (
        f"{'job':>4} {'user':<6} | {'this run: wait':>14} {'turn':>6} {'total':>6} | "
        f"{'FCFS total':>10} | {'OCTOPUS: wait':>13} {'turn':>6} {'total':>6}"
    )
    lines = [header, "-" * len(header)]
    sums = [0.0, 0.0, 0.0]
    for job, times in zip(day.jobs, measured, strict=True):
        hours = job_hours(times)
        sums = [a + b for a, b in zip(sums, hours, strict=True)]
        i = job.index
        lines.append(
            f"{i:>4} {job.user:<6} | {hours[0]:>14.2f} {hours[1]:>6.2f} {hours[2]:>6.2f} | "
            f"{_at(fcfs, 'total', i):>10} | {_at(octopus, 'waiting', i):>13} "
            f"{_at(octopus, 'turnaround', i):>6} {_at(octopus, 'total', i):>6}"
        )
    makespan = (max(t.finished or 0.0 for t in measured) - day_start) / 3600.0
    ids = [job.index for job in day.jobs]
    lines.append("-" * len(header))
    lines.append(
        f"{'sum':>11} | {sums[0]:>14.2f} {sums[1]:>6.2f} {sums[2]:>6.2f} | "
        f"{_sum(fcfs, 'total', ids):>10} | {_sum(octopus, 'waiting', ids):>13} "
        f"{_sum(octopus, 'turnaround', ids):>6} {_sum(octopus, 'total', ids):>6}"
    )
    lines.append(
        f"{'makespan h':>11} | {makespan:>29.2f} | {fcfs.get('makespan_h', ''):>10} | "
        f"{octopus.get('makespan_h', ''):>27}"
    )
    return "\n".join(lines)


def _at(published: Mapping[str, Any], key: str, index: int) -> str:
    values = published.get(key, [])
    return f"{values[index]:.2f}" if index < len(values) else "-"


def _sum(published: Mapping[str, Any], key: str, ids: Sequence[int]) -> str:
    """The published sum over the same jobs as this run (all of them for the whole day)."""
    values = published.get(key, [])
    picked = [values[i] for i in ids if i < len(values)]
    return f"{sum(picked):.2f}" if picked else "-"
