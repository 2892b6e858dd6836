"""``python -m octopus_client.estop_bench``: how fast the emergency stop stops a busy lab.

A benchmark on real processes over DDS, on this machine only (ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST, a ROS_DOMAIN_ID it claims, the database in a temporary directory). It brings up the
demo lab as ``octopus lab up`` does (``node_specs`` + ``Supervisor``: the scheduler and the 4
module nodes) at time scale 1, with one change: BatchSynthesis's stirrer is the NAMUR hotplate
driver (``namur_stirrer``) on a pseudo-terminal, served by the hotplate emulator in this process.

Each trial:

1. every module gets a long ExecuteTask goal (BatchSynthesis Mix: the serial stirrer heats and
   stirs for an hour; UV-Vis StoreCuvette; SolidState Mix; ElectroChemicalRDE Dry); the trial
   waits until every module reports a busy device and the emulated hotplate's motor runs, then
   a random 0..``--jitter`` s more, so the stop lands at any point of an action;
2. ``t0``: the SetEmergencyStop call, as ``octopus estop`` makes it (``OctopusClient.set_estop``);
3. **all modules stopped**: the last module's ModuleStatus (``/octopus/modules/<node>/status``,
   published on every change) that says ``STATE_ESTOPPED``, no goal running and no device busy.
   The module publishes it when its last goal has ended, after ``safe_state`` of its devices;
4. **serial stop on the wire**: the emulator's receive time of the stop commands after ``t0``
   (``STOP_1`` heater off and ``STOP_4`` motor off; the figure is the later of the two);
5. an admin (``lab_manager``) resets the stop; every module reports it before the next trial.

All times are ``time.monotonic()`` in this one process (status callbacks, the emulator's
reader thread and the call). Also recorded: the service's answer and the latched
``/octopus/emergency_stop`` message as this process hears it (the modules hear the same
publication), and each module's own time. Results print as a table beside the goal (200 ms)
and are saved as JSON under ``--out`` (default ``out/estop``).

    python -m octopus_client.estop_bench                 # 100 trials (about 2 minutes)
    python -m octopus_client.estop_bench --trials 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from octopus_client.bench_live import claim_domain_id, percentiles, table

GOAL_S = 0.200
STOPPED_TIMEOUT_S = 5.0
SERIAL_MODULE = "batch_synthesis"
SERIAL_DEVICE = "Batch_Stirrer"
STOP_COMMANDS = (b"STOP_1", b"STOP_4")  # heater off, motor off

# A long goal per demo module (time scale 1: every action takes its real duration):
# description -> (task, {parameter: value}, slot type). None of these tasks consumes stock and
# every slot is "use" or "release", so the aborted goals of 100s of trials leave the next
# trial's goals acceptable (an aborted goal that moved keeps what it took).
BUSY_GOALS: dict[str, tuple[str, dict[str, float], str]] = {
    "batch_synthesis": ("Mix", {"Time": 3600.0}, "stirrer"),  # heat, then stir for an hour
    "uv_vis": ("StoreCuvette", {}, "vial_holder"),  # robot arm: 22 s move, 5 s home
    "solid_state": ("Mix", {"Time": 240.0}, "crucible_rack"),  # load 30 s, then mill for 4 h
    "electrochemical_rde": ("Dry", {}, "electrode"),  # the dryer starts (5 s), then standby
}


def load() -> str:
    """The load averages, as ``uptime`` prints them."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return "?"
    return f"{one}, {five}, {fifteen}"


# ---- the emulated hotplate, with receive times ---------------------------------------------


