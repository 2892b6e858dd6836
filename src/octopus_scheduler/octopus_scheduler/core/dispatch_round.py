"""One dispatch round of the scheduler core: the candidates (ready steps and queued groups) in
the policy's order, each started or admitted if the safety rules and the policy allow it. The
decisions it takes are ``StartStep`` (and ``LowStock``).

A part of :class:`~octopus_scheduler.core.scheduler_core.SchedulerCore`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core.policies.base import Admission
from octopus_scheduler.core.runs import (
    READY,
    RUNNING,
    StepRun,
    build_chunk,
)
from octopus_scheduler.core.safety_rules import SafetyRules, sample_zones

if TYPE_CHECKING:
    from octopus_scheduler.core.runs import GroupRun, JobRun


class DispatchRound(SafetyRules):
    """Starts and admits work; the core's state is set up by SchedulerCore."""

    _ready: dict[str, StepRun]
    _running: dict[str, StepRun]
    _groups: list[GroupRun]
    _steps: dict[str, StepRun]
    _seq: int
    _out: list[dc.Decision]

    def _dispatch(self) -> None:
        self._blocked_this_dispatch, self._entry_devices_this_dispatch = {}, {}
        # entries (module, task) whose devices the lab refuses in this dispatch (held, down): a
        # dispatch only takes devices, so the queued jobs behind them are answered at once
        refused: dict[tuple[str, str], str] = {}
        self.policy.begin_round(self)
        for _ in range(64):  # admissions add ready steps; a few rounds always suffice
            cands: list[StepRun | Admission] = [s for s in self._ready.values() if not s.job.held]
            groups = self.policy.admission_groups(self, self._groups)
            cands += [Admission(g) for g in groups if g.pending and not g.job.held]
            if not cands:
                return
            cands.sort(key=lambda c: self.policy.rank(self, c))
            admitted = False
            for cand in cands:
                if isinstance(cand, Admission):
                    reason = self._entry_refused(cand.job, refused)
                    if reason:  # before the policy's costlier verdict
                        cand.group.blocked = reason
                        self.policy.blocked(self, cand)
                        continue
                    ok = self._try_admit(cand)
                    admitted |= ok
                else:
                    ok = self._try_start(cand)
                if not ok:
                    self.policy.blocked(self, cand)
            if not admitted:
                return

    def _try_start(self, step: StepRun) -> bool:
        reason = self.why_blocked(step)
        if not reason and not self.policy.allow(self, step):
            reason = "policy: reserved for higher-ranked work"
        step.blocked = reason or step.blocked
        if reason:
            return False
        self._start(step)
        return True

    def _entry_refused(self, job: JobRun, refused: dict[tuple[str, str], str]) -> str:
        """Why the lab lets no chunk of ``job`` enter now ("" if one may): its entry's devices
        held or down (kept in ``refused`` for the dispatch), or its entry's slots full (asked
        each time: a step moving on frees its last module's slots)."""
        entry = job.spec.route[0]
        key = (entry.module, entry.task)
        if key not in refused:
            reason = self._entry_blocked(entry.module, self.entry_devices(job))
            if not reason:
                return self._entry_full(job)
            refused[key] = reason
        return refused[key]

    def _entry_full(self, job: JobRun) -> str:
        """Why no chunk of ``job`` fits its entry's slots now ("" if one may): no policy admits
        a chunk into no free slot."""
        for module, slot in self.entry_keys(job):
            if self._cap[module, slot] - self._used[module, slot] <= 0:
                return f"slots {module}.{slot} full"
        return ""

    def _try_admit(self, adm: Admission) -> bool:
        """Admit a chunk of ``adm``'s group; the lab's entry devices are free (``_dispatch``)."""
        group, job = adm.group, adm.job
        entry = job.spec.route[0]
        keys = self.entry_keys(job)
        # the policy's verdict after the lab's: it costs more (durations, look-ahead), and a queue
        # of jobs waiting for one held device is asked on every dispatch
        if not self.policy.allow(self, adm):
            group.blocked = "policy: reserved for higher-ranked work"
            return False
        free = self.free_slots(keys)
        batch, sized = group.pending, adm
        if self._route_zoned(job.spec.route):
            # a chunk's samples share their zone keys: admit the first key class that fits the
            # zones now; the policy sizes it as if it were the whole batch
            batch, first_conflict = [], ""
            for cls in self._zone_classes(job.spec.route, group.pending):
                conflict = self._zone_conflict(sample_zones(self.lab, job.spec.route, cls[0], 0))
                if not conflict:
                    batch = cls
                    break
                first_conflict = first_conflict or conflict
            if not batch:
                group.blocked = first_conflict
                return False
            if len(batch) < len(group.pending):
                sized = Admission(dataclasses.replace(group, pending=batch))
        size = min(self.policy.admit_size(self, sized, free), len(batch))
        if size <= 0:
            key = keys[0] if keys else (entry.module, "?")
            group.blocked = f"slots {key[0]}.{key[1]} ({free} free, needs {len(batch)})"
            return False
        while size > 0:
            chunk = build_chunk(
                self.lab,
                job,
                group,
                batch[:size],
                merge_task_steps=self.policy.merge_task_steps,
                estimate=self.estimate,
            )
            first = chunk.steps[0]
            if not self._entry_ok(chunk, first):
                group.blocked = "slots held back to avoid a deadlock, or out of consumables"
                if not self.policy.splits_batches:
                    return False
                size -= 1
                continue
            if batch is group.pending:
                del group.pending[:size]
            else:
                taken = {id(s) for s in batch[:size]}
                group.pending[:] = [s for s in group.pending if id(s) not in taken]
            if not group.pending and group in self._groups:
                self._groups.remove(group)
            group.chunks.append(chunk)
            self._chunks.append(chunk)
            job.n_chunks += 1
            for step in chunk.steps:
                self._seq += 1
                step.seq = self._seq
                self._steps[step.id] = step
            first.state, first.ready_time = READY, self.now
            first.blocked = group.blocked
            group.blocked = ""
            self._start(first)
            return True
        return False

    def _start(self, step: StepRun) -> None:
        job, chunk = step.job, step.chunk
        for d in step.devices:
            self._holder[d] = step
        slots: tuple[dc.SlotUse, ...] = ()
        if step.enters_visit and not chunk.visits[step.visit].entered:  # not on a retry
            visit = chunk.visits[step.visit]
            visit.entered = True
            for key, n in visit.demand.items():
                self._used[key] += n
            slots = tuple(dc.SlotUse(k[0], k[1], n) for k, n in visit.demand.items())
            if step.visit > 0:
                self._maybe_release(chunk, step.visit - 1)
        for item, n in step.consumes.items():
            key = (step.module, item)
            before = self._stock[key]
            self._stock[key] = before - n
            low = self.lab.modules[step.module].consumables[item].low
            if before > low >= self._stock[key]:
                self._out.append(dc.LowStock(self.now, step.module, item, self._stock[key]))
        self._ready.pop(step.id, None)
        self._running[step.id] = step
        step.state, step.start, step.blocked = RUNNING, self.now, step.blocked
        if job.start is None:
            job.start = self.now
        if job.state == "queued":
            job.state = "running"
        self._out.append(
            dc.StartStep(
                time=self.now,
                step_id=step.id,
                job_id=job.id,
                module=step.module,
                task=step.task,
                step=step.name,
                kind=step.kind,
                devices=tuple(sorted(step.devices)),
                slots=slots,
                samples=tuple(s.id for s in step.samples),
                params=step.params,
                expected_s=step.expected,
                attempt=step.attempts,
                cycle=chunk.group.index,
                sample_params=tuple(s.params for s in step.samples),
            )
        )
