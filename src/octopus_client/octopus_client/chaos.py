"""Chaos run: a busy simulated lab whose scheduler and modules are SIGKILLed at random while
users submit good jobs, bad jobs and bursts; then every promise is checked.

    python -m octopus_client.chaos [--duration 600] [--seed N] [--time-scale 1000] [--out DIR]

The lab runs as ``octopus lab up`` runs it (node processes under the Supervisor, which restarts
crashed ones), on this machine only, in the caller's ROS domain. At the end:

- every job a client was told about exists and ended (none lost, none stuck);
- every experiment of a succeeded job has the measurement its module reported (no result lost);
- no device was ever held by two steps at once (from the store's step records);
- every submission got an answer, or, if the scheduler was killed under it, the client found
  out what became of it.

Prints the counts and exits 1 when a check fails. ``run_chaos`` is what the test calls.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GOOD_JOBS = (
    # a measurement: the UV-Vis module reports a spectrum's peak per sample
    """
metadata: {{name: chaos-{n}, owner: chaos, retries: 3}}
campaign: {{kind: manual, experiments: [{{}}]}}
process:
  Characterization:
    UV-Vis: {{sequence: [GetAbs]}}
""",
    # a synthesis batch of two vials
    """
metadata: {{name: chaos-{n}, owner: chaos, retries: 3}}
campaign: {{kind: manual, experiments: [{{React.Time: 1 min}}, {{React.Time: 2 min}}]}}
process:
  Synthesis:
    BatchSynthesis: {{sequence: [PrepareContainer, Mix, React, MoveContainer]}}
