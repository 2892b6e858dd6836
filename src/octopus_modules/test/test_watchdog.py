"""The runtime's watchdog: callbacks at their deadlines from one thread, which ends on close."""

from __future__ import annotations

import threading
import time

from octopus_modules.runtime.watchdog import Watchdog


def watchdog_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_callbacks_fire_in_deadline_order_and_a_disarmed_one_never() -> None:
    watchdog = Watchdog("test-watchdog-order")
    fired: list[str] = []
    done = threading.Event()
    watchdog.arm(0.10, lambda: fired.append("late") or done.set())
    watchdog.arm(0.02, lambda: fired.append("early"))
    watchdog.disarm(watchdog.arm(0.05, lambda: fired.append("disarmed")))
    try:
        assert done.wait(5.0)
        assert fired == ["early", "late"]
    finally:
        watchdog.close()


def test_close_ends_its_thread_and_drops_what_was_armed() -> None:
    watchdog = Watchdog("test-watchdog-close")
    fired: list[str] = []
    watchdog.arm(0.3, lambda: fired.append("after close"))
    assert len(watchdog_threads("test-watchdog-close")) == 1
    watchdog.close()
    deadline = time.monotonic() + 5.0
    while watchdog_threads("test-watchdog-close") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watchdog_threads("test-watchdog-close") == []
    time.sleep(0.4)
    assert fired == []
    watchdog.arm(0.01, lambda: fired.append("armed after close"))  # no thread is started again
    time.sleep(0.1)
    assert fired == [] and watchdog_threads("test-watchdog-close") == []
