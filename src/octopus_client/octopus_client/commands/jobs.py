"""``submit``, ``status``, ``hold``/``resume``/``cancel`` and ``estop``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from octopus_client.commands.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    ClientError,
)
from octopus_client.commands.text import (
    ENDED,
    clock_time,
    job_state,
    jobs_table,
    progress_bar,
)
from octopus_modules.ros.ros_conversions import seconds_of

RECENT_ENDED = 10  # ended jobs `status` shows without --all


def connect(args: argparse.Namespace) -> Any:
    from octopus_client.client import OctopusClient  # rclpy: only when a command runs

    return OctopusClient(namespace=args.namespace, user=args.user, timeout_s=args.timeout)


def read_script(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise ClientError(
            f"cannot read job script {path}: {error.strerror}", EXIT_INVALID
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ClientError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "save the job script as UTF-8",
            EXIT_INVALID,
        ) from None


class ProgressPrinter:
    """Feedback -> a progress line; redrawn in place on a terminal, one line per change else."""

    def __init__(self, stream: Any = sys.stdout) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""
        self.job_id = ""

    def __call__(self, feedback: Any) -> None:
        # SubmitJob feedback, or a Job message when the job is followed through get_job
        job_id = getattr(feedback, "job_id", None) or feedback.id
        self.job_id = job_id
        finish = seconds_of(feedback.estimated_finish)
        line = (
            f"{job_id} {progress_bar(feedback.progress)} "
            f"{feedback.experiments_done}/{feedback.experiments_total} experiments, "
            f"{job_state(feedback.state)}"
            + (f", finish ~{clock_time(finish)}" if finish is not None else "")
        )
        if line == self.last:
            return
        self.last = line
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")


def submit(args: argparse.Namespace) -> int:
    script = read_script(args.file)
    printer = ProgressPrinter()
    with connect(args) as client:
        try:
            submission = client.submit(
                script, follow=args.wait, on_feedback=printer if args.wait else None
            )
        except KeyboardInterrupt:
            printer.done()
            if not printer.job_id:
                raise
            job = printer.job_id
            print(
                f"octopus submit: stopped following {job}; the job goes on "
                f"(octopus cancel {job} ends it)",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        printer.done()
        if not submission.accepted:
            print(f"octopus submit: rejected: {submission.summary}", file=sys.stderr)
            return EXIT_INVALID
        if not args.wait:
            print(submission.job_id)
            return 0
        state = job_state(submission.final_state if submission.final_state is not None else 0)
        print(f"{submission.job_id} {state}")
        if state == "succeeded":
            return 0
        # why, in one line: the job's message (the result summary is a YAML document)
        why = client.get_job(submission.job_id).job.message or "no reason recorded"
        print(f"octopus submit: {submission.job_id} {state}: {why}", file=sys.stderr)
        return EXIT_FAILED


def status(args: argparse.Namespace) -> int:
    with connect(args) as client:
        jobs = client.list_jobs(owner=client.user if args.mine else "")
    if not args.all:  # every unfinished job, and only the latest ended ones
        ended = {j.id for j in [j for j in jobs if job_state(j.state) in ENDED][:RECENT_ENDED]}
        jobs = [j for j in jobs if job_state(j.state) not in ENDED or j.id in ended]
    print(jobs_table(jobs, time.time()))
    return 0


def job_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        response = client.command(args.command, args.job_id, reason=args.reason or "")
    if not response.success:
        print(f"octopus {args.command}: refused: {response.message}", file=sys.stderr)
        return EXIT_FAILED
    state = job_state(response.job.state)
    print(f"{args.command} {args.job_id}: done, the job is {state}")
    if args.command == "cancel" and state != "cancelled":
        print("its running steps are being stopped; `octopus status` shows when it has ended")
    return 0


def clear_error(args: argparse.Namespace) -> int:
    with connect(args) as client:
        response = client.clear_device_error(args.module, args.device)
    if not response.success:
        print(f"octopus clear-error: {response.message}", file=sys.stderr)
        return EXIT_FAILED
    print(response.message)
    return 0


def estop(args: argparse.Namespace) -> int:
    engaged = not args.reset
    with connect(args) as client:
        response = client.set_estop(engaged, args.reason or ("" if args.reset else "octopus estop"))
    if not response.success:
        print(f"octopus estop: refused: {response.message}", file=sys.stderr)
        return EXIT_FAILED
    state = response.state
    word = "ENGAGED" if state.engaged else "reset"
    print(
        f"emergency stop {word} by {state.source}" + (f": {state.reason}" if state.reason else "")
    )
    return 0
