"""One thread that fires callbacks at deadlines: the per-action timeouts of a runtime.

A ``threading.Timer`` per device action would start a thread per action (~0.1-0.3 ms
each, and hundreds of threads in a busy module); one watchdog serves them all.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, name: str = "watchdog") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, timeout_s: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` (from the watchdog thread) in ``timeout_s`` unless disarmed."""
        with self._cond:
            handle = next(self._ids)
            self._callbacks[handle] = callback
            heapq.heappush(self._heap, (time.monotonic() + timeout_s, handle))
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return handle

    def close(self) -> None:
        """End the thread; deadlines not reached are dropped (their runtime is closing)."""
        with self._cond:
            self._closed = True
            self._callbacks.clear()
            self._cond.notify()

    def disarm(self, handle: int) -> None:
        with self._cond:
            self._callbacks.pop(handle, None)  # its heap entry is skipped when it comes up

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        self._thread = None
                        return
                    while self._heap and self._heap[0][1] not in self._callbacks:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        _, handle = heapq.heappop(self._heap)
                        callback = self._callbacks.pop(handle)
                        break
                    self._cond.wait(delay)
            try:
                callback()
            except Exception:
                log.exception("watchdog callback failed")
