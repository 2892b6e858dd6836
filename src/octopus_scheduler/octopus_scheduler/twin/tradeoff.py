"""Σ total job time versus makespan on the published lab day: can both planner targets be met?

Run as ``python -m octopus_scheduler.twin.tradeoff [--seconds N] [--limits H ...] [--save PATH]``
(default: the fig8 day, limits 9.8 9.9 10.0 10.1 h, about 3 minutes on 2 cores).

Prints, side by side: the simulated policies (the planner, which admits one vial per chunk for
synthesis jobs; the planner with whole batches; with job 0 at priority 5; closed_packing), the
published OCTOPUS numbers, and for each makespan limit

* the best schedule found by CP-SAT in the offline model of :mod:`offline` (exactly the core's
  steps, masks, slots, precedence, BO cycle order) with every batch split into chunks of one
  sample, re-checked step by step in :func:`offline._solve` (``fix_to_hint``);
* a proven lower bound on Σ total over ALL chunkings, from the per-sample relaxation below.

The per-sample relaxation (``exact_slots=False``). Take any chunking and any schedule feasible in
the offline model. Give every sample its own chunk and keep every per-sample step at its start
time. Then, step by step:

1. Per-sample tasks (PrepareContainer, AddSolution, TransferToUV, MoveContainer, GetAbs) have the
   same duration and devices whatever the chunk size (``per_sample`` durations, one step per
   sample), so every device's no-overlap still holds.
2. Batch tasks (Mix, React) are standby: they hold no device (``Lab.step_devices``; the builder
   refuses a lab with an active batch step, where a copy per sample would add device time). A
   sample's own Mix may start when the chunk's Mix started (that was after all the chunk's
   samples were dosed, so after this one); a batch step of one sample lasts no longer than the
   chunk's (``fixed + per_sample * n + max(param)`` grows with the chunk), so it ends no later.
   The sample's next step keeps its start.
3. The order in which the robot handles a chunk's samples only adds precedence: dropped.
4. Slots: in the offline model a chunk of n samples holds n slots of the module from its first
   step in the visit until max(last step of the visit, first step of the next visit). The
   relaxation gives each sample one slot from its OWN first step in the visit to its OWN last
   step there, an interval inside the chunk's, so the cumulative still holds. (The offline model
   with per-sample chunks is stricter here: a vial that waits for the UV-Vis after its transfer
   keeps its stirrer; ``exact_slots=True`` models exactly that.)
5. Releases (first step >= submit) and the BO rule (a cycle's chunks start after every chunk of
   the previous cycle ended) hold for each sample, since a chunk ends after its samples' steps.
6. A job ends with its last chunk, which ends with its samples' last steps: the relaxed job end
   is no later, so Σ total and the makespan do not grow.
7. Samples of a group with identical step chains (same durations and devices, which holds on
   the fig8 day: the BO parameters only change volumes) are interchangeable, even step by step:
   sort, for every step of the chain, that step's start times over the group's samples and give
   the k-th to the k-th sample. Device use is unchanged (same intervals), precedence holds (if
   every x_j >= y_j, the k-th smallest x >= the k-th smallest y), the slots in use at any time
   are (entries so far) - (exits so far), unchanged, and the group's last end is unchanged. So
   "the k-th sample does every step no later than the (k+1)-th" loses no optimum.
8. :func:`partition_bound` relaxes further: fewer jobs (their Σ only), fewer devices.

So every schedule of every chunking maps to a relaxed schedule at least as good: the relaxed
optimum, and any bound CP-SAT proves on it, bounds Σ total under the same makespan limit for
all chunkings. With ``exact_slots=True`` the same builder is exactly the offline model with
per-sample chunks, so its solutions are real schedules (and :func:`verify_in_offline` checks them
in the offline model itself).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from octopus_scheduler.core.lab import PER_BATCH
from octopus_scheduler.core.runs import ChunkRun, GroupRun, JobRun, build_chunk
from octopus_scheduler.twin.offline import (
    TIME_UNIT_S,
    _groups,
    _solve,
    limit_slots_and_makespan,
    step_intervals,
)
from octopus_scheduler.twin.scenario import Scenario, load_scenario, parse_scenario
from octopus_scheduler.twin.simulator import SimReport, simulate

if TYPE_CHECKING:
    pass

H = 3600.0
SCENARIO = "fig8-platform-day"
MAKESPAN_LIMITS_H = (9.8, 9.9, 10.0, 10.1)
TARGET = (19.5, 9.9)  # planner targets of the fig8 day: Σ total h, makespan h


@dataclass
class TradeoffResult:
    """One solve of the per-sample model: objective and bound in seconds."""

    status: str
    objective_s: float | None
    bound_s: float
    makespan_s: float | None
    per_job_total_s: dict[str, float] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)  # step id -> start (model units)
    wall_s: float = 0.0

    @property
    def proven_bound_s(self) -> float:
        """The proven lower bound: the optimum itself when CP-SAT proved it."""
        if self.status == "OPTIMAL" and self.objective_s is not None:
            return self.objective_s
        return self.bound_s


def per_sample_chunking(scenario: Scenario) -> dict[str, dict[int, list[int]]]:
    """Every group split into chunks of one sample."""
    out: dict[str, dict[int, list[int]]] = {}
    for order, sj in enumerate(scenario.jobs):
        job = JobRun(id=sj.job_id, spec=sj.spec, submit=sj.submit, order=order, priority=0)
        out[job.id] = {gi: [1] * len(samples) for gi, samples in enumerate(_groups(job))}
    return out


def _per_sample_chunks(scenario: Scenario) -> list[tuple[JobRun, list[list[ChunkRun]]]]:
    # built exactly as offline._solve builds them, so step ids and durations match its model
    jobs = []
    for order, sj in enumerate(scenario.jobs):
        job = JobRun(id=sj.job_id, spec=sj.spec, submit=sj.submit, order=order, priority=0)
        groups = []
        for gi, samples in enumerate(_groups(job)):
            group = GroupRun(job=job, index=gi, pending=list(samples))
            for sample in samples:
                chunk = build_chunk(
                    scenario.lab,
                    job,
                    group,
                    [sample],
                    merge_task_steps=False,
                    estimate=lambda m, t, s, sec: sec,
                )
                group.chunks.append(chunk)
            groups.append(list(group.chunks))
        jobs.append((job, groups))
    return jobs


def _signature(chunk: ChunkRun) -> tuple[Any, ...]:
    return tuple((s.name, s.kind, s.expected, tuple(sorted(s.devices))) for s in chunk.steps)


def solve_per_sample(
    scenario: Scenario,
    *,
    makespan_limit_s: float | None = None,
    exact_slots: bool = False,
    time_limit_s: float = 30.0,
    workers: int = 2,
    hint: Mapping[str, float] | None = None,
    drop_devices: Sequence[str] = (),
    drop_slots: bool = False,
    only_jobs: Sequence[str] | None = None,
    cuts: Sequence[tuple[Sequence[str], float]] = (),
    solver_params: Mapping[str, Any] | None = None,
    stage_order: bool = True,
) -> TradeoffResult:
    """Minimise Σ total job time with every batch in chunks of one sample (CP-SAT).

    ``exact_slots=False``: the relaxation of the module docstring, a lower bound over all
    chunkings. ``exact_slots=True``: the offline model with per-sample chunks (a real schedule).
    ``drop_devices``/``drop_slots`` relax further (used to show which resources bind).
    ``only_jobs``: solve for these jobs alone. ``cuts``: (jobs, s) pairs, "these jobs' Σ total is
    at least s", valid when s is a lower bound of those jobs alone (see :func:`subset_cuts`).
    """
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    u = TIME_UNIT_S
    lab = scenario.lab
    model = cp_model.CpModel()
    if not exact_slots:
        for mod in lab.modules.values():
            for task in mod.tasks.values():
                if task.per == PER_BATCH and any(
                    lab.step_devices(mod.name, task.name, st) for st in task.steps
                ):
                    raise ValueError(
                        f"{mod.name}.{task.name}: an active batch step breaks the per-sample "
                        "relaxation (a copy per sample adds device time)"
                    )

    def units(seconds: float) -> int:
        return max(0, int(math.ceil(seconds / u - 1e-9)))

    jobs = _per_sample_chunks(scenario)
    if only_jobs is not None:
        jobs = [(j, g) for j, g in jobs if j.id in only_jobs]
    steps = [s for _, groups in jobs for chunks in groups for c in chunks for s in c.steps]
    horizon = units(max(j.submit for j, _ in jobs)) + sum(units(s.expected) for s in steps) + 1
    start, end = step_intervals(model, steps, horizon, units, frozenset(drop_devices))
    slot_use: dict[tuple[str, str], list[tuple[Any, int]]] = {}
    job_end: dict[str, Any] = {}
    for job, groups in jobs:
        release = units(job.submit)
        prev_cycle_end = None
        ends_all = []
        for gi, chunks in enumerate(groups):
            chunk_ends = []
            for chunk in chunks:
                first = chunk.steps[0]
                model.Add(start[first.id] >= release)
                if prev_cycle_end is not None:
                    model.Add(start[first.id] >= prev_cycle_end)
                for v, visit in enumerate(chunk.visits):
                    vsteps = [s for s in chunk.steps if s.visit == v]
                    entry = next(s for s in vsteps if s.enters_visit)
                    # one sample: its steps form a chain, the visit's last step ends it
                    vend = end[vsteps[-1].id]
                    if exact_slots and v + 1 < len(chunk.visits):
                        # offline model: the vial keeps its slot until it enters the next module
                        nxt = next(s for s in chunk.steps if s.visit == v + 1 and s.enters_visit)
                        vend = start[nxt.id]
                    if drop_slots:
                        continue
                    for key, n in visit.demand.items():
                        size = model.NewIntVar(0, horizon, f"vd_{chunk.id}_{v}")
                        iv = model.NewIntervalVar(start[entry.id], size, vend, f"vi_{chunk.id}_{v}")
                        slot_use.setdefault(key, []).append((iv, n))
                chunk_ends.append(end[chunk.steps[-1].id])
            if len({_signature(c) for c in chunks}) == 1:
                # identical samples are interchangeable (step 7): the k-th sample does every
                # step no later than the (k+1)-th (implies offline._solve's chunk-order rule)
                for a, b in zip(chunks, chunks[1:], strict=False):
                    for sa, sb in zip(a.steps, b.steps, strict=True):
                        model.Add(start[sa.id] <= start[sb.id])
                        if not stage_order:
                            break
            gend = model.NewIntVar(0, horizon, f"ge_{job.id}_{gi}")
            model.AddMaxEquality(gend, chunk_ends)
            ends_all.append(gend)
            if job.spec.campaign.sequential:
                prev_cycle_end = gend
        jend = model.NewIntVar(0, horizon, f"je_{job.id}")
        model.AddMaxEquality(jend, ends_all)
        job_end[job.id] = jend
    t_first = limit_slots_and_makespan(model, lab, slot_use, jobs, job_end, makespan_limit_s, units)
    job_total = {j.id: job_end[j.id] - units(j.submit) for j, _ in jobs}
    for ids, min_s in cuts:
        if all(i in job_total for i in ids):
            model.Add(sum(job_total[i] for i in ids) >= int(math.ceil(min_s / u - 1e-9)))
    total = sum(job_total.values())
    model.Minimize(total)
    for sid, t in (hint or {}).items():
        if sid in start:
            model.AddHint(start[sid], int(round(t / u)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    for key, value in (solver_params or {}).items():
        setattr(solver.parameters, key, value)
    status = solver.Solve(model)
    name = solver.StatusName(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return TradeoffResult(
            name, None, solver.BestObjectiveBound() * u, None, wall_s=time.perf_counter() - t0
        )
    ends = {j.id: solver.Value(job_end[j.id]) for j, _ in jobs}
    return TradeoffResult(
        status=name,
        objective_s=solver.ObjectiveValue() * u,
        bound_s=solver.BestObjectiveBound() * u,
        makespan_s=(max(ends.values()) - t_first) * u,
        per_job_total_s={j.id: ends[j.id] * u - j.submit for j, _ in jobs},
        starts={sid: solver.Value(v) for sid, v in start.items()},
        wall_s=time.perf_counter() - t0,
    )


def verify_in_offline(
    scenario: Scenario, starts: Mapping[str, float], makespan_limit_s: float | None
) -> float | None:
    """Σ total (s) of a per-sample schedule scored by offline._solve with every start fixed.

    None if the offline model rejects it: an independent check of the schedule found here.
    """
    res = _solve(
        scenario,
        per_sample_chunking(scenario),
        hint=starts,
        time_limit_s=20.0,
        workers=2,
        makespan_limit_s=makespan_limit_s,
        fix_to_hint=True,
    )
    return res.objective_s


def with_priority(scenario: Scenario, job_id: str, priority: int) -> Scenario:
    """A copy of ``scenario`` with one job's ``metadata.priority`` set (the file is untouched)."""
    data = copy.deepcopy(dict(scenario.source))
    for job in data["jobs"]:
        if str(job.get("id")) == job_id:
            job["script"].setdefault("metadata", {})["priority"] = priority
    return parse_scenario(data, scenario.name)


