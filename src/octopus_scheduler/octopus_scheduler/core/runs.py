"""Run-time state of accepted work: jobs -> groups (cycles) -> chunks -> steps with precedence.

A *group* is the batch of samples of one cycle (BO) or one slice of a manual/sweep list. A policy
admits a group's samples in one or more *chunks* (closed packing splits a batch into chunks sized
to the free slots). A chunk walks the job's route; consecutive tasks on the same module form a
*visit*, during which the chunk's samples hold that module's sample slots.
"""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from octopus_scheduler.core.jobscript import JobSpec, RouteTask
from octopus_scheduler.core.lab import ACTIVE, PER_BATCH, Lab

PENDING, READY, RUNNING, DONE, ABORTED = "pending", "ready", "running", "done", "aborted"


@dataclass(eq=False)
class Sample:
    id: str
    params: Mapping[str, float]


@dataclass(eq=False)
class Visit:
    module: str
    demand: dict[tuple[str, str], int]  # (module, slot type) -> count while in the visit
    steps_left: int = 0
    entered: bool = False
    released: bool = False


@dataclass(eq=False)
class StepRun:
    id: str
    job: JobRun
    chunk: ChunkRun
    route_index: int
    module: str
    task: str
    name: str
    kind: str
    devices: frozenset[str]
    samples: tuple[Sample, ...]
    params: Mapping[str, Any]
    expected: float
    base: float  # duration from the lab's model, before learned corrections
    visit: int
    enters_visit: bool
    consumes: Mapping[str, int]
    preds: list[StepRun] = field(default_factory=list)
    succs: list[StepRun] = field(default_factory=list)
    missing: int = 0
    state: str = PENDING
    ready_time: float | None = None
    start: float | None = None
    end: float | None = None
    attempts: int = 0
    not_before: float = float("-inf")  # a retry waits out its back-off
    abort_requested: bool = False
    seq: int = 0
    blocked: str = ""  # why it could not start the last time it was tried

    @property
    def duration_key(self) -> tuple[str, str, str]:
        return (self.module, self.task, self.name)


