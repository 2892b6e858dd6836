"""Runs a lab's nodes as processes of their own, restarts the ones that crash, stops them all.

Used by ``octopus lab up`` on machines without ``ros2 launch``. Each node's output is prefixed
with its name. Stop: SIGTERM to every process group, wait, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

Printer = Callable[[str], None]


@dataclass
class Supervised:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    crash_times: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        *,
        max_restarts: int = 3,
        restart_window_s: float = 60.0,
        grace_s: float = 5.0,
        printer: Printer | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.grace_s = grace_s
        self.print = printer or (lambda line: print(line, flush=True))
        self.env = dict(env or os.environ)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.children: list[Supervised] = []
        self._stopping = threading.Event()

    def add(self, name: str, argv: Sequence[str]) -> None:
        self.children.append(Supervised(name, list(argv)))

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Supervised) -> None:
        child.process = subprocess.Popen(
            child.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,  # our Ctrl-C is handled here, once, for every child
        )
        assert child.process.stdout is not None
        threading.Thread(
            target=self._pump, args=(child.name, child.process.stdout), daemon=True
        ).start()

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.print(f"[{name}] {raw.decode(errors='replace').rstrip()}")
        stream.close()

    def watch(self, poll_s: float = 0.2) -> int:
        """Block until stop() or until a node crashed too often; returns an exit code."""
        while not self._stopping.wait(poll_s):
            for child in self.children:
                if child.process is None or child.process.poll() is None:
                    continue
                code = child.process.returncode
                now = time.monotonic()
                child.crash_times = [
                    t for t in child.crash_times if now - t < self.restart_window_s
                ]
                child.crash_times.append(now)
                if len(child.crash_times) > self.max_restarts:
                    crashes = len(child.crash_times)
                    self.print(f"[supervisor] {child.name} crashed {crashes} times: giving up")
                    self.stop()
                    return 1
                child.restarts += 1
                self.print(f"[supervisor] {child.name} exited ({code}); restarting")
                self._spawn(child)
        return 0

    def stop(self) -> None:
        self._stopping.set()
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)

    def run_until_signal(self) -> int:
        """start(), then watch() until SIGINT/SIGTERM; every child is stopped on the way out."""
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def on_signal(_signum: int, _frame: object) -> None:
            self._stopping.set()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            self.start()
            code = self.watch()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def python_module_argv(module: str, ros_arguments: Sequence[str]) -> list[str]:
    """Start a node by its Python module: works without ``ros2 run`` and console scripts."""
    return [sys.executable, "-m", module, *ros_arguments]
