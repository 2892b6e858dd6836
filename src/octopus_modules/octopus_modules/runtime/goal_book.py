"""The goals of one module as its clients see them: new, repeated, running, finished. No ROS.

The module node's action server maps onto it one to one (:mod:`octopus_modules.ros.module_node`):
goal callback -> :meth:`GoalBook.accept`, execute callback -> :meth:`GoalBook.run`, cancel
callback -> :meth:`GoalBook.cancel`. Below it,
:class:`~octopus_modules.runtime.module_runtime.ModuleRuntime`
checks, reserves and runs a goal; the book adds what a client that may send a goal twice needs:

- A goal names one step of a task (``step_indices``) or the whole task; the step runs as its own
  runtime task (:mod:`octopus_modules.runtime.step_tasks`).
- A goal id is *known* while its goal runs and, once it succeeded or failed, until
  ``kept`` newer goals have finished. A goal with a known id (a restarted scheduler re-sending
  what it had in flight) is a *repeat*: accepted without touching the runtime, and its run waits
  for the original and returns the original's result. The task runs once.
- A goal that was cancelled or aborted (e-stop) is not kept: its id may be sent again and runs
  anew. A repeat that waited for it ends failed, "the original goal was cancelled".
- A second goal with the id of a goal that is accepted but not yet running is refused by the
  runtime (``goal_id: goal ... is already running``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from octopus_modules.description import ModuleDescription, TaskSpec
from octopus_modules.runtime.goals import GoalRejected
from octopus_modules.runtime.module_runtime import FeedbackCallback, ModuleRuntime
from octopus_modules.runtime.results import TaskResult
from octopus_modules.runtime.step_tasks import runtime_task

#: results of finished goal ids kept to answer a repeated goal (a restarted scheduler reconciling)
FINISHED_KEPT = 1000
ORIGINAL_CANCELLED = "the original goal was cancelled"

#: a goal's parameters, or how to read them once the task is known (the node converts messages)
Parameters = Mapping[str, Any] | Callable[[TaskSpec], Mapping[str, Any]]


def new_goal_id() -> str:
    """An id for a goal sent without one."""
    return f"goal-{time.monotonic_ns()}"


class GoalBook:
    """Goal ids of one module over its runtime: which are pending, running and finished."""

    def __init__(
        self, description: ModuleDescription, runtime: ModuleRuntime, kept: int = FINISHED_KEPT
    ) -> None:
        #: the module as it describes itself (without the per-step tasks the runtime adds)
        self.description = description
        self.runtime = runtime
        self.kept = kept
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # accepted by the runtime, run not called yet
        self._running: dict[str, threading.Event] = {}  # set when the goal has ended
        self._finished: OrderedDict[str, TaskResult] = OrderedDict()  # succeeded or failed

    def known(self, goal_id: str) -> bool:
        """A goal with this id runs now or finished (succeeded or failed) not long ago."""
        with self._lock:
            return goal_id in self._running or goal_id in self._finished

    def finished(self, goal_id: str) -> TaskResult | None:
        """The kept result of a goal that succeeded or failed, else None."""
        with self._lock:
            return self._finished.get(goal_id)

    def accept(
        self,
        goal_id: str,
        task: str,
        params: Parameters,
        slots: Mapping[str, Sequence[int]] | None = None,
        samples: Sequence[str] | None = None,
        step_indices: Sequence[int] = (),
        *,
        planned_start: float | None = None,
    ) -> bool:
        """True: a new goal, checked and reserved; False: a repeat of a known goal.

        Raises :class:`GoalRejected` (naming the field) if the goal cannot run now.
        ``planned_start``: see :meth:`ModuleRuntime.accept`.
        """
        if self.known(goal_id):
            return False
        spec = self.description.task(task)
        if spec is None:
            known = ", ".join(t.name for t in self.description.tasks)
            raise GoalRejected("task", f"unknown task '{task}' (known: {known})")
        runtime_name = runtime_task(self.description, task, step_indices)
        checked = params(spec) if callable(params) else params
        self.runtime.accept(
            goal_id, runtime_name, checked, slots, samples, planned_start=planned_start
        )
        with self._lock:
            self._pending.add(goal_id)
        return True

    def run(self, goal_id: str, on_feedback: FeedbackCallback | None = None) -> TaskResult:
        """Run an accepted goal to its end in the calling thread; a repeat waits for its
        original and gets the original's result."""
        with self._lock:
            original = goal_id in self._pending
            if original:
                self._pending.discard(goal_id)
                self._running[goal_id] = threading.Event()
            running = self._running.get(goal_id)
        if not original:
            if running is not None:
                running.wait()
            stored = self.finished(goal_id)
            if stored is not None:
                return stored
            return TaskResult(
                goal_id, "", success=False, error=ORIGINAL_CANCELLED, outcome="failed"
            )
        try:
            result = self.runtime.run(goal_id, on_feedback)
            if result.outcome in ("succeeded", "failed"):
                with self._lock:
                    self._finished[goal_id] = result
                    while len(self._finished) > self.kept:
                        self._finished.popitem(last=False)
            return result
        finally:
            with self._lock:
                self._running.pop(goal_id).set()

    def cancel(self, goal_id: str) -> bool:
        """Ask the goal with this id to stop (it ends cancelled); False if none is running or
        waiting to run. A finished goal keeps its result."""
        return self.runtime.cancel(goal_id)