def recording_hotplate(link_path: Path) -> Any:
    """The NAMUR hotplate emulator, remembering when (monotonic) each request arrived."""
    from octopus_modules.emulators.namur_hotplate import NamurHotplateEmulator

    class RecordingHotplate(NamurHotplateEmulator):
        def on_power_up(self) -> None:
            super().on_power_up()
            self.stops: list[tuple[float, bytes]] = []
            self.stop_heard = threading.Condition()

        def handle(self, request: bytes) -> bytes | None:
            # called by the reader thread as soon as a whole request is off the pty
            at = time.monotonic()
            command = request.strip()
            if command in STOP_COMMANDS:
                with self.stop_heard:
                    self.stops.append((at, command))
                    self.stop_heard.notify_all()
            return super().handle(request)

        def stops_after(self, t0: float) -> dict[bytes, float]:
            """The first arrival of each stop command at or after ``t0``."""
            seen: dict[bytes, float] = {}
            with self.stop_heard:
                for at, command in reversed(self.stops):
                    if at < t0:
                        break
                    seen[command] = at  # reversed: the earliest one stays
            return seen

        def wait_for_stops(self, t0: float, deadline: float) -> None:
            with self.stop_heard:
                self.stop_heard.wait_for(
                    lambda: len(self.stops_after(t0)) == len(STOP_COMMANDS),
                    timeout=max(deadline - time.monotonic(), 0.0),
                )

    return RecordingHotplate(str(link_path))


# ---- the lab -------------------------------------------------------------------------------


def write_lab_file(folder: Path, serial_port: str, database_dir: Path | None = None) -> Path:
    """The demo lab with its database in ``database_dir`` (default ``folder``), time scale 1,
    the serial stirrer."""
    from octopus_bringup.nodes import default_lab_file

    data = yaml.safe_load(default_lab_file().read_text())
    data["database"] = str((database_dir or folder) / "octopus.sqlite")
    data["time_scale"] = 1.0
    data["notifications"] = {}
    data.pop("auth", None)
    settings = {
        "port": serial_port,
        "bytesize": 8,  # ptys refuse 7E1 framing; the bytes on the wire are the same
        "parity": "N",
        "timeout_s": 1.0,
        "poll_interval_s": 0.5,
    }
    for entry in data["modules"]:
        if entry["description"] == SERIAL_MODULE:
            entry["drivers"] = {SERIAL_DEVICE: {"driver": "namur_stirrer", "settings": settings}}
    path = folder / "lab.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class ModuleWatch:
    """One module: its action client, its latest status and this trial's stop times."""

    description: str
    node: str
    status_topic: str
    action: Any = None
    latest: Any = None
    estopped_at: float | None = None  # first STATE_ESTOPPED after t0
    stopped_at: float | None = None  # first STATE_ESTOPPED with nothing running after t0


@dataclass
class Trial:
    t0: float = 0.0
    response_s: float | None = None
    topic_s: float | None = None
    module_estopped_s: dict[str, float | None] = field(default_factory=dict)
    module_stopped_s: dict[str, float | None] = field(default_factory=dict)
    all_stopped_s: float | None = None
    wire_s: dict[str, float | None] = field(default_factory=dict)
    serial_stopped_s: float | None = None