def simulate_one_vial(scenario: Scenario) -> SimReport:
    """The planner's own schedule: it admits one vial per chunk where a job's per-batch tasks
    only wait (``split_samples``, its default), which is the chunking the relaxation uses."""
    return simulate(scenario, "planner", policy_options={"split_samples": True})


STEP_ID = re.compile(r"^(?P<chunk>.+/g(?P<g>\d+))c(?P<c>\d+)/(?P<rest>[^#]+)(?:#(?P<i>\d+))?$")


def per_sample_hint(rep: SimReport) -> dict[str, float]:
    """A simulated schedule as starts of the per-sample steps (ids of :func:`per_sample_chunking`).

    A chunk's batch step (Mix, React) becomes each of its vials' own step at the same start (step
    2 of the module docstring). Within a group, each step's starts are sorted over the samples, so
    the hint obeys the stage order of step 7 (it stays feasible, by the same argument).
    """
    # group -> (step, per-sample step?) -> starts
    per_group: dict[str, dict[tuple[str, bool], list[float]]] = {}
    for row in rep.timeline:
        m = STEP_ID.match(row["step_id"])
        if m is None:
            continue
        job, g, c = row["job_id"], int(m["g"]), int(m["c"])
        sizes = rep.chunking[job][g]
        pos = range(sizes[c]) if m["i"] is None else [int(m["i"])]
        key = (m["rest"], m["i"] is not None)
        per_group.setdefault(m["chunk"], {}).setdefault(key, []).extend(row["start"] for _ in pos)
    hint: dict[str, float] = {}
    for group, by_step in per_group.items():
        for (rest, per_sample), starts in by_step.items():
            suffix = "#0" if per_sample else ""
            for k, t in enumerate(sorted(starts)):
                hint[f"{group}c{k}/{rest}{suffix}"] = t
    return hint


