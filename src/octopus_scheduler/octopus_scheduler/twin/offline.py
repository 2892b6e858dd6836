"""Offline optimum: the best schedule CP-SAT finds when every arrival is known in advance.

Objective: the sum of total job times (finish - submit). The model uses exactly the core's steps
(same masks, slots, precedence, BO cycle order, stand-in BO parameters) for a given *chunking*
(how each batch is split), so its optimum and proven bound hold for that chunking; the bench runs
it with the chunkings the online policies chose and keeps the best. It can be seeded with an
online schedule (a hint), which CP-SAT needs on 2 cores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from octopus_scheduler.core.lab import ACTIVE
from octopus_scheduler.core.proposer import standin_proposer
from octopus_scheduler.core.runs import GroupRun, JobRun, Sample, StepRun, build_chunk
from octopus_scheduler.twin.scenario import Scenario

TIME_UNIT_S = 1  # model time unit (s): the durations of the published models are whole seconds


@dataclass
class OfflineResult:
    status: str
    objective_s: float | None
    bound_s: float
    makespan_s: float | None
    per_job_total_s: dict[str, float] = field(default_factory=dict)
    chunking: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "objective_h": None if self.objective_s is None else self.objective_s / 3600,
            "bound_h": self.bound_s / 3600,
            "makespan_h": None if self.makespan_s is None else self.makespan_s / 3600,
            "wall_s": self.wall_s,
        }


def _groups(job: JobRun) -> list[list[Sample]]:
    camp = job.spec.campaign
    out: list[list[Sample]] = []
    if camp.sequential:
        for cycle in range(camp.cycles):
            params = standin_proposer(job.id, job.spec, cycle, camp.batch)
            out.append([Sample(f"{job.id}/g{cycle}s{i}", p) for i, p in enumerate(params)])
    else:
        start = 0
        for gi, size in enumerate(camp.group_sizes()):
            exps = camp.experiments[start : start + size]
            out.append([Sample(f"{job.id}/g{gi}s{i}", p) for i, p in enumerate(exps)])
            start += size
    return out


def step_intervals(
    model: Any,
    steps: Sequence[StepRun],
    horizon: int,
    units: Any,
    drop_devices: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start and end variables of every step, its predecessors first, and no two active steps on
    one device at once (``drop_devices`` left out: a relaxation). Returns (start, end) by id."""
    start: dict[str, Any] = {}
    end: dict[str, Any] = {}
    by_device: dict[str, list[Any]] = {}
    for s in steps:
        d = units(s.expected)
        st = model.NewIntVar(0, horizon, f"s_{s.id}")
        en = model.NewIntVar(0, horizon, f"e_{s.id}")
        iv = model.NewIntervalVar(st, d, en, f"i_{s.id}")
        start[s.id], end[s.id] = st, en
        if s.kind == ACTIVE and d > 0:
            for dev in s.devices - drop_devices:
                by_device.setdefault(dev, []).append(iv)
        for p in s.preds:
            model.Add(st >= end[p.id])
    for ivs in by_device.values():
        if len(ivs) > 1:
            model.AddNoOverlap(ivs)
    return start, end


