"""``octopus watch``: the lab live in the terminal, from the latched schedule and the job updates.

No polling of services: the view is redrawn from ``<ns>/schedule`` (latched: the current plan at
once), ``<ns>/jobs`` and ``<ns>/emergency_stop``. Times are lab times (a simulated lab's clock
runs at its time scale).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import defaultdict
from typing import Any

from octopus_client.commands.jobs import connect
from octopus_client.commands.text import clock_time, jobs_table
from octopus_modules.ros.ros_conversions import seconds_of

RUNNING = 2  # TaskStep.STATE_RUNNING
PLANNED = (0, 1)  # TaskStep.STATE_PLANNED, STATE_READY
STANDBY = 1  # TaskStep.MODE_STANDBY
NEXT_STEPS = 5
MODULE_STATES = ("ready", "busy", "ERROR", "E-STOPPED")
SILENT_S = 3.0  # a module not heard from for this long is shown as silent
HEARTBEAT_WAIT_S = 5.0  # --once waits at most this long for one beat of every module
SETTLE_S = 1.0  # the graph shows topics one by one: give every module's a chance
STATUS_TYPE = "octopus_interfaces/msg/ModuleStatus"


class LiveState:
    """What the subscriptions delivered last; ``changed`` wakes the redraw loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Event()
        self.first_schedule = threading.Event()
        self.schedule: Any = None
        self.jobs: dict[str, Any] = {}
        self.estop: Any = None
        self.modules: dict[str, tuple[Any, float]] = {}  # name -> (ModuleStatus, monotonic)
        self.lab_modules: set[str] = set()  # every module the scheduler knows (its resources)

    def on_schedule(self, schedule: Any) -> None:
        with self.lock:
            self.schedule = schedule
            self.jobs.update({j.id: j for j in schedule.jobs})
        self.first_schedule.set()
        self.changed.set()

    def on_job(self, job: Any) -> None:
        with self.lock:
            self.jobs[job.id] = job
        self.changed.set()

    def on_module(self, status: Any) -> None:
        with self.lock:
            self.modules[status.module] = (status, time.monotonic())
        self.changed.set()

    def on_resources(self, resources: Any) -> None:
        with self.lock:
            self.lab_modules = {m.module for m in resources.modules}

    def heard_every_module(self, subscribed: set[str]) -> bool:
        """A status from every module the graph showed and every one the scheduler knows."""
        with self.lock:
            heard = set(self.modules)
            return bool(subscribed) and len(heard) >= len(subscribed) and self.lab_modules <= heard

    def on_estop(self, estop: Any) -> None:
        with self.lock:
            self.estop = estop
        self.changed.set()


def _step_line(step: Any, now: float) -> str:
    mode = " (standby)" if step.mode == STANDBY else ""
    start = seconds_of(step.actual_start) or seconds_of(step.planned_start)
    end = seconds_of(step.planned_end)
    sample = f" {step.experiment_id}" if step.experiment_id else ""
    devices = f" on {', '.join(step.devices)}" if step.devices else ""
    when = f"since {clock_time(start, now)}" + (f", ends ~{clock_time(end, now)}" if end else "")
    return f"{step.job_id}{sample} {step.task}/{step.step_name}{mode}{devices}, {when}"


def _module_line(status: Any, age_s: float) -> str:
    if age_s > SILENT_S:
        return f"silent for {age_s:.0f} s (down?)"
    state = MODULE_STATES[status.state] if status.state < len(MODULE_STATES) else "?"
    parts = [state + (f", {status.running_goals} goal(s)" if status.running_goals else "")]
    for code, word in ((1, "busy"), (2, "error"), (3, "disconnected")):
        names = [d.name for d in status.devices if d.state == code]
        if names:
            parts.append(f"{word}: {', '.join(names)}")
    slots = ", ".join(f"{s.slot_type} {s.free}/{s.total} free" for s in status.slots)
    if slots:
        parts.append(slots)
    low = [f"{c.name} {c.stock:g}" for c in status.consumables if c.low]
    if low:
        parts.append(f"LOW: {', '.join(low)}")
    return "; ".join(parts)


