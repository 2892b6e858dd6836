"""Time labels and axis ticks shared by the widget and the file export."""

from __future__ import annotations

import math
import time

# Times above this are wall-clock epoch seconds (live lab); below, offsets from the start of a
# simulation (virtual clock starting near zero).
_EPOCH_THRESHOLD_S = 1.0e8

_TICK_STEPS_S: tuple[float, ...] = (
    1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400,
)  # fmt: skip


def is_wall_clock(t: float) -> bool:
    return t >= _EPOCH_THRESHOLD_S


def format_time(t: float) -> str:
    """Local clock time for wall-clock stamps, else elapsed 'h:mm:ss' of a simulation."""
    if is_wall_clock(t):
        return time.strftime("%H:%M:%S", time.localtime(t))
    sign = "-" if t < 0 else ""
    total = int(round(abs(t)))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def tick_times(t_min: float, t_max: float, max_ticks: int = 10) -> list[float]:
    """Round tick positions inside [t_min, t_max], at most ``max_ticks`` of them."""
    span = t_max - t_min
    if span <= 0 or max_ticks < 1:
        return [t_min]
    step = next((s for s in _TICK_STEPS_S if span / s <= max_ticks), None)
    if step is None:  # longer than max_ticks days: whole days
        step = 86400.0 * math.ceil(span / (86400.0 * max_ticks))
    first = math.ceil(t_min / step) * step
    count = int(math.floor((t_max - first) / step + 1e-9)) + 1
    return [first + i * step for i in range(max(count, 0))]
