"""Plain-text rendering shared by the commands: tables, times, job states, progress bars.

No ROS import: messages are read by attribute, so this is testable and cheap to import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from octopus_modules.ros.ros_conversions import seconds_of

JOB_STATE_NAMES = ("queued", "running", "held", "succeeded", "failed", "cancelled")
STEP_STATE_NAMES = ("planned", "ready", "running", "succeeded", "failed", "cancelled")
ENDED = frozenset(("succeeded", "failed", "cancelled"))


def job_state(state: int) -> str:
    return JOB_STATE_NAMES[state] if 0 <= state < len(JOB_STATE_NAMES) else f"state {state}"


def clock_time(epoch: float | None, now: float | None = None) -> str:
    """Local clock time; the date too when it is not today. ``-`` when unknown."""
    if epoch is None:
        return "-"
    now = time.time() if now is None else now
    same_day = time.localtime(epoch)[:3] == time.localtime(now)[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M", time.localtime(epoch))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns, two spaces apart, a dashed rule under the header."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def progress_bar(fraction: float, width: int = 30) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"


JOB_HEADERS = ("ID", "OWNER", "NAME", "STATE", "PROGRESS", "EXPERIMENTS", "FINISH", "NOTE")
NOTE_WIDTH = 60  # what a job waits for, or why it ended: the start of it fits a terminal


def job_row(job: Any, now: float | None = None) -> list[str]:
    """A Job message as a table row; FINISH is the estimate, or when it ended (``ended``)."""
    state = job_state(job.state)
    if state in ENDED:
        finish = clock_time(seconds_of(job.finished), now)
    else:
        estimate = seconds_of(job.estimated_finish)
        finish = f"~{clock_time(estimate, now)}" if estimate is not None else "-"
    return [
        job.id,
        job.owner,
        job.name,
        state,
        f"{job.progress:.0%}",
        f"{job.experiments_done}/{job.experiments_total}",
        finish,
        _shorten(job.message, NOTE_WIDTH),
    ]


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def jobs_table(jobs: Sequence[Any], now: float | None = None) -> str:
    if not jobs:
        return "no jobs"
    return table(JOB_HEADERS, [job_row(j, now) for j in jobs])
