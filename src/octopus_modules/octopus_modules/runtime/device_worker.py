"""One thread per device that runs its back end's actions, one at a time.

Why not call the back end from the goal's thread: a back end that ignores its cancel
event (a firmware that stopped answering, a driver bug) would then hold the goal,
its devices and an emergency stop forever. With a worker, the runtime waits for the
call, and if a stop is not honoured within a grace period it *abandons* the call:
the goal ends, the device is marked in error, and because the worker runs one call
at a time a later call can never drive the device while the stuck one is inside it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from typing import Any

from octopus_modules.drivers.backend import DeviceBackend


class ActionAbandoned(Exception):
    """The back end did not return within the grace period after a stop."""


class DeviceCall:
    """One action handed to a worker; :meth:`wait` returns its data or raises its error."""

    def __init__(self, action: str, params: Mapping[str, Any], stop: threading.Event) -> None:
        self.action = action
        self.params = params
        self.stop = stop
        self._cond = threading.Condition()
        self._finished = False
        self._abandoned = False
        self._result: dict[str, Any] = {}
        self._error: BaseException | None = None

    def finish(self, result: dict[str, Any] | None, error: BaseException | None) -> None:
        with self._cond:
            self._finished = True
            self._result, self._error = result or {}, error
            self._cond.notify_all()

    def abandon(self) -> None:
        with self._cond:
            if not self._finished:
                self._abandoned = True
                self._cond.notify_all()

    def wait(self) -> dict[str, Any]:
        with self._cond:
            while not (self._finished or self._abandoned):
                self._cond.wait()
            if not self._finished:
                raise ActionAbandoned(self.action)
            if self._error is not None:
                raise self._error
            return self._result


class DeviceWorker:
    def __init__(self, backend: DeviceBackend) -> None:
        self.backend = backend
        self._queue: queue.SimpleQueue[DeviceCall | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, action: str, params: Mapping[str, Any], stop: threading.Event) -> DeviceCall:
        call = DeviceCall(action, params, stop)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"device-{self.backend.name}", daemon=True
                )
                self._thread.start()
        self._queue.put(call)
        return call

    def shutdown(self) -> None:
        """Let the thread end after the call it is in (if any)."""
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                with self._lock:
                    self._thread = None
                return
            try:
                call.finish(self.backend.execute(call.action, call.params, call.stop), None)
            except BaseException as exc:  # handed to the waiting goal, which decides
                call.finish(None, exc)