@dataclass(eq=False)
class ChunkRun:
    id: str
    job: JobRun
    group: GroupRun
    samples: tuple[Sample, ...]
    visits: list[Visit] = field(default_factory=list)
    steps: list[StepRun] = field(default_factory=list)
    steps_left: int = 0

    def alloc(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for v in self.visits:
            if v.entered and not v.released:
                for key, n in v.demand.items():
                    out[key] = out.get(key, 0) + n
        return out

    def need(self) -> dict[tuple[str, str], int]:
        """Most slots of each type the chunk may still request (visits not yet entered)."""
        out: dict[tuple[str, str], int] = {}
        for v in self.visits:
            if not v.entered:
                for key, n in v.demand.items():
                    out[key] = max(out.get(key, 0), n)
        return out


@dataclass(eq=False)
class GroupRun:
    job: JobRun
    index: int
    pending: list[Sample]
    chunks: list[ChunkRun] = field(default_factory=list)
    ready_time: float = 0.0
    blocked: str = ""  # why no chunk could be admitted the last time it was tried

    @property
    def done(self) -> bool:
        return not self.pending and all(c.steps_left == 0 for c in self.chunks)


@dataclass(eq=False)
class JobRun:
    id: str
    spec: JobSpec
    submit: float
    order: int
    priority: int
    state: str = "queued"  # queued, running, held, succeeded, failed, cancelled
    groups: list[GroupRun] = field(default_factory=list)
    cycle: int = 0  # sequential campaigns: the cycle being run (or waited for)
    awaiting_proposals: bool = False
    start: float | None = None
    end: float | None = None
    retries_left: int = 0
    ending: str | None = None  # final state decided, waiting for running steps to stop
    end_reason: str = ""
    held: bool = False
    n_chunks: int = 0
    # an ended job's step_counts, kept when its steps are let go (SchedulerCore._retire)
    ended_counts: tuple[int, int, int, int] | None = None

    @property
    def owner(self) -> str:
        return self.spec.metadata.owner

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled")

    @property
    def started(self) -> bool:
        return self.start is not None


def step_counts(job: JobRun) -> tuple[int, int, int, int]:
    """(steps expanded, samples admitted, steps done, samples whose every step is done)."""
    if job.ended_counts is not None:
        return job.ended_counts
    chunks = [c for g in job.groups for c in g.chunks]
    known = sum(len(c.steps) for c in chunks)
    samples = sum(len(c.samples) for c in chunks)
    done = sum(1 for c in chunks for step in c.steps if step.state == DONE)
    finished = sum(
        len(c.samples) for c in chunks if c.steps and all(s.state == DONE for s in c.steps)
    )
    return known, samples, done, finished


def _shallow(obj: Any) -> Any:
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def copy_runs(jobs: Iterable[JobRun], memo: dict[int, Any]) -> None:
    """Copy the run state of ``jobs`` (groups, chunks, visits, steps) into a ``copy.deepcopy``
    memo: ``memo[id(original)]`` is its copy, linked to the other copies.

    Only what changes while a job runs is copied: the objects themselves and their lists. What
    never changes after creation is shared: job specs, samples, step params, devices, samples
    tuples and consumption, visit demands (as ``SchedulerCore.fork`` always shared them).
    """
    for job in jobs:
        j = memo[id(job)] = _shallow(job)
        j.groups = []
        for group in job.groups:
            g = memo[id(group)] = _shallow(group)
            g.job, g.pending, g.chunks = j, list(group.pending), []
            j.groups.append(g)
            for chunk in group.chunks:
                c = memo[id(chunk)] = _shallow(chunk)
                c.job, c.group, c.visits, c.steps = j, g, [], []
                g.chunks.append(c)
                for visit in chunk.visits:
                    c.visits.append(_shallow(visit))
                    memo[id(visit)] = c.visits[-1]
                for step in chunk.steps:
                    s = memo[id(step)] = _shallow(step)
                    s.job, s.chunk = j, c
                    c.steps.append(s)
                for s in c.steps:  # precedence links stay inside the chunk
                    s.preds = [memo[id(p)] for p in s.preds]
                    s.succs = [memo[id(p)] for p in s.succs]


def _shared(key: int) -> Any:  # stands for memo[key] in a pickle written by copy_data
    raise AssertionError("resolved by _Unpickler.find_class")


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, memo: dict[int, Any]) -> None:
        super().__init__(file, pickle.HIGHEST_PROTOCOL)
        self.shared = memo

    def reducer_override(self, obj: Any) -> Any:  # only called for objects of non-builtin types
        if id(obj) not in self.shared and hasattr(type(obj), "__deepcopy__"):
            self.shared[id(obj)] = copy.deepcopy(obj, self.shared)  # its own copy rule
        return (_shared, (id(obj),)) if id(obj) in self.shared else NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, memo: dict[int, Any]) -> None:
        super().__init__(file)
        self.shared = memo

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (__name__, "_shared"):
            return self.shared.__getitem__
        return super().find_class(module, name)


