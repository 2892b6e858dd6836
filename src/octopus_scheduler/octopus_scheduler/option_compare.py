"""Compare option sets of one policy over seeded generated lab days.

Run as ``python -m octopus_scheduler.option_compare [--seeds A:B] [--jobs N] [--load X]
[--bo-share X] [--policy NAME] --variant LABEL[:KEY=VALUE,...] ...``; for example the
planner's orders within a job::

    python -m octopus_scheduler.option_compare --seeds 0:30 \\
        --variant ready:within_orders=ready --variant default: \\
        --variant all:within_orders=ready+chunk+admit_chunk

(``+`` separates the items of a list value). Prints, per day, each variant's Σ total job time
relative to the first variant, then the sums, the worst and best day and the CPU time. Greedy
policies are chaotic: judge an option by many days, not by one.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .generator import random_scenario
from .simulate_cli import _option_value
from .simulator import simulate

H = 3600.0


@dataclass
class VariantResult:
    label: str
    options: dict[str, Any]
    totals_h: list[float] = field(default_factory=list)
    cpu_s: float = 0.0


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """'label:key=value,key=value' -> (label, options); '+' in a value separates list items."""
    label, _, rest = text.partition(":")
    if not label:
        raise ValueError(f"--variant wants LABEL[:KEY=VALUE,...], not {text!r}")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--variant {label}: wants KEY=VALUE, not {item!r}")
        options[key] = ",".join(value.split("+")) if "+" in value else _option_value(value)
    return label, options


def compare(
    variants: Sequence[tuple[str, dict[str, Any]]],
    seeds: range,
    policy: str = "planner",
    **generator: Any,
) -> list[VariantResult]:
    results = [VariantResult(label, options) for label, options in variants]
    for seed in seeds:
        scenario = random_scenario(seed, **generator)
        for res in results:
            t0 = time.process_time()
            rep = simulate(scenario, policy, policy_options=res.options, timeline=False)
            res.cpu_s += time.process_time() - t0
            res.totals_h.append(rep.sums["total"] / H)
    return results


def format_compare(results: Sequence[VariantResult], seeds: range) -> str:
    base = results[0]
    lines = ["seed  " + "  ".join(f"{r.label:>12}" for r in results)]
    for i, seed in enumerate(seeds):
        cells = [f"{base.totals_h[i]:10.2f} h"]
        cells += [f"{r.totals_h[i] / base.totals_h[i] - 1:+12.1%}" for r in results[1:]]
        lines.append(f"{seed:<5} " + "  ".join(cells))
    lines.append("")
    for r in results:
        rel = [t / b - 1 for t, b in zip(r.totals_h, base.totals_h, strict=True)]
        change = sum(r.totals_h) / sum(base.totals_h) - 1
        lines.append(
            f"{r.label:>12}: Σ {sum(r.totals_h):9.1f} h ({change:+.1%} vs {base.label}), "
            f"worst day {max(rel):+.1%}, best day {min(rel):+.1%}, "
            f"CPU {r.cpu_s:.1f} s  {r.options or '(defaults)'}"
        )
    return "\n".join(lines)


def _seeds(text: str) -> range:
    a, sep, b = text.partition(":")
    return range(int(a), int(b)) if sep else range(int(a), int(a) + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m octopus_scheduler.option_compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=_seeds, default=range(0, 10), help="A:B (B excluded)")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--modules", type=int, default=3)
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--bo-share", type=float, default=0.2)
    parser.add_argument("--policy", default="planner")
    parser.add_argument("--variant", action="append", required=True, help="LABEL[:K=V,...]")
    args = parser.parse_args(argv)
    try:
        variants = [parse_variant(v) for v in args.variant]
    except ValueError as exc:
        parser.error(str(exc))
    try:
        results = compare(
            variants,
            args.seeds,
            args.policy,
            jobs=args.jobs,
            modules=args.modules,
            load=args.load,
            bo_share=args.bo_share,
        )
    except ValueError as exc:  # a bad policy option
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_compare(results, args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