class EstopBench:
    def __init__(
        self,
        folder: Path,
        log_path: Path,
        jitter_s: float = 0.1,
        seed: int = 0,
        database_dir: Path | None = None,
    ) -> None:
        self.folder = folder
        self.database_dir = database_dir
        self.log_path = log_path
        self.jitter_s = jitter_s
        self.random = random.Random(seed)
        self.cond = threading.Condition()
        self.modules: dict[str, ModuleWatch] = {}
        self.armed_at: float | None = None  # t0 of the trial in progress
        self.topic_at: float | None = None
        self.supervisor: Any = None
        self.client: Any = None
        self.admin: Any = None  # lab_manager's client: only an admin resets the stop
        self.hotplate: Any = None
        self._log: Any = None
        self._watcher: threading.Thread | None = None
        self._watch_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._count = 0
        self.pids: list[int] = []  # the lab's node processes

    # ---- bring-up and tear-down ----------------------------------------------------------

    def start(self, ready_timeout_s: float = 90.0) -> float:
        """Emulator, lab processes, client; returns the seconds until everything answered."""
        import rclpy
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor

        from octopus_bringup.nodes import node_specs
        from octopus_client.client import LATCHED, RELIABLE, OctopusClient
        from octopus_client.supervisor import Supervisor, python_module_argv
        from octopus_interfaces.action import ExecuteTask
        from octopus_interfaces.msg import EmergencyStop, ModuleStatus
        from octopus_scheduler.service.lab_config import load_lab_config

        started = time.monotonic()
        self.hotplate = recording_hotplate(self.folder / "hotplate")
        self.hotplate.start()
        lab_file = write_lab_file(self.folder, self.hotplate.port, self.database_dir)
        specs = node_specs(load_lab_config(lab_file))
        self._log = self.log_path.open("w")
        log = self._log
        self.supervisor = Supervisor(
            printer=lambda line: (log.write(line + "\n"), log.flush()), max_restarts=0
        )
        for spec in specs:
            self.supervisor.add(spec.name, python_module_argv(spec.module, spec.ros_arguments()))
        self.supervisor.start()
        self.pids = [c.process.pid for c in self.supervisor.children]
        self._watcher = threading.Thread(target=self.supervisor.watch, daemon=True)
        self._watcher.start()

        self.client = OctopusClient(user="estop_bench", timeout_s=5.0)
        self.admin = OctopusClient(user="lab_manager", timeout_s=5.0)
        # What is measured arrives on a node and executor of its own, in a thread of its own:
        # the action traffic of the busy goals (on the client's node) does not queue before it.
        self.watch_node = rclpy.create_node(
            f"estop_bench_watch_{os.getpid()}", context=self.client.context
        )
        self._watch_executor = SingleThreadedExecutor(context=self.client.context)
        self._watch_executor.add_node(self.watch_node)
        self._watch_thread = threading.Thread(target=self._spin_watch, daemon=True)
        self._watch_thread.start()
        self.watch_node.create_subscription(
            EmergencyStop, self.client.name("emergency_stop"), self._on_estop, LATCHED
        )
        for spec in specs[1:]:
            description = spec.parameters["description"]
            base = f"{spec.namespace}/{spec.name}"
            watch = ModuleWatch(description, spec.name, f"{base}/status")
            watch.action = ActionClient(self.client.node, ExecuteTask, f"{base}/execute_task")
            self.watch_node.create_subscription(
                ModuleStatus, watch.status_topic, self._status_callback(watch), RELIABLE
            )
            self.modules[spec.name] = watch
        unknown = [w.description for w in self.modules.values() if w.description not in BUSY_GOALS]
        if unknown:
            raise RuntimeError(f"no busy goal for module(s) {', '.join(unknown)}")

        deadline = started + ready_timeout_s
        while True:
            try:
                self.client.list_jobs()
                break
            except Exception:  # noqa: BLE001 - the scheduler is still starting
                self._check_alive()
                if time.monotonic() > deadline:
                    raise
        for watch in self.modules.values():
            while not watch.action.server_is_ready():
                self._check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"module {watch.node}: no action server")
                time.sleep(0.05)
        self._wait(
            lambda: all(w.latest is not None for w in self.modules.values()),
            deadline - time.monotonic(),
            "every module's status",
        )
        return time.monotonic() - started

    def _spin_watch(self) -> None:
        try:
            while not self._stopping.is_set():
                self._watch_executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - the context went down under the spin: we are closing
            pass

    def stop(self) -> None:
        self._stopping.set()
        if self._watch_thread is not None:
            self._watch_thread.join(timeout=5.0)
            self._watch_executor.shutdown(timeout_sec=2.0)
            self.watch_node.destroy_node()
            self._watch_thread = None
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.supervisor is not None:
            self.supervisor.stop()
            if self._watcher is not None:
                self._watcher.join(timeout=10)
            self.supervisor = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.hotplate is not None:
            self.hotplate.close()
            self.hotplate = None

    def _check_alive(self) -> None:
        for child in self.supervisor.children:
            if child.process is not None and child.process.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited ({child.process.returncode}); see {self.log_path}"
                )

    # ---- callbacks (the client's spin thread) ------------------------------------------------

    def _status_callback(self, watch: ModuleWatch) -> Callable[[Any], None]:
        from octopus_interfaces.msg import DeviceState, ModuleStatus

        def on_status(message: Any) -> None:
            now = time.monotonic()
            with self.cond:
                watch.latest = message
                if self.armed_at is not None and message.state == ModuleStatus.STATE_ESTOPPED:
                    if watch.estopped_at is None:
                        watch.estopped_at = now
                    busy = any(d.state == DeviceState.STATE_BUSY for d in message.devices)
                    if watch.stopped_at is None and message.running_goals == 0 and not busy:
                        watch.stopped_at = now
                self.cond.notify_all()

        return on_status

    def _on_estop(self, message: Any) -> None:
        now = time.monotonic()
        with self.cond:
            if self.armed_at is not None and message.engaged and self.topic_at is None:
                self.topic_at = now
            self.cond.notify_all()

    def _wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout=max(timeout_s, 0.0)):
                raise TimeoutError(f"timed out waiting for {what}; see {self.log_path}")

    # ---- one trial -----------------------------------------------------------------------------

    def busy_all(self, timeout_s: float = 20.0) -> None:
        """A long goal on every module; returns when every module and the motor are busy."""
        from octopus_interfaces.action import ExecuteTask
        from octopus_interfaces.msg import DeviceState, ModuleStatus, SlotAssignment, TaskParameter

        self._count += 1
        futures = []
        for watch in self.modules.values():
            task, params, slot = BUSY_GOALS[watch.description]
            goal = ExecuteTask.Goal(
                job_id="ESTOP",
                experiment_id=f"E{self._count}",
                task_id=f"estop-bench-{os.getpid()}-{self._count}-{watch.node}",
                task=task,
                parameters=[TaskParameter(name=k, value=float(v)) for k, v in params.items()],
                slots=[SlotAssignment(slot_type=slot, index=0)],
            )
            with self.client._spin_lock:  # see OctopusClient: a send holds the spin lock
                futures.append((watch, watch.action.send_goal_async(goal)))
        deadline = time.monotonic() + timeout_s
        for watch, future in futures:
            done = threading.Event()
            future.add_done_callback(lambda _f, d=done: d.set())
            if not done.wait(max(deadline - time.monotonic(), 0.0)):
                raise TimeoutError(f"module {watch.node}: no answer to the goal")
            if not future.result().accepted:
                raise RuntimeError(f"module {watch.node} rejected its goal; see {self.log_path}")

        def busy(watch: ModuleWatch) -> bool:
            status = watch.latest
            return (
                status is not None
                and status.state == ModuleStatus.STATE_BUSY
                and status.running_goals > 0
                and any(d.state == DeviceState.STATE_BUSY for d in status.devices)
            )

        self._wait(
            lambda: all(busy(w) for w in self.modules.values()),
            deadline - time.monotonic(),
            "every module busy",
        )
        while not self.hotplate.motor_on:  # the serial stirrer: START_4 is on the wire
            if time.monotonic() > deadline:
                raise TimeoutError("the serial stirrer's motor never started")
            time.sleep(0.005)
        time.sleep(self.random.uniform(0.0, self.jitter_s))

    def engage(self) -> Trial:
        """The measured part: the call, then every module stopped and the stops on the wire."""
        with self.cond:
            for watch in self.modules.values():
                watch.estopped_at = watch.stopped_at = None
            self.topic_at = None
            t0 = self.armed_at = time.monotonic()
        trial = Trial(t0=t0)
        try:
            response = self.client.set_estop(True, "estop_bench")
            trial.response_s = time.monotonic() - t0
            if not response.success:
                raise RuntimeError(f"e-stop refused: {response.message}")
            deadline = t0 + STOPPED_TIMEOUT_S
            with self.cond:
                self.cond.wait_for(
                    lambda: all(w.stopped_at is not None for w in self.modules.values()),
                    timeout=max(deadline - time.monotonic(), 0.0),
                )
            self.hotplate.wait_for_stops(t0, deadline)
        finally:
            with self.cond:
                self.armed_at = None
        with self.cond:
            trial.topic_s = None if self.topic_at is None else self.topic_at - t0
            for watch in self.modules.values():
                trial.module_estopped_s[watch.node] = _since(watch.estopped_at, t0)
                trial.module_stopped_s[watch.node] = _since(watch.stopped_at, t0)
        stopped = list(trial.module_stopped_s.values())
        trial.all_stopped_s = None if None in stopped else max(stopped)  # type: ignore[type-var]
        wire = self.hotplate.stops_after(t0)
        trial.wire_s = {c.decode(): _since(wire.get(c), t0) for c in STOP_COMMANDS}
        on_wire = list(trial.wire_s.values())
        trial.serial_stopped_s = None if None in on_wire else max(on_wire)  # type: ignore[type-var]
        return trial

    def reset(self, timeout_s: float = 10.0) -> None:
        """An admin resets the stop; returns when every module says it is no longer stopped."""
        from octopus_interfaces.msg import ModuleStatus

        # sent once, as `octopus estop --reset` sends it: a re-sent copy of this reset, late,
        # would release the next trial's stop (seen: 3 of 16 runs failed that way)
        response = self.admin.set_estop(False, "")
        if not response.success:
            raise RuntimeError(f"reset refused: {response.message}")
        self._wait(
            lambda: all(
                w.latest.state != ModuleStatus.STATE_ESTOPPED and w.latest.running_goals == 0
                for w in self.modules.values()
            ),
            timeout_s,
            "every module reset",
        )


