"""What every OCTOPUS node does the same way: latched QoS, typed parameters, its main loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

# State a late joiner must see (a description, the e-stop, the schedule): the last one is kept.
LATCHED = QoSProfile(
    depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)


def declare(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare a parameter (its type is the default's) with a description; return its value."""
    return node.declare_parameter(name, default, ParameterDescriptor(description=description)).value


def run_node(
    make_node: Callable[[], Node],
    logger_name: str,
    *,
    args: list[str] | None = None,
    threads: int = 8,
    on_exit: Callable[[Node], None] | None = None,
) -> None:
    """Init, build the node (a construction error is logged, exit code 1), spin until Ctrl-C or
    SIGTERM, clean up."""
    rclpy.init(args=args)
    try:
        node = make_node()
    except Exception as error:  # a bad description or configuration: say what, exit non-zero
        rclpy.logging.get_logger(logger_name).fatal(str(error))
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # let running callbacks finish before what they use (a database) is closed
        executor.shutdown(timeout_sec=5.0)
        if on_exit is not None:
            on_exit(node)
        node.destroy_node()
        rclpy.try_shutdown()