@dataclass
class BoundResult:
    """A proven lower bound on Σ total (s) over all chunkings, and how it was assembled."""

    bound_s: float
    how: str
    parts: dict[str, float] = field(default_factory=dict)  # sub-problem -> proven bound, s


def _synthesises(scenario: Scenario, job_id: str) -> bool:
    sj = next(j for j in scenario.jobs if j.job_id == job_id)
    return any(scenario.lab.task(r.module, r.task).per == PER_BATCH for r in sj.spec.route)


def partition_bound(
    scenario: Scenario,
    makespan_limit_s: float | None,
    seconds: float,
    workers: int = 2,
    *,
    pair_limit_s: float | None = None,
    pair_cache: dict[str, float] | None = None,
    synthesis_devices: Sequence[str] | None = None,
) -> BoundResult:
    """Proven lower bound on Σ total under a makespan limit, over all chunkings.

    Σ total is a sum over jobs, so for any partition of the jobs into groups, Σ over groups of
    (the optimum of that group's jobs alone) is a lower bound: a full schedule restricted to a
    group is feasible for the group alone (fewer steps on every device and slot). Each group's
    bound is a CP-SAT proven bound of the per-sample relaxation (module docstring) of that group:

    * jobs without a per-batch task (UV-Vis only) form one group;
    * among the jobs that synthesise, the "anchor" (largest single bound: the BO job 0, which
      spans the day) is paired with each other one in turn, the rest alone; the best pairing is
      kept. (Triples would be tighter but CP-SAT does not prove them in minutes on 2 cores.)

    ``synthesis_devices``: keep only these devices for the synthesis jobs (e.g. the
    Batch_LinearActuator: a further relaxation, dropping a device drops constraints); by default
    all devices are kept, which CP-SAT proves faster here. The pairs are the slow part: they may
    be solved under a looser makespan limit ``pair_limit_s`` (a looser limit only lowers a
    minimum, so the bound stays valid) and kept in ``pair_cache`` across calls.
    """
    limit = makespan_limit_s
    ids = [j.job_id for j in scenario.jobs]
    synth = [j for j in ids if _synthesises(scenario, j)]
    other = [j for j in ids if j not in synth]
    drop: list[str] = []
    if synthesis_devices is not None:
        drop = [d for d in scenario.lab.device_module if d not in synthesis_devices]
    parts: dict[str, float] = {}

    def bound(jobs: Sequence[str], devices_dropped: Sequence[str], at: float | None) -> float:
        r = solve_per_sample(
            scenario,
            makespan_limit_s=at,
            only_jobs=jobs,
            drop_devices=devices_dropped,
            time_limit_s=seconds,
            workers=workers,
        )
        return r.proven_bound_s

    total_other = bound(other, (), limit) if other else 0.0
    if other:
        parts["UV-only jobs " + ",".join(other)] = total_other
    single = {j: bound([j], drop, limit) for j in synth}
    if not synth:
        return BoundResult(total_other, "UV-only jobs together", parts)
    anchor = max(synth, key=lambda j: single[j])
    best = (sum(single.values()), f"job {anchor} alone")
    cache = {} if pair_cache is None else pair_cache
    for k in synth:
        if k == anchor:
            continue
        key = f"jobs {anchor}+{k}"
        if key not in cache:
            cache[key] = bound([anchor, k], drop, limit if pair_limit_s is None else pair_limit_s)
        pair = cache[key]
        parts[key] = pair
        value = pair + sum(v for j, v in single.items() if j not in (anchor, k))
        if value > best[0]:
            best = (value, f"jobs {anchor}+{k} together")
    kept = "all devices" if synthesis_devices is None else ", ".join(synthesis_devices)
    how = (
        f"UV-only jobs together + {best[1]} + other synthesis jobs alone "
        f"(each part: per-sample relaxation, {kept}, slots, makespan limit)"
    )
    for j, v in single.items():
        parts[f"job {j}"] = v
    return BoundResult(total_other + best[0], how, parts)


