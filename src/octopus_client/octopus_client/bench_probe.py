"""The scheduler node with a stopwatch, for ``octopus bench-live`` (not for labs).

Runs :mod:`octopus_scheduler.ros.scheduler_node` unchanged, with thin wrappers that record, in the
scheduler process:

- each decision's latency: the wall time of one LabService entry (``submit``, ``step_finished``,
  ``step_failed``, ``tick`` that had work): the event stored in SQLite, applied by the core, the
  decisions turned into goals; with the number of live jobs at the time;
- per module goal: when the goal message was built and handed to ``send_goal_async``
  (``sent``), when the module accepted it (``accepted``) and when its result arrived
  (``result``), in ``time.monotonic()`` seconds.

Everything is written as JSON to ``$OCTOPUS_BENCH_PROBE`` every second and at exit.

    OCTOPUS_BENCH_PROBE=probe.json python -m octopus_client.bench_probe --ros-args -p lab_file:=...
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_SAMPLES = 200_000


class Probe:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.decisions: list[tuple[float, float, int, str]] = []  # (at, seconds, live jobs, kind)
        self.sent: dict[str, float] = {}
        self.accepted: dict[str, float] = {}
        self.results: dict[str, float] = {}
        self.expected: dict[str, float] = {}  # lab seconds the step is expected to take
        self.ended: dict[str, str] = {}  # job id -> how it ended
        self.submitted = 0
        self.started = time.monotonic()

    def decision(self, kind: str, seconds: float, live: int) -> None:
        with self.lock:
            if len(self.decisions) < MAX_SAMPLES:
                self.decisions.append((time.monotonic(), seconds, live, kind))

    def mark(self, table: dict[str, float], key: str) -> None:
        with self.lock:
            if len(table) < MAX_SAMPLES:
                table.setdefault(key, time.monotonic())

    def write(self) -> None:
        with self.lock:
            data = {
                "pid": os.getpid(),
                "started": self.started,
                "decisions": list(self.decisions),
                "sent": dict(self.sent),
                "accepted": dict(self.accepted),
                "results": dict(self.results),
                "expected": dict(self.expected),
                "ended": dict(self.ended),
                "submitted": self.submitted,
            }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


def _timed(probe: Probe, kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        result = method(self, *args, **kwargs)
        seconds = time.perf_counter() - t0
        outbox = result[-1] if isinstance(result, tuple) else result
        for ended in getattr(outbox, "ended_jobs", ()):
            probe.ended[ended.job_id] = str(ended.state)
        if kind == "submit" and getattr(result[0], "job_id", ""):
            probe.submitted += 1
        if kind != "tick" or getattr(outbox, "goals", None) or getattr(outbox, "ended_jobs", None):
            probe.decision(kind, seconds, _live_jobs(self))
        return result

    return wrapper


def _live_jobs(service: Any) -> int:
    try:
        return sum(1 for job in service.core.all_jobs() if not job.finished)
    except Exception:  # noqa: BLE001 - a probe never breaks the scheduler
        return -1


def install(probe: Probe) -> None:
    from octopus_scheduler.ros import module_goals
    from octopus_scheduler.service import lab_service

    service = lab_service.LabService
    for kind in ("submit", "step_finished", "step_failed", "tick"):
        setattr(service, kind, _timed(probe, kind, getattr(service, kind)))

    original_message = module_goals.goal_message

    def goal_message(goal: Any, *rest: Any) -> Any:
        message = original_message(goal, *rest)
        probe.mark(probe.sent, goal.step_id)
        probe.expected.setdefault(goal.step_id, float(goal.expected_s))
        return message

    module_goals.goal_message = goal_message
    port = module_goals.ModuleGoals
    answered, done = port._goal_answered, port._goal_done

    def goal_answered(self: Any, goal: Any, future: Any) -> None:
        probe.mark(probe.accepted, goal.step_id)
        answered(self, goal, future)

    def goal_done(self: Any, goal: Any, future: Any) -> None:
        probe.mark(probe.results, goal.step_id)
        done(self, goal, future)

    port._goal_answered, port._goal_done = goal_answered, goal_done


def main() -> None:
    path = Path(os.environ.get("OCTOPUS_BENCH_PROBE", "bench_probe.json"))
    probe = Probe(path)
    install(probe)
    stop = threading.Event()

    def every_second() -> None:
        while not stop.wait(1.0):
            probe.write()

    threading.Thread(target=every_second, daemon=True).start()
    atexit.register(probe.write)
    from octopus_scheduler.ros.scheduler_node import main as scheduler_main

    try:
        scheduler_main()
    finally:
        stop.set()
        probe.write()


if __name__ == "__main__":
    main()
