"""Several module nodes in one process and one executor (a big simulated lab on few cores).

Each node is the ordinary :class:`~octopus_modules.ros.module_node.ModuleNode` with its own name and
parameters; they share one MultiThreadedExecutor with the threads each node needs
(:meth:`~octopus_modules.ros.module_node.ModuleNode.executor_threads`: a running module goal holds
an executor thread for its duration).

    python -m octopus_client.module_host SPEC.json

SPEC.json: ``{"nodes": [{"name": "m0", "namespace": "/octopus/modules",
"parameters": {"description": "...", "time_scale": 600.0, ...}}, ...]}``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    spec = json.loads(Path(argv[0]).read_text())
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from octopus_modules.ros.exit_deadline import DDS_TEARDOWN_S, exit_after
    from octopus_modules.ros.module_node import ModuleNode

    rclpy.init(args=None)
    nodes: list[Any] = []
    try:
        for entry in spec["nodes"]:
            overrides = [Parameter(k, value=v) for k, v in entry["parameters"].items()]
            nodes.append(
                ModuleNode(
                    node_name=entry["name"],
                    namespace=entry.get("namespace", "/octopus/modules"),
                    parameter_overrides=overrides,
                )
            )
        executor = MultiThreadedExecutor(num_threads=sum(n.executor_threads() for n in nodes))
        for node in nodes:
            executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        # stopped as asked (not by an error, whose exit code must stay): what is left is DDS's,
        # and Fast DDS can hang in it
        exit_after(DDS_TEARDOWN_S)
    finally:
        for node in nodes:
            try:
                node.destroy_node()
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