@dataclass
class ParetoRow:
    limit_h: float
    bound: BoundResult
    seed_s: float | None  # the simulated one-vial planner's schedule, scored in the offline model
    solver_status: str  # of this limit's CP-SAT run (exact per-sample model)
    best_s: float | None  # best schedule within the limit, Σ total re-scored by offline._solve
    best_makespan_s: float | None = None
    best_per_job_s: dict[str, float] = field(default_factory=dict)
    best_starts: dict[str, float] = field(default_factory=dict)  # per-sample step id -> start s


def pareto(
    scenario: Scenario,
    limits_h: Sequence[float],
    seconds: float,
    bound_seconds: float,
    workers: int = 2,
) -> list[ParetoRow]:
    """Per makespan limit (tightest first): the best real schedule and a proven bound.

    Schedules come from CP-SAT on the offline model with one-vial chunks, seeded by the
    one-vial planner's simulated schedule or by the best schedule of a tighter limit (which is
    feasible for a looser one). Each is re-scored by offline._solve with every start fixed; a row
    reports the best schedule found so far whose makespan is within its limit.
    """
    rep = simulate_one_vial(scenario)
    sim_hint = per_sample_hint(rep)
    # (Σ total s, makespan s, per-job totals, starts) of every verified schedule
    schedules: list[tuple[float, float, dict[str, float], Mapping[str, float]]] = []
    seed_total = verify_in_offline(scenario, sim_hint, None)
    if seed_total is not None:
        per_job = {j["job_id"]: j["total"] for j in rep.jobs}
        schedules.append((seed_total, rep.makespan, per_job, sim_hint))
    rows = []
    loosest = max(limits_h) * H
    pairs: dict[str, float] = {}
    for limit in sorted(limits_h):
        limit_s = limit * H
        fitting = [x for x in schedules if x[1] <= limit_s + 1e-6]
        hint = min(fitting, key=lambda x: x[0])[3] if fitting else sim_hint
        found = solve_per_sample(
            scenario,
            makespan_limit_s=limit_s,
            exact_slots=True,
            time_limit_s=seconds,
            workers=workers,
            hint=hint,
        )
        if found.starts and found.makespan_s is not None:
            verified = verify_in_offline(scenario, found.starts, limit_s)
            if verified is not None:
                schedules.append((verified, found.makespan_s, found.per_job_total_s, found.starts))
        fitting = [x for x in schedules if x[1] <= limit_s + 1e-6]
        best = min(fitting, key=lambda x: x[0]) if fitting else None
        bound = partition_bound(
            scenario, limit_s, bound_seconds, workers, pair_limit_s=loosest, pair_cache=pairs
        )
        rows.append(
            ParetoRow(
                limit_h=limit,
                bound=bound,
                seed_s=seed_total if rep.makespan <= limit_s + 1e-6 else None,
                solver_status=found.status,
                best_s=None if best is None else best[0],
                best_makespan_s=None if best is None else best[1],
                best_per_job_s={} if best is None else dict(best[2]),
                best_starts={} if best is None else {k: float(v) for k, v in best[3].items()},
            )
        )
    return rows


