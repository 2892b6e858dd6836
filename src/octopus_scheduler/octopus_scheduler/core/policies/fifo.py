"""The reference system's admission rules, done right: fcfs, backfill, closed packing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from octopus_scheduler.core.policies.base import Admission, Policy

if TYPE_CHECKING:
    from octopus_scheduler.core.runs import GroupRun, JobRun
    from octopus_scheduler.core.scheduler_core import SchedulerCore


class Fcfs(Policy):
    """First come, first served without standby sharing (the published serial baseline).

    ``scope: platform`` (default): one job at a time on the whole lab (Fig. 8 FCFS).
    ``scope: module``: a module serves one job step at a time for the step's whole duration, jobs
    queue per module in arrival order (the Fig. 5d "serial" rule).
    """

    name = "fcfs"
    merge_task_steps = True

    def __init__(self, options: dict | None = None) -> None:
        super().__init__(options)
        scope = self.options.get("scope", "platform")
        if scope not in ("platform", "module"):
            raise ValueError(f"policy_options.scope: must be 'platform' or 'module', got {scope!r}")
        self.scope = scope
        self._cursor = 0  # jobs before it have ended (jobs are kept in arrival order)

    def forked(self, core: SchedulerCore) -> None:
        self._cursor = 0  # the copy has no ended jobs: the cursor indexes a shorter list

    def admission_groups(self, core: SchedulerCore, groups: list[GroupRun]) -> list[GroupRun]:
        if self.scope == "module" or not groups:
            return groups
        # one job at a time: only the oldest unfinished job may admit work. Groups are kept in
        # arrival order, and a running job's next cycle is appended later, so look for it first.
        head = self._head(core)
        return [g for g in groups if g.job is head]

    def _head(self, core: SchedulerCore) -> JobRun | None:
        jobs = core.all_jobs()
        while self._cursor < len(jobs) and jobs[self._cursor].finished:
            self._cursor += 1
        return jobs[self._cursor] if self._cursor < len(jobs) else None


class Backfill(Policy):
    """Admit a waiting job's whole batch whenever it fits (standby time is shared)."""

    name = "backfill"


class ClosedPacking(Policy):
    """Like backfill, but a batch that does not fit is split into chunks sized to free slots."""

    name = "closed_packing"
    splits_batches = True

    def admit_size(self, core: SchedulerCore, adm: Admission, free: int | None) -> int:
        pending = len(adm.group.pending)
        return pending if free is None else min(pending, free)
