"""A live lab that is its scenario's digital twin: module descriptions from a scenario's lab.

``octopus simulate SCENARIO`` runs the scheduler core on the scenario's own duration model in
virtual time. This module turns the same lab into module descriptions whose simulated devices
take exactly those durations (no noise), plus a lab file and the scenario's jobs as a day to
submit, so a live lab (real nodes over DDS, wall clock x time scale) and the twin solve the same
problem. ROS-free.

The mapping, step by step (scenario -> module description):

- every device becomes a simulated ``actuator`` (action ``up``) with ``duration_noise: 0``;
- a task keeps its scope (``per: sample`` -> ``per_sample``: one step chain per sample, so
  ``fixed + per_sample`` once; ``per: batch`` -> ``per_batch``: ``fixed + per_sample x
  n_samples``, the parameter term of the longest sample), its parameters (their units), its
  mask (devices of other modules as ``Module/Device``) and its consumables;
- an active step becomes one action on a device of this module that the step holds, lasting
  the step's expected duration, with the step's devices as its mask; a standby step stays
  standby (no device);
- lab-level masks go to the lab file; slots keep their capacities and zones, the scenario's
  sample slot type first.

Zero durations make a bench lab: every step is one zero-duration action.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from octopus_client.demo_day import Day, DayJob
from octopus_scheduler.core.lab import ACTIVE, PER_SAMPLE, DurationSpec, Lab, ModuleSpec, TaskSpec
from octopus_scheduler.core.units import UNITS
from octopus_scheduler.twin.scenario import Scenario, _merge

SIMULATED = {"driver": "simulated", "settings": {"duration_noise": 0.0}}


def _number(value: float) -> str:
    return repr(float(value))


def _duration_expression(task: TaskSpec, duration: DurationSpec) -> str:
    """The scenario's duration as a module expression (seconds).

    per sample: the module evaluates it once per sample (its chain has one sample);
    per batch: once for the chunk, with ``n_samples``; the core takes the largest parameter
    value of the chunk, as the scenario's model does."""
    terms = []
    if task.per == PER_SAMPLE:
        base = duration.fixed_s + duration.per_sample_s
        if base:
            terms.append(_number(base))
    else:
        if duration.fixed_s:
            terms.append(_number(duration.fixed_s))
        if duration.per_sample_s:
            terms.append(f"{_number(duration.per_sample_s)} * n_samples")
    if duration.param is not None:
        spec = task.params[duration.param]
        factor = UNITS.get(spec.unit, ("", 1.0))[1]  # the module sees the value in spec.unit
        terms.append(f"{_number(duration.param_scale * factor)} * {duration.param}")
    expression = " + ".join(terms) or "0"
    return f"max(0, {expression})" if duration.param is not None else expression


def _parameters(task: TaskSpec) -> list[dict[str, Any]]:
    out = []
    for name, spec in task.params.items():
        if spec.is_text:
            entry: dict[str, Any] = {"name": name, "type": "str", "choices": list(spec.choices)}
            if spec.default is not None:
                entry["default"] = spec.default
            out.append(entry)
            continue
        factor = UNITS.get(spec.unit, ("", 1.0))[1]  # the core keeps canonical values
        entry = {"name": name, "type": "float", "unit": spec.unit}
        for key, value in (("min", spec.min), ("max", spec.max), ("default", spec.default)):
            if value is not None:
                entry[key] = float(value) / factor
        out.append(entry)
    return out


def _qualified(device: str, lab: Lab, module: str) -> str:
    owner = lab.device_module[device]
    return device if owner == module else f"{owner}/{device}"


def module_description(lab: Lab, module: ModuleSpec) -> dict[str, Any]:
    """The module description (as a mapping) of one scenario module."""
    name = module.name
    slot_order = list(module.sample_slots) + [
        s for s in module.slots if s not in module.sample_slots
    ]
    description: dict[str, Any] = {
        "module": name,
        "description": "twin of a scenario module: simulated devices, the model's durations",
        "devices": [{"name": d, "kind": "actuator", **SIMULATED} for d in module.devices],
        "slots": [
            {"type": s, "capacity": module.slots[s].capacity}
            | ({"zone_by": ".".join(module.slots[s].zone_by)} if module.slots[s].zone_by else {})
            for s in slot_order
        ],
        "consumables": [
            {"name": c.name, "stock": c.stock, "low_stock": c.low}
            for c in module.consumables.values()
        ],
        "tasks": [],
    }
    if not description["slots"]:
        del description["slots"]
    if not description["consumables"]:
        del description["consumables"]
    local = set(module.devices)
    for task in module.tasks.values():
        steps = []
        for step in task.steps:
            seconds = _duration_expression(task, step.duration)
            if step.kind != ACTIVE:
                steps.append({"name": step.name, "mode": "standby", "duration_s": seconds})
                continue
            held = sorted(lab.step_devices(name, task.name, step))
            mine = [d for d in held if d in local] or sorted(local)
            steps.append(
                {
                    "name": step.name,
                    "mode": "active",
                    "mask": [_qualified(d, lab, name) for d in held],
                    "actions": [{"device": mine[0], "action": "up", "duration_s": seconds}],
                }
            )
        entry: dict[str, Any] = {
            "name": task.name,
            "scope": "per_sample" if task.per == PER_SAMPLE else "per_batch",
            "mask": [_qualified(d, lab, name) for d in sorted(task.mask)],
            "steps": steps,
        }
        parameters = _parameters(task)
        if parameters:
            entry["parameters"] = parameters
        if task.consumes:
            entry["consumes"] = [{"name": k, "amount": v} for k, v in task.consumes.items()]
        description["tasks"].append(entry)
    return description


