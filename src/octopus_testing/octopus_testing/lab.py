"""A lab in processes for integration tests: module nodes and a scheduler, each its own process,
as `octopus lab up` would start them (but with test-friendly timings)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from octopus_testing.processes import NodeProcess, NodeProcesses

TIME_SCALE = 600.0
HEARTBEAT_S = 0.5

# A short synthesis on BatchSynthesis: two samples; {name} and {react} (minutes) fill it in.
SYNTHESIS_JOB = """
metadata: {{name: {name}, owner: whoever}}
campaign:
  kind: manual
  experiments: [{{React.Time: {react} min}}, {{React.Time: 20 min}}]
process:
  Synthesis:
    BatchSynthesis:
      sequence: [PrepareContainer, Mix, React, MoveContainer]
      fixedParams: {{Temperature: 60 C}}
"""


def start_module(
    processes: NodeProcesses,
    description: str,
    ledger: Path,
    *,
    time_scale: float = TIME_SCALE,
    parameters: Sequence[str] = (),
) -> NodeProcess:
    """A module node; every module of one lab shares ``ledger`` (what simulated samples hold);
    ``parameters``: more ``name:=value`` for it."""
    more = [arg for parameter in parameters for arg in ("-p", parameter)]
    return processes.start(
        description,
        [sys.executable, "-m", "octopus_modules.ros.module_node", "--ros-args",
         "-p", f"description:={description}", "-p", f"time_scale:={time_scale}",
         "-p", f"heartbeat_period:={HEARTBEAT_S}", "-p", f"sample_ledger:={ledger}", *more],
    )  # fmt: skip


def write_lab_file(
    folder: Path,
    modules: Sequence[str] = ("batch_synthesis", "uv_vis"),
    *,
    time_scale: float = TIME_SCALE,
    extra: str = "",
) -> Path:
    """A lab description with its database in ``folder``; ``boss`` is the admin; a failed step
    is retried once (a loaded test machine may miss a heartbeat and fail a step)."""
    path = folder / "lab.yaml"
    listed = ", ".join(f"{{description: {m}}}" for m in modules)
    path.write_text(
        f"name: test\ntime_scale: {time_scale}\npolicy: planner\n"
        f"database: {folder / 'octopus.sqlite'}\nheartbeat_period: {HEARTBEAT_S}\n"
        f"admins: [boss]\nretries: 1\nmodules: [{listed}]\n{extra}"
    )
    return path


def start_scheduler(
    processes: NodeProcesses, lab_file: Path, name: str = "scheduler"
) -> NodeProcess:
    return processes.start(
        name,
        [sys.executable, "-m", "octopus_scheduler.ros.scheduler_node", "--ros-args",
         "-p", f"lab_file:={lab_file}", "-p", f"heartbeat_period:={HEARTBEAT_S}"],
    )  # fmt: skip


def start_lab(
    processes: NodeProcesses,
    folder: Path,
    modules: Sequence[str] = ("batch_synthesis", "uv_vis"),
    *,
    extra: str = "",
) -> tuple[dict[str, NodeProcess], NodeProcess, Path]:
    """Modules and scheduler, all ready: ({description: module}, scheduler, lab file)."""
    ledger = folder / "samples.json"
    started = {m: start_module(processes, m, ledger) for m in modules}
    lab_file = write_lab_file(folder, modules, extra=extra)
    scheduler = start_scheduler(processes, lab_file)
    for process in (*started.values(), scheduler):
        process.wait_for_output("ready", timeout=30)
    return started, scheduler, lab_file