def limit_slots_and_makespan(
    model: Any,
    lab: Any,
    slot_use: Mapping[tuple[str, str], list[tuple[Any, int]]],
    jobs: Sequence[tuple[JobRun, Any]],
    job_end: Mapping[str, Any],
    makespan_limit_s: float | None,
    units: Any,
) -> int:
    """Slot capacities (cumulative), and every job ending within ``makespan_limit_s`` of the
    first submission; returns that first submission in model units."""
    for key, uses in slot_use.items():
        cap = lab.modules[key[0]].slots[key[1]].capacity
        model.AddCumulative([iv for iv, _ in uses], [n for _, n in uses], cap)
    t_first = units(min(j.submit for j, _ in jobs))
    if makespan_limit_s is not None:
        for j, _ in jobs:
            model.Add(job_end[j.id] - t_first <= int(makespan_limit_s // TIME_UNIT_S))
    return t_first


def _solve(
    scenario: Scenario,
    chunking: Mapping[str, Mapping[int, Sequence[int]]] | None = None,
    *,
    hint: Mapping[str, float] | None = None,
    time_limit_s: float = 20.0,
    workers: int = 2,
    makespan_limit_s: float | None = None,
    fix_to_hint: bool = False,
    objective_limit_s: float | None = None,
) -> OfflineResult:
    import time as _time

    from ortools.sat.python import cp_model

    t0 = _time.perf_counter()
    lab = scenario.lab
    model = cp_model.CpModel()
    u = TIME_UNIT_S

    def units(seconds: float) -> int:
        return max(0, int(math.ceil(seconds / u - 1e-9)))

    steps: list[StepRun] = []
    jobs: list[tuple[JobRun, list[list[list[StepRun]]]]] = []
    used_chunking: dict[str, dict[int, list[int]]] = {}
    for order, sj in enumerate(scenario.jobs):
        job = JobRun(id=sj.job_id, spec=sj.spec, submit=sj.submit, order=order, priority=0)
        per_group: list[list[list[StepRun]]] = []
        for gi, samples in enumerate(_groups(job)):
            sizes = list((chunking or {}).get(job.id, {}).get(gi, [len(samples)]))
            if sum(sizes) != len(samples):
                sizes = [len(samples)]
            used_chunking.setdefault(job.id, {})[gi] = sizes
            group = GroupRun(job=job, index=gi, pending=list(samples))
            chunks = []
            pos = 0
            for size in sizes:
                chunk = build_chunk(
                    lab,
                    job,
                    group,
                    samples[pos : pos + size],
                    merge_task_steps=False,
                    estimate=lambda m, t, s, sec: sec,
                )
                group.chunks.append(chunk)
                pos += size
                chunks.append(chunk.steps)
                steps.extend(chunk.steps)
            per_group.append(chunks)
        jobs.append((job, per_group))
    horizon = units(max(j.submit for j, _ in jobs)) + sum(units(s.expected) for s in steps) + 1
    start, end = step_intervals(model, steps, horizon, units)
    slot_use: dict[tuple[str, str], list[tuple[Any, int]]] = {}
    job_end: dict[str, Any] = {}
    for job, groups in jobs:
        release = units(job.submit)
        prev_cycle_end = None
        ends_all = []
        for chunks in groups:
            group_ends = []
            firsts = []
            for chunk_steps in chunks:
                chunk = chunk_steps[0].chunk
                first = chunk_steps[0]
                firsts.append(start[first.id])
                model.Add(start[first.id] >= release)
                if prev_cycle_end is not None:
                    model.Add(start[first.id] >= prev_cycle_end)
                for v, visit in enumerate(chunk.visits):
                    vsteps = [s for s in chunk_steps if s.visit == v]
                    entry = next(s for s in vsteps if s.enters_visit)
                    vend = model.NewIntVar(0, horizon, f"ve_{chunk.id}_{v}")
                    terms = [end[s.id] for s in vsteps]
                    if v + 1 < len(chunk.visits):
                        nxt = next(s for s in chunk_steps if s.visit == v + 1 and s.enters_visit)
                        terms.append(start[nxt.id])
                    model.AddMaxEquality(vend, terms)
                    for key, n in visit.demand.items():
                        size = model.NewIntVar(0, horizon, f"vd_{chunk.id}_{v}")
                        iv = model.NewIntervalVar(start[entry.id], size, vend, f"vi_{chunk.id}_{v}")
                        slot_use.setdefault(key, []).append((iv, n))
                cend = model.NewIntVar(0, horizon, f"ce_{chunk.id}")
                model.AddMaxEquality(cend, [end[s.id] for s in chunk_steps])
                group_ends.append(cend)
            for a, b in zip(firsts, firsts[1:], strict=False):
                model.Add(a <= b)  # chunks of one group are interchangeable: break symmetry
            gend = model.NewIntVar(0, horizon, f"ge_{job.id}_{len(ends_all)}")
            model.AddMaxEquality(gend, group_ends)
            ends_all.append(gend)
            if job.spec.campaign.sequential:
                prev_cycle_end = gend
        jend = model.NewIntVar(0, horizon, f"je_{job.id}")
        model.AddMaxEquality(jend, ends_all)
        job_end[job.id] = jend
    limit_slots_and_makespan(model, lab, slot_use, jobs, job_end, makespan_limit_s, units)
    total = sum(job_end[j.id] - units(j.submit) for j, _ in jobs)
    if objective_limit_s is not None:
        model.Add(total <= int(round(objective_limit_s / u)))
    model.Minimize(total)
    if hint:
        for sid, t in hint.items():
            if sid in start:
                model.AddHint(start[sid], int(round(t / u)))
                if fix_to_hint:  # to check that an online schedule is feasible in the model
                    model.Add(start[sid] == int(round(t / u)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    solver.parameters.repair_hint = not fix_to_hint
    status = solver.Solve(model)
    name = solver.StatusName(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return OfflineResult(
            name,
            None,
            solver.BestObjectiveBound() * u,
            None,
            chunking=used_chunking,
            wall_s=_time.perf_counter() - t0,
        )
    per_job = {j.id: (solver.Value(job_end[j.id]) * u - j.submit) for j, _ in jobs}
    t_first = min(j.submit for j, _ in jobs)
    makespan = max(solver.Value(job_end[j.id]) for j, _ in jobs) * u - t_first
    return OfflineResult(
        status=name,
        objective_s=solver.ObjectiveValue() * u,
        bound_s=solver.BestObjectiveBound() * u,
        makespan_s=makespan,
        per_job_total_s=per_job,
        chunking=used_chunking,
        wall_s=_time.perf_counter() - t0,
    )


def solve_offline(
    scenario: Scenario,
    chunking: Mapping[str, Mapping[int, Sequence[int]]] | None = None,
    *,
    hint: Mapping[str, float] | None = None,
    time_limit_s: float = 20.0,
    workers: int = 2,
    makespan_limit_s: float | None = None,
) -> OfflineResult:
    """Minimise the sum of total job times with every arrival known (CP-SAT).

    With a ``hint`` (an online schedule) the hint is first checked and scored in the model, then
    the search keeps only solutions at least as good (the hint is the incumbent), so the result is
    never worse than the seed. The proven bound is CP-SAT's.
    """
    seed = None
    if hint:
        seed = _solve(
            scenario,
            chunking,
            hint=hint,
            time_limit_s=min(10.0, time_limit_s),
            workers=workers,
            makespan_limit_s=makespan_limit_s,
            fix_to_hint=True,
        )
        if seed.objective_s is None:
            seed = None
    result = _solve(
        scenario,
        chunking,
        hint=hint,
        time_limit_s=time_limit_s,
        workers=workers,
        makespan_limit_s=makespan_limit_s,
        objective_limit_s=None if seed is None else seed.objective_s,
    )
    if seed is not None and (result.objective_s is None or seed.objective_s < result.objective_s):
        seed.status = "FEASIBLE (seed)" if result.status != "OPTIMAL" else result.status
        seed.bound_s = result.bound_s if result.status != "INFEASIBLE" else seed.objective_s
        seed.wall_s += result.wall_s
        return seed
    return result
