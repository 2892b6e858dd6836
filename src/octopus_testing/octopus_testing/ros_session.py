"""An in-process rclpy node with its own Context and a spinning executor, torn down safely.

Teardown order matters (each step reproduced as a failure on our machines): shut the executor
down, join its thread (else the process aborts at exit and leaves shared memory), destroy the
node, shut the context down, drop every reference and collect garbage (the DDS participant is
only freed by the GC; a leaked participant breaks later tests' discovery).
"""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node


class RosSession:
    def __init__(self, node_name: str = "octopus_test_client") -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0")))
        self.node: Node = rclpy.create_node(node_name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"spin-{node_name}", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the context was shut down under the spin: done
            pass

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=10.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.node = None  # type: ignore[assignment]
        self.executor = None  # type: ignore[assignment]
        self.context = None  # type: ignore[assignment]
        gc.collect()

    def __enter__(self) -> RosSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
