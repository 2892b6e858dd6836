"""The lab model: modules, devices, typed slots, consumables, tasks made of steps, masks.

A lab description is what module nodes announce (devices, slots, tasks with their steps, default
masks, durations) plus lab-level mask additions (shared arms, collision zones across modules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from octopus_scheduler.core.errors import LabError
from octopus_scheduler.core.units import UNITS, canonical_factor, parse_duration_s, to_canonical

ACTIVE = "active"
STANDBY = "standby"
PER_SAMPLE = "sample"
PER_BATCH = "batch"


@dataclass(frozen=True)
class ParamSpec:
    """A typed task parameter; numbers are kept in the canonical unit of ``unit``.

    A text parameter (``choices`` given, e.g. the solution an AddSolution doses) takes one of its
    choices and travels to the module as it is.
    """

    name: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    default: float | str | None = None
    choices: tuple[str, ...] = ()
    required: bool = False  # a job must give it (a module parameter without a default)
    integer: bool = False  # only whole numbers (in ``unit``): a count, cycles

    @property
    def kind(self) -> str:
        """What a value must be, for error messages: "AgNO3 or Citrate", "an integer", "uL"."""
        if self.is_text:
            return " or ".join(self.choices)
        if self.integer:
            return f"an integer{f' ({self.unit})' if self.unit else ''}"
        return self.unit or "a number"

    @property
    def is_text(self) -> bool:
        return bool(self.choices)


@dataclass(frozen=True)
class DurationSpec:
    """Expected duration: ``fixed + per_sample * n + scale * param`` seconds.

    For a batch step the parameter term uses the largest value among the batch's samples
    (a batch React lasts as long as its longest reaction time).
    """

    fixed_s: float = 0.0
    per_sample_s: float = 0.0
    param: str | None = None
    param_scale: float = 1.0

    def expected(self, n_samples: int, params: Sequence[Mapping[str, float]]) -> float:
        seconds = self.fixed_s + self.per_sample_s * n_samples
        if self.param is not None:
            values = [p[self.param] for p in params if self.param in p]
            if values:
                seconds += self.param_scale * max(values)
        return max(0.0, seconds)


@dataclass(frozen=True)
class StepSpec:
    """One step of a task: active steps hold devices, standby steps hold only slots."""

    name: str
    kind: str
    duration: DurationSpec
    devices: frozenset[str] | None = None  # overrides the task's mask for this step


@dataclass(frozen=True)
class TaskSpec:
    name: str
    module: str
    per: str
    steps: tuple[StepSpec, ...]
    mask: frozenset[str]
    params: Mapping[str, ParamSpec]
    consumes: Mapping[str, int] = field(default_factory=dict)
    #: the properties its results carry (declared by the module); None: not declared
    reports: frozenset[str] | None = None


ZoneKey = tuple[float | str, ...] | None


@dataclass(frozen=True)
class SlotSpec:
    """A slot type; ``zone_by`` = (task, parameter): samples holding it at once must agree on it.

    One hot plate has one temperature: with ``zone_by: React.Temperature`` the samples on the
    plate at the same time must all run React at the same Temperature.
    """

    name: str
    capacity: int
    zone_by: tuple[str, str] | None = None


def zone_key(values: Sequence[Any]) -> ZoneKey:
    """A sample's key on a zoned slot type: the parameter's values over the zone task's runs in
    the visit, in order (None: it runs no such task and is compatible with any key).

    Numbers are rounded to 9 significant digits so that unit conversions compare equal.
    """
    if not values:
        return None
    return tuple(float(f"{v:.9g}") if isinstance(v, int | float) else str(v) for v in values)


@dataclass(frozen=True)
class Consumable:
    name: str
    stock: int
    low: int = 0


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    devices: tuple[str, ...]
    slots: Mapping[str, SlotSpec]
    sample_slots: tuple[str, ...]
    tasks: Mapping[str, TaskSpec]
    consumables: Mapping[str, Consumable]

    def capacity(self) -> int | None:
        """How many samples fit in the module at once (None: unlimited)."""
        caps = [self.slots[s].capacity for s in self.sample_slots]
        return min(caps) if caps else None


@dataclass(frozen=True)
class Lab:
    modules: Mapping[str, ModuleSpec]
    extra_masks: Mapping[str, frozenset[str]]
    device_module: Mapping[str, str]
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def task(self, module: str, task: str) -> TaskSpec:
        return self.modules[module].tasks[task]

    def mask(self, module: str, task: str) -> frozenset[str]:
        """Devices a task's active steps hold: module default plus lab-level additions."""
        base = self.modules[module].tasks[task].mask
        extra = self.extra_masks.get(f"{module}.{task}", frozenset()) | self.extra_masks.get(
            task, frozenset()
        )
        return base | extra

    def step_devices(self, module: str, task: str, step: StepSpec) -> frozenset[str]:
        if step.kind == STANDBY:
            return frozenset()
        if step.devices is not None:
            return step.devices
        return self.mask(module, task)

    def task_devices(self, module: str, task: str) -> frozenset[str]:
        """Union of the devices of all active steps of a task (used when standby is not shared)."""
        spec = self.task(module, task)
        out: frozenset[str] = frozenset()
        for step in spec.steps:
            if step.kind == ACTIVE:
                out |= self.step_devices(module, task, step)
        return out or self.mask(module, task)