def _since(at: float | None, t0: float) -> float | None:
    return None if at is None else at - t0


# ---- the run and its report ----------------------------------------------------------------


def run(
    trials: int = 100,
    warmup: int = 3,
    out: Path | None = None,
    jitter_s: float = 0.1,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    database_dir: Path | None = None,
) -> dict[str, Any]:
    """Bring the lab up, measure ``trials`` e-stops (after ``warmup`` unmeasured ones), stop
    every process. Uses the ROS_DOMAIN_ID of the environment. The scheduler's database goes in
    a new folder under ``database_dir`` (default: the run's temporary folder)."""
    out = Path(out or "out/estop")
    out.mkdir(parents=True, exist_ok=True)
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="octopus-estop-") as tmp:
        if database_dir is not None:
            database_dir = Path(tempfile.mkdtemp(prefix="octopus-estop-db-", dir=database_dir))
        bench = EstopBench(Path(tmp), out / "nodes.log", jitter_s, seed, database_dir)
        measured: list[Trial] = []
        try:
            bring_up_s = bench.start()
            started = time.monotonic()
            for index in range(warmup + trials):
                bench.busy_all()
                trial = bench.engage()
                bench.reset()
                if index >= warmup:
                    measured.append(trial)
                    if progress is not None:
                        progress(len(measured), trials)
            wall_s = time.monotonic() - started
        finally:
            bench.stop()
            if database_dir is not None:
                shutil.rmtree(database_dir, ignore_errors=True)
    result = summarize(measured, bring_up_s, wall_s, load_before, load(), warmup)
    result["node_pids"] = bench.pids
    result["database_dir"] = str(database_dir.parent if database_dir else tempfile.gettempdir())
    return result