def render(state: LiveState, namespace: str, now: float | None = None) -> str:
    """One frame: header, running steps per module, the next planned steps, the job table."""
    with state.lock:
        schedule, jobs, estop = state.schedule, dict(state.jobs), state.estop
        modules = dict(state.modules)
    lab_now = seconds_of(schedule.header.stamp) if schedule is not None else None
    now = lab_now or now or time.time()
    policy = f", policy {schedule.policy}" if schedule is not None and schedule.policy else ""
    lines = [f"OCTOPUS lab {namespace or '/'}: schedule of {clock_time(now, now)}{policy}"]
    if estop is not None and estop.engaged:
        lines.append(f"!! EMERGENCY STOP ENGAGED by {estop.source}: {estop.reason}")
    steps = list(schedule.steps) if schedule is not None else []
    running: dict[str, list[Any]] = defaultdict(list)
    for step in steps:
        if step.state == RUNNING:
            running[step.module].append(step)
    lines += ["", "Running steps"]
    for module in sorted({s.module for s in steps} | set(running)):
        entries = running.get(module) or []
        if not entries:
            lines.append(f"  {module}: idle")
        for i, step in enumerate(entries):
            label = f"{module}:" if i == 0 else ""
            lines.append(f"  {label:<{len(module) + 1}} {_step_line(step, now)}")
    if not steps:
        lines.append("  (nothing scheduled)")
    upcoming = sorted(
        (s for s in steps if s.state in PLANNED and seconds_of(s.planned_start)),
        key=lambda s: seconds_of(s.planned_start) or 0.0,
    )[:NEXT_STEPS]
    if upcoming:
        lines += ["", "Next"]
        for step in upcoming:
            at = clock_time(seconds_of(step.planned_start), now)
            lines.append(f"  ~{at} {step.module}: {step.job_id} {step.task}/{step.step_name}")
    if modules:
        lines += ["", "Modules"]
        width = max(len(name) for name in modules) + 1
        for name, (status, heard) in sorted(modules.items()):
            line = _module_line(status, time.monotonic() - heard)
            lines.append(f"  {name + ':':<{width}} {line}")
    ordered = sorted(jobs.values(), key=lambda j: j.id, reverse=True)
    lines += ["", "Jobs", jobs_table(ordered, now)]
    return "\n".join(lines)


def follow_modules(client: Any, state: LiveState, known: set[str]) -> None:
    """Subscribe to every module's status topic seen on the graph so far (modules may come
    later than the scheduler; their names are not in the schedule when they are idle)."""
    prefix = client.name("modules/")
    for topic, types in client.node.get_topic_names_and_types():
        if topic.startswith(prefix) and topic.endswith("/status") and STATUS_TYPE in types:
            if topic not in known:
                known.add(topic)
                client.subscribe_module_status(topic, state.on_module)


def watch(args: argparse.Namespace) -> int:
    from octopus_client.commands.errors import ClientError

    state = LiveState()
    with connect(args) as client:
        client.subscribe_schedule(state.on_schedule)
        client.subscribe_jobs(state.on_job)
        client.subscribe_estop(state.on_estop)
        client.subscribe_resources(state.on_resources)
        if not state.first_schedule.wait(args.timeout):
            raise ClientError(
                f"no schedule on {client.name('schedule')} within {args.timeout:g} s: "
                "is the lab up? (octopus lab up)"
            )
        subscribed: set[str] = set()
        started = time.monotonic()
        # a moment for the latched e-stop; with --once, also for one beat of every module: every
        # one the scheduler lists, as the graph may show a loaded lab's topics seconds apart
        while time.monotonic() - started < (HEARTBEAT_WAIT_S if args.once else 0.2):
            follow_modules(client, state, subscribed)
            if state.heard_every_module(subscribed) and time.monotonic() - started > SETTLE_S:
                break
            time.sleep(0.05)
        if args.once:
            print(render(state, client.namespace))
            return 0
        tty = sys.stdout.isatty()
        last = ""
        try:
            while True:
                frame = render(state, client.namespace)
                if frame != last:
                    # a terminal: home and clear, then the frame; a pipe: frames one after another
                    sys.stdout.write(("\x1b[H\x1b[2J" if tty else "\n") + frame + "\n")
                    sys.stdout.flush()
                    last = frame
                state.changed.wait(args.interval)
                state.changed.clear()
                follow_modules(client, state, subscribed)
        except KeyboardInterrupt:
            print()
            return 0