def lab_masks(lab: Lab) -> dict[str, list[str]]:
    return {key: sorted(devices) for key, devices in lab.extra_masks.items()}


def write_twin_lab(
    scenario: Scenario,
    out: Path,
    *,
    time_scale: float,
    policy: str,
    heartbeat_period: float = 1.0,
    modules: Sequence[str] | None = None,
) -> Path:
    """Module description files and a lab file for the live twin of ``scenario`` under ``out``
    (a fresh database). Returns the lab file."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, module in scenario.lab.modules.items():
        if modules is not None and name not in modules:
            continue
        path = out / f"module_{name}.yaml"
        text = yaml.safe_dump(module_description(scenario.lab, module), sort_keys=False)
        path.write_text(text)
        entries.append({"description": str(path.resolve())})
    database = out / "twin.sqlite"
    for stale in out.glob("twin.sqlite*"):
        stale.unlink()
    options = dict(scenario.policy_options)
    lab = {
        "name": f"twin-{scenario.name}",
        "time_scale": time_scale,
        "policy": policy,
        "database": str(database.resolve()),
        "heartbeat_period": heartbeat_period,
        "retries": 0,
        "admins": ["lab_manager"],
        "masks": lab_masks(scenario.lab),
        "modules": entries,
    }
    if options:
        lab["policy_options"] = options
    path = out / "lab.yaml"
    path.write_text(yaml.safe_dump(lab, sort_keys=False))
    return path


def scenario_scripts(scenario: Scenario) -> list[tuple[str, float, Mapping[str, Any]]]:
    """(job id, submit s, job script mapping) of every job, templates merged."""
    templates = scenario.source.get("templates") or {}
    out = []
    for raw, job in zip(scenario.source.get("jobs") or [], scenario.jobs, strict=True):
        script = raw.get("script")
        if script is None:
            script = _merge(templates[raw["template"]], raw.get("with", {}))
        out.append((job.job_id, job.submit, script))
    return out


def scenario_day(scenario: Scenario) -> Day:
    """The scenario's jobs as a day to submit live (the owner submits; times in lab seconds)."""
    jobs = []
    for index, (job_id, submit, script) in enumerate(scenario_scripts(scenario)):
        owner = str((script.get("metadata") or {}).get("owner") or f"user{index}")
        jobs.append(
            DayJob(
                index=int(job_id) if str(job_id).isdigit() else index,
                user=owner,
                offset_s=float(submit),
                script=yaml.safe_dump(dict(script), sort_keys=False),
            )
        )
    return Day(scenario.name, tuple(jobs), _published_hours(scenario.published))


def _published_hours(published: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in published.items() if isinstance(v, Mapping)}


def with_step_overhead(scenario: Scenario, seconds: float) -> Scenario:
    """The scenario with every step ``seconds`` longer: the twin of a live lab whose machinery
    adds that much lab time to each step (dispatch delay x time scale)."""
    import dataclasses

    from octopus_scheduler.core.jobscript import parse_job_script

    modules = {}
    for name, module in scenario.lab.modules.items():
        tasks = {}
        for task_name, task in module.tasks.items():
            steps = tuple(
                dataclasses.replace(
                    step,
                    duration=dataclasses.replace(
                        step.duration, fixed_s=step.duration.fixed_s + seconds
                    ),
                )
                for step in task.steps
            )
            tasks[task_name] = dataclasses.replace(task, steps=steps)
        modules[name] = dataclasses.replace(module, tasks=tasks)
    lab = dataclasses.replace(scenario.lab, modules=modules)
    jobs = tuple(
        dataclasses.replace(job, spec=parse_job_script(script, lab))
        for job, (_id, _submit, script) in zip(
            scenario.jobs, scenario_scripts(scenario), strict=True
        )
    )
    return dataclasses.replace(scenario, lab=lab, jobs=jobs)


def nominal_seconds(lab: Lab, task: str, step: str) -> float | None:
    """A step's model duration when it depends on nothing (no parameter, per sample, one
    sample), else None."""
    for module in lab.modules.values():
        spec = module.tasks.get(task)
        if spec is None:
            continue
        for candidate in spec.steps:
            if candidate.name == step and candidate.duration.param is None:
                if spec.per == PER_SAMPLE or not candidate.duration.per_sample_s:
                    return candidate.duration.expected(1, [])
    return None
