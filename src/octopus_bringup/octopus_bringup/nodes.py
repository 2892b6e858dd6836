"""The nodes that bring a lab up, from its lab description.

The launch file and ``octopus lab up`` both call :func:`node_specs`, so the two ways of starting a
lab cannot drift apart. No ROS import here: tested without DDS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from octopus_scheduler.service.lab_config import POLICIES, LabConfig, LabConfigError


@dataclass(frozen=True)
class NodeSpec:
    """One node to start: what launch_ros.actions.Node or a subprocess needs."""

    package: str
    executable: str
    name: str
    namespace: str
    parameters: Mapping[str, Any]
    module: str = ""  # python -m target, for starting it without ros2 run

    def ros_arguments(self) -> list[str]:
        remaps = ["-r", f"__node:={self.name}", "-r", f"__ns:={self.namespace}"]
        return ["--ros-args", *remaps, *self.parameter_arguments()]

    def parameter_arguments(self) -> list[str]:
        """``-p name:=value`` for every parameter."""
        return [
            arg
            for key, value in self.parameters.items()
            for arg in ("-p", f"{key}:={_ros_value(value)}")
        ]


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # rcl reads `-p name:=value` as YAML: a JSON string is a YAML double-quoted scalar, so
        # any text (multi-line YAML, "123", "true", "a: b") arrives as that same string
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def default_lab_file() -> Path:
    """The demo lab as installed in the package's share directory."""
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("octopus_bringup")) / "config" / "demo_lab.yaml"


def node_specs(
    config: LabConfig,
    *,
    time_scale: float | None = None,
    policy: str | None = None,
    namespace: str | None = None,
) -> list[NodeSpec]:
    """The scheduler node and one node per module, with their parameters.

    Module node names come from the description's module name (REP 144: "UV-Vis" -> uv_vis);
    launch arguments override the description's time scale, policy and namespace.
    """
    from octopus_modules.module_factory import resolve_description
    from octopus_modules.ros.ros_conversions import node_name_for

    scale = time_scale if time_scale is not None else config.time_scale
    chosen_policy = policy or config.policy
    if chosen_policy not in POLICIES:
        raise LabConfigError(f"policy: '{chosen_policy}' is not one of {', '.join(POLICIES)}")
    ns = namespace or config.namespace
    specs = [
        NodeSpec(
            package="octopus_scheduler",
            executable="scheduler_node",
            name="scheduler",
            namespace=ns,
            parameters={
                "lab_file": config.source,
                "policy": chosen_policy,
                "database": config.database,
                "heartbeat_period": config.heartbeat_period,
            },
            module="octopus_scheduler.ros.scheduler_node",
        )
    ]
    seen: dict[str, str] = {}
    for index, entry in enumerate(config.modules):
        try:
            module = resolve_description(entry.description).module
        except Exception as error:  # noqa: BLE001 - any load failure names the entry
            raise LabConfigError(f"lab.modules[{index}].description: {error}") from None
        name = node_name_for(module)
        if name in seen:
            raise LabConfigError(
                f"lab.modules[{index}]: module {module} is already in the lab ({seen[name]})"
            )
        seen[name] = entry.description
        parameters: dict[str, Any] = {
            "description": entry.description,
            "time_scale": scale,
            "heartbeat_period": config.heartbeat_period,
            # simulated samples keep their contents across modules (pump -> spectrometer)
            "sample_ledger": f"{config.database}.samples.json",
            "estop_topic": f"{ns}/emergency_stop",  # the scheduler's, in this lab's namespace
        }
        if entry.drivers:
            parameters["driver_overrides"] = yaml.safe_dump(dict(entry.drivers), sort_keys=True)
        specs.append(
            NodeSpec(
                package="octopus_modules",
                executable="module_node",
                name=name,
                namespace=f"{ns}/modules",
                parameters=parameters,
                module="octopus_modules.ros.module_node",
            )
        )
    return specs
