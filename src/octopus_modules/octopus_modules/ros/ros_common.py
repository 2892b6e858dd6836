"""What every OCTOPUS node does the same way: latched QoS, typed parameters, its main loop."""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from octopus_modules.ros.exit_deadline import DDS_TEARDOWN_S, exit_after

# State a late joiner must see (a description, the e-stop, the schedule): the last one is kept.
LATCHED = QoSProfile(
    depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)


def declare(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare a parameter (its type is the default's) with a description; return its value."""
    return node.declare_parameter(name, default, ParameterDescriptor(description=description)).value


class _StopSignals:
    """SIGINT and SIGTERM stop a node once: the first raises KeyboardInterrupt in the main thread
    (rclpy's own handler, which runs first, has already shut the context down, so the executor
    returns); every later one is ignored, so the clean-up runs to its end.

    Under ``ros2 launch`` a Ctrl-C reaches a node twice (from the terminal and from launch, which
    then escalates to SIGTERM), and ``octopus lab up`` sends SIGTERM; a node must exit 0 without a
    traceback in every case.
    """

    def __init__(self) -> None:
        self.stopping = False
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:  # Python allows signal handlers in the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self)

    def __call__(self, _signum: int, _frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt

    def ignore_from_now_on(self) -> None:
        """From now on SIGINT and SIGTERM do nothing, also while Python finalizes (it resets
        handlers of its own to the default action then, but leaves SIG_IGN alone: a late
        second Ctrl-C would otherwise kill the process with -2)."""
        self.stopping = True
        if self.installed:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)


def run_node(
    make_node: Callable[[], Node],
    logger_name: str,
    *,
    args: list[str] | None = None,
    threads: int | Callable[[Node], int] = 8,
    on_exit: Callable[[Node], None] | None = None,
) -> None:
    """Init, build the node (a construction error is logged, exit code 1), spin until SIGINT or
    SIGTERM, clean up and return (exit code 0, whatever signals follow during the clean-up).
    ``threads``: the executor's, or how many the built node needs."""
    stop = _StopSignals()  # before rclpy.init: rclpy's handlers call ours after their own
    rclpy.init(args=args)
    try:
        node = make_node()
    except KeyboardInterrupt:  # stopped while starting
        stop.ignore_from_now_on()
        rclpy.try_shutdown()
        stop.ignore_from_now_on()
        return
    except Exception as error:  # a bad description or configuration: say what, exit non-zero
        stop.ignore_from_now_on()
        if not rclpy.ok():  # the context was shut down under the construction: a stop
            rclpy.try_shutdown()
            stop.ignore_from_now_on()
            return
        rclpy.logging.get_logger(logger_name).fatal(f"{type(error).__name__}: {error}")
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    executor = MultiThreadedExecutor(num_threads=threads(node) if callable(threads) else threads)
    executor.add_node(node)
    try:
        while rclpy.ok():
            try:
                executor.spin()
            except (KeyboardInterrupt, ExternalShutdownException):
                break
            except Exception:  # one failed callback must not take the node (and the lab) down
                node.get_logger().error(f"a callback failed:\n{traceback.format_exc()}")
    finally:
        stop.ignore_from_now_on()
        # let running callbacks finish before what they use (a database) is closed
        executor.shutdown(timeout_sec=5.0)
        if on_exit is not None:
            on_exit(node)
        exit_after(DDS_TEARDOWN_S)  # what is left is DDS's, and Fast DDS can hang in it
        node.destroy_node()
        rclpy.try_shutdown()  # restores the handlers rclpy found: ours again
        stop.ignore_from_now_on()