def _policy_rows(scenario: Scenario) -> list[tuple[str, float, float]]:
    rows = []
    for label, sc, policy, options in (
        ("planner (one vial per chunk)", scenario, "planner", {}),
        ("planner, whole batches", scenario, "planner", {"split_samples": False}),
        ("planner, job 0 priority 5", with_priority(scenario, "0", 5), "planner", {}),
        ("closed_packing", scenario, "closed_packing", {}),
    ):
        rep = simulate(sc, policy, policy_options=options)
        rows.append((label, rep.sums["total"] / H, rep.makespan / H))
    pub = scenario.published.get("octopus")
    if isinstance(pub, Mapping) and "sums" in pub:
        rows.append(("published OCTOPUS", float(pub["sums"]["total"]), float(pub["makespan_h"])))
    return rows


def _fmt(v: float | None) -> str:
    return "     -" if v is None else f"{v:6.2f}"


def report(
    scenario_name: str,
    seconds: float,
    bound_seconds: float,
    limits_h: Sequence[float],
    save: str | None = None,
) -> str:
    sc = load_scenario(scenario_name)
    target = sc.published.get("targets", {}).get("planner", {})
    t_total = float(target.get("total_h", TARGET[0]))
    t_mk = float(target.get("makespan_h", TARGET[1]))
    lines = [
        f"{sc.name}: Σ total job time vs makespan (hours); targets Σ <= {t_total}, "
        f"makespan <= {t_mk}",
        "",
        f"  {'schedule':<34} {'Σtotal':>6} {'makespan':>8}  targets",
    ]
    for label, tot, mk in _policy_rows(sc):
        ok = "both met" if tot <= t_total and mk <= t_mk else "missed"
        lines.append(f"  {label:<34} {tot:6.2f} {mk:8.2f}  {ok}")
    lines += [
        "",
        f"CP-SAT (2 workers, {seconds:g} s per schedule, {bound_seconds:g} s per bound"
        " sub-problem), per makespan limit:",
        "  seed  = the one-vial planner's simulated schedule scored in the offline model",
        "  best  = best schedule found (CP-SAT, every batch in chunks of 1 vial) within the limit,",
        "          Σ re-scored by offline._solve with every start fixed; mk = its makespan",
        "  bound = proven lower bound on Σ total over ALL chunkings (per-sample relaxation,",
        "          jobs partitioned; pairs solved at the loosest limit; tradeoff.partition_bound)",
        f"  {'limit':>6} {'seed':>6} {'best':>6} {'mk':>6} {'bound':>6} {'gap':>5}",
    ]
    verdict = "not run"
    for row in pareto(sc, limits_h, seconds, bound_seconds):
        best_h = None if row.best_s is None else row.best_s / H
        mk_h = None if row.best_makespan_s is None else row.best_makespan_s / H
        seed_h = None if row.seed_s is None else row.seed_s / H
        b_h = row.bound.bound_s / H
        gap = "" if best_h is None else f"{best_h - b_h:5.2f}"
        lines.append(
            f"  {row.limit_h:6.2f} {_fmt(seed_h)} {_fmt(best_h)} {_fmt(mk_h)} {b_h:6.2f} "
            f"{gap:>5}  CP-SAT {row.solver_status}"
        )
        if abs(row.limit_h - t_mk) < 1e-9:
            if best_h is not None and best_h <= t_total:
                verdict = (
                    f"both targets CAN be met (a schedule, checked in the offline model): "
                    f"Σ {best_h:.2f} h <= {t_total} h with makespan {mk_h:.2f} <= {t_mk} h; "
                    f"no schedule can do better than Σ {b_h:.2f} h (proven bound)"
                )
            elif b_h > t_total:
                verdict = f"both targets CANNOT be met: proven Σ >= {b_h:.2f} h > {t_total} h"
            else:
                verdict = f"undecided: bound {b_h:.2f} h <= {t_total} h and no schedule found"
            if save and row.best_starts:
                _save(save, sc, row)
                lines.append(f"         best schedule saved to {save}")
            if row.best_per_job_s:
                per = ", ".join(f"{j}:{v / H:.2f}" for j, v in row.best_per_job_s.items())
                lines.append(f"         best schedule, per job total (h): {per}")
            lines.append(f"         bound = {row.bound.how}")
            parts = ", ".join(f"{k} {v / H:.2f}" for k, v in row.bound.parts.items())
            lines.append(f"         bound parts (h): {parts}")
    lines += ["", f"verdict: {verdict}"]
    return "\n".join(lines)


