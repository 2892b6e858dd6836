"""Lab time: the one clock type of a process, and the only place that applies a time scale.

A simulated lab runs faster than the wall (``time_scale=600``: a 10-hour day in a minute). One
:class:`LabClock` is created per process and handed to everything that reads lab time, waits or
times out, so no other code multiplies or divides by a time scale:

* :class:`ScaledClock` - a live lab: lab time runs ``scale`` times faster than the wall;
* :class:`VirtualClock` - set by its owner (a simulation, a test): it moves only when told.

A clock is also a callable returning :meth:`LabClock.now`, so it fits wherever a
``Callable[[], float]`` lab-time source is expected.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from typing import Any


class LabClock(ABC):
    """Lab time in seconds, conversions between lab and wall durations, and waits in lab time."""

    @abstractmethod
    def now(self) -> float:
        """The lab time now, in seconds (an epoch-like value for a scaled clock)."""

    def __call__(self) -> float:
        return self.now()

    def __deepcopy__(self, memo: dict[int, Any]) -> LabClock:
        # one clock per process: a copy of the state that holds it (a fork of the scheduler's
        # core for a look-ahead) reads the same time
        return self

    @abstractmethod
    def wall_s(self, lab_s: float) -> float:
        """How many wall seconds ``lab_s`` seconds of lab time last."""

    @abstractmethod
    def lab_s(self, wall_s: float) -> float:
        """How many lab seconds pass in ``wall_s`` wall seconds."""

    @abstractmethod
    def wait(self, stop: threading.Event, lab_s: float) -> bool:
        """Wait ``lab_s`` seconds of lab time unless ``stop`` is set first; True if stopped."""

    # Processes of one lab each have their own clock (with its own origin), so they tell each
    # other when something happened in wall time, which they share, and convert on each side.

    def lab_time_at(self, wall_time: float) -> float:
        """The lab time this clock read at ``wall_time`` (seconds since the epoch)."""
        return self.now() - self.lab_s(time.time() - wall_time)

    def wall_time_at(self, lab_time: float) -> float:
        """The wall time (seconds since the epoch) at which this clock read ``lab_time``."""
        return time.time() - self.wall_s(self.now() - lab_time)


def check_time_scale(scale: float) -> float:
    """``scale`` as a float; ValueError naming ``time_scale`` unless it is positive and finite."""
    value = float(scale)
    if not (value > 0.0 and math.isfinite(value)):  # also refuses NaN
        raise ValueError(f"time_scale: must be positive, got {scale}")
    return value


class ScaledClock(LabClock):
    """Lab time: runs ``scale`` times faster than the wall, from the wall time at start or from
    ``not_before`` (the last recorded event), whichever is later: lab time never runs backwards
    over a restart. Read on the monotonic clock, so a wall-clock step does not move it."""

    def __init__(self, scale: float, not_before: float | None = None) -> None:
        self.scale = check_time_scale(scale)
        self.origin = max(time.time(), not_before or 0.0)
        self.origin_mono = time.monotonic()

    def now(self) -> float:
        return self.origin + (time.monotonic() - self.origin_mono) * self.scale

    def wall_s(self, lab_s: float) -> float:
        return lab_s / self.scale

    def lab_s(self, wall_s: float) -> float:
        return wall_s * self.scale

    def wait(self, stop: threading.Event, lab_s: float) -> bool:
        # on the event, not a sleep: a cancel ends the wait within microseconds
        return stop.wait(max(self.wall_s(lab_s), 0.0))

    def __repr__(self) -> str:
        return f"ScaledClock(scale={self.scale:g})"


class VirtualClock(LabClock):
    """Lab time that moves only when its owner calls :meth:`set` or :meth:`advance`.

    Lab and wall time are decoupled: ``wall_s`` and ``lab_s`` are 0 (no wall time is spent on
    lab time, and the wall moves no lab time), and :meth:`wait` returns at once - True if ``stop``
    is set, else False - without advancing the clock. Waits do not advance it because several
    threads may wait at once, and only the owner knows which wait ends first; a simulated device
    under a virtual clock therefore finishes its actions instantly.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self._now = float(now)
        self._lock = threading.Lock()  # advance() from several threads must not lose a step

    def now(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        """Lab time is ``now`` from here on (the owner may move it backwards: no check)."""
        with self._lock:
            self._now = float(now)

    def advance(self, lab_s: float) -> float:
        """Move lab time on by ``lab_s`` seconds; returns the new time."""
        with self._lock:
            self._now += lab_s
            return self._now

    def wall_s(self, lab_s: float) -> float:
        return 0.0

    def lab_s(self, wall_s: float) -> float:
        return 0.0

    def wait(self, stop: threading.Event, lab_s: float) -> bool:
        return stop.is_set()

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:g})"


def resolve_clock(clock: LabClock | None, time_scale: float | None) -> LabClock:
    """The ``clock`` given, or a :class:`ScaledClock` at ``time_scale`` (1 if neither is given).

    Lets constructors keep their ``time_scale=`` keyword as a convenience for callers that
    have no clock of their own; giving both is ambiguous and refused.
    """
    if clock is not None:
        if time_scale is not None:
            raise ValueError("time_scale: give a clock or a time scale, not both")
        return clock
    return ScaledClock(1.0 if time_scale is None else time_scale)
