"""Decisions: the only outputs of the scheduler core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SlotUse:
    module: str
    slot_type: str
    count: int


@dataclass(frozen=True)
class Decision:
    time: float


@dataclass(frozen=True)
class StartStep(Decision):
    step_id: str
    job_id: str
    module: str
    task: str
    step: str
    kind: str
    devices: tuple[str, ...]
    slots: tuple[SlotUse, ...]
    samples: tuple[str, ...]
    params: Mapping[str, Any]
    expected_s: float
    attempt: int = 0  # 0 first, 1.. a retry of a failed attempt
    cycle: int = 0  # the campaign cycle of the samples
    sample_params: tuple[Mapping[str, float], ...] = ()  # each sample's parameters, as ``samples``


@dataclass(frozen=True)
class AbortStep(Decision):
    step_id: str
    job_id: str
    reason: str


@dataclass(frozen=True)
class NeedProposals(Decision):
    job_id: str
    cycle: int
    count: int
    space: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class JobEnded(Decision):
    job_id: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class LowStock(Decision):
    module: str
    item: str
    remaining: int
