"""A lab description (octopus_bringup's config/*.yaml): which modules, time scale, policy,
database, admins, lab-level masks, notifications. Read by the scheduler node and by bring-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from octopus_scheduler.core.retry_policy import RetryPolicy

POLICIES = ("fcfs", "backfill", "closed_packing", "planner")
_KEYS = {
    "name", "time_scale", "policy", "database", "namespace", "heartbeat_period", "admins",
    "masks", "modules", "notifications", "retries", "policy_options", "retry_policy",
    "auth", "secrets",
}  # fmt: skip
_RETRY_KEYS = {"max_retries", "backoff_s", "backoff_max_s", "device_failure_limit"}
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
    retries: int = 0  # a failed step is retried this often unless the job script says
    max_retries: int = 10  # no job script may ask for more
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(10.0, 600.0, 3))
    policy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = ""
    auth: str = "off"  # "required": only signed requests (README, "Authenticated users")
    secrets: str = ""  # the users' keys (a file outside the repository); $OCTOPUS_SECRETS wins


def load_lab_config(path: str | Path) -> LabConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise LabConfigError(f"lab: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise LabConfigError(f"lab: {path} is not valid YAML: {error}") from None
    config = parse_lab_config(data)
    if config.secrets and not Path(config.secrets).is_absolute():  # next to the lab file
        config = replace(config, secrets=str(path.resolve().parent / config.secrets))
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
    policy_options = data.get("policy_options") or {}
    if not isinstance(policy_options, Mapping) or not all(
        p in POLICIES and isinstance(o, Mapping) for p, o in policy_options.items()
    ):
        raise LabConfigError(
            "lab.policy_options: expected {policy: {option: value}} with policies from "
            + ", ".join(POLICIES)
        )
    max_retries, retry = _retry_policy(data.get("retry_policy") or {})
    retries = data.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= max_retries:
        raise LabConfigError(
            f"lab.retries: expected a whole number 0..{max_retries} (retry_policy.max_retries), "
            f"got {retries!r}"
        )
    auth = data.get("auth", "off")
    if auth not in ("off", "required"):
        raise LabConfigError(f"lab.auth: expected off or required, got {auth!r}")
    secrets = data.get("secrets", "") or ""
    if not isinstance(secrets, str):
        raise LabConfigError("lab.secrets: expected the path of the lab's secrets file")
    return LabConfig(
        name=name,
        auth=auth,
        secrets=secrets,
        retries=retries,
        max_retries=max_retries,
        retry=retry,
        modules=entries,
        time_scale=time_scale,
        policy=policy,
        database=str(data.get("database", "octopus.sqlite")),
        namespace=namespace,
        heartbeat_period=heartbeat,
        admins=tuple(admins),
        masks=dict(data.get("masks") or {}),
        notifications=dict(data.get("notifications") or {}),
        policy_options={p: dict(o) for p, o in policy_options.items()},
    )


def _retry_policy(data: Any) -> tuple[int, RetryPolicy]:
    """``retry_policy``: max_retries (0..100, default 10), backoff_s (lab seconds before the first
    retry, doubling per attempt, default 10), backoff_max_s (default 600), device_failure_limit
    (failures in a row that take a device out of order for an operator, default 3; 0: never)."""
    if not isinstance(data, Mapping):
        raise LabConfigError("lab.retry_policy: expected a mapping")
    unknown = sorted(set(data) - _RETRY_KEYS)
    if unknown:
        known = ", ".join(sorted(_RETRY_KEYS))
        raise LabConfigError(f"lab.retry_policy.{unknown[0]}: unknown field (known: {known})")

    def whole(key: str, default: int, high: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise LabConfigError(f"lab.retry_policy.{key}: expected 0..{high}, got {value!r}")
        return value

    def seconds(key: str, default: float) -> float:
        value = data.get(key, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not 0 <= value <= 86_400:
            raise LabConfigError(f"lab.retry_policy.{key}: expected 0..86400 s, got {value!r}")
        return float(value)

    backoff, ceiling = seconds("backoff_s", 10.0), seconds("backoff_max_s", 600.0)
    if ceiling < backoff:
        raise LabConfigError("lab.retry_policy.backoff_max_s: below backoff_s")
    limit = whole("device_failure_limit", 3, 1000)
    return whole("max_retries", 10, 100), RetryPolicy(backoff, ceiling, limit)


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