def _stats(values: Sequence[float | None]) -> dict[str, Any]:
    got = [v for v in values if v is not None]
    stats: dict[str, Any] = percentiles(got, (50, 90, 99))
    stats["max"] = max(got) if got else float("nan")
    stats["timeouts"] = len(values) - len(got)
    return stats


def summarize(
    trials: Sequence[Trial],
    bring_up_s: float,
    wall_s: float,
    load_before: str,
    load_after: str,
    warmup: int,
) -> dict[str, Any]:
    nodes = sorted(trials[0].module_stopped_s) if trials else []
    return {
        "trials": len(trials),
        "warmup_trials": warmup,
        "goal_s": GOAL_S,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "bring_up_s": bring_up_s,
        "wall_s": wall_s,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "all_modules_stopped": _stats([t.all_stopped_s for t in trials]),
        "serial_stop_on_wire": _stats([t.serial_stopped_s for t in trials]),
        "serial_first_stop_on_wire": _stats(
            [min((v for v in t.wire_s.values() if v is not None), default=None) for t in trials]
        ),
        "service_response": _stats([t.response_s for t in trials]),
        "estop_topic_heard": _stats([t.topic_s for t in trials]),
        "module_stopped": {n: _stats([t.module_stopped_s[n] for t in trials]) for n in nodes},
        "module_first_estopped": {
            n: _stats([t.module_estopped_s[n] for t in trials]) for n in nodes
        },
        "per_trial": [
            {
                "response_s": t.response_s,
                "topic_s": t.topic_s,
                "module_stopped_s": t.module_stopped_s,
                "module_estopped_s": t.module_estopped_s,
                "all_stopped_s": t.all_stopped_s,
                "wire_s": t.wire_s,
                "serial_stopped_s": t.serial_stopped_s,
            }
            for t in trials
        ],
    }


