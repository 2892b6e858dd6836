"""Job scripts: parse and strictly validate a user's job against the lab.

Every error is a :class:`JobScriptError` whose ``field`` is the path of the bad entry, e.g.
``process.Synthesis.BatchSynthesis.sequence[2]``. The format is documented in JOB_SCRIPT.md.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from octopus_scheduler.core.errors import JobScriptError
from octopus_scheduler.core.lab import Lab, ParamSpec
from octopus_scheduler.core.units import UNITS, parse_duration_s, to_canonical

STAGES = ("Synthesis", "Preprocess", "Characterization", "Evaluation")
KINDS = ("manual", "sweep", "bayesian")
SAMPLINGS = ("latin", "grid", "random")
ACQUISITIONS = ("ucb", "ei", "pi")
NON_NEGATIVE_DIMS = {"time", "volume", "mass", "concentration", "speed", "flow", "count", "length"}


@dataclass(frozen=True)
class Limits:
    """What one job may ask of a shared lab; each is refused with the field and the limit."""

    max_script_bytes: int = 1_000_000
    max_depth: int = 32  # nesting of mappings and lists
    max_cycles: int = 1_000  # Bayesian cycles
    max_experiments: int = 10_000  # samples in all: experiments, grid points, batch x cycles
    max_retries: int = 10
    max_deadline_s: float = 30 * 86_400.0  # a relative deadline: 30 days


LIMITS = Limits()


@dataclass(frozen=True)
class RouteTask:
    """One task of the process, in order: stage -> module -> task with its fixed parameters."""

    stage: str
    module: str
    task: str
    params: Mapping[str, float]
    path: str = field(default="", compare=False)  # process.<stage>.<module>.sequence[i]


@dataclass(frozen=True)
class Metadata:
    name: str
    owner: str
    priority: int = 0
    deadline: float | None = None  # absolute clock time (ISO input) ...
    deadline_after_s: float | None = None  # ... or relative to submission
    retries: int = 0


@dataclass(frozen=True)
class Campaign:
    kind: str
    experiments: tuple[Mapping[str, float], ...]  # manual/sweep: every parameter set
    batch: int  # samples per group (a BO cycle, or a chunk of a manual list)
    cycles: int  # BO: sequential cycles; manual/sweep: number of independent groups
    space: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    initial_sampling: str = "latin"
    acquisition: Mapping[str, Any] = field(default_factory=dict)
    loss: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def sequential(self) -> bool:
        """True when cycle k needs the results of cycle k-1 (closed loop)."""
        return self.kind == "bayesian"

    def group_sizes(self) -> list[int]:
        if self.sequential:
            return [self.batch] * self.cycles
        n = len(self.experiments)
        return [min(self.batch, n - i) for i in range(0, n, self.batch)]


@dataclass(frozen=True)
class JobSpec:
    metadata: Metadata
    campaign: Campaign
    route: tuple[RouteTask, ...]
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def modules(self) -> list[str]:
        return list(dict.fromkeys(r.module for r in self.route))


def _key(key: Any) -> str:
    """A user's key as a field path element: as written when plain, quoted otherwise (a key
    like ':' or '' must not garble "<path>: <message>")."""
    text = str(key)
    if re.fullmatch(r"[\w.\-/ ]*\w[\w.\-/ ]*", text) and text.strip() == text:
        return text
    return repr(key).replace(":", "\\x3a")  # the colon ends the path in "<path>: <message>"


def _err(path: str, message: str) -> JobScriptError:
    return JobScriptError(path, message)


def _mapping(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _err(path, f"expected a mapping, got {type(data).__name__}")
    return data


def _check_keys(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            raise _err(
                f"{path}.{_key(key)}", f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )


def _int(data: Any, path: str, low: int) -> int:
    if isinstance(data, bool) or not isinstance(data, int):
        raise _err(path, f"expected an integer, got {data!r}")
    if data < low:
        raise _err(path, f"must be at least {low}")
    return data


def _number(data: Any, path: str) -> float:
    if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
        raise _err(path, f"expected a number, got {data!r}")
    return float(data)


def _value(raw: Any, spec: ParamSpec, path: str) -> Any:
    if spec.is_text:
        if raw not in spec.choices:
            raise _err(path, f"{raw!r} is not one of {', '.join(spec.choices)}")
        return raw
    value = to_canonical(raw, spec.unit, path, _err)
    dim = UNITS[spec.unit][0]
    if spec.integer and not float(value / UNITS[spec.unit][1]).is_integer():
        raise _err(path, f"expected {spec.kind}, got {raw!r}")
    if dim in NON_NEGATIVE_DIMS and value < 0:
        raise _err(path, f"must not be negative (got {raw!r})")
    if spec.min is not None and value < spec.min - 1e-9:
        raise _err(path, f"below the minimum {spec.min:g} (canonical {spec.unit or 'units'})")
    if spec.max is not None and value > spec.max + 1e-9:
        raise _err(path, f"above the maximum {spec.max:g} (canonical {spec.unit or 'units'})")
    return value


def _load_text(text: str) -> Any:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise _err("<document>", f"invalid JSON: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _err("<document>", f"invalid YAML: {exc}") from None


def _metadata(data: Any, limits: Limits) -> Metadata:
    m = _mapping(data, "metadata")
    _check_keys(m, {"name", "owner", "priority", "deadline", "retries", "description"}, "metadata")
    for key in ("name", "owner"):
        if not isinstance(m.get(key), str) or not m[key].strip():
            raise _err(f"metadata.{key}", "required, a non-empty string")
    priority = m.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -100 <= priority <= 100:
        raise _err("metadata.priority", "an integer between -100 and 100")
    deadline = deadline_after = None
    if m.get("deadline") is not None:
        raw = m["deadline"]
        if isinstance(raw, datetime):
            deadline = raw.timestamp()
        elif isinstance(raw, str) and "T" in raw:
            try:
                deadline = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise _err("metadata.deadline", f"not an ISO-8601 time: {raw!r}") from None
        else:
            deadline_after = parse_duration_s(raw, "metadata.deadline", _err)
            if deadline_after <= 0:
                raise _err("metadata.deadline", "must be after submission")
            if deadline_after > limits.max_deadline_s:
                days = limits.max_deadline_s / 86_400
                raise _err("metadata.deadline", f"{raw!r} is too far: at most {days:g} days")
    retries = _int(m.get("retries", 0), "metadata.retries", 0)
    if retries > limits.max_retries:
        raise _err(
            "metadata.retries", f"{retries} is above this lab's maximum {limits.max_retries}"
        )
    return Metadata(
        name=m["name"].strip(),
        owner=m["owner"].strip(),
        priority=priority,
        deadline=deadline,
        deadline_after_s=deadline_after,
        retries=retries,
    )


def _route(data: Any, lab: Lab) -> tuple[RouteTask, ...]:
    proc = _mapping(data, "process")
    if not proc:
        raise _err("process", "needs at least one stage")
    route: list[RouteTask] = []
    visited: dict[str, str] = {}  # module -> where the route visits it
    last_stage = -1
    for stage, modules in proc.items():
        sp = f"process.{_key(stage)}"
        if stage not in STAGES:
            raise _err(sp, f"unknown stage (known: {', '.join(STAGES)})")
        if STAGES.index(stage) < last_stage:
            raise _err(sp, f"stages must follow the order {' -> '.join(STAGES)}")
        last_stage = STAGES.index(stage)
        for module, body in _mapping(modules, sp).items():
            mp = f"{sp}.{_key(module)}"
            if module not in lab.modules:
                raise _err(mp, f"unknown module '{module}' (known: {', '.join(lab.modules)})")
            if module in visited:
                raise _err(
                    mp,
                    f"the route already visited module {module} at {visited[module]}: "
                    "samples visit each module once (put all its tasks in one sequence)",
                )
            visited[module] = mp
            mod = lab.modules[module]
            b = _mapping(body, mp)
            _check_keys(b, {"sequence", "fixedParams"}, mp)
            seq = b.get("sequence")
            if not isinstance(seq, list) or not seq:
                raise _err(f"{mp}.sequence", "expected a non-empty list of tasks")
            fixed = _mapping(b.get("fixedParams", {}) or {}, f"{mp}.fixedParams")
            used_fixed: set[str] = set()
            for i, item in enumerate(seq):
                ip = f"{mp}.sequence[{i}]"
                inline: Mapping[str, Any] = {}
                if isinstance(item, str):
                    tname = item
                elif isinstance(item, Mapping):
                    _check_keys(item, {"task", "params"}, ip)
                    tname = item.get("task")
                    inline = _mapping(item.get("params", {}) or {}, f"{ip}.params")
                else:
                    raise _err(ip, "expected a task name or {task, params}")
                if not isinstance(tname, str) or tname not in mod.tasks:
                    raise _err(
                        ip, f"unknown task '{tname}' (module {module} has: {', '.join(mod.tasks)})"
                    )
                spec = mod.tasks[tname]
                params: dict[str, float] = {
                    n: p.default for n, p in spec.params.items() if p.default is not None
                }
                for pname, raw in fixed.items():
                    short = pname.split(".", 1)[1] if "." in pname else pname
                    owner = pname.split(".", 1)[0] if "." in pname else None
                    if owner not in (None, tname) or short not in spec.params:
                        continue
                    params[short] = _value(
                        raw, spec.params[short], f"{mp}.fixedParams.{_key(pname)}"
                    )
                    used_fixed.add(pname)
                for pname, raw in inline.items():
                    if pname not in spec.params:
                        raise _err(
                            f"{ip}.params.{_key(pname)}", f"unknown parameter of task {tname}"
                        )
                    params[pname] = _value(raw, spec.params[pname], f"{ip}.params.{_key(pname)}")
                route.append(RouteTask(stage, module, tname, params, path=ip))
            for pname in fixed:
                if pname not in used_fixed:
                    raise _err(
                        f"{mp}.fixedParams.{_key(pname)}",
                        "unknown parameter: no task in the sequence takes it",
                    )
    return tuple(route)


def _param_owners(name: str, route: Sequence[RouteTask], lab: Lab) -> list[ParamSpec]:
    owner = name.split(".", 1)[0] if "." in name else None
    short = name.split(".", 1)[1] if "." in name else name
    return [
        lab.task(r.module, r.task).params[short]
        for r in route
        if owner in (None, r.task) and short in lab.task(r.module, r.task).params
    ]


def _experiment(raw: Any, path: str, route: Sequence[RouteTask], lab: Lab) -> dict[str, float]:
    exp = _mapping(raw, path)
    out: dict[str, float] = {}
    for name, value in exp.items():
        owners = _param_owners(name, route, lab)
        if not owners:
            raise _err(f"{path}.{_key(name)}", "unknown parameter: no task in the process takes it")
        out[name] = _value(value, owners[0], f"{path}.{_key(name)}")
        for spec in owners[1:]:
            _value(value, spec, f"{path}.{_key(name)}")
    return out


def _experiments(
    raw: Any, path: str, route: Sequence[RouteTask], lab: Lab, limits: Limits
) -> list[dict[str, float]]:
    if not isinstance(raw, list) or not raw:
        raise _err(path, "expected a non-empty list of parameter sets")
    if len(raw) > limits.max_experiments:
        raise _err(path, f"{len(raw)} experiments is too many (max {limits.max_experiments})")
    return [_experiment(e, f"{path}[{i}]", route, lab) for i, e in enumerate(raw)]


def _campaign(data: Any, route: Sequence[RouteTask], lab: Lab, limits: Limits) -> Campaign:
    c = _mapping(data, "campaign")
    kind = c.get("kind")
    if kind not in KINDS:
        raise _err("campaign.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    capacity = _max_batch(route, lab)
    if kind == "manual":
        _check_keys(c, {"kind", "experiments", "batch"}, "campaign")
        exps = _experiments(c.get("experiments"), "campaign.experiments", route, lab, limits)
    elif kind == "sweep":
        _check_keys(c, {"kind", "grid", "list", "batch"}, "campaign")
        if ("grid" in c) == ("list" in c):
            raise _err("campaign", "a sweep needs exactly one of 'grid' or 'list'")
        if "list" in c:
            exps = _experiments(c["list"], "campaign.list", route, lab, limits)
        else:
            grid = _mapping(c["grid"], "campaign.grid")
            if not grid:
                raise _err("campaign.grid", "needs at least one parameter")
            axes: list[list[tuple[str, Any]]] = []
            for name, values in grid.items():
                if not isinstance(values, list) or not values:
                    raise _err(f"campaign.grid.{_key(name)}", "expected a non-empty list of values")
                axes.append([(name, v) for v in values])
            exps = []
            size = math.prod(len(axis) for axis in axes)
            if size > limits.max_experiments:
                raise _err(
                    "campaign.grid",
                    f"{size} experiments is too many (max {limits.max_experiments})",
                )
            for combo in itertools.product(*axes):
                exps.append(_experiment(dict(combo), "campaign.grid", route, lab))
            if len(exps) > limits.max_experiments:
                raise _err(
                    "campaign.grid",
                    f"{len(exps)} experiments is too many (max {limits.max_experiments})",
                )
    else:
        return _bayesian(c, route, lab, capacity, limits)
    batch = c.get("batch")
    if batch is None:
        batch = min(len(exps), capacity) if capacity else len(exps)
    else:
        batch = _int(batch, "campaign.batch", 1)
        _check_batch(batch, capacity, route, lab)
    return Campaign(
        kind=kind, experiments=tuple(exps), batch=batch, cycles=math.ceil(len(exps) / batch)
    )


def _bayesian(
    c: Mapping[str, Any], route: Sequence[RouteTask], lab: Lab, cap: int, limits: Limits
) -> Campaign:
    allowed = {"kind", "batch", "cycles", "initial_sampling", "acquisition", "space", "loss"}
    _check_keys(c, allowed, "campaign")
    batch = _int(c.get("batch"), "campaign.batch", 1)
    _check_batch(batch, cap, route, lab)
    cycles = _int(c.get("cycles"), "campaign.cycles", 1)
    if cycles > limits.max_cycles:
        raise _err("campaign.cycles", f"{cycles} is above the maximum {limits.max_cycles}")
    if batch * cycles > limits.max_experiments:
        raise _err(
            "campaign.cycles",
            f"batch {batch} x {cycles} cycles = {batch * cycles} samples is too many "
            f"(max {limits.max_experiments})",
        )
    sampling = c.get("initial_sampling", "latin")
    if sampling not in SAMPLINGS:
        raise _err("campaign.initial_sampling", f"must be one of {', '.join(SAMPLINGS)}")
    acq = _mapping(c.get("acquisition", {"function": "ucb"}), "campaign.acquisition")
    _check_keys(acq, {"function", "kappa", "xi"}, "campaign.acquisition")
    fn = acq.get("function")
    if fn not in ACQUISITIONS:
        raise _err("campaign.acquisition.function", f"must be one of {', '.join(ACQUISITIONS)}")
    if "kappa" in acq and fn != "ucb":
        raise _err("campaign.acquisition.kappa", "only for the ucb acquisition")
    if "xi" in acq and fn == "ucb":
        raise _err("campaign.acquisition.xi", "only for the ei and pi acquisitions")
    acquisition: dict[str, Any] = {"function": fn}
    for key in ("kappa", "xi"):
        if key in acq:
            acquisition[key] = _number(acq[key], f"campaign.acquisition.{key}")
            if acquisition[key] < 0:
                raise _err(f"campaign.acquisition.{key}", "must not be negative")
    space_raw = _mapping(c.get("space"), "campaign.space")
    if not space_raw:
        raise _err("campaign.space", "needs at least one parameter")
    space: dict[str, tuple[float, float, float]] = {}
    for name, raw in space_raw.items():
        sp = f"campaign.space.{_key(name)}"
        owners = _param_owners(name, route, lab)
        if not owners:
            raise _err(sp, "unknown parameter: no task in the process takes it")
        if owners[0].is_text:
            raise _err(sp, "a named choice cannot be optimised; give it in fixedParams")
        unit = owners[0].unit
        rng = raw
        if isinstance(raw, Mapping):
            _check_keys(raw, {"range", "unit"}, sp)
            rng, unit = raw.get("range"), str(raw.get("unit", unit))
        if not isinstance(rng, list) or len(rng) != 3:
            raise _err(sp, "expected [min, max, step]")
        lo, hi, step = (
            _value({"value": rng[i], "unit": unit}, owners[0], f"{sp}[{i}]") if i < 2 else None
            for i in range(3)
        )
        step_v = _number(rng[2], f"{sp}[2]") * UNITS[unit][1] if unit in UNITS else None
        if step_v is None or step_v <= 0:
            raise _err(f"{sp}[2]", "step must be positive")
        assert lo is not None and hi is not None
        if lo >= hi:
            raise _err(sp, "min must be below max")
        if owners[0].integer and not (step_v / UNITS[owners[0].unit][1]).is_integer():
            whole = f"{owners[0].name} takes {owners[0].kind}: the step must be whole"
            raise _err(f"{sp}[2]", whole)
        space[name] = (lo, hi, step_v)
    loss_raw = _mapping(c.get("loss"), "campaign.loss")
    if not loss_raw:
        raise _err("campaign.loss", "needs at least one measured property")
    loss: dict[str, dict[str, float]] = {}
    for prop, raw in loss_raw.items():
        lp = f"campaign.loss.{_key(prop)}"
        term = _mapping(raw, lp)
        _check_keys(term, {"target", "weight"}, lp)
        if "target" not in term:
            raise _err(f"{lp}.target", "required")
        weight = _number(term.get("weight", 1.0), f"{lp}.weight")
        if weight < 0:
            raise _err(f"{lp}.weight", "must not be negative")
        loss[prop] = {"target": _number(term["target"], f"{lp}.target"), "weight": weight}
    return Campaign(
        kind="bayesian",
        experiments=(),
        batch=batch,
        cycles=cycles,
        space=space,
        initial_sampling=sampling,
        acquisition=acquisition,
        loss=loss,
    )


def _check_reported(loss: Mapping[str, Any], route: Sequence[RouteTask], lab: Lab) -> None:
    """Every property the loss names is reported by some task of the route, as its module
    declares (``reports:``); a route with a task that declares nothing is not checked."""
    declared = [lab.task(r.module, r.task).reports for r in route]
    if any(reports is None for reports in declared):
        return
    reported = sorted(set().union(*declared)) if declared else []
    for prop in loss:
        if prop not in reported:
            what = ", ".join(reported) if reported else "nothing (add a measuring task)"
            raise _err(
                f"campaign.loss.{_key(prop)}",
                f"no step of this job reports '{prop}' (the route reports: {what})",
            )


def _max_batch(route: Sequence[RouteTask], lab: Lab) -> int:
    """Largest batch every module of the route can hold at once (0: unlimited)."""
    caps = [lab.modules[m].capacity() for m in dict.fromkeys(r.module for r in route)]
    known = [c for c in caps if c is not None]
    return min(known) if known else 0


def _check_batch(batch: int, cap: int, route: Sequence[RouteTask], lab: Lab) -> None:
    if cap and batch > cap:
        tight = [
            m for m in dict.fromkeys(r.module for r in route) if lab.modules[m].capacity() == cap
        ]
        raise _err(
            "campaign.batch",
            f"batch {batch} can never be placed: module {tight[0]} holds at most {cap} samples",
        )


def load_document(text: str | bytes, limits: Limits = LIMITS) -> Any:
    """The YAML/JSON document of a job script, within the size and nesting limits."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _err(
                "<document>", f"not UTF-8 text: byte 0x{text[error.start]:02x} at {error.start}"
            ) from None
    size = len(text.encode("utf-8", "replace"))
    if size > limits.max_script_bytes:
        raise _err("<document>", f"{size} bytes is too large (max {limits.max_script_bytes})")
    # before parsing: PyYAML takes seconds to build a deeply nested document it is then refused
    if _bracket_depth(text) > limits.max_depth:
        raise _err("<document>", f"nested more than {limits.max_depth} levels deep")
    try:
        doc = _load_text(text)
    except RecursionError:
        raise _err("<document>", f"nested more than {limits.max_depth} levels deep") from None
    _check_size(doc, limits)
    return doc


