"""Which modules are alive, from their heartbeats (no ROS: the node feeds it times).

A module is down when no heartbeat came for ``misses`` periods; one never heard of gets a
discovery grace from the start first (DDS discovery can take seconds). Liveness uses heartbeats,
not the ROS graph: a node healed from a partition may never reappear in the graph.
"""

from __future__ import annotations

from collections.abc import Iterable


class ModuleLiveness:
    def __init__(
        self,
        modules: Iterable[str],
        period_s: float,
        started: float,
        *,
        misses: int = 2,
        grace_s: float = 5.0,
    ) -> None:
        self.modules = list(modules)
        self.timeout_s = misses * period_s
        self._never_heard_until = started + grace_s
        self._last: dict[str, float] = {}
        self.down: set[str] = set()

    def add(self, module: str, now: float) -> None:
        """A module that joined while the lab runs; it was heard at ``now``."""
        if module not in self.modules:
            self.modules.append(module)
        self._last.setdefault(module, now)

    def beat(self, module: str, now: float) -> tuple[bool, bool]:
        """A heartbeat: (first ever heard, back from down)."""
        first = module not in self._last
        self._last[module] = now
        back = module in self.down
        self.down.discard(module)
        return first, back

    def newly_down(self, now: float) -> list[str]:
        """Modules silent for too long that were not down yet (they are marked down)."""
        lost = [
            m
            for m in self.modules
            if m not in self.down
            and now - self._last.get(m, self._never_heard_until) > self.timeout_s
        ]
        self.down.update(lost)
        return lost