def _save(path: str, sc: Scenario, row: ParetoRow) -> None:
    """The best schedule within the target makespan: per-sample step starts (s after start)."""
    data = {
        "scenario": sc.name,
        "makespan_limit_h": row.limit_h,
        "sum_total_h": None if row.best_s is None else row.best_s / H,
        "makespan_h": None if row.best_makespan_s is None else row.best_makespan_s / H,
        "per_job_total_h": {j: v / H for j, v in row.best_per_job_s.items()},
        "chunking": per_sample_chunking(sc),
        "check": "offline._solve(scenario, chunking, hint=starts_s, fix_to_hint=True)",
        "starts_s": dict(sorted(row.best_starts.items(), key=lambda kv: (kv[1], kv[0]))),
    }
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m octopus_scheduler.twin.tradeoff",
        description="Σ total vs makespan: simulated policies, best schedule, proven bound.",
    )
    parser.add_argument("--scenario", default=SCENARIO)
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="CP-SAT time for the schedule, per limit"
    )
    parser.add_argument(
        "--bound-seconds",
        type=float,
        default=40.0,
        help="CP-SAT time per bound sub-problem (most prove optimal in seconds)",
    )
    parser.add_argument(
        "--limits", type=float, nargs="+", default=list(MAKESPAN_LIMITS_H), help="makespan, h"
    )
    parser.add_argument(
        "--save", metavar="PATH", help="write the best schedule within the target makespan (JSON)"
    )
    args = parser.parse_args(argv)
    print(report(args.scenario, args.seconds, args.bound_seconds, args.limits, args.save))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
