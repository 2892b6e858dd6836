"""Scenario files: a lab, jobs with submission times, optional noise, failures and lab events.

The format is documented in SCENARIOS.md. Scenario files shipped with the package live in
``octopus_scheduler/twin/scenarios/`` and load by name (``fig8-platform-day``) or by path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from octopus_scheduler.core import events as ev
from octopus_scheduler.core.errors import ScenarioError, SpecError
from octopus_scheduler.core.jobscript import JobSpec, parse_job_script
from octopus_scheduler.core.lab import Lab, load_lab
from octopus_scheduler.core.units import UNITS, to_canonical

CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class ScenarioJob:
    job_id: str
    submit: float  # seconds from the scenario's start
    spec: JobSpec


@dataclass(frozen=True)
class Scenario:
    name: str
    lab: Lab
    jobs: tuple[ScenarioJob, ...]
    events: tuple[ev.Event, ...] = ()  # module down/up, cancel, hold... with times
    noise_sigma: float = 0.0
    failure_probability: float = 0.0
    seed: int = 0
    policy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    published: Mapping[str, Any] = field(default_factory=dict)
    start_clock: str | None = None
    source: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _err(path: str, message: str) -> ScenarioError:
    return ScenarioError(path, message)


def _time(raw: Any, unit: str, start: tuple[int, int] | None, path: str) -> float:
    if isinstance(raw, str) and CLOCK.match(raw.strip()):
        if start is None:
            raise _err(path, "clock times need 'start_clock'")
        h, m = (int(x) for x in CLOCK.match(raw.strip()).groups())  # type: ignore[union-attr]
        seconds = (h - start[0]) * 3600 + (m - start[1]) * 60
        if seconds < 0:
            raise _err(path, f"{raw} is before start_clock")
        return float(seconds)
    value = to_canonical(raw, unit, path, _err)
    if value < 0:
        raise _err(path, "must not be negative")
    return value


def parse_scenario(data: Any, name: str = "scenario") -> Scenario:
    if not isinstance(data, Mapping):
        raise _err("<document>", "expected a mapping")
    allowed = {
        "name", "description", "time_unit", "start_clock", "lab", "jobs", "events", "noise",
        "failures", "policy_options", "published", "templates",
    }  # fmt: skip
    for key in data:
        if key not in allowed:
            raise _err(key, f"unknown field (allowed: {', '.join(sorted(allowed))})")
    unit = str(data.get("time_unit", "s"))
    if unit not in UNITS or UNITS[unit][0] != "time":
        raise _err("time_unit", f"must be a time unit (s, min, h), got {unit!r}")
    start = None
    if data.get("start_clock") is not None:
        m = CLOCK.match(str(data["start_clock"]))
        if not m:
            raise _err("start_clock", "expected HH:MM")
        start = (int(m.group(1)), int(m.group(2)))
    try:
        lab = load_lab(data.get("lab"), "lab")
    except SpecError as exc:
        raise _err(exc.field, exc.message) from None
    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, list) or not raw_jobs:
        raise _err("jobs", "expected a non-empty list")
    templates = data.get("templates") or {}
    jobs: list[ScenarioJob] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_jobs):
        path = f"jobs[{i}]"
        if not isinstance(raw, Mapping):
            raise _err(path, "expected a mapping")
        job_id = str(raw.get("id", i))
        if job_id in seen:
            raise _err(f"{path}.id", f"duplicate job id '{job_id}'")
        seen.add(job_id)
        script = raw.get("script")
        if script is None and "template" in raw:
            if raw["template"] not in templates:
                raise _err(f"{path}.template", f"unknown template '{raw['template']}'")
            script = _merge(templates[raw["template"]], raw.get("with", {}))
        if script is None:
            raise _err(f"{path}.script", "required (or 'template')")
        try:
            spec = parse_job_script(script, lab)
        except SpecError as exc:
            raise _err(f"{path}.script.{exc.field}", exc.message) from None
        jobs.append(
            ScenarioJob(job_id, _time(raw.get("submit", 0), unit, start, f"{path}.submit"), spec)
        )
    events: list[ev.Event] = []
    for i, raw in enumerate(data.get("events") or []):
        path = f"events[{i}]"
        kind = raw.get("type") if isinstance(raw, Mapping) else None
        if kind not in (
            "ModuleDown",
            "ModuleUp",
            "CancelJob",
            "HoldJob",
            "ResumeJob",
            "SetPriority",
        ):
            raise _err(f"{path}.type", f"unsupported scenario event {kind!r}")
        t = _time(raw.get("at", 0), unit, start, f"{path}.at")
        args = {k: v for k, v in raw.items() if k not in ("type", "at")}
        if "module" in args and args["module"] not in lab.modules:
            raise _err(f"{path}.module", f"unknown module '{args['module']}'")
        if "job_id" in args:
            args["job_id"] = str(args["job_id"])
            if args["job_id"] not in seen:
                raise _err(f"{path}.job_id", f"unknown job '{args['job_id']}'")
        try:
            events.append(ev.EVENT_TYPES[kind](time=t, **args))
        except TypeError as exc:
            raise _err(path, str(exc)) from None
    noise = data.get("noise") or {}
    failures = data.get("failures") or {}
    sigma = float(noise.get("sigma", 0.0))
    prob = float(failures.get("probability", 0.0))
    if sigma < 0:
        raise _err("noise.sigma", "must not be negative")
    if not 0 <= prob < 1:
        raise _err("failures.probability", "must be in [0, 1)")
    return Scenario(
        name=str(data.get("name", name)),
        lab=lab,
        jobs=tuple(jobs),
        events=tuple(events),
        noise_sigma=sigma,
        failure_probability=prob,
        seed=int(noise.get("seed", failures.get("seed", 0))),
        policy_options=dict(data.get("policy_options") or {}),
        published=dict(data.get("published") or {}),
        start_clock=None if start is None else str(data["start_clock"]),
        source=data,
    )


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(extra, Mapping):
        out = dict(base)
        for k, v in extra.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return extra


def builtin_scenarios() -> list[str]:
    files = resources.files("octopus_scheduler.twin").joinpath("scenarios")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario from a path, or a built-in one by name."""
    path = Path(name_or_path)
    if path.exists():
        text = path.read_text()
        name = path.stem
    else:
        res = resources.files("octopus_scheduler.twin").joinpath(
            "scenarios", f"{name_or_path}.yaml"
        )
        if not res.is_file():
            raise _err(
                "<file>", f"no scenario file '{name_or_path}' (built-in: {builtin_scenarios()})"
            )
        text = res.read_text()
        name = str(name_or_path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _err("<document>", f"invalid YAML: {exc}") from None
    return parse_scenario(data, name)
