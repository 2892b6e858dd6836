"""An in-process rclpy node with its own Context and a spinning executor, torn down safely.

Teardown order matters (each step reproduced as a failure on our machines): shut the executor
down, join its thread (else the process aborts at exit and leaves shared memory), destroy the
node, shut the context down, drop every reference and collect garbage (the DDS participant is
only freed by the GC; a leaked participant breaks later tests' discovery).

Nothing the executor spins is destroyed while it spins: rclpy (Jazzy) may still be building a
wait set with it or handing out its ready callbacks, and a destroyed action client (or the event
handler of a destroyed subscription) there kills the executor's thread (``InvalidHandle``);
everything spun by it then goes silent. So a test does not destroy what it made on the session's
node: ``close`` destroys the node's action clients and servers, then the node with everything
else on it, after the executor has stopped. A node a test adds to the executor is retired the
same way. An executor that died is reported at ``close`` with its traceback.

``spin=False``: no thread; a single-threaded executor that the test (or the code under test, a
GUI timer say) spins itself.
"""

from __future__ import annotations

import gc
import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.action import ActionClient, ActionServer
from rclpy.context import Context
from rclpy.executors import Executor, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node


class RosSession:
    def __init__(self, node_name: str = "octopus_test_client", *, spin: bool = True) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0")))
        self.node: Node = rclpy.create_node(node_name, context=self.context)
        self.executor: Executor = (
            MultiThreadedExecutor(num_threads=2, context=self.context)
            if spin
            else SingleThreadedExecutor(context=self.context)
        )
        self.executor.add_node(self.node)
        self._retired: list[Callable[[], None]] = []
        self._closing = False
        self.spin_failure: str | None = None
        self._thread: threading.Thread | None = None
        if spin:
            self._thread = threading.Thread(
                target=self._spin, name=f"spin-{node_name}", daemon=True
            )
            self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - kept for close, unless we were closing anyway
            if not self._closing:
                self.spin_failure = traceback.format_exc()

    def spinning(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def retire(self, node: Node, *destroy: Callable[[], None]) -> None:
        """Stop spinning ``node``; it and ``destroy`` (e.g. its action client's) go at close."""
        self.executor.remove_node(node)
        self._retired.extend([*destroy, node.destroy_node])

    def close(self) -> None:
        self._closing = True
        self.executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        for destroy in self._retired:
            destroy()
        self._retired.clear()
        for waitable in list(self.node.waitables):  # destroy_node leaves actions alive
            if isinstance(waitable, ActionClient | ActionServer):
                waitable.destroy()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.node = None  # type: ignore[assignment]
        self.executor = None  # type: ignore[assignment]
        self.context = None  # type: ignore[assignment]
        gc.collect()
        if self.spin_failure is not None:
            raise RuntimeError(f"the session's executor died:\n{self.spin_failure}")

    def __enter__(self) -> RosSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
