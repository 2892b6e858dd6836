"""Waiting on rclpy futures with a deadline: a request whose answer was dropped must not hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for_future(future: Any, timeout: float) -> Any:
    """Block until ``future`` (spun by an executor in another thread) is done; return its result.

    Raises TimeoutError naming the wait when it is not done within ``timeout`` seconds.
    """
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout):
        raise TimeoutError(f"future not done after {timeout:.1f} s")
    return future.result()


def call_with_retry(make_future: Callable[[], Any], timeout: float, attempts: int = 3) -> Any:
    """Call an idempotent request up to ``attempts`` times, each with ``timeout``; see call_once.

    Discovery can be one-sided for a few seconds after ``wait_for_server`` returns; a response to a
    not-yet-matched client is dropped, so a first request may never be answered.
    """
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return wait_for_future(make_future(), timeout)
        except TimeoutError as error:
            last = error
    raise TimeoutError(f"no answer after {attempts} attempts of {timeout:.1f} s") from last


def call_once(client: Any, request: Any, timeout: float, *, probe: Any) -> Any:
    """Call a request that must not take effect twice (a replay, a cancel of what is cancelled).

    ``probe``, a request of the same service that changes nothing, is called until answered first:
    the server then has our reply reader, and the one call of ``request`` is answered.
    """
    call_with_retry(lambda: client.call_async(probe), timeout)
    return wait_for_future(client.call_async(request), timeout)


def wait_until(condition: Callable[[], T], timeout: float, interval: float = 0.02) -> T:
    """Return the first truthy value of ``condition()`` within ``timeout`` s, else TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout:.1f} s")
        time.sleep(interval)
