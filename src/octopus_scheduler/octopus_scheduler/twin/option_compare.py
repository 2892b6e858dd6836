"""Compare option sets of one policy over seeded generated lab days.

Run as ``python -m octopus_scheduler.twin.option_compare [--seeds A:B] [--jobs N] [--load X]
[--bo-share X] [--policy NAME] --variant LABEL[:KEY=VALUE,...] ...``; for example the
planner's orders within a job::

    python -m octopus_scheduler.twin.option_compare --seeds 0:30 \\
        --variant ready:within_orders=ready --variant default: \\
        --variant all:within_orders=ready+chunk+admit_chunk

(``+`` separates the items of a list value). Prints, per day, each variant's Σ total job time
relative to the first variant, then the sums, the worst and best day and the CPU time. Greedy
policies are chaotic: judge an option by many days, not by one.

``--policies`` compares policies instead (the planner against the reference rules) over
``--days`` generated days in each of several settings (``--setting JOBS/LOAD/BO_SHARE``, four by
default). The days' seeds are drawn from ``--seed``, chosen at run time when not given and
printed, so a run can be repeated::

    python -m octopus_scheduler.twin.option_compare --policies --days 25 [--seed S]

It prints Σ total job time and Σ makespan per policy and setting, the days on which the planner
is more than 2 % worse than ``closed_packing``, the mean gain per day, the worst day, and the Σ
of the jobs above each day's lowest priority (the priority promise).
``--planner-variant LABEL:KEY=VALUE,...`` adds a column of the planner with other options, e.g.
the defaults before issue 15: ``--planner-variant before:rollout_jobs=5,priority_guard=job``.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from octopus_scheduler.twin.generator import random_scenario
from octopus_scheduler.twin.simulate_cli import _option_value
from octopus_scheduler.twin.simulator import simulate

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


#: the default settings of ``--policies``: (jobs, load, BO share); load >= 0.7 counts as loaded
SETTINGS = ((20, 0.7, 0.2), (30, 0.9, 0.5), (15, 0.5, 0.0), (25, 0.6, 0.6))
LOADED = 0.7
WORSE = 0.02  # a day on which the planner is more than 2 % worse than the reference counts


@dataclass
class Day:
    setting: tuple[int, float, float]
    seed: int
    totals_h: dict[str, float]
    makespans_h: dict[str, float]
    #: Σ total job time of the jobs above the day's lowest priority (the priority promise)
    high_totals_h: dict[str, float] = field(default_factory=dict)


def day_seeds(
    seed: int, settings: Sequence[tuple[int, float, float]], days: int
) -> list[list[int]]:
    """The day seeds of each setting, drawn from ``seed`` (above the small seeds tests use)."""
    rng = random.Random(seed)
    return [[rng.randrange(10**6, 10**9) for _ in range(days)] for _ in settings]


def compare_policies(
    policies: Sequence[str],
    settings: Sequence[tuple[int, float, float]],
    seeds: Sequence[Sequence[int]],
    *,
    priorities: bool = True,
    progress: Any = None,
    variants: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
) -> tuple[list[Day], dict[str, float]]:
    """Simulate every day under every policy: the days and each policy's CPU seconds.
    ``variants``: extra columns, label -> (policy, options)."""
    runs = {p: (p, {}) for p in policies} | dict(variants or {})
    policies = list(runs)
    out: list[Day] = []
    cpu = dict.fromkeys(policies, 0.0)
    for setting, day_list in zip(settings, seeds, strict=True):
        jobs, load, bo = setting
        for seed in day_list:
            sc = random_scenario(seed, jobs=jobs, load=load, bo_share=bo, priorities=priorities)
            day = Day(setting, seed, {}, {})
            priority = {j.job_id: j.spec.metadata.priority for j in sc.jobs}
            low = min(priority.values(), default=0)
            for policy, (name, options) in runs.items():
                t0 = time.process_time()
                rep = simulate(sc, name, policy_options=options, timeline=False)
                cpu[policy] += time.process_time() - t0
                day.totals_h[policy] = rep.sums["total"] / H
                day.makespans_h[policy] = rep.makespan / H
                day.high_totals_h[policy] = (
                    sum(j["total"] for j in rep.jobs if priority[j["job_id"]] > low) / H
                )
            out.append(day)
            if progress is not None:
                progress(day)
    return out, cpu


def _setting(setting: tuple[int, float, float]) -> str:
    return f"{setting[0]}/{setting[1]:g}/{setting[2]:g}"


def format_policies(
    days: Sequence[Day],
    cpu: Mapping[str, float],
    ours: str = "planner",
    reference: str = "closed_packing",
) -> str:
    policies = list(cpu)
    settings = list(dict.fromkeys(d.setting for d in days))
    width = max(12, *(len(p) for p in policies))
    lines = [
        f"{'setting':<14}{'days':>5}  "
        + "  ".join(f"{p:>{width}}" for p in policies)
        + f"  {ours} vs {reference}: Σ, mean/day, days > {WORSE:.0%}, worst"
    ]

    def row(label: str, group: Sequence[Day]) -> list[str]:
        tot = {p: sum(d.totals_h[p] for d in group) for p in policies}
        mk = {p: sum(d.makespans_h[p] for d in group) for p in policies}
        rel = [d.totals_h[ours] / d.totals_h[reference] - 1 for d in group]
        worst = max(range(len(group)), key=lambda i: rel[i])
        head = f"{label:<14}{len(group):>5}  "
        return [
            head
            + "  ".join(f"{tot[p]:>{width - 2}.1f} h" for p in policies)
            + f"  {tot[ours] / tot[reference] - 1:+.1%}, {sum(rel) / len(rel):+.1%}, "
            f"{sum(r > WORSE for r in rel)}, {rel[worst]:+.1%} (seed {group[worst].seed})",
            f"{'  makespan':<19}" + "  ".join(f"{mk[p]:>{width - 2}.1f} h" for p in policies),
        ]

    for setting in settings:
        lines += row(_setting(setting), [d for d in days if d.setting == setting])
    lines += row("all", days)
    loaded = [d for d in days if d.setting[1] >= LOADED]
    if loaded:
        lines += row(f"load >= {LOADED:g}", loaded)
    rel = [(d.totals_h[ours] / d.totals_h[reference] - 1, d) for d in days]
    r, worst = max(rel, key=lambda x: x[0])
    lines.append("")
    lines.append(
        f"worst day: setting {_setting(worst.setting)} seed {worst.seed}: {ours} "
        f"{worst.totals_h[ours]:.2f} h vs {reference} {worst.totals_h[reference]:.2f} h "
        f"({r:+.1%}); makespan {worst.makespans_h[ours]:.2f} h vs "
        f"{worst.makespans_h[reference]:.2f} h"
    )
    mk_worse = sum(d.makespans_h[ours] > d.makespans_h[reference] * (1 + WORSE) for d in days)
    lines.append(f"days with a makespan > {WORSE:.0%} longer than {reference}'s: {mk_worse}")
    high = {p: sum(d.high_totals_h.get(p, 0.0) for d in days) for p in policies}
    lines.append(
        "Σ total of the jobs above their day's lowest priority: "
        + ", ".join(f"{p} {high[p]:.1f} h" for p in policies)
    )
    lines.append("CPU: " + ", ".join(f"{p} {cpu[p]:.1f} s" for p in policies))
    return "\n".join(lines)


def _parse_setting(text: str) -> tuple[int, float, float]:
    try:
        jobs, load, bo = text.split("/")
        return int(jobs), float(load), float(bo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants JOBS/LOAD/BO_SHARE, not {text!r}") from None


def _seeds(text: str) -> range:
    a, sep, b = text.partition(":")
    return range(int(a), int(b)) if sep else range(int(a), int(a) + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m octopus_scheduler.twin.option_compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=_seeds, default=range(0, 10), help="A:B (B excluded)")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--modules", type=int, default=3)
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--bo-share", type=float, default=0.2)
    parser.add_argument("--policy", default="planner")
    parser.add_argument("--variant", action="append", help="LABEL[:K=V,...]")
    parser.add_argument(
        "--policies",
        nargs="?",
        const="planner,closed_packing,backfill,fcfs",
        help="compare policies (comma-separated, default all) instead of option sets",
    )
    parser.add_argument("--days", type=int, default=25, help="--policies: days per setting")
    parser.add_argument(
        "--setting",
        type=_parse_setting,
        action="append",
        help="--policies: JOBS/LOAD/BO_SHARE (repeatable; four settings by default)",
    )
    parser.add_argument("--seed", type=int, help="--policies: the seed of the day seeds")
    parser.add_argument(
        "--no-priorities", action="store_true", help="--policies: every job at priority 0"
    )
    parser.add_argument(
        "--planner-variant",
        action="append",
        default=[],
        help="--policies: another planner column, LABEL:KEY=VALUE,... (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="--policies: every day")
    args = parser.parse_args(argv)
    if args.policies:
        return _main_policies(args)
    if not args.variant:
        parser.error("give --variant (option sets) or --policies")
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


def _main_policies(args: argparse.Namespace) -> int:
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    for needed in ("planner", "closed_packing"):
        if needed not in policies:
            policies.append(needed)
    settings = args.setting or list(SETTINGS)
    try:
        variants = {
            label: ("planner", options)
            for label, options in (parse_variant(v) for v in args.planner_variant)
        }
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    prio = "" if not args.no_priorities else " --no-priorities"
    print(
        f"seed {seed} (repeat: --policies {','.join(policies)} --days {args.days} --seed {seed}"
        + "".join(f" --setting {_setting(s)}" for s in settings)
        + "".join(f" --planner-variant {v}" for v in args.planner_variant)
        + f"{prio}); days per setting: {args.days}; settings: jobs/load/BO share",
        flush=True,
    )

    def progress(day: Day) -> None:
        if args.verbose:
            rel = day.totals_h["planner"] / day.totals_h["closed_packing"] - 1
            cells = " ".join(f"{p} {hours:.2f}" for p, hours in day.totals_h.items())
            print(f"{_setting(day.setting)} seed {day.seed}: {cells} ({rel:+.1%})", flush=True)

    try:
        days, cpu = compare_policies(
            policies,
            settings,
            day_seeds(seed, settings, args.days),
            priorities=not args.no_priorities,
            progress=progress,
            variants=variants,
        )
    except ValueError as exc:  # a bad planner option
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_policies(days, cpu))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
