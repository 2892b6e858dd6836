"""How often the scheduler publishes its plan: on change, now and then anyway (a live Gantt's
now-line moves on), and never so often that planning takes the scheduler's CPU.

A plan is a projection of every queued job (a fraction of a second for a demo day, seconds for
hundreds of queued jobs). Published every 0.5 s regardless, it took a whole core from the
decisions and submissions at scale; paced by its own cost it takes at most ``cpu_share``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PublicationPacer:
    min_interval_s: float = 0.5  # a change is published this soon at the earliest
    refresh_s: float = 2.0  # without change, the plan is published again after this
    cpu_share: float = 0.2  # planning takes at most this share of the time

    def __post_init__(self) -> None:
        if not 0 < self.cpu_share <= 1:
            raise ValueError(f"cpu_share: must be in (0, 1], got {self.cpu_share}")
        self._last_start: float | None = None
        self._last_cost = 0.0

    def due(self, now: float, changed: bool) -> bool:
        """Whether to publish at ``now`` (monotonic seconds); ``changed``: the state changed
        since the last publication."""
        if self._last_start is None:
            return True
        waited = now - self._last_start
        if waited < max(self.min_interval_s, self._last_cost / self.cpu_share):
            return False
        return changed or waited >= self.refresh_s

    def published(self, started: float, cost_s: float) -> None:
        """A publication began at ``started`` and its planning took ``cost_s``."""
        self._last_start, self._last_cost = started, cost_s

    @property
    def interval_s(self) -> float:
        """The shortest time between publications now."""
        return max(self.min_interval_s, self._last_cost / self.cpu_share)
