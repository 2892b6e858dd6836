"""A lab description (config/*.yaml) and the nodes that bring the lab up.

The launch file and ``octopus lab up`` both call :func:`node_specs`, so the two ways of starting a
lab cannot drift apart. No ROS import here: tested without DDS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

POLICIES = ("fcfs", "backfill", "closed_packing", "planner")
_KEYS = {
    "name", "time_scale", "policy", "database", "namespace", "heartbeat_period", "admins",
    "masks", "modules", "notifications",
}  # fmt: skip
_MODULE_KEYS = {"description", "drivers"}


class LabConfigError(ValueError):
    """The lab description is invalid; the message starts with the field."""


@dataclass(frozen=True)
class ModuleEntry:
    description: str
    drivers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabConfig:
    name: str
    modules: tuple[ModuleEntry, ...]
    time_scale: float = 1.0
    policy: str = "planner"
    database: str = "octopus.sqlite"
    namespace: str = "/octopus"
    heartbeat_period: float = 1.0
    admins: tuple[str, ...] = ()
    masks: Mapping[str, Any] = field(default_factory=dict)
    notifications: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


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
        args = ["--ros-args", "-r", f"__node:={self.name}", "-r", f"__ns:={self.namespace}"]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={_ros_value(value)}"]
        return args


def default_lab_file() -> Path:
    """The demo lab as installed in the package's share directory."""
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("octopus_bringup")) / "config" / "demo_lab.yaml"


def load_lab_config(path: str | Path) -> LabConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise LabConfigError(f"lab: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise LabConfigError(f"lab: {path} is not valid YAML: {error}") from None
    config = parse_lab_config(data)
    return replace(config, source=str(path.resolve()))


def parse_lab_config(data: Any) -> LabConfig:
    if not isinstance(data, Mapping):
        raise LabConfigError("lab: expected a mapping")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise LabConfigError(f"lab.{unknown[0]}: unknown field (known: {', '.join(sorted(_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise LabConfigError("lab.name: a non-empty name is required")
    modules = data.get("modules")
    if not isinstance(modules, list) or not modules:
        raise LabConfigError("lab.modules: a list of at least one module is required")
    entries = tuple(_module_entry(m, f"lab.modules[{i}]") for i, m in enumerate(modules))
    time_scale = _positive(data.get("time_scale", 1.0), "lab.time_scale")
    heartbeat = _positive(data.get("heartbeat_period", 1.0), "lab.heartbeat_period")
    policy = data.get("policy", "planner")
    if policy not in POLICIES:
        raise LabConfigError(f"lab.policy: '{policy}' is not one of {', '.join(POLICIES)}")
    namespace = str(data.get("namespace", "/octopus"))
    if not re.fullmatch(r"(/[a-z][a-z0-9_]*)+", namespace):
        raise LabConfigError(f"lab.namespace: '{namespace}' is not an absolute ROS namespace")
    admins = data.get("admins", [])
    if not isinstance(admins, list) or not all(isinstance(a, str) and a for a in admins):
        raise LabConfigError("lab.admins: expected a list of user names")
    for key in ("masks", "notifications"):
        if not isinstance(data.get(key, {}) or {}, Mapping):
            raise LabConfigError(f"lab.{key}: expected a mapping")
    return LabConfig(
        name=name,
        modules=entries,
        time_scale=time_scale,
        policy=policy,
        database=str(data.get("database", "octopus.sqlite")),
        namespace=namespace,
        heartbeat_period=heartbeat,
        admins=tuple(admins),
        masks=dict(data.get("masks") or {}),
        notifications=dict(data.get("notifications") or {}),
    )


def _module_entry(data: Any, where: str) -> ModuleEntry:
    if not isinstance(data, Mapping):
        raise LabConfigError(f"{where}: expected a mapping with 'description'")
    unknown = sorted(set(data) - _MODULE_KEYS)
    if unknown:
        raise LabConfigError(f"{where}.{unknown[0]}: unknown field")
    description = data.get("description")
    if not isinstance(description, str) or not description:
        raise LabConfigError(f"{where}.description: a built-in name or a file path is required")
    drivers = data.get("drivers", {}) or {}
    if not isinstance(drivers, Mapping):
        raise LabConfigError(f"{where}.drivers: expected a mapping of device -> driver settings")
    return ModuleEntry(description=description, drivers=dict(drivers))


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise LabConfigError(f"{where}: expected a positive number, got {value!r}")
    return float(value)


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


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
    from octopus_modules.module_node import load_module_description
    from octopus_modules.ros_conversions import node_name_for

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
            module="octopus_scheduler.scheduler_node",
        )
    ]
    seen: dict[str, str] = {}
    for index, entry in enumerate(config.modules):
        try:
            module = load_module_description(entry.description).module
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
                module="octopus_modules.module_node",
            )
        )
    return specs