def report(result: dict[str, Any]) -> str:
    goal_ms = result["goal_s"] * 1000

    def row(label: str, stats: dict[str, Any], judged: bool = True) -> list[Any]:
        p99 = stats["p99"] * 1000
        met = ""
        if judged:
            met = "yes" if p99 < goal_ms and not stats["timeouts"] else "NO"
        return [
            label,
            stats["n"],
            stats["p50"] * 1000,
            p99,
            stats["max"] * 1000,
            stats["timeouts"],
            f"< {goal_ms:g}" if judged else "",
            met,
        ]

    headers = ["from the e-stop call to", "n", "p50 ms", "p99 ms", "max ms", "lost", "goal", "met"]
    main_rows = [
        row("every module's devices stopped (4 busy)", result["all_modules_stopped"]),
        row("serial stirrer: STOP on the wire", result["serial_stop_on_wire"]),
    ]
    parts = [
        row("  the service's answer", result["service_response"], False),
        row("  /octopus/emergency_stop heard", result["estop_topic_heard"], False),
        row("  first stop command on the wire", result["serial_first_stop_on_wire"], False),
    ]
    parts += [
        row(f"  {node} stopped", stats, False) for node, stats in result["module_stopped"].items()
    ]
    load_line = (
        f"{result['trials']} trials (+{result['warmup_trials']} warm-up), {result['cpus']} CPUs, "
        f"load average {result['load_before']} before, {result['load_after']} after; "
        f"bring-up {result['bring_up_s']:.1f} s, trials {result['wall_s']:.1f} s"
    )
    return table(headers, main_rows + parts) + "\n" + load_line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m octopus_client.estop_bench",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--trials", type=int, default=100, help="measured e-stops (default 100)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured e-stops first")
    parser.add_argument("--jitter", type=float, default=0.1, help="random wait before a stop, s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/estop"), help="JSON and node log")
    parser.add_argument(
        "--database-dir",
        type=Path,
        default=None,
        help="where the scheduler's SQLite goes (default: a temporary folder); e.g. /dev/shm "
        "to see the e-stop without the fsync of its commits",
    )
    parser.add_argument(
        "--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: claim a free one)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    domain = args.domain_id if args.domain_id is not None else claim_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(
        f"estop-bench: ROS_DOMAIN_ID={domain}, LOCALHOST discovery, {os.cpu_count()} CPUs, "
        f"load average {load()}; node log {args.out / 'nodes.log'}",
        file=sys.stderr,
    )

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f"  {done}/{total} trials", file=sys.stderr, flush=True)

    try:
        result = run(
            args.trials,
            args.warmup,
            args.out,
            args.jitter,
            args.seed,
            progress,
            args.database_dir,
        )
    except KeyboardInterrupt:
        print("estop-bench: interrupted; every node stopped", file=sys.stderr)
        return 130
    path = args.out / "estop_latency.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(report(result))
    print(f"saved {path}")
    ok = all(
        result[key]["p99"] < GOAL_S and not result[key]["timeouts"]
        for key in ("all_modules_stopped", "serial_stop_on_wire")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
