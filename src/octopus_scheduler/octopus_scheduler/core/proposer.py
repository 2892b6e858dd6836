"""Parameter proposals for closed-loop cycles.

The real optimiser (scikit-optimize ask/tell) lives in the scheduler node. The core only needs
"cycle k has these parameter sets". For the simulator and tests this module provides a
**deterministic stand-in proposer** (labelled as such): it picks points on the space's grid by a
hash-free low-discrepancy sequence, so scenarios replay identically. It does not optimise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from octopus_scheduler.core.jobscript import JobSpec

PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


class Proposer(Protocol):
    def __call__(
        self, job_id: str, spec: JobSpec, cycle: int, count: int
    ) -> list[dict[str, float]]:
        """Parameter sets for ``cycle`` of a sequential campaign."""
        ...


def _radical_inverse(index: int, base: int) -> float:
    out, f = 0.0, 1.0 / base
    while index > 0:
        out += f * (index % base)
        index //= base
        f /= base
    return out


def snap(value: float, lo: float, hi: float, step: float) -> float:
    n = round((value - lo) / step)
    return min(hi, lo + n * step)


def standin_proposer(job_id: str, spec: JobSpec, cycle: int, count: int) -> list[dict[str, float]]:
    """Stand-in proposer (NOT Bayesian optimisation): Halton points snapped to the grid."""
    space: Mapping[str, tuple[float, float, float]] = spec.campaign.space
    out: list[dict[str, float]] = []
    for i in range(count):
        index = cycle * count + i + 1
        point = {}
        for d, (name, (lo, hi, step)) in enumerate(sorted(space.items())):
            u = _radical_inverse(index, PRIMES[d % len(PRIMES)])
            point[name] = snap(lo + u * (hi - lo), lo, hi, step)
        out.append(point)
    return out


def expected_point(spec: JobSpec) -> dict[str, float]:
    """A representative parameter set (space centre) to estimate durations of future cycles."""
    return {
        name: snap((lo + hi) / 2, lo, hi, step)
        for name, (lo, hi, step) in spec.campaign.space.items()
    }