def _err(field_path: str, message: str) -> LabError:
    return LabError(field_path, message)


def _mapping(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _err(path, f"expected a mapping, got {type(data).__name__}")
    return data


def _names(data: Any, path: str) -> list[str]:
    if not isinstance(data, list) or not all(isinstance(x, str) and x for x in data):
        raise _err(path, "expected a list of names")
    return list(data)


def _check_keys(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            raise _err(f"{path}.{key}", f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _duration(data: Any, path: str, params: Mapping[str, ParamSpec]) -> DurationSpec:
    if isinstance(data, int | float | str):
        return DurationSpec(fixed_s=parse_duration_s(data, path, _err))
    spec = _mapping(data, path)
    _check_keys(spec, {"fixed", "per_sample", "param", "param_scale"}, path)
    param = spec.get("param")
    if param is not None and param not in params:
        raise _err(f"{path}.param", f"task has no parameter '{param}'")
    scale = float(spec.get("param_scale", 1.0))
    if param is not None and "param_scale" not in spec:
        # a time parameter counts as its own duration; anything else needs an explicit scale
        if UNITS[params[param].unit][0] != "time":
            raise _err(f"{path}.param_scale", "required for a parameter that is not a time")
    if scale < 0:
        raise _err(f"{path}.param_scale", "must not be negative")
    # with a parameter term the fixed part may be negative ("Time minus the active half hour")
    fixed = (
        to_canonical(spec.get("fixed", 0), "s", f"{path}.fixed", _err)
        if param is not None
        else parse_duration_s(spec.get("fixed", 0), f"{path}.fixed", _err)
    )
    return DurationSpec(
        fixed_s=fixed,
        per_sample_s=parse_duration_s(spec.get("per_sample", 0), f"{path}.per_sample", _err),
        param=param,
        param_scale=scale,
    )


def _params(data: Any, path: str) -> dict[str, ParamSpec]:
    out: dict[str, ParamSpec] = {}
    for name, raw in _mapping(data or {}, path).items():
        p = f"{path}.{name}"
        spec = _mapping(raw, p)
        _check_keys(spec, {"unit", "min", "max", "default", "choices", "required", "integer"}, p)
        required = spec.get("required", False)
        if not isinstance(required, bool):
            raise _err(f"{p}.required", "expected true or false")
        if required and spec.get("default") is not None:
            raise _err(f"{p}.required", "a parameter with a default is never required")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise _err(f"{p}.choices", "expected a list of names")
            if not choices:
                raise _err(f"{p}.choices", "needs at least one choice")
            default = spec.get("default")
            if default is not None and default not in choices:
                raise _err(f"{p}.default", f"'{default}' is not one of the choices")
            out[name] = ParamSpec(
                name=name, default=default, choices=tuple(choices), required=required
            )
            continue
        unit = str(spec.get("unit", ""))
        if unit not in UNITS:
            raise _err(f"{p}.unit", f"unknown unit '{unit}'")
        factor = canonical_factor(unit)

        def num(
            key: str, p: str = p, spec: Mapping[str, Any] = spec, factor: float = factor
        ) -> float | None:
            if key not in spec or spec[key] is None:
                return None
            try:
                return float(spec[key]) * factor
            except (TypeError, ValueError):
                raise _err(f"{p}.{key}", "expected a number") from None

        lo, hi = num("min"), num("max")
        if lo is not None and hi is not None and lo > hi:
            raise _err(p, "min is larger than max")
        integer = spec.get("integer", False)
        if not isinstance(integer, bool):
            raise _err(f"{p}.integer", "expected true or false")
        out[name] = ParamSpec(
            name=name,
            unit=unit,
            min=lo,
            max=hi,
            default=num("default"),
            required=required,
            integer=integer,
        )
    return out


def _task(module: str, name: str, data: Any, path: str, devices: set[str]) -> TaskSpec:
    spec = _mapping(data, path)
    _check_keys(
        spec,
        {"per", "params", "mask", "steps", "duration", "kind", "consumes", "description"}
        | {"reports"},
        path,
    )
    per = spec.get("per", PER_SAMPLE)
    if per not in (PER_SAMPLE, PER_BATCH):
        raise _err(f"{path}.per", f"must be '{PER_SAMPLE}' or '{PER_BATCH}', got {per!r}")
    params = _params(spec.get("params"), f"{path}.params")
    mask = frozenset(_names(spec.get("mask", []), f"{path}.mask"))
    steps: list[StepSpec] = []
    if "steps" in spec:
        if "duration" in spec or "kind" in spec:
            raise _err(path, "give either 'steps' or a single 'duration'/'kind', not both")
        raw_steps = spec["steps"]
        if not isinstance(raw_steps, list) or not raw_steps:
            raise _err(f"{path}.steps", "expected a non-empty list")
        for i, raw in enumerate(raw_steps):
            sp = f"{path}.steps[{i}]"
            st = _mapping(raw, sp)
            _check_keys(st, {"name", "kind", "duration", "devices"}, sp)
            kind = st.get("kind", ACTIVE)
            if kind not in (ACTIVE, STANDBY):
                raise _err(f"{sp}.kind", f"must be '{ACTIVE}' or '{STANDBY}', got {kind!r}")
            step_devices = None
            if "devices" in st:
                step_devices = frozenset(_names(st["devices"], f"{sp}.devices"))
            steps.append(
                StepSpec(
                    name=str(st.get("name", f"step{i}")),
                    kind=kind,
                    duration=_duration(st.get("duration", 0), f"{sp}.duration", params),
                    devices=step_devices,
                )
            )
    else:
        kind = spec.get("kind", ACTIVE)
        if kind not in (ACTIVE, STANDBY):
            raise _err(f"{path}.kind", f"must be '{ACTIVE}' or '{STANDBY}', got {kind!r}")
        steps.append(
            StepSpec(
                name=name,
                kind=kind,
                duration=_duration(spec.get("duration", 0), f"{path}.duration", params),
            )
        )
    for dev in mask:
        if dev not in devices:
            raise _err(f"{path}.mask", f"unknown device '{dev}'")
    for i, st in enumerate(steps):
        for dev in st.devices or ():
            if dev not in devices:
                raise _err(f"{path}.steps[{i}].devices", f"unknown device '{dev}'")
    consumes = {}
    for item, count in _mapping(spec.get("consumes", {}), f"{path}.consumes").items():
        if not isinstance(count, int) or count < 0:
            raise _err(f"{path}.consumes.{item}", "expected a non-negative integer")
        consumes[item] = count
    reports = None
    if "reports" in spec:
        reports = frozenset(_names(spec["reports"], f"{path}.reports") if spec["reports"] else [])
    return TaskSpec(
        name=name,
        module=module,
        per=per,
        steps=tuple(steps),
        mask=mask,
        params=params,
        consumes=consumes,
        reports=reports,
    )


def _zone_by(raw: Any, path: str, tasks: Mapping[str, TaskSpec]) -> tuple[str, str]:
    if not isinstance(raw, str) or raw.count(".") != 1:
        raise _err(path, f"expected '<Task>.<parameter>', got {raw!r}")
    task, param = raw.split(".")
    if task not in tasks:
        raise _err(path, f"unknown task '{task}' (module has: {', '.join(tasks)})")
    if param not in tasks[task].params:
        known = ", ".join(tasks[task].params) or "none"
        raise _err(path, f"task {task} has no parameter '{param}' (it has: {known})")
    return task, param


def load_lab(data: Any, field: str = "lab") -> Lab:
    """Build a :class:`Lab` from a parsed description; errors name the field."""
    root = _mapping(data, field)
    _check_keys(root, {"modules", "masks", "name", "description"}, field)
    modules_raw = _mapping(root.get("modules"), f"{field}.modules")
    if not modules_raw:
        raise _err(f"{field}.modules", "a lab needs at least one module")
    device_module: dict[str, str] = {}
    for mname, mraw in modules_raw.items():
        mpath = f"{field}.modules.{mname}"
        for dev in _names(_mapping(mraw, mpath).get("devices", []), f"{mpath}.devices"):
            if dev in device_module:
                raise _err(f"{mpath}.devices", f"device '{dev}' already belongs to another module")
            device_module[dev] = mname
    all_devices = set(device_module)
    modules: dict[str, ModuleSpec] = {}
    for mname, mraw in modules_raw.items():
        mpath = f"{field}.modules.{mname}"
        m = _mapping(mraw, mpath)
        _check_keys(
            m, {"devices", "slots", "sample_slots", "tasks", "consumables", "description"}, mpath
        )
        slots: dict[str, SlotSpec] = {}
        zones_raw: dict[str, Any] = {}  # checked once the module's tasks are known
        for sname, sraw in _mapping(m.get("slots", {}), f"{mpath}.slots").items():
            sp = f"{mpath}.slots.{sname}"
            if isinstance(sraw, Mapping):
                if "zone" in sraw:  # an old label that meant nothing: say what replaced it
                    raise _err(f"{sp}.zone", "replaced by 'zone_by: <Task>.<parameter>'")
                _check_keys(sraw, {"capacity", "zone_by"}, sp)
                cap = sraw.get("capacity")
                if "zone_by" in sraw:
                    zones_raw[sname] = sraw["zone_by"]
            else:
                cap = sraw
            if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
                raise _err(sp, "capacity must be a positive integer")
            slots[sname] = SlotSpec(sname, cap)
        if "sample_slots" in m:
            sample_slots = _names(m["sample_slots"], f"{mpath}.sample_slots")
            for s in sample_slots:
                if s not in slots:
                    raise _err(f"{mpath}.sample_slots", f"unknown slot type '{s}'")
        else:
            sample_slots = list(slots)[:1]
        consumables: dict[str, Consumable] = {}
        for cname, craw in _mapping(m.get("consumables", {}), f"{mpath}.consumables").items():
            cp = f"{mpath}.consumables.{cname}"
            c = craw if isinstance(craw, Mapping) else {"stock": craw}
            stock, low = c.get("stock"), c.get("low", 0)
            if not isinstance(stock, int) or stock < 0 or not isinstance(low, int) or low < 0:
                raise _err(cp, "stock and low must be non-negative integers")
            consumables[cname] = Consumable(cname, stock, low)
        tasks_raw = _mapping(m.get("tasks", {}), f"{mpath}.tasks")
        if not tasks_raw:
            raise _err(f"{mpath}.tasks", "a module needs at least one task")
        tasks = {
            tname: _task(mname, tname, traw, f"{mpath}.tasks.{tname}", all_devices)
            for tname, traw in tasks_raw.items()
        }
        for tname, t in tasks.items():
            for item in t.consumes:
                if item not in consumables:
                    raise _err(f"{mpath}.tasks.{tname}.consumes.{item}", "unknown consumable")
        for sname, raw in zones_raw.items():
            zone_by = _zone_by(raw, f"{mpath}.slots.{sname}.zone_by", tasks)
            if sname not in sample_slots:
                raise _err(
                    f"{mpath}.slots.{sname}.zone_by",
                    f"slot type '{sname}' is not in sample_slots ({', '.join(sample_slots)}): "
                    "samples never hold it, so a zone would have no effect",
                )
            slots[sname] = SlotSpec(sname, slots[sname].capacity, zone_by)
        modules[mname] = ModuleSpec(
            name=mname,
            devices=tuple(d for d, mod in device_module.items() if mod == mname),
            slots=slots,
            sample_slots=tuple(sample_slots),
            tasks=tasks,
            consumables=consumables,
        )
    extra: dict[str, frozenset[str]] = {}
    for key, devs in _mapping(root.get("masks", {}) or {}, f"{field}.masks").items():
        mp = f"{field}.masks.{key}"
        names = frozenset(_names(devs, mp))
        for dev in names:
            if dev not in all_devices:
                raise _err(mp, f"unknown device '{dev}'")
        if "." in key:
            mod, task = key.split(".", 1)
            if mod not in modules or task not in modules[mod].tasks:
                raise _err(mp, f"unknown task '{key}'")
        elif not any(key in mod.tasks for mod in modules.values()):
            raise _err(mp, f"unknown task '{key}'")
        extra[key] = names
    return Lab(modules=modules, extra_masks=extra, device_module=device_module, source=root)
