"""The supervisor restarts crashed nodes, gives up on a crash loop and stops everything."""

from __future__ import annotations

import sys
import threading

import psutil

from octopus_client.supervisor import Supervisor


def test_a_crash_loop_is_restarted_then_given_up() -> None:
    lines: list[str] = []
    supervisor = Supervisor(max_restarts=2, restart_window_s=60, printer=lines.append)
    supervisor.add("crasher", [sys.executable, "-c", "print('up'); raise SystemExit(3)"])
    supervisor.start()
    assert supervisor.watch(poll_s=0.05) == 1
    crasher = supervisor.children[0]
    assert crasher.restarts == 2
    assert any("crashed 3 times: giving up" in line for line in lines)


def test_stop_ends_every_process_group() -> None:
    supervisor = Supervisor(grace_s=2.0, printer=lambda _line: None)
    for name in ("a", "b"):
        # each child starts a grandchild: the whole group must go
        supervisor.add(
            name,
            [
                sys.executable,
                "-c",
                "import subprocess, sys, time;"
                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
                "time.sleep(60)",
            ],
        )
    supervisor.start()
    watcher = threading.Thread(target=supervisor.watch, kwargs={"poll_s": 0.05})
    watcher.start()
    parents = [psutil.Process(c.process.pid) for c in supervisor.children]
    psutil.wait_procs([], timeout=0)
    family = parents + [k for p in parents for k in _children_soon(p)]
    assert len(family) == 4
    supervisor.stop()
    watcher.join(timeout=10)
    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
    assert all(c.restarts == 0 for c in supervisor.children)


def _children_soon(process: psutil.Process) -> list[psutil.Process]:
    for _ in range(100):
        children = process.children()
        if children:
            return children
        psutil.wait_procs([], timeout=0.05)
    return []
