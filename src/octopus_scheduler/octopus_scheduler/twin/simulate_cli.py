"""`octopus simulate SCENARIO [--policy NAME] [--json]`: run a scenario in the digital twin."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from octopus_scheduler.core.errors import SpecError
from octopus_scheduler.core.policies import available_policies
from octopus_scheduler.twin.scenario import builtin_scenarios, load_scenario
from octopus_scheduler.twin.simulator import SimReport, latency_summary, simulate


def format_report(report: SimReport) -> str:
    h = 3600.0
    lines = [f"scenario {report.scenario}, policy {report.policy}", ""]
    lines.append(
        f"{'job':>8} {'state':>10} {'submit':>8} {'wait h':>8} {'turn h':>8} {'total h':>8}"
    )
    for j in report.jobs:

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v / h:8.2f}"

        lines.append(
            f"{j['job_id']:>8} {j['state']:>10} {fmt(j['submit'])} {fmt(j['waiting'])} "
            f"{fmt(j['turnaround'])} {fmt(j['total'])}"
        )
    s, m = report.sums, report.means
    lines.append(
        f"{'sum':>8} {'':>10} {'':>8} {s['waiting'] / h:8.2f} {s['turnaround'] / h:8.2f} "
        f"{s['total'] / h:8.2f}"
    )
    lines.append(
        f"{'mean':>8} {'':>10} {'':>8} {m['waiting'] / h:8.2f} {m['turnaround'] / h:8.2f} "
        f"{m['total'] / h:8.2f}"
    )
    lines.append(f"makespan {report.makespan / h:.2f} h")
    busy = ", ".join(f"{d} {u:.0%}" for d, u in sorted(report.device_utilisation.items()))
    lines.append(f"device utilisation: {busy}")
    if report.slot_utilisation:
        slots = ", ".join(f"{k} {u:.0%}" for k, u in sorted(report.slot_utilisation.items()))
        lines.append(f"slot utilisation: {slots}")
    lat = latency_summary(report.latencies_s)
    lines.append(f"decision latency p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms")
    return "\n".join(lines)


def _option_value(text: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true'/'false' -> bool, anything else stays a string."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="octopus simulate", description=__doc__)
    parser.add_argument(
        "scenario", help=f"scenario file or built-in name ({', '.join(builtin_scenarios())})"
    )
    parser.add_argument("--policy", default="planner", choices=available_policies())
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--seed", type=int, default=None, help="noise/failure seed override")
    parser.add_argument(
        "--all-at-start", action="store_true", help="submit every job at t=0 (FCFS protocol)"
    )
    parser.add_argument("--check", action="store_true", help="verify invariants after each event")
    parser.add_argument(
        "--policy-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a policy option over the scenario's (e.g. improve=cpsat); repeatable",
    )
    args = parser.parse_args(argv)
    extra: dict[str, Any] = {}
    for item in args.policy_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --policy-option wants KEY=VALUE, not '{item}'", file=sys.stderr)
            return 2
        extra[key] = _option_value(value)
    try:
        scenario = load_scenario(args.scenario)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = None
    if extra:
        options = {**scenario.policy_options.get(args.policy, {}), **extra}
    try:
        report = simulate(
            scenario,
            args.policy,
            seed=args.seed,
            policy_options=options,
            all_at_start=args.all_at_start,
            check=args.check,
        )
    except ValueError as exc:  # a bad policy option
        if not extra:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
