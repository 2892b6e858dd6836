"""Scheduling policies, selectable by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from octopus_scheduler.core.policies.base import Admission, Policy
from octopus_scheduler.core.policies.fifo import Backfill, ClosedPacking, Fcfs
from octopus_scheduler.core.policies.planner import Planner

POLICIES: dict[str, type[Policy]] = {
    "fcfs": Fcfs,
    "backfill": Backfill,
    "closed_packing": ClosedPacking,
    "planner": Planner,
}


def available_policies() -> list[str]:
    return list(POLICIES)


def make_policy(name: str, options: Mapping[str, Any] | None = None) -> Policy:
    if name not in POLICIES:
        raise ValueError(f"policy: unknown policy '{name}' (known: {', '.join(POLICIES)})")
    return POLICIES[name](dict(options or {}))


__all__ = ["Admission", "Policy", "available_policies", "make_policy", "POLICIES"]
