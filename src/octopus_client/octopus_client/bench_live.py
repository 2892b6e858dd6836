"""``octopus bench-live``: what the live machinery costs, on real nodes over DDS.

A benchmark, not a test: it brings up real processes on this machine only
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a ROS_DOMAIN_ID it claims) and prints, from one run:

1. **overhead** - the floor, a bare rclpy action round trip (a trivial ExecuteTask server in
   its own process answering at once, the same default action QoS and MultiThreadedExecutor as
   a module node; the client sends the next goal from the previous result's callback), beside
   the cost of one device action through our stack: a scheduler and one module node whose only
   task is one zero-duration action, one job of N one-sample experiments on a slot of capacity
   1, so every action is one scheduler decision -> module goal -> simulated device -> result ->
   SQLite -> next decision. The interval between consecutive results at the scheduler is that
   cycle; p50/p95/p99 and their ratio to the floor, split into the scheduler's part (result in
   -> next goal handed to DDS) and the DDS + module part.
2. **twin** - the live day = the twin day: the scenario's lab as module descriptions whose
   simulated devices take the scenario's own durations (:mod:`octopus_client.twin_lab`), the
   scenario's jobs at their times, beside ``octopus simulate`` of the same scenario and policy,
   per job, at each time scale.
3. **scale** - 5 -> 20 -> 50 simulated modules (``--nodes-per-process`` module nodes per process,
   one executor) and a generated day of 1,000 jobs from 20 users: jobs/hour completed, the
   scheduler's CPU and RSS, decision latency (p50/p99, and p99 while >= 1,000 jobs are live),
   DDS discovery time; each run bounded by ``--scale-wall`` seconds.

4. **memory** - what the scheduler keeps per ended job: the scale day's jobs through a
   LabService in-process (no ROS), at most ``--memory-live`` live at once, each run to its end;
   the Python heap the lab holds (tracemalloc, after a garbage collection) as jobs end. Flat
   means nothing is kept per ended job; the store keeps the history.

Results print as tables and are saved as JSON and a PNG under ``--out`` (default
``out/bench_live``).

    octopus bench-live                         # everything (about 15 minutes)
    octopus bench-live --only overhead --actions 2000
    octopus bench-live --quick                 # tiny sizes, seconds: the smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECTIONS = ("overhead", "twin", "scale", "depth", "memory")
ENDED = (3, 4, 5)  # Job.STATE_SUCCEEDED, FAILED, CANCELLED


# ---- small helpers ---------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (a plain line per update when not a terminal)."""

    def __init__(self, label: str, total: float, stream: Any = None) -> None:
        self.label, self.total = label, max(total, 1e-9)
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.last = -1.0
        self.t0 = time.monotonic()

    def update(self, done: float, note: str = "") -> None:
        fraction = min(1.0, done / self.total)
        if not self.tty and fraction - self.last < 0.1 and fraction < 1.0:
            return
        self.last = fraction
        bar = "#" * int(fraction * 30)
        line = (
            f"  {self.label:<24} [{bar:<30}] {fraction * 100:5.1f}% "
            f"{time.monotonic() - self.t0:6.1f} s {note}"
        )
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    if not values:
        return {f"p{p}": float("nan") for p in points} | {"n": 0}
    ordered = sorted(values)
    out: dict[str, float] = {}
    for p in points:
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        out[f"p{p}"] = ordered[index]
    out["mean"] = statistics.fmean(ordered)
    out["n"] = len(ordered)
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def claim_domain_id() -> int:
    """A ROS domain id no other session holds (the test plugin's lock files)."""
    try:
        from octopus_testing.domain import claim_domain_id as claim

        return claim()
    except ImportError:  # pragma: no cover - the workspace always has octopus_testing
        return 100 + os.getpid() % 100


def _environment(domain_id: int) -> None:
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


@dataclass
class Lab:
    """Nodes of one bench lab under a supervisor; the scheduler runs with the probe."""

    out: Path
    lab_file: Path
    module_groups: list[list[Any]] = field(default_factory=list)  # NodeSpecs per process
    supervisor: Any = None
    scheduler_pid: int = 0
    probe_file: Path | None = None
    started: float = 0.0

    def start(self) -> None:
        from octopus_bringup.nodes import node_specs
        from octopus_client.supervisor import Supervisor, python_module_argv
        from octopus_scheduler.service.lab_config import load_lab_config

        specs = node_specs(load_lab_config(self.lab_file))
        scheduler, modules = specs[0], specs[1:]
        self.probe_file = self.out / "probe.json"
        if self.probe_file.exists():
            self.probe_file.unlink()
        env = dict(os.environ, OCTOPUS_BENCH_PROBE=str(self.probe_file))
        log = (self.out / "nodes.log").open("w")
        self._log = log
        self.supervisor = Supervisor(
            printer=lambda line: (log.write(line + "\n"), log.flush()), env=env, max_restarts=0
        )
        self.supervisor.add(
            "scheduler", python_module_argv("octopus_client.bench_probe", scheduler.ros_arguments())
        )
        per = max(1, self.nodes_per_process)
        if per == 1:
            for spec in modules:
                self.supervisor.add(
                    spec.name, python_module_argv(spec.module, spec.ros_arguments())
                )
        else:
            for index in range(0, len(modules), per):
                group = modules[index : index + per]
                path = self.out / f"host{index // per}.json"
                path.write_text(
                    json.dumps(
                        {
                            "nodes": [
                                {
                                    "name": s.name,
                                    "namespace": s.namespace,
                                    "parameters": dict(s.parameters),
                                }
                                for s in group
                            ],
                        }
                    )
                )
                self.supervisor.add(
                    f"host{index // per}",
                    python_module_argv("octopus_client.module_host", [str(path)]),
                )
        self.module_names = [s.name for s in modules]
        self.started = time.monotonic()
        self.supervisor.start()
        self.scheduler_pid = self.supervisor.children[0].process.pid
        self._watcher = threading.Thread(target=self.supervisor.watch, daemon=True)
        self._watcher.start()

    nodes_per_process: int = 1

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
            self._watcher.join(timeout=10)
            self._log.close()

    def probe(self) -> dict[str, Any]:
        try:
            return json.loads(self.probe_file.read_text()) if self.probe_file else {}
        except (OSError, ValueError):
            return {}

    def fresh_probe(self, after: float, timeout_s: float = 5.0) -> dict[str, Any]:
        """The probe file written after ``after`` (monotonic): the scheduler writes it each s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.probe_file and self.probe_file.stat().st_mtime >= time.time() - (
                    time.monotonic() - after
                ):
                    return self.probe()
            except OSError:
                pass
            time.sleep(0.2)
        return self.probe()


def _wait_for_scheduler(client: Any, timeout_s: float = 60.0) -> None:
    from octopus_client.client import ClientError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.list_jobs()
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise


# ---- 1. the floor and our overhead ---------------------------------------------------------


def floor_server(result_timeout: float | None = None) -> int:
    """A trivial ExecuteTask server: succeeds at once (run as its own process). It keeps
    results rclpy's default time, or ``result_timeout`` s."""
    import rclpy
    from rclpy.action import ActionServer
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from octopus_interfaces.action import ExecuteTask

    rclpy.init()
    node = rclpy.create_node("bench_floor_server")

    def execute(handle: Any) -> Any:
        handle.succeed()
        return ExecuteTask.Result(success=True)

    kept = {} if result_timeout is None else {"result_timeout": result_timeout}
    ActionServer(
        node, ExecuteTask, "bench_floor", execute_callback=execute,
        callback_group=ReentrantCallbackGroup(), **kept,
    )  # fmt: skip
    executor = MultiThreadedExecutor(num_threads=8)  # as run_node gives a module node
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


