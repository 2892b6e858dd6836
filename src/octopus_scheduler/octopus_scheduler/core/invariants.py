"""Invariants of the core that must hold after every event (checked by tests and `--check`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from octopus_scheduler.core.lab import ZoneKey
from octopus_scheduler.core.runs import DONE, RUNNING
from octopus_scheduler.core.safety_rules import sample_zones

if TYPE_CHECKING:
    from octopus_scheduler.core.scheduler_core import SchedulerCore


class InvariantError(AssertionError):
    pass


def check_invariants(core: SchedulerCore) -> None:
    """Raise InvariantError if a device is double-held, a slot over capacity, a zone holds two
    keys at once, or an order is broken."""
    holders: dict[str, str] = {}
    for step in core.running():
        for d in step.devices:
            if d in holders:
                raise InvariantError(f"device {d} held by {holders[d]} and {step.id}")
            holders[d] = step.id
            if core.holder(d) is not step:
                raise InvariantError(f"device {d} not recorded as held by {step.id}")
        for p in step.preds:
            if p.state != DONE or p.end is None or step.start is None or p.end > step.start:
                raise InvariantError(f"step {step.id} started before predecessor {p.id} ended")
    for d, holder in core.devices().items():
        if holder is not None and holders.get(d) != holder:
            raise InvariantError(f"device {d} held by non-running step {holder}")
    recount: dict[tuple[str, str], int] = {}
    for chunk in core.chunks():
        for visit in chunk.visits:
            if visit.entered and not visit.released:
                for key, n in visit.demand.items():
                    recount[key] = recount.get(key, 0) + n
    for key, (used, cap) in core.slots().items():
        if used < 0 or used > cap:
            raise InvariantError(f"slot {key} used {used} of {cap}")
        if used != recount.get(key, 0):
            raise InvariantError(f"slot {key} count {used} != held by chunks {recount.get(key, 0)}")
    for step in core.running():
        if step.state != RUNNING:
            raise InvariantError(f"step {step.id} in running set with state {step.state}")
    _check_zones(core)


def _check_zones(core: SchedulerCore) -> None:
    """A zoned slot type never holds samples with two different keys (one plate, one temperature).

    Recomputed per sample, not per chunk, so a chunk that mixed keys would be caught too.
    """
    held: dict[tuple[str, str], dict[ZoneKey, str]] = {}
    for chunk in core.chunks():
        route = chunk.job.spec.route
        for i, visit in enumerate(chunk.visits):
            if not visit.entered or visit.released:
                continue
            for sample in chunk.samples:
                for key, zk in sample_zones(core.lab, route, sample, i).items():
                    keys = held.setdefault(key, {})
                    keys.setdefault(zk, sample.id)
                    if len(keys) > 1:
                        who = ", ".join(f"{k} by {s}" for k, s in keys.items())
                        raise InvariantError(f"zone {key[0]}.{key[1]} holds two keys: {who}")
