"""The hard rules of the scheduler core, which no policy can break: a step takes all its devices
or none, slots have capacities, samples holding a zoned slot type at once agree on its parameter
(one hot plate, one temperature), and a chunk enters a module only if every admitted chunk can
still finish afterwards (a banker's check against deadlock).

A part of :class:`~octopus_scheduler.core.scheduler_core.SchedulerCore` (it reads the core's
state and changes none of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from octopus_scheduler.core.jobscript import RouteTask
from octopus_scheduler.core.lab import Lab, ZoneKey, zone_key
from octopus_scheduler.core.runs import (
    ChunkRun,
    JobRun,
    Sample,
    StepRun,
    task_params,
    visits_of,
)

SlotKey = tuple[str, str]
ZoneWant = tuple[SlotKey, ZoneKey]


class SafetyRules:
    """Why a step or a job cannot start now; the core's state is set up by SchedulerCore."""

    lab: Lab
    now: float
    _down: set[str]
    _out_of_order: dict[str, str]
    _holder: dict[str, StepRun | None]
    _stock: dict[SlotKey, int]
    _cap: dict[SlotKey, int]
    _used: dict[SlotKey, int]
    _chunks: list[ChunkRun]
    _blocked_this_dispatch: dict[tuple[str, frozenset[str]], str]
    _entry_devices_this_dispatch: dict[tuple[str, str], frozenset[str]]
    policy: Any

    def why_blocked(self, step: StepRun) -> str:
        """Empty string if ``step`` could start now, else what it waits for."""
        if step.job.held:
            return "job held"
        if step.not_before > self.now:
            return f"retry {step.attempts} backs off until {step.not_before:.0f}"
        if step.module in self._down:
            return f"module {step.module} down"
        unavailable = self._unavailable(step.devices)  # lasting reasons first
        if unavailable:
            return unavailable
        for d in sorted(step.devices):  # a set's order changes with the process: the same text
            holder = self._holder[d]
            if holder is not None:
                until = (holder.start or self.now) + holder.expected
                return f"devices {d} held by {holder.id} until {until:.0f}"
        for item, n in step.consumes.items():
            if self._stock.get((step.module, item), 0) < n:
                return f"consumable {step.module}.{item} out of stock"
        if step.enters_visit and not step.chunk.visits[step.visit].entered:
            visit = step.chunk.visits[step.visit]
            for key, n in visit.demand.items():
                free = self._cap[key] - self._used[key]
                if free < n:
                    return f"slots {key[0]}.{key[1]} ({free} free, needs {n})"
            zone = self._zone_conflict(self._chunk_zones(step.chunk, step.visit), step.chunk)
            if zone:
                return zone
            if not self._safe(step.chunk, step.visit):
                return "slots held back to avoid a deadlock"
        return ""

    def _unavailable(self, devices: Iterable[str]) -> str:
        """Why one of ``devices`` cannot be used at all now ("" if all can)."""
        for d in sorted(devices):
            if self.lab.device_module[d] in self._down:
                return f"module {self.lab.device_module[d]} down"
            if d in self._out_of_order:
                return f"device {d} out of order: {self._out_of_order[d]}"
        return ""

    def _entry_blocked(self, module: str, devices: frozenset[str]) -> str:
        """Why a job entering at ``module`` on ``devices`` cannot start now ("" if it can).
        A dispatch only takes devices, so what is blocked stays blocked until it ends: the
        answer is kept for the dispatch (a queue of jobs for one device asks once, not per job)."""
        key = (module, devices)
        reason = self._blocked_this_dispatch.get(key)
        if reason is not None:
            return reason
        if module in self._down:
            reason = f"module {module} down"
        else:
            reason = self._unavailable(devices)
        for d in sorted(devices) if not reason else ():
            holder = self._holder[d]
            if holder is not None:
                until = (holder.start or self.now) + holder.expected
                reason = f"devices {d} held by {holder.id} until {until:.0f}"
                break
        if reason:
            self._blocked_this_dispatch[key] = reason
        return reason

    def _entry_ok(self, chunk: ChunkRun, first: StepRun) -> bool:
        for item, n in first.consumes.items():
            if self._stock.get((first.module, item), 0) < n:
                return False
        for key, n in chunk.visits[0].demand.items():
            if self._cap[key] - self._used[key] < n:
                return False
        if self._zone_conflict(self._chunk_zones(chunk, 0), chunk):
            return False
        return self._safe(chunk, 0, new=True)

    def entry_devices(self, job: JobRun) -> frozenset[str]:
        """The devices the first step of ``job`` takes when it enters the lab."""
        entry = job.spec.route[0]
        key = (entry.module, entry.task)
        devices = self._entry_devices_this_dispatch.get(key)  # asked for every queued job
        if devices is None:
            if self.policy.merge_task_steps:
                devices = self.lab.task_devices(entry.module, entry.task)
            else:
                first = self.lab.task(entry.module, entry.task).steps[0]
                devices = self.lab.step_devices(entry.module, entry.task, first)
            self._entry_devices_this_dispatch[key] = devices
        return devices

    def _safe(self, chunk: ChunkRun, visit: int, new: bool = False) -> bool:
        """Banker's check: after ``chunk`` enters ``visit``, can every chunk still finish?

        Zones: a chunk that will still enter a zoned slot type can go next only if no other
        unfinished chunk holds that zone at another key (it waits for the zone to drain).
        """
        entering = chunk.visits[visit]
        free = {k: self._cap[k] - self._used[k] for k in self._cap}
        for key, n in entering.demand.items():
            free[key] -= n
        zoned = self._lab_zoned()
        # per unfinished chunk: slots held, slots still needed, zone keys held, zone keys needed
        table: list[
            tuple[dict[SlotKey, int], dict[SlotKey, int], dict[SlotKey, ZoneKey], list[ZoneWant]]
        ] = []
        others = list(self._chunks)
        if new:
            others.append(chunk)
        for c in others:
            alloc = c.alloc()
            need: dict[SlotKey, int] = {}
            wants: list[ZoneWant] = []
            for i, v in enumerate(c.visits):
                if v.entered or (c is chunk and i == visit):
                    continue
                for key, n in v.demand.items():
                    need[key] = max(need.get(key, 0), n)
                if zoned:
                    wants += self._chunk_zones(c, i).items()
            if c is chunk:
                for key, n in entering.demand.items():
                    alloc[key] = alloc.get(key, 0) + n
            if need:
                holds: dict[SlotKey, ZoneKey] = {}
                for i, v in enumerate(c.visits) if zoned else ():
                    if (v.entered and not v.released) or (c is chunk and i == visit):
                        holds.update(self._chunk_zones(c, i))
                table.append((alloc, need, holds, wants))
            else:  # it can always finish: give its slots back right away
                for key, n in alloc.items():
                    free[key] += n
        # Finishing a chunk only frees slots and zones, so the order in which chunks finish does
        # not change the answer: pass over the table, finishing every chunk that can, until a
        # pass finishes none (linear passes, not a restart after each chunk)
        while table:
            done: set[int] = set()  # the entries finished in this pass, by id
            for entry in table:
                alloc, need, _, wants = entry
                if all(free[k] >= n for k, n in need.items()) and not any(
                    other[2].get(key, want) != want
                    for other in table
                    if other is not entry and id(other) not in done
                    for key, want in wants
                ):
                    for key, n in alloc.items():
                        free[key] += n
                    done.add(id(entry))
            if not done:
                return False
            table = [entry for entry in table if id(entry) not in done]
        return True

    def _lab_zoned(self) -> bool:
        return any(s.zone_by for m in self.lab.modules.values() for s in m.slots.values())

    def _route_zoned(self, route: Sequence[RouteTask]) -> bool:
        mods = [self.lab.modules[m] for m in dict.fromkeys(r.module for r in route)]
        return any(m.slots[s].zone_by for m in mods for s in m.sample_slots)

    def _chunk_zones(self, chunk: ChunkRun, visit: int) -> dict[SlotKey, ZoneKey]:
        """The key each zoned slot type of ``visit`` holds for ``chunk`` (absent: any key)."""
        mod = self.lab.modules[chunk.visits[visit].module]
        if not any(mod.slots[s].zone_by for s in mod.sample_slots):
            return {}
        out: dict[SlotKey, ZoneKey] = {}
        for sample in chunk.samples:  # one key class per chunk: the first key is every key
            for key, zk in sample_zones(self.lab, chunk.job.spec.route, sample, visit).items():
                out.setdefault(key, zk)
        return out

    def _zone_conflict(
        self, wants: Mapping[SlotKey, ZoneKey], exclude: ChunkRun | None = None
    ) -> str:
        """Why samples with ``wants`` cannot enter their zones now ('' if they can)."""
        if not wants:
            return ""
        modules = {key[0] for key in wants}
        for c in self._chunks:
            if c is exclude:
                continue
            for i, v in enumerate(c.visits):
                if not v.entered or v.released or v.module not in modules:
                    continue
                for key, held in self._chunk_zones(c, i).items():
                    want = wants.get(key)
                    if want is not None and held != want:
                        zone_by = self.lab.modules[key[0]].slots[key[1]].zone_by
                        param = zone_by[1] if zone_by else "?"
                        return (
                            f"zone {key[0]}.{key[1]} at {param} {_fmt_key(held)} "
                            f"(needs {_fmt_key(want)})"
                        )
        return ""

    def _zone_classes(
        self, route: Sequence[RouteTask], samples: list[Sample]
    ) -> list[list[Sample]]:
        """``samples`` split by their zone keys on the whole route, in order of first appearance."""
        vis = visits_of(route)
        classes: dict[tuple[Any, ...], list[Sample]] = {}
        for s in samples:
            sig = tuple(
                (v, tuple(sample_zones(self.lab, route, s, v).items())) for v in range(vis[-1] + 1)
            )
            classes.setdefault(sig, []).append(s)
        return list(classes.values())


def sample_zones(
    lab: Lab, route: Sequence[RouteTask], sample: Sample, visit: int
) -> dict[SlotKey, ZoneKey]:
    """A sample's key on each zoned slot type of ``visit`` (absent: it runs no zone task there
    and so is compatible with any key): the zone parameter over the visit's runs of the task."""
    vis = visits_of(route)
    module = route[vis.index(visit)].module
    mod = lab.modules[module]
    out: dict[SlotKey, ZoneKey] = {}
    for slot in mod.sample_slots:
        zone_by = mod.slots[slot].zone_by
        if zone_by is None:
            continue
        task, param = zone_by
        values = []
        for rt, v in zip(route, vis, strict=True):
            if v == visit and rt.task == task:
                params = task_params(rt, sample, lab)
                if param in params:
                    values.append(params[param])
        key = zone_key(values)
        if key is not None:
            out[(module, slot)] = key
    return out


def _fmt_key(key: ZoneKey) -> str:
    parts = [f"{v:g}" if isinstance(v, float) else str(v) for v in key or ()]
    return ", ".join(parts) or "any"