def copy_data(obj: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy(obj, memo)`` through pickle: ten times faster for plain data (dicts, lists,
    tuples, numbers, strings, simple objects). An object in ``memo`` (not of a builtin type)
    becomes its copy there; one with ``__deepcopy__`` is copied by it; if ``obj`` cannot be
    pickled (a lambda, a lock...) it is deep-copied."""
    buf = io.BytesIO()
    try:
        _Pickler(buf, memo).dump(obj)
    except (pickle.PicklingError, TypeError, AttributeError):
        return copy.deepcopy(obj, memo)
    buf.seek(0)
    return _Unpickler(buf, memo).load()


def task_params(route: RouteTask, sample: Sample, lab: Lab) -> dict[str, float]:
    """Parameters of one task for one sample: defaults, fixed params, then the experiment's."""
    spec = lab.task(route.module, route.task)
    out = dict(route.params)
    for name, value in sample.params.items():
        owner, short = name.split(".", 1) if "." in name else (None, name)
        if owner in (None, route.task) and short in spec.params:
            out[short] = value
    return out


def visits_of(route: Sequence[RouteTask]) -> list[int]:
    """Visit index of each route task (consecutive tasks on one module share a visit)."""
    out: list[int] = []
    for i, r in enumerate(route):
        if i == 0:
            out.append(0)
        else:
            out.append(out[-1] + (r.module != route[i - 1].module))
    return out


def build_chunk(
    lab: Lab,
    job: JobRun,
    group: GroupRun,
    samples: Sequence[Sample],
    *,
    merge_task_steps: bool,
    estimate: Any,
) -> ChunkRun:
    """Instantiate the steps of a chunk with their precedence and visit bookkeeping.

    ``estimate(module, task, step_name, seconds) -> seconds`` applies learned corrections.
    With ``merge_task_steps`` every task is one step holding the task's devices for its whole
    duration (standby is not shared: the serial baseline).
    """
    chunk = ChunkRun(
        id=f"{job.id}/g{group.index}c{len(group.chunks)}",
        job=job,
        group=group,
        samples=tuple(samples),
    )
    route = job.spec.route
    visit_idx = visits_of(route)
    for v in range(visit_idx[-1] + 1):
        module = route[visit_idx.index(v)].module
        mod = lab.modules[module]
        chunk.visits.append(
            Visit(module=module, demand={(module, s): len(samples) for s in mod.sample_slots})
        )
    last: dict[int, StepRun] = {}  # sample position -> its last step so far
    for ti, rt in enumerate(route):
        spec = lab.task(rt.module, rt.task)
        per_sample_params = [task_params(rt, s, lab) for s in samples]
        visit = visit_idx[ti]
        first_in_visit = ti == 0 or visit_idx[ti - 1] != visit
        units: list[tuple[tuple[int, ...], str]]
        if spec.per == PER_BATCH:
            units = [(tuple(range(len(samples))), "")]
        else:
            units = [((i,), f"#{i}") for i in range(len(samples))]
        prev_unit_last: StepRun | None = None
        for unit_index, (positions, suffix) in enumerate(units):
            unit_params = [per_sample_params[i] for i in positions]
            if merge_task_steps:
                seconds = sum(s.duration.expected(len(positions), unit_params) for s in spec.steps)
                plan = [(rt.task, ACTIVE, lab.task_devices(rt.module, rt.task), seconds)]
            else:
                plan = [
                    (
                        s.name,
                        s.kind,
                        lab.step_devices(rt.module, rt.task, s),
                        s.duration.expected(len(positions), unit_params),
                    )
                    for s in spec.steps
                ]
            chain: list[StepRun] = []
            for si, (name, kind, devices, seconds) in enumerate(plan):
                step = StepRun(
                    id=f"{chunk.id}/{ti}.{rt.task}.{name}{suffix}",
                    job=job,
                    chunk=chunk,
                    route_index=ti,
                    module=rt.module,
                    task=rt.task,
                    name=name,
                    kind=kind,
                    devices=frozenset(devices),
                    samples=tuple(samples[i] for i in positions),
                    params=unit_params[0] if len(unit_params) == 1 else {"per_sample": unit_params},
                    expected=estimate(rt.module, rt.task, name, seconds),
                    base=seconds,
                    visit=visit,
                    enters_visit=first_in_visit and unit_index == 0 and si == 0,
                    consumes=(
                        {k: n * len(positions) for k, n in spec.consumes.items()} if si == 0 else {}
                    ),
                )
                preds: list[StepRun] = []
                if si > 0:
                    preds.append(chain[-1])
                else:
                    preds.extend(dict.fromkeys(last[i] for i in positions if i in last))
                    if prev_unit_last is not None:  # the robot handles a task's samples in order
                        preds.append(prev_unit_last)
                step.preds = list(dict.fromkeys(preds))
                for p in step.preds:
                    p.succs.append(step)
                step.missing = len(step.preds)
                chain.append(step)
                chunk.steps.append(step)
                chunk.visits[visit].steps_left += 1
            prev_unit_last = chain[-1]
            for i in positions:
                last[i] = chain[-1]
    chunk.steps_left = len(chunk.steps)
    return chunk
