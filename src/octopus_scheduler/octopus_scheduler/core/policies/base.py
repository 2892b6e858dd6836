"""The policy plug-in interface of the scheduler core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from octopus_scheduler.core.runs import GroupRun, JobRun, StepRun
    from octopus_scheduler.core.scheduler_core import SchedulerCore


@dataclass(eq=False)
class Admission:
    """Candidate: admit (part of) a group's pending samples as a new chunk."""

    group: GroupRun

    @property
    def job(self) -> JobRun:
        return self.group.job

    @property
    def ready_time(self) -> float:
        return self.group.ready_time


Candidate = "StepRun | Admission"


class Policy:
    """Decides which startable work goes first and how groups are admitted.

    The core enforces every hard rule (atomic masks, slots, precedence, deadlock avoidance); a
    policy only orders candidates, may veto one, and sizes chunks.
    """

    name = "base"
    #: a task holds its devices for its whole duration (no standby sharing)
    merge_task_steps = False
    #: a group may be admitted in several chunks (closed packing)
    splits_batches = False
    #: a live lab: a look-ahead is not run in the dispatch of the event that calls for it (the
    #: twin's way) but asked for (``lookahead_due_at``), run by the service on a copy of the core
    #: outside the lab's lock (``choose_rules``) and applied as a logged ``RulesChosen`` event:
    #: submissions are answered and module results handled while it runs
    defer_lookahead = False

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})

    def forked(self, core: SchedulerCore) -> None:
        """Called on the copy made by ``SchedulerCore.fork`` (ended jobs are left out)."""

    def skip_lookahead(self) -> None:
        """On a copy whose decisions are only checked, not followed (a submission's trial): skip
        what is there only to choose well (look-ahead, optimisation)."""

    def lookahead_due_at(self, core: SchedulerCore) -> float | None:
        """When a deferred look-ahead wants a Tick (None: none is pending)."""
        return None

    def rules_due(self) -> int:
        """How many replanning events a pending deferred look-ahead answers (0: none is pending;
        ``choose_rules`` makes it, ``RulesChosen`` carries the count)."""
        return 0

    def choose_rules(self, core: SchedulerCore) -> tuple[Any, ...]:
        """Look ahead on ``core`` (a copy: nothing live changes) and return the rules to follow
        (empty: keep the current ones)."""
        return ()

    def on_event(self, core: SchedulerCore, event: Any) -> None:
        """Called for every applied event, before the dispatch round."""

    def begin_round(self, core: SchedulerCore) -> None:
        """Called once before each dispatch round (the planner re-plans here)."""

    def admission_groups(self, core: SchedulerCore, groups: list[GroupRun]) -> list[GroupRun]:
        """Groups worth trying to admit this round (all by default)."""
        return groups

    def rank(self, core: SchedulerCore, cand: StepRun | Admission) -> tuple[Any, ...]:
        """Sort key: lower goes first. Default: running jobs first, then arrival order."""
        job = cand.job
        if job.started:
            return (0, cand.ready_time or 0.0, job.order, _seq(cand))
        return (1, 0.0, job.order, _seq(cand))

    def allow(self, core: SchedulerCore, cand: StepRun | Admission) -> bool:
        return True

    def blocked(self, core: SchedulerCore, cand: StepRun | Admission) -> None:
        """Called for each candidate that could not start in this round (in rank order)."""

    def admit_size(self, core: SchedulerCore, adm: Admission, free: int | None) -> int:
        """How many pending samples to admit now (0: not now). ``free`` None = unlimited."""
        pending = len(adm.group.pending)
        return pending if free is None or free >= pending else 0


def _seq(cand: Any) -> int:
    return getattr(cand, "seq", 0)
