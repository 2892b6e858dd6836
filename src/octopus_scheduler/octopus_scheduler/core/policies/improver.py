"""CP-SAT improvement of the planner's projected plan on a bounded horizon (option ``improve``).

On a trigger (a submission, or another event that makes the planner re-plan) the planner projects
its own rules forward (``projection.run_forward``). This module models the live state with CP-SAT:

* running steps are fixed (their devices and slots stay held until their expected end);
* the first ``horizon_steps`` not-yet-started steps in the projected order (closed under their
  not-yet-started predecessors) are free: devices (no overlap), slots (cumulative per slot type,
  a chunk holding a module's slots from its entry until it entered the next module or finished, as
  in ``offline.py``) and precedence;
* every other projected step keeps its devices and slots but may only be delayed, never start
  earlier than projected (no credit for what the rules decide later; ``tail_resources=False``
  keeps only the chunks the horizon touches, by precedence); a job with work beyond the projection
  ends at its projected end, delayed as much as its modelled chunks are delayed.

It is seeded with the projected plan (``AddHint``) and bounded by the projected objective (only
strictly better solutions are searched). A solution becomes an *override*: the horizon steps in
the solved start order. The planner then ranks them first, starts one only after the steps planned
before it on the same devices or slot types have started, and lets other work start only where it
ends before the planned start of an override step on its devices. The override is kept only if
running the planner forward with it (the same projection the rule modes are chosen by) gives a
strictly smaller sum of job times, so a poor model costs solver time, not projected quality (a
later arrival can still make a followed plan worse in hindsight). The plan is dropped when its
steps have all started, on an event that changes the lab or the jobs, or when the lab falls far
behind it; with nothing running the rules decide, so a plan can never stall the lab.

Determinism: one worker, a deterministic time budget (``max_deterministic_time``) and a fixed seed,
so replaying the event log gives the same decisions. A wall-clock cap (max(5 s, 50x the budget))
only guards against a pathological model; hitting it would break replay (our longest solve took
about 1 s of wall time, on a loaded 2-core machine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from octopus_scheduler.core.lab import ACTIVE
from octopus_scheduler.core.runs import ABORTED, DONE, PENDING, READY, RUNNING, ChunkRun, StepRun

if TYPE_CHECKING:
    from octopus_scheduler.core.projection import Placement
    from octopus_scheduler.core.scheduler_core import SchedulerCore

NOT_STARTED = (PENDING, READY)


@dataclass
class Override:
    """A plan to follow for the steps of the horizon (plain data: copied by ``fork``)."""

    start: dict[str, float]  # step id -> planned start (absolute s)
    order: dict[str, int]  # step id -> position in the solved order
    blockers: dict[str, tuple[str, ...]]  # step id -> steps planned before it on its resources
    resources: dict[str, tuple[str, ...]]  # step id -> devices and "slot:<module>.<type>"
    slot_need: dict[str, dict[str, int]]  # visit entry step id -> slot resource -> samples
    entries: dict[str, tuple[str, int]]  # new chunk id -> (its entry step id, samples)
    made_at: float = 0.0


@dataclass
class ImproveResult:
    status: str
    seed_objective: float | None = None  # model objective of the projected plan (s)
    objective: float | None = None  # model objective of the solution (s)
    override: Override | None = None
    steps: int = 0  # free steps in the model
    wall_s: float = 0.0
    build_s: float = 0.0  # of wall_s: building the model
    deterministic_time: float = 0.0
    notes: list[str] = field(default_factory=list)


def _units(seconds: float) -> int:
    return max(0, int(math.ceil(seconds - 1e-6)))


def _chunks_of(core: SchedulerCore) -> dict[str, ChunkRun]:
    return {c.id: c for j in core.all_jobs() for g in j.groups for c in g.chunks}


def build_and_solve(
    core: SchedulerCore,
    sim: SchedulerCore,
    placements: list[Placement],
    proj_end: dict[str, float],
    *,
    horizon_steps: int,
    budget_s: float,
    tail_resources: bool = True,
) -> ImproveResult:
    """Model the live ``core`` around the projected plan (``sim`` after ``run_forward``, its
    ``placements`` and each live job's projected end) and look for a better order."""
    import time as _time

    from ortools.sat.python import cp_model

    t0 = _time.perf_counter()
    now = core.now
    real_chunks = _chunks_of(core)
    sim_chunks = _chunks_of(sim)

    def state(step_id: str) -> str:
        real = core.run_step(step_id)
        return real.state if real is not None else PENDING

    groups_now = {(j.id, g.index) for j in core.all_jobs() for g in j.groups}

    def group_exists(chunk: ChunkRun) -> bool:
        return (chunk.job.id, chunk.group.index) in groups_now

    proj_start = {p.step_id: p.start for p in placements if p.state == "planned"}
    # the horizon: the first steps in the projected order, of groups that exist now (later BO
    # cycles get other parameters than the projection's stand-ins)
    horizon: dict[str, StepRun] = {}
    for p in placements:
        if len(horizon) >= horizon_steps:
            break
        if p.state != "planned" or p.step_id in horizon:
            continue
        step = sim._steps.get(p.step_id)
        if step is None or not group_exists(step.chunk) or state(step.id) not in NOT_STARTED:
            continue
        todo = [step]
        while todo:  # closed under not-yet-started predecessors
            s = todo.pop()
            if s.id in horizon or state(s.id) not in NOT_STARTED:
                continue
            horizon[s.id] = s
            todo.extend(s.preds)
    if not horizon:
        return ImproveResult("EMPTY", wall_s=_time.perf_counter() - t0)
    modelled: dict[str, ChunkRun] = {}
    for s in horizon.values():
        modelled[s.chunk.id] = sim_chunks[s.chunk.id]
    for chunk in core.chunks():  # chunks holding slots now
        if chunk.id in sim_chunks:
            modelled[chunk.id] = sim_chunks[chunk.id]
    if tail_resources:  # every projected chunk, so the rules' later work keeps its devices
        for chunk in sim_chunks.values():
            if chunk.id not in modelled and any(s.id in proj_start for s in chunk.steps):
                modelled[chunk.id] = chunk

    model = cp_model.CpModel()
    end_of_projection = max(proj_start.values(), default=now) - now
    big = _units(end_of_projection + sum(s.expected for c in modelled.values() for s in c.steps))
    big += _units(max(proj_end.values(), default=now) - now) + 1
    start: dict[str, Any] = {}
    end: dict[str, Any] = {}
    hint: dict[str, int] = {}
    by_res: dict[str, list[Any]] = {}
    free_ids: list[str] = []
    for chunk in modelled.values():
        for s in chunk.steps:
            st_now = state(s.id)
            d = _units(s.expected)
            if st_now in (DONE, ABORTED):
                start[s.id] = end[s.id] = 0
                continue
            if st_now == RUNNING:
                real = core.run_step(s.id)
                left = _units(max(0.0, (real.start or now) + real.expected - now))
                start[s.id], end[s.id] = 0, left
                if s.kind == ACTIVE and left > 0:
                    iv = model.NewFixedSizeIntervalVar(0, left, f"r_{s.id}")
                    for dev in s.devices:
                        by_res.setdefault(dev, []).append(iv)
                continue
            lb = 0
            if s.id not in horizon:  # tail: never earlier than projected
                lb = _units(proj_start.get(s.id, now + end_of_projection) - now)
            st = model.NewIntVar(lb, big, f"s_{s.id}")
            start[s.id], end[s.id] = st, st + d
            hint[s.id] = max(lb, int(round(proj_start.get(s.id, now + end_of_projection) - now)))
            if s.id in horizon:
                free_ids.append(s.id)
            if s.id in horizon or (tail_resources and s.id in proj_start):
                if s.kind == ACTIVE and d > 0:
                    iv = model.NewFixedSizeIntervalVar(st, d, f"i_{s.id}")
                    for dev in s.devices:
                        by_res.setdefault(dev, []).append(iv)
    for chunk in modelled.values():
        for s in chunk.steps:
            if isinstance(start[s.id], int):
                continue
            for p in s.preds:
                model.Add(start[s.id] >= end[p.id])
    for ivs in by_res.values():
        if len(ivs) > 1:
            model.AddNoOverlap(ivs)
    # a group's new chunks are named in admission order: chunk c<k> enters before c<k+1>
    firsts: dict[tuple[str, int], list[tuple[int, Any]]] = {}
    for chunk in modelled.values():
        if chunk.id not in real_chunks and not isinstance(start[chunk.steps[0].id], int):
            index = int(chunk.id.rsplit("c", 1)[1])
            firsts.setdefault((chunk.job.id, chunk.group.index), []).append((index, chunk))
    for chunks in firsts.values():
        chunks.sort(key=lambda x: x[0])
        for (_, a), (_, b) in zip(chunks, chunks[1:], strict=False):
            model.Add(start[a.steps[0].id] <= start[b.steps[0].id])
    # slots: a chunk holds a module's slots from its entry until it has entered the next module
    slot_use: dict[tuple[str, str], list[tuple[Any, int]]] = {}
    real_chunk_now = {c.id: c for c in core.chunks()}
    for chunk in modelled.values():
        live = real_chunk_now.get(chunk.id) or real_chunks.get(chunk.id)
        for v, visit in enumerate(chunk.visits):
            now_visit = live.visits[v] if live is not None else visit
            if live is not None and now_visit.released:
                continue
            entered = live is not None and now_visit.entered
            vsteps = [s for s in chunk.steps if s.visit == v]
            entry = next(s for s in vsteps if s.enters_visit)
            terms = [end[s.id] for s in vsteps]
            if v + 1 < len(chunk.visits):
                nxt = next(s for s in chunk.steps if s.visit == v + 1 and s.enters_visit)
                terms.append(start[nxt.id])
            vend = model.NewIntVar(0, big, f"ve_{chunk.id}_{v}")
            model.AddMaxEquality(vend, terms)
            vstart = 0 if entered else start[entry.id]
            for key, n in visit.demand.items():
                size = model.NewIntVar(0, big, f"vd_{chunk.id}_{v}_{key[1]}")
                iv = model.NewIntervalVar(vstart, size, vend, f"vi_{chunk.id}_{v}_{key[1]}")
                slot_use.setdefault(key, []).append((iv, n))
    caps = {k: cap for k, (_, cap) in core.slots().items()}
    for key, uses in slot_use.items():
        if key in caps:
            model.AddCumulative([iv for iv, _ in uses], [n for _, n in uses], caps[key])
    # job ends: exact for jobs whose remaining work is all modelled, else projected + delay
    by_job: dict[str, list[ChunkRun]] = {}
    for chunk in modelled.values():
        by_job.setdefault(chunk.job.id, []).append(chunk)
    objective_terms: list[Any] = []
    seed_total = 0
    ends_hint: dict[str, int] = {}

    def hinted_end(s: StepRun) -> int:
        if s.id in ends_hint:
            return ends_hint[s.id]
        v = start[s.id]
        if isinstance(v, int):
            out = end[s.id]
        else:
            pre = max((hinted_end(p) for p in s.preds), default=0)
            out = max(hint[s.id], pre) + _units(s.expected)
        ends_hint[s.id] = out
        return out

    for job_id, chunks in by_job.items():
        if job_id not in proj_end:
            continue
        cends = []
        seed_cend = 0
        for chunk in chunks:
            ends = [end[s.id] for s in chunk.steps]
            cend = model.NewIntVar(0, big, f"ce_{chunk.id}")
            model.AddMaxEquality(cend, ends)
            cends.append(cend)
            seed_cend = max(seed_cend, max(hinted_end(s) for s in chunk.steps))
        jend = model.NewIntVar(0, big, f"je_{job_id}")
        sim_job = sim._jobs[job_id]
        outside = sim_job.end is None or any(
            c.id not in modelled and any(state(s.id) in NOT_STARTED for s in c.steps)
            for g in sim_job.groups
            for c in g.chunks
        )
        projected = _units(proj_end[job_id] - now)
        if outside:
            last = model.NewIntVar(0, big, f"le_{job_id}")
            model.AddMaxEquality(last, cends)
            model.Add(jend >= projected + last - seed_cend)
            model.Add(jend >= projected)
            seed_total += projected
        else:
            model.AddMaxEquality(jend, cends)
            seed_total += seed_cend
        objective_terms.append(jend)
    total = sum(objective_terms)
    model.Add(total <= seed_total - 1)  # only strictly better than the projected plan
    model.Minimize(total)
    for chunk in modelled.values():  # the projected plan, rounding repaired along precedence
        for s in chunk.steps:
            if s.id in hint:
                model.AddHint(start[s.id], hinted_end(s) - _units(s.expected))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.max_deterministic_time = budget_s
    # a guard only (the deterministic budget bounds the work): hitting it would break replay
    solver.parameters.max_time_in_seconds = max(5.0, 50 * budget_s)
    solver.parameters.repair_hint = True
    # no LP relaxation: on these small no-overlap models it costs CPU (outside the deterministic
    # budget) and found no better plans in our runs
    solver.parameters.linearization_level = 0
    t_build = _time.perf_counter() - t0
    status = solver.Solve(model)
    name = solver.StatusName(status)
    result = ImproveResult(
        name,
        seed_objective=float(seed_total),
        steps=len(free_ids),
        wall_s=_time.perf_counter() - t0,
        deterministic_time=solver.deterministic_time,
        build_s=t_build,
    )
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return result
    result.objective = solver.ObjectiveValue()
    solved = {sid: now + solver.Value(start[sid]) for sid in free_ids}
    result.override = make_override(
        solved, {sid: horizon[sid] for sid in free_ids}, core, placements, now
    )
    return result


def _resources(step: StepRun) -> tuple[str, ...]:
    res = sorted(step.devices)
    if step.enters_visit:
        res += [f"slot:{k[0]}.{k[1]}" for k in sorted(step.chunk.visits[step.visit].demand)]
    return tuple(res)


def make_override(
    solved: dict[str, float],
    steps: dict[str, StepRun],
    core: SchedulerCore,
    placements: list[Placement],
    now: float,
) -> Override:
    """The solved starts as an order per device and slot type (ties: the projected order)."""
    proj_index = {p.step_id: i for i, p in enumerate(placements)}
    ids = sorted(solved, key=lambda sid: (solved[sid], proj_index.get(sid, 1 << 30), sid))
    order = {sid: i for i, sid in enumerate(ids)}
    resources = {sid: _resources(steps[sid]) for sid in ids}
    slot_need: dict[str, dict[str, int]] = {}
    for sid in ids:
        step = steps[sid]
        if step.enters_visit:
            demand = step.chunk.visits[step.visit].demand
            slot_need[sid] = {f"slot:{k[0]}.{k[1]}": n for k, n in demand.items()}
    blockers: dict[str, tuple[str, ...]] = {}
    seen: dict[str, list[str]] = {}
    for sid in ids:
        before: list[str] = []
        for r in resources[sid]:
            before += seen.get(r, [])
            seen.setdefault(r, []).append(sid)
        blockers[sid] = tuple(dict.fromkeys(before))
    existing = _chunks_of(core)
    entries: dict[str, tuple[str, int]] = {}
    for sid in ids:
        step = steps[sid]
        chunk = step.chunk
        if chunk.id not in existing and step is chunk.steps[0]:
            entries[chunk.id] = (sid, len(chunk.samples))
    return Override(
        start=dict(solved),
        order=order,
        blockers=blockers,
        resources=resources,
        slot_need=slot_need,
        entries=entries,
        made_at=now,
    )