def measure_floor(count: int, warmup: int = 50, result_timeout: float | None = None) -> list[float]:
    """Round trips (goal -> accepted -> result) to a bare server, one after the other; the
    server keeps results rclpy's default time (900 s in Jazzy), or ``result_timeout`` s. Every
    kept goal is in each status message: with 900 s the round trip grows over the run."""
    import subprocess

    import rclpy
    from rclpy.action import ActionClient
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from octopus_interfaces.action import ExecuteTask

    kept = [] if result_timeout is None else ["--floor-result-timeout", str(result_timeout)]
    server = subprocess.Popen(
        [sys.executable, "-m", "octopus_client.bench_live", "--floor-server", *kept],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_floor_client", context=context)
    # as the scheduler: the action client in a mutually exclusive group, every send made from a
    # callback of that group (rclpy's ActionClient drops an answer that comes before it has
    # registered its request)
    group = MutuallyExclusiveCallbackGroup()
    client = ActionClient(node, ExecuteTask, "bench_floor", callback_group=group)
    executor = MultiThreadedExecutor(num_threads=8, context=context)  # as the scheduler's
    executor.add_node(node)
    times: list[float] = []
    done = threading.Event()
    label = "floor (bare rclpy)" if result_timeout is None else f"floor ({result_timeout:g} s)"
    progress = Progress(label, count + warmup)
    t0 = [0.0]

    def send() -> None:
        t0[0] = time.perf_counter()
        client.send_goal_async(ExecuteTask.Goal(task="noop")).add_done_callback(accepted)

    def accepted(future: Any) -> None:
        future.result().get_result_async().add_done_callback(finished)

    def finished(_future: Any) -> None:
        times.append(time.perf_counter() - t0[0])
        if len(times) % 100 == 0:
            progress.update(len(times))
        if len(times) >= count + warmup:
            done.set()
        else:
            send()

    start = node.create_guard_condition(send, callback_group=group)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        if not client.wait_for_server(timeout_sec=30.0):
            raise RuntimeError("the floor server did not appear")
        start.trigger()
        if not done.wait(timeout=120.0):
            raise RuntimeError(f"the floor stalled after {len(times)} round trips")
        progress.update(len(times))
    finally:
        progress.close()
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
    return times[warmup:]


BENCH_SCENARIO = {
    "name": "bench-zero",
    "lab": {
        "modules": {
            "Bench": {
                "devices": ["Bench_Device"],
                "slots": {"pos": 1},
                "tasks": {"Touch": {"per": "sample", "mask": ["Bench_Device"], "duration": 0}},
            }
        }
    },
    "jobs": [
        {
            "id": "0",
            "script": {
                "metadata": {"name": "bench", "owner": "bench"},
                "campaign": {"kind": "manual", "experiments": [{}]},
                "process": {"Synthesis": {"Bench": {"sequence": ["Touch"]}}},
            },
        }
    ],
}


def bench_job(actions: int) -> str:
    return yaml.safe_dump(
        {
            "metadata": {"name": "bench", "owner": "bench"},
            "campaign": {"kind": "manual", "experiments": [{} for _ in range(actions)]},
            "process": {"Synthesis": {"Bench": {"sequence": ["Touch"]}}},
        }
    )


def measure_overhead(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Jobs of ``--job-size`` one-step experiments, one job after the other, until ``--actions``
    actions ran; the cycle is measured between consecutive results of one job."""
    from octopus_client.client import OctopusClient
    from octopus_client.twin_lab import write_twin_lab
    from octopus_scheduler.twin.scenario import parse_scenario

    scenario = parse_scenario(BENCH_SCENARIO, "bench-zero")
    folder = out / "overhead"
    lab_file = write_twin_lab(scenario, folder, time_scale=1.0, policy=args.policy)
    lab = Lab(folder, lab_file)
    lab.start()
    size = max(2, args.job_size)
    jobs = 1 + -(-args.actions // (size - 1))  # the first job warms up
    states = []
    try:
        with OctopusClient(timeout_s=10.0, user="bench") as client:
            _wait_for_scheduler(client)
            progress = Progress("our stack (1 module)", jobs)
            for index in range(jobs):
                submission = client.submit(bench_job(size))
                if not submission.accepted:
                    raise RuntimeError(f"bench job rejected: {submission.summary}")
                deadline = time.monotonic() + 60.0 + size
                while time.monotonic() < deadline:
                    job = client.get_job(submission.job_id).job
                    if job.state in ENDED:
                        break
                    time.sleep(0.2)
                states.append(int(job.state))
                progress.update(index + 1)
            progress.close()
        probe = lab.fresh_probe(time.monotonic())
    finally:
        lab.stop()
    results = sorted(probe.get("results", {}).items(), key=lambda kv: kv[1])
    sent, accepted = probe.get("sent", {}), probe.get("accepted", {})
    cycle, scheduler_part, wire_part, accept_part = [], [], [], []
    for (before, previous), (step, now) in zip(results, results[1:], strict=False):
        if step.split("/")[0] != before.split("/")[0] or step.startswith("J0001/"):
            continue  # the first action of a job follows its submission; job 1 warms up
        cycle.append(now - previous)
        if step in sent:
            scheduler_part.append(sent[step] - previous)
            wire_part.append(now - sent[step])
            if step in accepted:
                accept_part.append(accepted[step] - sent[step])
    decisions = [d[1] for d in probe.get("decisions", []) if d[3] == "step_finished"]
    return {
        "actions": len(cycle),
        "jobs": jobs,
        "job_size": size,
        "jobs_succeeded": sum(s == 3 for s in states),
        "steps_in_sqlite": _recorded_steps(folder / "twin.sqlite"),
        "cycle_s": percentiles(cycle),
        "scheduler_s": percentiles(scheduler_part),
        "decision_s": percentiles(decisions),
        "dds_and_module_s": percentiles(wire_part),
        "goal_accept_s": percentiles(accept_part),
        "policy": args.policy,
    }


def _recorded_steps(database: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(database) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM steps WHERE ended_at IS NOT NULL").fetchone()[0]
            )
    except sqlite3.Error:
        return -1


class Submitter:
    """Sends SubmitJob goals without waiting for anything (users who submit and go on): a node
    of its own, spun by its own threads, so the bench never waits on its CLI client's lock
    while the scheduler's feedback to many followed jobs comes in."""

    def __init__(self, namespace: str = "/octopus") -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        from octopus_client.client import submit_job_client

        self.context = Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f"bench_submitter_{os.getpid()}", context=self.context)
        self.action = submit_job_client(self.node, f"{namespace}/submit_job")
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.sent = 0

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.action.server_is_ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the scheduler's submit_job action did not appear")
            time.sleep(0.01)

    def warm_up(self, timeout_s: float = 30.0) -> None:
        """One submission that the scheduler rejects (an empty script: no job), answered to its
        result: the first request between two processes waits for DDS to match their endpoints
        (0.2 s, 85 lab s at 400x), and that is no part of the day being measured."""
        from octopus_interfaces.action import SubmitJob

        done = threading.Event()

        def answered(future: Any) -> None:
            future.result().get_result_async().add_done_callback(lambda _: done.set())

        self.action.send_goal_async(SubmitJob.Goal(script="", user="bench")).add_done_callback(
            answered
        )
        if not done.wait(timeout_s):
            raise RuntimeError("the scheduler did not answer a submission")

    def send(self, script: str, user: str) -> None:
        from octopus_interfaces.action import SubmitJob

        self.action.send_goal_async(SubmitJob.Goal(script=script, user=user))
        self.sent += 1

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


# ---- 2. the live day beside the twin day ---------------------------------------------------


def run_twin(args: argparse.Namespace, out: Path, scale: float) -> dict[str, Any]:
    from octopus_client.client import OctopusClient
    from octopus_client.twin_lab import (
        nominal_seconds,
        scenario_day,
        with_step_overhead,
        write_twin_lab,
    )
    from octopus_modules.ros.ros_conversions import seconds_of
    from octopus_scheduler.twin.scenario import load_scenario
    from octopus_scheduler.twin.simulator import simulate

    scenario = load_scenario(args.scenario)
    day = scenario_day(scenario)
    if args.pick:
        wanted = {int(i) for i in args.pick.split(",")}
        day = type(day)(day.name, tuple(j for j in day.jobs if j.index in wanted), day.published)
        scenario = _pick_jobs(scenario, {str(i) for i in wanted})
    twin = simulate(
        scenario, args.twin_policy, policy_options=scenario.policy_options.get(args.twin_policy)
    ).to_dict()
    folder = out / f"twin_{scale:g}"
    # a 2 s heartbeat (down after 4 s): on a busy 2-core machine a 1 s heartbeat was missed
    # once in a live day, and the steps of that module failed
    lab_file = write_twin_lab(
        scenario, folder, time_scale=scale, policy=args.twin_policy, heartbeat_period=2.0
    )
    lab = Lab(folder, lab_file)
    lab.start()
    try:
        with OctopusClient(timeout_s=10.0) as client:
            _wait_for_scheduler(client)
            submitter = Submitter()
            submitter.wait_ready()
            submitter.warm_up()
            time.sleep(2.0)  # every module's heartbeat heard
            span = (day.jobs[-1].offset_s if day.jobs else 0.0) / scale
            progress = Progress(f"twin day at {scale:g}x", span + twin["makespan"] / scale)
            started = time.monotonic()
            for job in day.jobs:  # sent at their times, not waiting for the answers
                delay = started + job.offset_s / scale - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                submitter.send(job.script, job.user)
                progress.update(time.monotonic() - started)
            names = [yaml.safe_load(job.script)["metadata"]["name"] for job in day.jobs]
            deadline = time.monotonic() + args.timeout
            while len(lab.probe().get("ended", {})) < len(names):  # not the services: they plan
                progress.update(time.monotonic() - started)
                if time.monotonic() > deadline:
                    raise RuntimeError("the live day did not end in time")
                time.sleep(0.25)
            jobs = {j.name: j for j in client.list_jobs()}
            mine = [jobs[n] for n in names]
            submitter.close()
            progress.close()
            wall = time.monotonic() - started
        probe = lab.fresh_probe(time.monotonic())
    finally:
        lab.stop()
    # the day starts where most jobs say (the first submission may wait for discovery)
    first = statistics.median(
        seconds_of(view.submitted) - job.offset_s for job, view in zip(day.jobs, mine, strict=True)
    )
    live_jobs = []
    for job, view in zip(day.jobs, mine, strict=True):
        submitted, begun, ended = (
            seconds_of(view.submitted), seconds_of(view.started), seconds_of(view.finished)
        )  # fmt: skip
        live_jobs.append(
            {
                "job_id": str(job.index),
                "state": int(view.state),
                "submit": submitted - first,
                "waiting": (begun or ended) - submitted,
                "turnaround": ended - (begun or ended),
                "total": ended - submitted,
                "end": ended - first,
                "submit_late": submitted - first - job.offset_s,
            }
        )
    live = {
        "jobs": live_jobs,
        "sums": {k: sum(j[k] for j in live_jobs) for k in ("waiting", "turnaround", "total")},
        "makespan": max(j["end"] for j in live_jobs),
        "wall_s": wall,
    }
    results = sorted(probe.get("results", {}).values())
    sent = probe.get("sent", {})
    decisions = [d[1] for d in probe.get("decisions", [])]
    # lab seconds a step took beyond its model duration (steps whose duration is fixed)
    over = []
    for step, at in probe.get("results", {}).items():
        task_step = step.split("/")[-1].split("#")[0].split(".")[1:]
        nominal = nominal_seconds(scenario.lab, *task_step) if len(task_step) == 2 else None
        if nominal is not None and step in sent:
            over.append((at - sent[step]) * scale - nominal)
    step_over = percentiles(over)
    explained = simulate(
        with_step_overhead(scenario, step_over["mean"]) if over else scenario,
        args.twin_policy,
        policy_options=scenario.policy_options.get(args.twin_policy),
    ).to_dict()
    log = (folder / "nodes.log").read_text(errors="replace")
    return {
        "scale": scale,
        "modules_went_down": log.count("went down: no heartbeat"),
        "jobs_not_succeeded": [j["job_id"] for j in live_jobs if j["state"] != 3],
        "step_over_lab_s": step_over,
        "twin_plus_overhead": {k: explained[k] for k in ("sums", "makespan")},
        "policy": args.twin_policy,
        "twin": {k: twin[k] for k in ("jobs", "sums", "makespan")},
        "live": live,
        "steps": len(results),
        "decision_s": percentiles(decisions),
        "decision_wall_s_total": sum(decisions),
    }


def _pick_jobs(scenario: Any, ids: set[str]) -> Any:
    import dataclasses

    source = dict(scenario.source)
    source["jobs"] = [j for j in source.get("jobs", []) if str(j.get("id")) in ids]
    return dataclasses.replace(
        scenario,
        jobs=tuple(j for j in scenario.jobs if j.job_id in ids),
        source=source,
    )


# ---- 3. scale ------------------------------------------------------------------------------


def scale_scenario(modules: int, jobs: int, users: int, seed: int) -> Any:
    """A generated lab of ``modules`` modules and ``jobs`` jobs from ``users`` users arriving
    over one lab day (24 h), without Bayesian jobs (their proposals would need real data)."""
    from octopus_scheduler.twin.generator import random_scenario_data
    from octopus_scheduler.twin.scenario import parse_scenario

    data = random_scenario_data(seed, jobs=jobs, modules=modules, load=1.0, bo_share=0.0)
    last = max((j["submit"] for j in data["jobs"]), default=0.0) or 1.0
    for index, job in enumerate(data["jobs"]):
        job["submit"] = round(job["submit"] * 86_400.0 / last, 1)
        job["script"]["metadata"]["owner"] = f"user{index % users}"
        job["script"]["metadata"]["retries"] = 0
    data["noise"] = {"sigma": 0.0, "seed": seed}
    data["failures"] = {"probability": 0.0, "seed": seed}
    return parse_scenario(data, f"scale-{modules}")


def run_scale(args: argparse.Namespace, out: Path, modules: int) -> dict[str, Any]:
    import psutil

    from octopus_client.client import OctopusClient
    from octopus_client.twin_lab import scenario_day, write_twin_lab

    scenario = scale_scenario(modules, args.scale_jobs, args.scale_users, args.seed)
    day = scenario_day(scenario)
    folder = out / f"scale_{modules}"
    lab_file = write_twin_lab(
        scenario, folder, time_scale=args.scale_time_scale, policy=args.policy
    )
    lab = Lab(folder, lab_file, nodes_per_process=args.nodes_per_process)
    lab.start()
    samples: list[tuple[float, float, float, int]] = []  # (wall s, cpu %, rss MB, live jobs)
    discovery = float("nan")
    try:
        with OctopusClient(timeout_s=20.0) as client:
            expected = set(lab.module_names)
            while time.monotonic() - lab.started < 120.0:
                names = {n for n, _ns in client.node.get_node_names_and_namespaces()}
                if expected <= names and "scheduler" in names:
                    discovery = time.monotonic() - lab.started
                    break
                time.sleep(0.05)
            _wait_for_scheduler(client)
            submitter = Submitter()
            submitter.wait_ready()
            time.sleep(max(0.0, 2 * 1.0 - (time.monotonic() - lab.started)))  # heartbeats heard
            scheduler = psutil.Process(lab.scheduler_pid)
            scheduler.cpu_percent(None)
            scale = args.scale_time_scale
            started = time.monotonic()
            budget = args.scale_wall
            progress = Progress(f"{modules} modules", budget)
            next_job, next_sample = 0, started
            ended = 0
            while True:
                now = time.monotonic()
                while (
                    next_job < len(day.jobs)
                    and day.jobs[next_job].offset_s / scale <= now - started
                ):
                    job = day.jobs[next_job]
                    submitter.send(job.script, job.user)
                    next_job += 1
                if now >= next_sample:
                    next_sample += 1.0
                    probe = lab.probe()  # never the scheduler's services: they plan every job
                    decisions = probe.get("decisions") or [[0, 0, 0]]
                    samples.append(
                        (
                            now - started,
                            scheduler.cpu_percent(None),
                            scheduler.memory_info().rss / 2**20,
                            decisions[-1][2],
                        )
                    )
                    ended = len(probe.get("ended", {}))
                    progress.update(now - started, f"{next_job} submitted, {ended} ended")
                    if next_job == len(day.jobs) and ended >= len(day.jobs):
                        break
                if now - started > budget:
                    break
                time.sleep(0.02)
            progress.close()
            wall = time.monotonic() - started
            submitter.close()
        probe = lab.fresh_probe(time.monotonic())
    finally:
        lab.stop()
    outcomes = list(probe.get("ended", {}).values())
    ended = len(outcomes)
    succeeded = sum(o == "succeeded" for o in outcomes)
    decisions = probe.get("decisions", [])
    steps = [d for d in decisions if d[3] != "submit"]  # a step ended (or a back-off did)
    latencies = [d[1] for d in steps]
    deep = [d[1] for d in steps if d[2] >= args.deep_queue]
    submits = [d[1] for d in decisions if d[3] == "submit"]
    busy = [s for s in samples if s[0] >= 2.0]  # after the first second's warm-up
    rss = [s[2] for s in busy]
    lab_hours = wall * args.scale_time_scale / 3600.0
    return {
        "modules": modules,
        "processes": -(-modules // max(1, args.nodes_per_process)),
        "jobs_submitted": next_job,
        "jobs_accepted": probe.get("submitted", 0),
        "jobs_ended": ended,
        "jobs_succeeded": succeeded,
        "jobs_failed": sum(o == "failed" for o in outcomes),
        "wall_s": wall,
        "lab_hours": lab_hours,
        "jobs_per_lab_hour": succeeded / lab_hours if lab_hours else float("nan"),
        "steps": len(probe.get("results", {})),
        "steps_per_wall_s": len(probe.get("results", {})) / wall if wall else float("nan"),
        "scheduler_cpu_pct": statistics.fmean(s[1] for s in busy) if busy else float("nan"),
        "scheduler_cpu_pct_max": max((s[1] for s in busy), default=float("nan")),
        "rss_mb_start": rss[0] if rss else float("nan"),
        "rss_mb_mid": rss[len(rss) // 2] if rss else float("nan"),
        "rss_mb_end": rss[-1] if rss else float("nan"),
        "max_live_jobs": max((d[2] for d in decisions), default=0),
        "decision_s": percentiles(latencies),
        "decision_deep_s": percentiles(deep),
        "submit_s": percentiles(submits),
        "discovery_s": discovery,
        "samples": samples,
    }


def in_process_lab(scenario: Any, policy: str, folder: Path, clock: Any) -> Any:
    """A LabService (SQLite in ``folder``) on ``scenario``'s lab as module descriptions."""
    from octopus_client.twin_lab import module_description
    from octopus_modules.description import parse_description
    from octopus_scheduler.service.lab_service import LabService
    from octopus_scheduler.service.store import Store

    descriptions = [
        parse_description(module_description(scenario.lab, m))
        for m in scenario.lab.modules.values()
    ]
    return LabService(
        descriptions,
        Store(str(folder / "lab.sqlite")),
        policy=policy,
        masks={k: sorted(v) for k, v in scenario.lab.extra_masks.items()},
        clock=clock,
    )


def measure_depth(args: argparse.Namespace, modules: int) -> dict[str, Any]:
    """The scheduler's own costs with the whole day queued, without ROS and without a busy
    machine's starvation: every job of the scale day submitted to a LabService (SQLite in a
    temporary folder), then steps finished one by one as modules would report them. Times a
    decision (step_finished: SQLite + core + goals), a submission, and what the node does every
    0.5 s while anything changes (plan() and summaries() for the schedule topic)."""
    import tempfile

    from octopus_client.twin_lab import scenario_scripts

    scenario = scale_scenario(modules, args.scale_jobs, args.scale_users, args.seed)
    now = [0.0]
    with tempfile.TemporaryDirectory() as folder:
        service = in_process_lab(scenario, args.policy, Path(folder), lambda: now[0])
        running: dict[str, float] = {}
        submits = []
        plans: dict[int, float] = {}  # live jobs -> seconds of one plan() (the schedule topic)
        progress = Progress(f"depth, {modules} modules", len(scenario.jobs) + args.depth_steps)
        for index, (_id, _at, script) in enumerate(scenario_scripts(scenario)):
            t0 = time.perf_counter()
            text = yaml.safe_dump(dict(script), sort_keys=False)
            submission, outbox = service.submit(text, "bench")
            submits.append(time.perf_counter() - t0)
            for goal in outbox.goals:
                running[goal.step_id] = now[0] + goal.expected_s
            progress.update(index + 1)
            if index + 1 in args.plan_at:
                t0 = time.perf_counter()
                service.plan()
                plans[index + 1] = time.perf_counter() - t0
        live = sum(1 for j in service.core.all_jobs() if not j.finished)
        decisions = []
        for index in range(args.depth_steps):
            if not running:
                break
            step_id = min(running, key=running.get)
            now[0] = max(now[0], running.pop(step_id))
            t0 = time.perf_counter()
            outbox = service.step_finished(step_id, {})
            decisions.append(time.perf_counter() - t0)
            for goal in outbox.goals:
                running[goal.step_id] = now[0] + goal.expected_s
            progress.update(len(scenario.jobs) + index + 1)
        progress.close()
    return {
        "modules": modules,
        "live_jobs": live,
        "decision_s": percentiles(decisions),
        "submit_s": percentiles(submits),
        "plan_s": plans,
    }


def measure_memory(args: argparse.Namespace, modules: int) -> dict[str, Any]:
    """The heap the scheduler holds as the day's jobs end (see the module's docstring, 4.)."""
    import gc
    import tempfile
    import tracemalloc

    from octopus_client.twin_lab import scenario_scripts

    scenario = scale_scenario(modules, args.memory_jobs, args.scale_users, args.seed)
    scripts = [
        yaml.safe_dump(dict(script), sort_keys=False)
        for _id, _at, script in scenario_scripts(scenario)
    ]
    every = max(1, len(scripts) // 6)
    now = [0.0]
    samples: list[dict[str, float]] = []
    progress = Progress(f"memory, {modules} modules", len(scripts))
    with tempfile.TemporaryDirectory() as folder:
        service = in_process_lab(scenario, args.policy, Path(folder), lambda: now[0])
        tracemalloc.start()  # after the imports and the empty lab: what the jobs leave
        try:
            running: dict[str, float] = {}
            submitted = ended = 0
            while True:
                live = submitted - ended
                while submitted < len(scripts) and live < args.memory_live:
                    _submission, outbox = service.submit(scripts[submitted], "bench")
                    submitted, live = submitted + 1, live + 1
                    running.update((g.step_id, now[0] + g.expected_s) for g in outbox.goals)
                if not running:
                    break
                step_id = min(running, key=running.__getitem__)
                now[0] = max(now[0], running.pop(step_id))
                outbox = service.step_finished(step_id, {})
                running.update((g.step_id, now[0] + g.expected_s) for g in outbox.goals)
                ended += len(outbox.ended_jobs)
                if outbox.ended_jobs and (ended % every == 0 or ended == len(scripts)):
                    gc.collect()
                    samples.append(
                        {
                            "ended": ended,
                            "live": submitted - ended,
                            "heap_mb": tracemalloc.get_traced_memory()[0] / 1e6,
                            "events_in_memory": len(service.core.event_log),
                        }
                    )
                    progress.update(ended)
        finally:
            tracemalloc.stop()
            progress.close()
    # while the lab is as full as at the first sample: the drain at the end frees live jobs
    full = [s for s in samples if s["live"] == samples[0]["live"]]
    first, last = samples[0], (full if len(full) > 1 else samples)[-1]
    grown = (last["heap_mb"] - first["heap_mb"]) * 1000
    return {
        "modules": modules,
        "jobs": len(scripts),
        "max_live": args.memory_live,
        "samples": samples,
        "kb_per_ended_job": grown / max(1, last["ended"] - first["ended"]),
    }


def print_memory(run: dict[str, Any]) -> str:
    rows = [
        [s["ended"], s["live"], f"{s['heap_mb']:.1f}", s["events_in_memory"]]
        for s in run["samples"]
    ]
    body = table(["jobs ended", "live", "heap MB", "events in memory"], rows)
    return body + f"\n{run['kb_per_ended_job']:.1f} KB kept per ended job (flat would be 0)."


def print_depth(runs: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            r["modules"],
            r["live_jobs"],
            _ms(r["decision_s"], "p50"),
            _ms(r["decision_s"], "p99"),
            r["decision_s"]["n"],
            _ms(r["submit_s"], "p50"),
            _ms(r["submit_s"], "p99"),
            ", ".join(f"{n}: {t:.2f}" for n, t in r["plan_s"].items()),
        ]
        for r in runs
    ]
    headers = [
        "modules", "live jobs", "decision p50 ms", "p99 ms", "n", "submit p50 ms", "p99 ms",
        "plan() s at n jobs",
    ]  # fmt: skip
    return table(headers, rows)


# ---- output --------------------------------------------------------------------------------


def _ms(stats: dict[str, float], key: str) -> float:
    return stats.get(key, float("nan")) * 1000.0


P = ("p50", "p95", "p99")


def print_overhead(
    floor: dict[str, float], ours: dict[str, Any], floor_kept: dict[str, float], kept_s: float
) -> str:
    """``floor``: the bare round trip as rclpy has it; ``floor_kept``: its server keeps results
    ``kept_s``, as a module node does (``result_timeout``)."""

    def row(label: str, stats: dict[str, float], n: Any = "", ratios: bool = True) -> list[Any]:
        against = [stats["p50"] / f["p50"] if ratios else "" for f in (floor, floor_kept)]
        return [label, *(_ms(stats, k) for k in P), *against, n]

    cycle, wire = ours["cycle_s"], ours["dds_and_module_s"]
    kept = f"bare round trip, results kept {kept_s:g} s as a module's"
    rows = [
        row("bare rclpy action round trip (floor)", floor, floor.get("n")),
        row(kept, floor_kept, floor_kept.get("n")),
        row("one device action through our stack", cycle, cycle["n"]),
        row("  of it: scheduler (result in -> next goal out)", ours["scheduler_s"], ratios=False),
        row("    of that: decision + SQLite", ours["decision_s"], ratios=False),
        row("  of it: DDS + module (goal out -> result in)", wire),
    ]
    head = ["per action", "p50 ms", "p95 ms", "p99 ms", "x floor (p50)", "x kept floor", "n"]
    return table(head, rows)


def print_twin(run: dict[str, Any]) -> str:
    keys = ("waiting", "turnaround", "total")
    twin = {j["job_id"]: j for j in run["twin"]["jobs"]}
    rows = []
    for job in run["live"]["jobs"]:
        t = twin.get(job["job_id"], {})
        hours = [t.get(k, float("nan")) / 3600 for k in keys] + [job[k] / 3600 for k in keys]
        rows.append([job["job_id"], *hours, job["submit_late"]])
    ts, ls = run["twin"]["sums"], run["live"]["sums"]
    rows.append(["sum", *(ts[k] / 3600 for k in keys), *(ls[k] / 3600 for k in keys), ""])
    t_span, l_span = run["twin"]["makespan"], run["live"]["makespan"]
    rows.append(["makespan", "", "", t_span / 3600, "", "", l_span / 3600, ""])
    headers = ["job", "twin wait h", "turn h", "total h", "live wait h", "turn h", "total h"]
    over, plus = run["step_over_lab_s"], run["twin_plus_overhead"]
    summary = (
        f"\n{run['scale']:g}x, policy {run['policy']}: live Σ total {ls['total'] / 3600:.2f} h "
        f"vs twin {ts['total'] / 3600:.2f} h ({_pct(ls['total'], ts['total'])}), makespan "
        f"{l_span / 3600:.2f} h vs {t_span / 3600:.2f} h ({_pct(l_span, t_span)}); wall "
        f"{run['live']['wall_s']:.0f} s, {run['steps']} steps; not succeeded: "
        f"{', '.join(run.get('jobs_not_succeeded', [])) or 'none'}; modules marked down: "
        f"{run.get('modules_went_down', 0)}.\n"
        f"A step (goal out -> result in) lasted its model duration + {over['mean']:.1f} lab s "
        f"on average (p50 {over['p50']:.1f}, p95 {over['p95']:.1f}; "
        f"{over['mean'] / run['scale'] * 1000:.1f} ms of wall); decisions p50 "
        f"{_ms(run['decision_s'], 'p50'):.1f} ms = {run['decision_s']['p50'] * run['scale']:.1f} "
        f"lab s.\nThe twin with every step {over['mean']:.1f} lab s longer: Σ total "
        f"{plus['sums']['total'] / 3600:.2f} h, makespan {plus['makespan'] / 3600:.2f} h."
    )
    return table([*headers, "submit late s"], rows) + summary


def _pct(a: float, b: float) -> str:
    return f"{(a - b) / b * 100:+.2f} %" if b else "-"


def print_scale(runs: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        rss = f"{r['rss_mb_start']:.0f}/{r['rss_mb_mid']:.0f}/{r['rss_mb_end']:.0f}"
        rows.append(
            [
                r["modules"],
                r["processes"],
                f"{r['jobs_submitted']}/{r['jobs_accepted']}/{r['jobs_ended']}",
                r["jobs_per_lab_hour"],
                r["steps_per_wall_s"],
                r["scheduler_cpu_pct"],
                r["scheduler_cpu_pct_max"],
                rss,
                _ms(r["decision_s"], "p50"),
                _ms(r["decision_s"], "p99"),
                r["max_live_jobs"],
                _ms(r["decision_deep_s"], "p99"),
                _ms(r["submit_s"], "p50"),
                _ms(r["submit_s"], "p99"),
                r["discovery_s"],
            ]
        )
    headers = [
        "modules", "procs", "jobs sent/in/ended", "jobs/lab h", "steps/s", "sched CPU %", "max %",
        "RSS MB start/mid/end", "step decision p50 ms", "p99 ms", "max live jobs",
        "p99 ms (deep)", "submit p50 ms", "p99 ms", "discovery s",
    ]  # fmt: skip
    return table(headers, rows)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    over = results.get("overhead")
    if over:
        kept = f"floor,\nkept {over['result_timeout_s']:g} s"
        labels = ["floor", kept, "our\nstack", "of it:\nscheduler", "of it: DDS\n+ module"]
        stats = [over["floor_s"], over["floor_kept_s"], over["ours"]["cycle_s"],
                 over["ours"]["scheduler_s"], over["ours"]["dds_and_module_s"]]  # fmt: skip
        x = range(len(labels))
        for offset, key in ((-0.2, "p50"), (0.2, "p99")):
            axes[0].bar([i + offset for i in x], [s[key] * 1000 for s in stats], 0.4, label=key)
        axes[0].set_xticks(list(x), labels)
        axes[0].set_ylabel("ms per device action")
        axes[0].set_title("per-action overhead vs the bare round trip")
        axes[0].legend()
    else:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, "per-action overhead: run with --only overhead", ha="center")
    depth = results.get("depth") or []
    if depth:
        sizes = [r["modules"] for r in depth]
        p99 = [_ms(r["decision_s"], "p99") for r in depth]
        live = f"{min(r['live_jobs'] for r in depth):,}"
        axes[1].plot(sizes, p99, "^--", label=f"p99 in-process, {live} jobs queued")
    scale = results.get("scale") or []
    if scale:
        sizes = [r["modules"] for r in scale]
        axes[1].plot(sizes, [_ms(r["decision_s"], "p50") for r in scale], "o-", label="p50 live")
        axes[1].plot(sizes, [_ms(r["decision_s"], "p99") for r in scale], "o-", label="p99 live")
        axes[1].set_yscale("log")
        axes[1].axhline(10, color="grey", linestyle="--", label="goal p99 10 ms")
        axes[1].set_xlabel("modules")
        axes[1].set_ylabel("decision latency, ms")
        axes[1].set_title("decision latency vs lab size")
        axes[1].legend()
        axes[2].plot(sizes, [r["scheduler_cpu_pct"] for r in scale], "o-", label="scheduler CPU %")
        axes[2].plot(sizes, [r["rss_mb_end"] for r in scale], "s-", label="scheduler RSS MB")
        axes[2].axhline(50, color="grey", linestyle="--", label="goal CPU 50 %")
        axes[2].set_xlabel("modules")
        axes[2].set_title("scheduler load vs lab size")
        axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="octopus bench-live", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"sections: {','.join(SECTIONS)}"
    )
    parser.add_argument("--out", default="out/bench_live", help="folder for JSON, PNG, logs")
    parser.add_argument("--policy", default="planner", help="policy of the overhead and scale labs")
    parser.add_argument(
        "--actions", type=int, default=1000, help="device actions through our stack"
    )
    parser.add_argument("--job-size", type=int, default=21, help="experiments per bench job")
    parser.add_argument("--floor-actions", type=int, default=1000, help="bare round trips")
    parser.add_argument("--scenario", default="fig8-platform-day", help="the twin day's scenario")
    parser.add_argument("--twin-policy", default="planner", help="policy of the twin day")
    parser.add_argument("--twin-scales", default="400,4000", help="time scales of the live day")
    parser.add_argument("--pick", default="", help="only these jobs of the twin day (ids)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up a live day after (s)")
    parser.add_argument("--scale-modules", default="5,20,50", help="lab sizes")
    parser.add_argument("--scale-jobs", type=int, default=1000, help="jobs over the lab day")
    parser.add_argument("--scale-users", type=int, default=20, help="users submitting them")
    parser.add_argument("--scale-time-scale", type=float, default=600.0, help="lab s per wall s")
    parser.add_argument("--scale-wall", type=float, default=150.0, help="wall s per lab size")
    parser.add_argument("--nodes-per-process", type=int, default=10, help="module nodes/process")
    parser.add_argument(
        "--plan-at",
        default="100,200,400",
        help="time one plan() after this many submissions (depth)",
    )
    parser.add_argument("--depth-steps", type=int, default=500, help="decisions timed (depth)")
    parser.add_argument("--deep-queue", type=int, default=1000, help="'deep' = this many live jobs")
    parser.add_argument("--memory-jobs", type=int, default=600, help="jobs run to end (memory)")
    parser.add_argument("--memory-live", type=int, default=20, help="live jobs at most (memory)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated day")
    parser.add_argument(
        "--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: claim one)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-result-timeout", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.plan_at = {int(n) for n in str(args.plan_at).split(",") if n}
    if args.quick:
        args.actions, args.floor_actions, args.job_size = 30, 30, 11
        args.twin_scales, args.pick = "4000", args.pick or "2,3"
        args.scale_modules, args.scale_jobs, args.scale_wall = "3", 10, 8.0
        args.scale_time_scale, args.deep_queue, args.nodes_per_process = 4000.0, 5, 3
        args.depth_steps, args.plan_at = 20, {5}
        args.memory_jobs, args.memory_live = 60, 5
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor_server:
        return floor_server(args.floor_result_timeout)
    sections = [s for s in args.only.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"octopus bench-live: --only: unknown section {unknown[0]}", file=sys.stderr)
        return 2
    domain = args.domain_id if args.domain_id is not None else claim_domain_id()
    _environment(domain)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average": load,
        "cpus": os.cpu_count(),
        "domain_id": domain,
        "argv": list(argv if argv is not None else sys.argv[1:]),
    }
    print(
        f"bench-live: ROS_DOMAIN_ID={domain}, LOCALHOST discovery, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    path = out / "bench_live.json"
    text: list[str] = []

    def save() -> None:
        path.write_text(json.dumps(results, indent=1, default=str))

    def section(title: str, body: str) -> None:
        block = f"\n== {title} ==\n{body}"
        print(block, flush=True)
        text.append(block)

    if "overhead" in sections:
        from octopus_modules.ros.module_node import RESULT_TIMEOUT_S

        floor = percentiles(measure_floor(args.floor_actions))
        floor_kept = percentiles(measure_floor(args.floor_actions, result_timeout=RESULT_TIMEOUT_S))
        ours = measure_overhead(args, out)
        results["overhead"] = {
            "floor_s": floor,
            "floor_kept_s": floor_kept,
            "result_timeout_s": RESULT_TIMEOUT_S,
            "ours": ours,
        }
        save()
        section(
            f"1. per device action: {ours['actions']} actions in {ours['jobs']} jobs of "
            f"{ours['job_size']} (policy {ours['policy']}; {ours['jobs_succeeded']} jobs "
            f"succeeded, {ours['steps_in_sqlite']} steps recorded in SQLite)",
            print_overhead(floor, ours, floor_kept, RESULT_TIMEOUT_S),
        )
    if "twin" in sections:
        results["twin"] = []
        for scale in (float(s) for s in args.twin_scales.split(",") if s):
            run = run_twin(args, out, scale)
            results["twin"].append(run)
            save()
            section(f"2. live day vs twin day ({args.scenario}) at {scale:g}x", print_twin(run))
    if "scale" in sections:
        results["scale"] = []
        for modules in (int(m) for m in args.scale_modules.split(",") if m):
            results["scale"].append(run_scale(args, out, modules))
            save()
        section(
            f"3. scale: {args.scale_jobs} jobs of {args.scale_users} users over a lab day at "
            f"{args.scale_time_scale:g}x, at most {args.scale_wall:g} s each, policy "
            f"{args.policy}, {args.nodes_per_process} module nodes per process",
            print_scale(results["scale"]),
        )
    if "depth" in sections:
        results["depth"] = [measure_depth(args, int(m)) for m in args.scale_modules.split(",") if m]
        save()
        section(
            f"3b. the scheduler's own costs with the whole day queued ({args.scale_jobs} jobs; "
            f"LabService in-process, no ROS; policy {args.policy})",
            print_depth(results["depth"]),
        )
    if "memory" in sections:
        modules = int(args.scale_modules.split(",")[0])
        results["memory"] = measure_memory(args, modules)
        save()
        section(
            f"3c. memory: {args.memory_jobs} jobs of the scale day on {modules} modules, at most "
            f"{args.memory_live} live, each run to its end (LabService in-process, no ROS)",
            print_memory(results["memory"]),
        )
    results["load_average_after"] = os.getloadavg()
    save()
    plot(results, out / "bench_live.png")
    (out / "bench_live.txt").write_text("\n".join(text) + "\n")
    print(f"\nsaved {path}, {out / 'bench_live.png'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
