"""Lab time, as the scheduler and its service read it: a callable returning seconds.

``ScaledClock`` runs a live lab's time (the wall clock times the lab's time scale);
``VirtualClock`` is set by its owner (a simulation, a test) and moves only when told.
"""

from __future__ import annotations

import time


class ScaledClock:
    """Lab time: runs ``scale`` times faster than the wall, from the wall time at start or from
    the last recorded event, whichever is later (lab time never runs backwards over a restart)."""

    def __init__(self, scale: float, not_before: float | None = None) -> None:
        self.scale = scale
        self.origin = max(time.time(), not_before or 0.0)
        self.origin_mono = time.monotonic()

    def __call__(self) -> float:
        return self.origin + (time.monotonic() - self.origin_mono) * self.scale


class VirtualClock:
    """Lab time that moves only when its owner sets ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
