"""The demo: the published 11-job lab day, live, on the simulated demo lab.

Brings the lab up (scheduler + module nodes, as ``octopus lab up`` does), submits each job as
its user at its time of the day (scaled), shows progress, prints per-job waiting / turnaround /
total hours beside the published FCFS and OCTOPUS runs, writes the Gantt chart, and stops every
process it started.

    python -m octopus_client.demo [--time-scale 400] [--pick 1,2,3] [--out out/demo]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from octopus_bringup.nodes import default_lab_file, node_specs
from octopus_client.demo_day import Day, JobTimes, load_day, report
from octopus_client.supervisor import Supervisor, python_module_argv
from octopus_scheduler.service.lab_config import load_lab_config

ENDED = (3, 4, 5)  # Job.STATE_SUCCEEDED, FAILED, CANCELLED


def default_day_file() -> Path:
    return default_lab_file().with_name("demo_day.yaml")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="octopus demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=400.0, help="lab seconds per second")
    parser.add_argument(
        "--pick", default="", help="only these jobs of the day, by id (e.g. 1,2,3: a quick run)"
    )
    parser.add_argument("--policy", default="planner", help="scheduling policy")
    parser.add_argument("--out", default="out/demo", help="folder for the database, logs, Gantt")
    parser.add_argument("--day", default="", help="lab day file (default: the published day)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (wall s)")
    return parser.parse_args(argv)


def write_lab_file(out: Path, time_scale: float, policy: str) -> Path:
    """The demo lab description, with this run's time scale, policy and a fresh database."""
    lab = yaml.safe_load(default_lab_file().read_text())
    database = out / "demo.sqlite"
    for stale in out.glob("demo.sqlite*"):
        stale.unlink()
    lab.update(time_scale=time_scale, policy=policy, database=str(database.resolve()))
    path = out / "lab.yaml"
    path.write_text(yaml.safe_dump(lab, sort_keys=False))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    day = load_day(args.day or default_day_file())
    if args.pick:
        wanted = {int(i) for i in args.pick.split(",")}
        day = Day(day.name, tuple(j for j in day.jobs if j.index in wanted), day.published)
    lab_file = write_lab_file(out, args.time_scale, args.policy)
    log = (out / "nodes.log").open("w")
    supervisor = Supervisor(printer=lambda line: (log.write(line + "\n"), log.flush()))
    for spec in node_specs(load_lab_config(lab_file)):
        supervisor.add(spec.name, python_module_argv(spec.module, spec.ros_arguments()))
    print(
        f"demo: {len(day.jobs)} jobs of the day '{day.name}' on the simulated demo lab, "
        f"{args.time_scale:g}x faster than real time, policy {args.policy} "
        f"(node logs: {out / 'nodes.log'})",
        flush=True,
    )
    supervisor.start()
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    watcher.start()
    try:
        return run_day(day, args, out)
    finally:
        supervisor.stop()
        watcher.join(timeout=10)
        log.close()
        print("demo: every node stopped", flush=True)


def run_day(day: Day, args: argparse.Namespace, out: Path) -> int:
    from octopus_client.client import ClientError, OctopusClient
    from octopus_modules.ros.ros_conversions import seconds_of

    with OctopusClient(timeout_s=10.0) as client:
        _wait_for_scheduler(client)
        started = time.monotonic()
        job_ids = _submit_day(client, day, args.time_scale, started)
        jobs = _follow(client, job_ids, started + args.timeout)
        if jobs is None:
            print("demo: the day did not end in time", file=sys.stderr)
            return 1
        times = [
            JobTimes(seconds_of(j.submitted), seconds_of(j.started), seconds_of(j.finished))
            for j in jobs
        ]
        failed = [j.id for j in jobs if j.state != 3]
        day_start = times[0].submitted - day.jobs[0].offset_s
        print("\nper-job hours (lab time), this run vs the published day:\n", flush=True)
        print(report(day, times, day_start), flush=True)
        print(f"\nwall time of the day: {time.monotonic() - started:.0f} s", flush=True)
        try:
            from octopus_client.gantt.files import export_current_schedule

            path = export_current_schedule(out / "gantt.png", timeout_s=10.0)
            print(f"Gantt chart: {path}", flush=True)
        except (ImportError, ClientError, RuntimeError) as error:
            print(f"demo: no Gantt chart ({error})", file=sys.stderr)
        if failed:
            print(f"demo: jobs that did not succeed: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0


def _wait_for_scheduler(client: object, timeout_s: float = 60.0) -> None:
    from octopus_client.client import ClientError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.list_jobs()  # type: ignore[attr-defined]
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise


def _submit_day(client: object, day: Day, scale: float, started: float) -> list[str]:
    job_ids = []
    for job in day.jobs:
        delay = started + job.offset_s / scale - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.user = job.user  # type: ignore[attr-defined]
        submission = client.submit(job.script)  # type: ignore[attr-defined]
        if not submission.accepted:
            raise SystemExit(f"demo: job {job.index} rejected: {submission.summary}")
        clock = time.strftime("%H:%M", time.gmtime(9 * 3600 + job.offset_s))
        print(f"  {clock}  {job.user:<6} submits job {job.index:>2} -> {submission.job_id}")
        job_ids.append(submission.job_id)
    return job_ids


def _follow(client: object, job_ids: list[str], deadline: float) -> list | None:
    """Print progress until every job ended; the jobs' final messages, in submission order."""
    last = ""
    while time.monotonic() < deadline:
        jobs = {j.id: j for j in client.list_jobs()}  # type: ignore[attr-defined]
        mine = [jobs[i] for i in job_ids if i in jobs]
        done = sum(j.state in ENDED for j in mine)
        running = [j.id for j in mine if j.state == 1]
        line = f"  {done}/{len(job_ids)} jobs done; running: {', '.join(running) or '-'}"
        if line != last:
            print(line, flush=True)
            last = line
        if done == len(job_ids) and len(mine) == len(job_ids):
            return mine
        time.sleep(1.0)
    return None


if __name__ == "__main__":
    sys.exit(main())