def _bracket_depth(text: str) -> int:
    """Deepest nesting of flow collections ([ ] and { }) outside quotes and comments: a bound
    that needs no parse (block nesting costs indentation, which the size limit bounds)."""
    depth = deepest = 0
    quote = ""
    previous = "\n"
    escaped = False
    in_comment = False
    for char in text:
        if in_comment:
            in_comment = char != "\n"
        elif quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#" and previous in " \t\n":
            in_comment = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
        previous = char
    return deepest


def _check_size(data: Any, limits: Limits) -> None:
    """Refuse scripts nested deeper than the limit (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_depth:
            raise _err("<document>", f"nested more than {limits.max_depth} levels deep")
        if isinstance(node, Mapping):
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]


def _check_required(route: Sequence[RouteTask], campaign: Campaign, lab: Lab) -> None:
    """Every parameter a task needs (one without a default) is given: by the process, by every
    experiment, or by the Bayesian space."""
    for r in route:
        for name, spec in lab.task(r.module, r.task).params.items():
            if not spec.required or name in r.params:
                continue
            keys = (name, f"{r.task}.{name}")
            what = spec.kind
            if campaign.sequential:
                if not any(k in campaign.space for k in keys):
                    raise _err(
                        r.path,
                        f"task {r.task} needs parameter '{name}' ({what}): give it in params, "
                        "fixedParams or the campaign's space",
                    )
                continue
            for i, experiment in enumerate(campaign.experiments):
                if not any(k in experiment for k in keys):
                    where = r.path if i == 0 else f"campaign experiment {i}"
                    raise _err(
                        where,
                        f"task {r.task} needs parameter '{name}' ({what}): give it in params, "
                        "fixedParams or every experiment of the campaign",
                    )


def _check_plannable(route: Sequence[RouteTask], campaign: Campaign, lab: Lab) -> None:
    """Every step's expected duration can be computed for every value the campaign may run
    (each experiment; the corners of a Bayesian space), so planning cannot fail later."""
    if campaign.sequential:
        corners = [{k: v[0] for k, v in campaign.space.items()}]
        corners.append({k: v[1] for k, v in campaign.space.items()})
    else:
        corners = [dict(e) for e in campaign.experiments]
    for r in route:
        task = lab.task(r.module, r.task)
        distinct: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
        for values in corners:  # many experiments share a task's few parameters
            params = dict(r.params)
            for key, value in values.items():
                owner, _, short = key.rpartition(".")
                if owner in ("", r.task) and short in task.params:
                    params[short] = value
            distinct.setdefault(tuple(sorted(params.items())), params)
        for params in distinct.values():
            for step in task.steps:
                try:
                    seconds = step.duration.expected(1, [params])
                except Exception as error:  # a module formula that cannot take these values
                    raise _err(
                        r.path, f"task {r.task} step {step.name} cannot be planned: {error}"
                    ) from None
                if not math.isfinite(seconds):
                    raise _err(r.path, f"task {r.task} step {step.name} would never end")


def parse_job_script(data: Mapping[str, Any] | str, lab: Lab, limits: Limits = LIMITS) -> JobSpec:
    """Validate a job script (YAML/JSON text or a mapping) against ``lab``."""
    doc = load_document(data, limits) if isinstance(data, str) else data
    _check_size(doc, limits)
    root = _mapping(doc, "<document>")
    _check_keys(root, {"metadata", "campaign", "process"}, "<document>")
    for key in ("metadata", "campaign", "process"):
        if key not in root:
            raise _err(key, "required")
    metadata = _metadata(root["metadata"], limits)
    route = _route(root["process"], lab)
    campaign = _campaign(root["campaign"], route, lab, limits)
    _check_required(route, campaign, lab)
    _check_plannable(route, campaign, lab)
    _check_reported(campaign.loss, route, lab)
    return JobSpec(metadata=metadata, campaign=campaign, route=route, source=root)
