"""`octopus bench`: both published scenarios under every policy, next to the published numbers,
the bounds, the offline optimum (CP-SAT), and the core's decision latency.

Run as ``python -m octopus_scheduler.twin.bench [--offline-seconds N] [--no-offline] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

from octopus_scheduler.core.policies import available_policies
from octopus_scheduler.twin.generator import random_scenario
from octopus_scheduler.twin.scenario import Scenario, load_scenario
from octopus_scheduler.twin.simulator import SimReport, latency_summary, simulate

SCENARIOS = ("fig5d-parallelisation", "fig8-platform-day")
H = 3600.0


def _run(sc: Scenario, policy: str) -> SimReport:
    # the published FCFS protocol of Fig. 8 queues every job at the start of the day
    protocol = next(
        (p for p in sc.published.values() if isinstance(p, dict) and p.get("policy") == policy),
        {},
    )
    return simulate(sc, policy, all_at_start=bool(protocol.get("all_at_start")))


def _published_rows(sc: Scenario) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for key, pub in sc.published.items():
        if isinstance(pub, dict) and "sums" in pub:
            rows.append((f"published {key}", pub))
    return rows


Chunking = dict[str, dict[int, list[int]]]  # job -> group -> chunk sizes


def best_known_schedule(name: str) -> tuple[Chunking, dict[str, float]] | None:
    """The best schedule found so far for a built-in scenario (``scenarios/<name>.best.json``,
    written by ``python -m octopus_scheduler.twin.tradeoff --save``): its chunking and step starts.

    The bench never trusts its numbers: the schedule only seeds the offline search, which first
    re-checks it step by step in the offline model."""
    res = resources.files("octopus_scheduler.twin").joinpath("scenarios", f"{name}.best.json")
    if not res.is_file():
        return None
    data = json.loads(res.read_text())
    chunking = {
        job: {int(g): [int(n) for n in sizes] for g, sizes in groups.items()}
        for job, groups in data["chunking"].items()
    }
    return chunking, {step: float(t) for step, t in data["starts_s"].items()}


def bench_scenario(name: str, offline_seconds: float) -> dict[str, Any]:
    sc = load_scenario(name)
    out: dict[str, Any] = {"scenario": name, "policies": {}, "published": {}}
    reports: dict[str, SimReport] = {}
    for policy in available_policies():
        rep = _run(sc, policy)
        reports[policy] = rep
        out["policies"][policy] = {
            "sums_h": {k: v / H for k, v in rep.sums.items()},
            "makespan_h": rep.makespan / H,
            "latency_ms": latency_summary(rep.latencies_s),
        }
    for label, pub in _published_rows(sc):
        out["published"][label] = {
            "sums_h": pub["sums"],
            "makespan_h": pub.get("makespan_h"),
            "policy": pub.get("policy"),
        }
    out["bounds"] = sc.published.get("bounds", {})
    out["targets"] = sc.published.get("targets", {})
    if offline_seconds > 0:
        from octopus_scheduler.twin.offline import solve_offline

        seeds = {
            p: (reports[p].chunking, {r["step_id"]: r["start"] for r in reports[p].timeline})
            for p in ("planner", "closed_packing")
        }
        known = best_known_schedule(name)
        if known is not None:
            seeds["best known schedule"] = known
        best, best_from = None, ""
        for label, (chunking, hint) in seeds.items():
            res = solve_offline(sc, chunking, hint=hint, time_limit_s=offline_seconds)
            if res.objective_s is not None and (best is None or res.objective_s < best.objective_s):
                best, best_from = res, label
        if best is not None:
            out["offline"] = best.to_dict() | {"seeded_by": best_from}
    return out


def latency_bench(queued: int = 200, seed: int = 11) -> dict[str, Any]:
    """Per-event decision latency with ``queued`` jobs submitted at once (all queued)."""
    sc = random_scenario(seed, jobs=queued, modules=4, load=1000.0)
    out: dict[str, Any] = {}
    for policy in available_policies():
        rep = simulate(sc, policy, timeline=False)
        out[policy] = latency_summary(rep.latencies_s[1:])  # the first call admits all 200 jobs
        out[policy]["submit_all_ms"] = rep.latencies_s[0] * 1000
    return out


def size_bench(jobs: int = 1000, seed: int = 5) -> dict[str, float]:
    sc = random_scenario(seed, jobs=jobs, modules=6, load=0.8)
    out = {}
    for policy in available_policies():
        t0 = time.perf_counter()
        simulate(sc, policy, timeline=False)
        out[policy] = time.perf_counter() - t0
    return out


def _fmt_row(label: str, sums: dict[str, float], makespan: float | None, note: str = "") -> str:
    mk = "-" if makespan is None else f"{makespan:8.2f}"
    return (
        f"  {label:<28} {sums.get('waiting', float('nan')):9.2f} "
        f"{sums.get('turnaround', float('nan')):9.2f} {sums.get('total', float('nan')):9.2f} "
        f"{mk:>8}  {note}"
    )


def format_bench(results: dict[str, Any]) -> str:
    lines = ["OCTOPUS-on-ROS-2 scheduler bench (hours)", ""]
    for res in results["scenarios"]:
        lines.append(f"{res['scenario']}")
        lines.append(f"  {'':<28} {'Σwaiting':>9} {'Σturn':>9} {'Σtotal':>9} {'makespan':>8}")
        pubs = res["published"]
        for label, pub in pubs.items():
            lines.append(_fmt_row(label, pub["sums_h"], pub.get("makespan_h")))
        for policy, r in res["policies"].items():
            note = ""
            ref = next((p for p in pubs.values() if p.get("policy") == policy), None)
            if ref is not None:
                pt, ot = ref["sums_h"]["total"], r["sums_h"]["total"]
                note = f"Σtotal {100 * (ot - pt) / pt:+.1f}% vs published"
            lines.append(_fmt_row(policy, r["sums_h"], r["makespan_h"], note))
        b = res.get("bounds", {})
        if b:
            lines.append(
                f"  bounds: Σtotal >= {b.get('total_h', '-')}, "
                f"makespan >= {b.get('makespan_h', '-')}"
                + (f" ({b['note']})" if "note" in b else "")
            )
        off = res.get("offline")
        if off:
            lines.append(
                f"  offline optimum (CP-SAT, all arrivals known): Σtotal {off['objective_h']:.2f} "
                f"[{off['status']}, proven bound {off['bound_h']:.2f}], makespan "
                f"{off['makespan_h']:.2f}"
            )
            pl = res["policies"]["planner"]["sums_h"]["total"]
            gap = f"{100 * (pl - off['objective_h']) / off['objective_h']:+.1f}%"
            to_bound = f"{100 * (pl - off['bound_h']) / off['bound_h']:+.1f}%"
            lines.append(
                f"  planner vs offline: {gap} (vs its proven bound: {to_bound}); "
                f"best schedule seeded by the {off['seeded_by']}"
            )
            if off["status"] != "OPTIMAL":  # the solver's best is an upper bound, nothing more
                lines.append(
                    "  (not proven optimal: a longer search can find better schedules and "
                    "tighter bounds, e.g. python -m octopus_scheduler.twin.tradeoff for fig8)"
                )
        t = res.get("targets", {}).get("planner")
        if t:
            pr = res["policies"]["planner"]
            ok_total = pr["sums_h"]["total"] <= t["total_h"]
            ok_mk = pr["makespan_h"] <= t["makespan_h"]
            line = (
                f"  planner targets: Σtotal <= {t['total_h']} {'met' if ok_total else 'MISSED'}, "
                f"makespan <= {t['makespan_h']} {'met' if ok_mk else 'MISSED'}"
            )
            if off and "offline_gap_pct" in t:
                gap_pct = 100 * (pr["sums_h"]["total"] / off["objective_h"] - 1)
                ok_gap = gap_pct <= t["offline_gap_pct"]
                line += (
                    f", within {t['offline_gap_pct']}% of the offline optimum "
                    f"{'met' if ok_gap else 'MISSED'}"
                )
            lines.append(line)
        lines.append("")
    lat = results.get("latency")
    if lat:
        lines.append("decision latency per event with 200 jobs queued (ms)")
        for policy, s in lat.items():
            lines.append(
                f"  {policy:<16} p50 {s['p50']:.3f}  p99 {s['p99']:.3f}  max {s['max']:.2f}  "
                f"(first event: {s['submit_all_ms']:.1f})"
            )
        lines.append("")
    size = results.get("size")
    if size:
        lines.append("simulating a generated 1,000-job scenario (s of wall time)")
        lines.append("  " + ", ".join(f"{p} {t:.2f}" for p, t in size.items()))
    return "\n".join(lines)


def collect(offline_seconds: float = 30.0, latency: bool = True) -> dict[str, Any]:
    results: dict[str, Any] = {"scenarios": [bench_scenario(n, offline_seconds) for n in SCENARIOS]}
    if latency:
        results["latency"] = latency_bench()
        results["size"] = size_bench()
    return results


def run_bench(offline_seconds: float = 30.0, latency: bool = True) -> str:
    return format_bench(collect(offline_seconds, latency))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="octopus bench", description=__doc__)
    parser.add_argument(
        "--offline-seconds",
        type=float,
        default=30.0,
        help="CP-SAT time per offline solve (0 = skip)",
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the latency/size runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = collect(args.offline_seconds, not args.no_latency)
    print(json.dumps(results, indent=1) if args.json else format_bench(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
