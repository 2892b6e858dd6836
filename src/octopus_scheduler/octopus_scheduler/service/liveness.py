"""Which modules are alive, from their heartbeats (no ROS: the node feeds it times).

A module is down when no heartbeat came for ``misses`` periods; one never heard of gets a
discovery grace from the start first (DDS discovery can take seconds). Liveness uses heartbeats,
not the ROS graph: a node healed from a partition may never reappear in the graph.

A module process that dies and is respawned under the same name may beat again before ``misses``
periods pass: its heartbeat carries a boot id, new in every process, and a new boot id is a
restart (the old process's goals are lost), reported as such.

Silence counts only while the watcher listens. A watcher that looks again more than a period
after its last look was stalled itself (its process paged in, collected garbage, or was not
scheduled: 2 s here under load) and heard nothing because it read nothing; silence counts again
from then, so every module has its full timeout to be heard. A stalled scheduler marked every
module down (and failed every step in flight) when it woke. Looks that stay late (a scheduler
overloaded for good, its timer behind) start the count once, not at each look: a module that
died is still found.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Beat(NamedTuple):
    """What one heartbeat tells."""

    first: bool  # the module's first heartbeat heard (since this liveness started)
    back: bool  # it was down and beats again
    restarted: bool  # a new process since the last heartbeat: what the old one ran is lost


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
        self.period_s = period_s
        self.timeout_s = misses * period_s
        self._looked: float | None = None  # when newly_down was last called
        self._late = False  # whether that look came more than a period after the one before
        self._listening_since = float("-inf")  # the end of the watcher's last stall
        self._never_heard_until = started + grace_s
        self._last: dict[str, float] = {}
        self._boot: dict[str, str] = {}  # module -> boot id of its current process
        self._retired: dict[str, set[str]] = {}  # module -> boot ids of processes it replaced
        self.down: set[str] = set()

    def add(self, module: str, now: float) -> None:
        """A module that joined while the lab runs; it was heard at ``now``."""
        if module not in self.modules:
            self.modules.append(module)
        self._last.setdefault(module, now)

    def beat(self, module: str, now: float, boot_id: str = "") -> Beat:
        """A heartbeat; ``boot_id`` "" (a module that sends none) never counts as a restart.

        A boot id seen before and replaced (a late message of the old process, or two processes
        wrongly running under one name) is a heartbeat but no restart: each process restarts the
        module once, not on every alternation."""
        first = module not in self._last
        self._last[module] = now
        back = module in self.down
        self.down.discard(module)
        restarted = False
        current = self._boot.get(module, "")
        if boot_id and boot_id != current:
            retired = self._retired.setdefault(module, set())
            if boot_id not in retired:
                restarted = bool(current)  # the first boot id heard is no restart
                if current:
                    retired.add(current)
                self._boot[module] = boot_id
        return Beat(first, back, restarted)

    def listening(self, now: float) -> bool:
        """Whether the watcher has listened for a period since its last stall: what came
        meanwhile (a module's result too) has been read."""
        return now - self._listening_since >= self.period_s

    def newly_down(self, now: float) -> list[str]:
        """Modules silent for too long that were not down yet (they are marked down). A look
        more than a period after the last one ends a stall of the watcher (module docstring)."""
        late = self._looked is not None and now - self._looked > self.period_s
        if late and not self._late:
            self._listening_since = now
        self._looked, self._late = now, late
        lost = [
            m
            for m in self.modules
            if m not in self.down
            and now - max(self._last.get(m, self._never_heard_until), self._listening_since)
            > self.timeout_s
        ]
        self.down.update(lost)
        return lost
