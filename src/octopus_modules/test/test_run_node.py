"""run_node keeps a node alive when one of its callbacks raises (the error is logged), and the
node still stops cleanly on SIGINT. A real rclpy node in a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

NODE = textwrap.dedent(
    """
    from rclpy.node import Node
    from octopus_modules.ros.ros_common import run_node

    class Flaky(Node):
        def __init__(self):
            super().__init__("flaky")
            self.calls = 0
            self.create_timer(0.05, self.tick)

        def tick(self):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("bad data in one callback")
            if self.calls == 6:
                print("still serving after the failure", flush=True)

    run_node(Flaky, "flaky")
    """
)


def test_a_failing_callback_is_logged_and_the_node_goes_on() -> None:
    env = os.environ.copy()  # the session's own ROS domain, LOCALHOST discovery
    process = subprocess.Popen(
        [sys.executable, "-c", NODE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "still serving after the failure" in line:
                break
        else:
            raise AssertionError("".join(lines))
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(lines) + out
    assert "a callback failed:" in text and "RuntimeError: bad data in one callback" in text
    assert process.returncode == 0, text
    assert "KeyboardInterrupt" not in text