""",
)

# Nothing restocks the modules in a chaos run: the good jobs of each kind stop before their
# consumables run out (a measurement takes a pipette tip of UV-Vis's 96, a synthesis vial two of
# BatchSynthesis's 64; retries after a kill take more), or the rest would wait for an operator
MAX_GOOD_JOBS = (70, 24)

BAD_JOBS = (
    "metadata: [unclosed",
    "metadata: {name: x, owner: y}\ncampaign: {kind: manual, experiments: [{}]}\n"
    "process: {Characterization: {Flux: {sequence: [GetAbs]}}}",
    GOOD_JOBS[1].format(n="bad").replace("React.Time: 1 min", "React.Time: -5 min"),
    GOOD_JOBS[1].format(n="bad").replace("retries: 3", "retries: 1000000000"),
    GOOD_JOBS[1]
    .format(n="bad")
    .replace("Mix, React", "Mix, {task: React, params: {}}")
    .replace("{React.Time: 1 min}, {React.Time: 2 min}", "{}"),
    "[" * 100_000 + "]" * 100_000,
)


@dataclass
class ChaosReport:
    seed: int
    duration_s: float
    submitted_good: int = 0
    submitted_bad: int = 0
    accepted: int = 0
    rejected_bad: int = 0
    accepted_bad: int = 0
    unanswered: int = 0  # no answer; the client then looked the job up
    kills: dict[str, int] = field(default_factory=dict)
    jobs_in_store: int = 0
    jobs_ended: int = 0
    jobs_succeeded: int = 0
    jobs_quarantined: list[str] = field(default_factory=list)  # a good job must never be
    jobs_lost: list[str] = field(default_factory=list)  # told to a client, not in the store
    jobs_stuck: list[str] = field(default_factory=list)  # not ended in time
    measurements_expected: int = 0
    measurements_found: int = 0
    device_overlaps: list[str] = field(default_factory=list)
    settle_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not self.jobs_lost
            and not self.jobs_stuck
            and not self.jobs_quarantined
            and self.accepted_bad == 0
            and self.measurements_found == self.measurements_expected
            and not self.device_overlaps
        )


def lab_file(directory: Path, time_scale: float) -> Path:
    path = directory / "chaos_lab.yaml"
    path.write_text(
        f"name: chaos\ntime_scale: {time_scale}\npolicy: planner\n"
        f"database: {directory / 'chaos.sqlite'}\nheartbeat_period: 0.5\nretries: 3\n"
        "retry_policy: {backoff_s: 5, backoff_max_s: 60}\nadmins: [lab_manager]\n"
        "modules: [{description: batch_synthesis}, {description: uv_vis}]\n"
    )
    return path


def run_chaos(
    duration_s: float,
    seed: int,
    *,
    time_scale: float = 1000.0,
    out: Path | None = None,
    kill_every_s: tuple[float, float] = (6.0, 12.0),
    settle_timeout_s: float = 120.0,
) -> ChaosReport:
    from octopus_bringup.nodes import node_specs
    from octopus_client.client import ClientError, OctopusClient
    from octopus_client.supervisor import Supervisor, python_module_argv
    from octopus_scheduler.service.lab_config import load_lab_config

    rng = random.Random(seed)
    directory = Path(out or tempfile.mkdtemp(prefix="octopus-chaos-"))
    directory.mkdir(parents=True, exist_ok=True)
    config = load_lab_config(lab_file(directory, time_scale))
    log = open(directory / "nodes.log", "a", buffering=1)  # noqa: SIM115 - closed below
    supervisor = Supervisor(max_restarts=1000, printer=lambda line: log.write(line + "\n"))
    for spec in node_specs(config):
        supervisor.add(spec.name, python_module_argv(spec.module, spec.ros_arguments()))
    report = ChaosReport(seed=seed, duration_s=duration_s)
    told: set[str] = set()
    good_jobs = [0] * len(GOOD_JOBS)
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(name: str) -> None:
        """One user: mostly good jobs, every fourth one bad, now and then a burst of five."""
        with OctopusClient(namespace=config.namespace, user=name, timeout_s=10.0) as client:
            n = 0
            while not stop.is_set():
                burst = 5 if rng.random() < 0.15 else 1
                for _ in range(burst):
                    n += 1
                    bad = n % 4 == 1  # a user's 1st, 5th, ...: bad input however few get in
                    kind = rng.randrange(len(GOOD_JOBS))
                    with lock:
                        if not bad:
                            good_jobs[kind] += 1
                            bad = good_jobs[kind] > MAX_GOOD_JOBS[kind]  # out of stock: a bad one
                    script = rng.choice(BAD_JOBS) if bad else GOOD_JOBS[kind].format(n=n)
                    try:
                        submission = client.submit(script)
                    except ClientError:
                        with lock:
                            report.unanswered += 1
                        continue
                    with lock:
                        if bad:
                            report.submitted_bad += 1
                            if submission.accepted:
                                report.accepted_bad += 1
                            else:
                                report.rejected_bad += 1
                        else:
                            report.submitted_good += 1
                        if submission.accepted and submission.job_id:
                            report.accepted += 1
                            told.add(submission.job_id)
                stop.wait(rng.uniform(0.5, 2.0))

    def killer() -> None:
        while not stop.wait(rng.uniform(*kill_every_s)):
            child = rng.choice(supervisor.children)
            process = child.process
            if process is None or process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            with lock:
                report.kills[child.name] = report.kills.get(child.name, 0) + 1
            log.write(f"[chaos] SIGKILL {child.name} (pid {process.pid})\n")

    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    supervisor.start()
    watcher.start()
    try:
        with OctopusClient(namespace=config.namespace, user="chaos", timeout_s=30.0) as probe:
            probe.list_jobs()  # the scheduler is up
            threads = [threading.Thread(target=submitter, args=(u,)) for u in ("ann", "bob")]
            threads.append(threading.Thread(target=killer))
            for thread in threads:
                thread.start()
            time.sleep(duration_s)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            started = time.monotonic()
            ended = ("succeeded", "failed", "cancelled")
            while time.monotonic() - started < settle_timeout_s:
                try:
                    jobs = probe.list_jobs()
                except ClientError:
                    time.sleep(1.0)
                    continue
                if all(_state(j.state) in ended for j in jobs) and jobs:
                    break
                time.sleep(1.0)
            report.settle_s = round(time.monotonic() - started, 1)
    finally:
        supervisor.stop()
        watcher.join(timeout=10)
        log.close()
    _check_store(Path(config.database), config, told, report)
    (directory / "report.json").write_text(json.dumps(asdict(report) | {"ok": report.ok}, indent=1))
    return report


def _state(state: int) -> str:
    from octopus_client.commands.text import job_state

    return job_state(state)


def _check_store(database: Path, config: Any, told: set[str], report: ChaosReport) -> None:
    from octopus_modules.module_factory import resolve_description
    from octopus_scheduler.service.lab_from_modules import lab_from_modules
    from octopus_scheduler.service.store import Store

    store = Store(database)
    try:
        jobs = {j.job_id: j for j in store.jobs()}
        report.jobs_in_store = len(jobs)
        report.jobs_lost = sorted(told - set(jobs))
        report.jobs_ended = sum(
            j.state in ("succeeded", "failed", "cancelled") for j in jobs.values()
        )
        report.jobs_stuck = sorted(
            j for j, r in jobs.items() if r.state in ("queued", "running", "held")
        )
        report.jobs_quarantined = sorted(
            j for j, r in jobs.items() if r.message.startswith("quarantined")
        )
        succeeded = [j for j, r in jobs.items() if r.state == "succeeded"]
        report.jobs_succeeded = len(succeeded)
        for job_id in succeeded:
            measuring = "UV-Vis" in jobs[job_id].script
            if not measuring:
                continue
            for experiment in store.experiments(job_id):
                report.measurements_expected += 1
                report.measurements_found += bool(experiment.measured)
        lab = lab_from_modules([resolve_description(m.description) for m in config.modules])
        held: dict[str, list[tuple[float, float, str]]] = {}
        for step in store.steps():
            if step.ended_at is None or step.started_at is None:
                continue
            spec = next(
                (s for s in lab.task(step.module, step.task).steps if s.name == step.step), None
            )
            if spec is None or spec.kind != "active":
                continue
            for device in lab.step_devices(step.module, step.task, spec):
                held.setdefault(device, []).append((step.started_at, step.ended_at, step.step_id))
        for device, spans in held.items():
            spans.sort()
            busy_until, holder = float("-inf"), ""
            for start, end, step_id in spans:
                if start < busy_until - 1e-6:
                    report.device_overlaps.append(
                        f"{device}: {holder} until {busy_until:.1f}, {step_id} from {start:.1f}"
                    )
                if end > busy_until:
                    busy_until, holder = end, step_id
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of chaos")
    parser.add_argument("--seed", type=int, default=None, help="default: chosen and printed")
    parser.add_argument("--time-scale", type=float, default=1000.0)
    parser.add_argument("--out", type=Path, default=Path("out/chaos"))
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    print(f"chaos: seed {seed}, {args.duration:g} s, logs in {args.out}", flush=True)
    report = run_chaos(args.duration, seed, time_scale=args.time_scale, out=args.out)
    for key, value in asdict(report).items():
        print(f"  {key}: {value}")
    print("chaos: every check passed" if report.ok else "chaos: a check FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
