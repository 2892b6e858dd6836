"""Module descriptions: the YAML that makes a workstation a module (format: MODULE_DESCRIPTION.md).

``load_description(path)`` / ``parse_description(mapping)`` check everything on load
and raise :class:`DescriptionError` naming the field, e.g.
``tasks.AddSolution.steps[1].actions[0].device: unknown device 'Pmp'``.
The result is a tree of frozen dataclasses made of flat lists of named things, so
that it maps one-to-one onto ROS messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from octopus_modules.drivers.kinds import KINDS
from octopus_modules.expressions import Expression, ExpressionError, compile_expression
from octopus_modules.parameters import PARAMETER_TYPES, ParameterError, ParameterSpec
from octopus_modules.templating import Template, compile_template

MODES = ("active", "standby")
SCOPES = ("per_sample", "per_batch")
SLOT_USES = ("occupy", "use", "release")
#: names every expression may use besides the task's parameters
BATCH_BUILTINS = frozenset({"n_samples", "samples", "positions", "goal_id"})
#: extra names in tasks with ``scope: per_sample`` (steps run once per sample)
SAMPLE_BUILTINS = frozenset({"sample", "position", "sample_index"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


class DescriptionError(ValueError):
    """The description is invalid; the message starts with the offending field."""


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    kind: str
    driver: str = "simulated"
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotSpec:
    type: str
    capacity: int
    # "<Task>.<parameter>": samples in these slots at once share that value (one hot plate, one
    # temperature); checked against the tasks by the scheduler
    zone_by: str = ""


@dataclass(frozen=True)
class ConsumableSpec:
    name: str
    stock: int
    low_stock: int
    unit: str = "piece"


@dataclass(frozen=True)
class ActionSpec:
    device: str
    action: str
    params: Template
    duration_s: Expression | None = None


@dataclass(frozen=True)
class StepSpec:
    name: str
    mode: str
    actions: tuple[ActionSpec, ...]
    duration_s: Expression | None = None
    mask: tuple[str, ...] | None = None  # None: the task's mask

    def expected_duration_s(self, env: Mapping[str, Any]) -> float:
        if self.duration_s is not None:
            return _seconds(self.duration_s, env)
        return sum(_seconds(a.duration_s, env) for a in self.actions if a.duration_s is not None)

    def action_durations_s(self, env: Mapping[str, Any]) -> list[float]:
        """Expected duration of each action; a step-level duration is split evenly."""
        if all(a.duration_s is not None for a in self.actions):
            return [_seconds(a.duration_s, env) for a in self.actions]  # type: ignore[arg-type]
        total = self.expected_duration_s(env)
        return [total / len(self.actions)] * len(self.actions)


@dataclass(frozen=True)
class SlotUse:
    type: str
    use: str  # occupy | use | release


@dataclass(frozen=True)
class Consumption:
    name: str
    amount: Expression


@dataclass(frozen=True)
class TaskSpec:
    name: str
    scope: str
    parameters: tuple[ParameterSpec, ...]
    steps: tuple[StepSpec, ...]
    mask: tuple[str, ...] = ()
    slots: tuple[SlotUse, ...] = ()
    consumes: tuple[Consumption, ...] = ()
    description: str = ""
    #: the properties the task's results carry (``lambda_max_nm``); None: not declared
    reports: tuple[str, ...] | None = None

    def parameter(self, name: str) -> ParameterSpec | None:
        return next((p for p in self.parameters if p.name == name), None)

    def check_params(self, params: Mapping[str, Any], field: str = "params") -> dict[str, Any]:
        """Goal parameters converted and completed with defaults; ParameterError names the field."""
        unknown = sorted(set(params) - {p.name for p in self.parameters})
        if unknown:
            known = ", ".join(p.name for p in self.parameters) or "none"
            raise ParameterError(
                f"{field}.{unknown[0]}: unknown parameter (task {self.name} takes {known})"
            )
        checked: dict[str, Any] = {}
        for spec in self.parameters:
            if spec.name in params:
                checked[spec.name] = spec.check(params[spec.name], f"{field}.{spec.name}")
            elif spec.required:
                raise ParameterError(f"{field}.{spec.name}: missing required parameter")
            else:
                checked[spec.name] = spec.default
        return checked

    def environment(
        self, params: Mapping[str, Any], samples: Sequence[str], positions: Sequence[int]
    ) -> dict[str, Any]:
        """Names visible to this task's expressions (parameters + batch built-ins)."""
        env = dict(params)
        env.update(
            n_samples=len(samples), samples=list(samples), positions=list(positions), goal_id=""
        )
        if self.scope == "per_sample":
            env.update(
                sample=samples[0] if samples else "",
                position=positions[0] if positions else 0,
                sample_index=0,
            )
        return env

    def expected_duration_s(self, params: Mapping[str, Any], n_samples: int = 1) -> float:
        """Expected duration of the whole task for checked ``params`` and ``n_samples``."""
        samples = [f"sample{i}" for i in range(max(n_samples, 1))]
        env = self.environment(params, samples, list(range(len(samples))))
        once = sum(step.expected_duration_s(env) for step in self.steps)
        return once * len(samples) if self.scope == "per_sample" else once

    def consumption(self, params: Mapping[str, Any], n_samples: int) -> dict[str, int]:
        """Consumables the task takes, by name (per-sample amounts multiplied)."""
        samples = [f"sample{i}" for i in range(max(n_samples, 1))]
        env = self.environment(params, samples, list(range(len(samples))))
        factor = len(samples) if self.scope == "per_sample" else 1
        return {c.name: int(round(_number(c.amount, env))) * factor for c in self.consumes}


@dataclass(frozen=True)
class ModuleDescription:
    module: str
    devices: tuple[DeviceSpec, ...]
    tasks: tuple[TaskSpec, ...]
    slots: tuple[SlotSpec, ...] = ()
    consumables: tuple[ConsumableSpec, ...] = ()
    description: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def device(self, name: str) -> DeviceSpec:
        return next(d for d in self.devices if d.name == name)

    def task(self, name: str) -> TaskSpec | None:
        return next((t for t in self.tasks if t.name == name), None)

    def slot(self, type_name: str) -> SlotSpec | None:
        return next((s for s in self.slots if s.type == type_name), None)

    def local_mask(self, task: TaskSpec, step: StepSpec) -> frozenset[str]:
        """Devices of this module an active step holds: its mask's local part + its devices."""
        if step.mode != "active":
            return frozenset()
        mask = task.mask if step.mask is None else step.mask
        local = {name for name in mask if "/" not in name}
        return frozenset(local | {a.device for a in step.actions})

    def to_dict(self) -> dict[str, Any]:
        """The description as plain data (the YAML it was loaded from)."""
        return dict(self.raw)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _seconds(expr: Expression | None, env: Mapping[str, Any]) -> float:
    if expr is None:
        return 0.0
    value = _number(expr, env)
    if value < 0:
        raise ExpressionError(f"{expr.field}: negative duration {value} s")
    return value


def _number(expr: Expression, env: Mapping[str, Any]) -> float:
    value = expr.evaluate(env)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExpressionError(f"{expr.field}: '{expr.text}' gave {value!r}, not a number")
    return float(value)


# --------------------------------------------------------------------------- loading


def load_description(path: str | Path) -> ModuleDescription:
    """Read and validate a description file."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_description_text(text, source=str(path))


def parse_description_text(text: str, source: str = "<text>") -> ModuleDescription:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DescriptionError(f"{source}: not valid YAML: {exc}") from None
    return parse_description(data)


def builtin_description_names() -> list[str]:
    """Names of the descriptions shipped in ``octopus_modules/descriptions``."""
    folder = resources.files("octopus_modules") / "descriptions"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_builtin_description(name: str) -> ModuleDescription:
    """A shipped description by file stem, e.g. ``"batch_synthesis"``."""
    path = resources.files("octopus_modules") / "descriptions" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(builtin_description_names())
        raise DescriptionError(f"no built-in description '{name}'; known: {known}")
    return parse_description_text(path.read_text(encoding="utf-8"), source=name)


def parse_description(data: Any) -> ModuleDescription:
    """Validate plain data (as loaded from YAML) into a :class:`ModuleDescription`."""
    try:
        return _Parser().module(data)
    except (ExpressionError, ParameterError, ValueError) as exc:
        if isinstance(exc, DescriptionError):
            raise
        raise DescriptionError(str(exc)) from None


class _Parser:
    """One parse; remembers devices, slot types and consumables to check references to them."""

    devices: dict[str, DeviceSpec]
    slot_types: set[str]
    consumable_names: set[str]

    def module(self, data: Any) -> ModuleDescription:
        top = _mapping(data, "description file")
        _keys(
            top,
            "",
            required={"module", "devices", "tasks"},
            optional={"description", "slots", "consumables", "version"},
        )
        name = _name(top["module"], "module")
        devices = tuple(
            self.device(d, f"devices[{i}]") for i, d in enumerate(_list(top["devices"], "devices"))
        )
        _unique([d.name for d in devices], "devices")
        slots = tuple(
            self.slot(s, f"slots[{i}]") for i, s in enumerate(_list(top.get("slots", []), "slots"))
        )
        _unique([s.type for s in slots], "slots")
        consumables = tuple(
            self.consumable(c, f"consumables[{i}]")
            for i, c in enumerate(_list(top.get("consumables", []), "consumables"))
        )
        _unique([c.name for c in consumables], "consumables")
        self.devices = {d.name: d for d in devices}
        self.slot_types = {s.type for s in slots}
        self.consumable_names = {c.name for c in consumables}
        raw_tasks = _list(top["tasks"], "tasks")
        if not raw_tasks:
            raise DescriptionError("tasks: a module needs at least one task")
        tasks = []
        for i, raw in enumerate(raw_tasks):
            label = raw.get("name") if isinstance(raw, Mapping) else None
            where = f"tasks.{label}" if isinstance(label, str) else f"tasks[{i}]"
            tasks.append(self.task(raw, where))
        _unique([t.name for t in tasks], "tasks")
        return ModuleDescription(
            name,
            devices,
            tuple(tasks),
            slots,
            consumables,
            str(top.get("description", "")),
            raw=top,
        )

    def device(self, data: Any, where: str) -> DeviceSpec:
        d = _mapping(data, where)
        _keys(d, where, required={"name", "kind"}, optional={"driver", "settings"})
        kind = _text(d["kind"], f"{where}.kind")
        if kind not in KINDS:
            raise DescriptionError(
                f"{where}.kind: unknown device kind '{kind}'; known: {', '.join(sorted(KINDS))}"
            )
        settings = _mapping(d.get("settings", {}), f"{where}.settings")
        return DeviceSpec(
            _name(d["name"], f"{where}.name"),
            kind,
            _text(d.get("driver", "simulated"), f"{where}.driver"),
            dict(settings),
        )

    def slot(self, data: Any, where: str) -> SlotSpec:
        d = _mapping(data, where)
        _keys(d, where, required={"type", "capacity"}, optional={"zone_by"})
        return SlotSpec(
            _name(d["type"], f"{where}.type"),
            _count(d["capacity"], f"{where}.capacity", minimum=1),
            _optional_text(d.get("zone_by", ""), f"{where}.zone_by"),
        )

    def consumable(self, data: Any, where: str) -> ConsumableSpec:
        d = _mapping(data, where)
        _keys(d, where, required={"name", "stock", "low_stock"}, optional={"unit"})
        return ConsumableSpec(
            _name(d["name"], f"{where}.name"),
            _count(d["stock"], f"{where}.stock"),
            _count(d["low_stock"], f"{where}.low_stock"),
            _text(d.get("unit", "piece"), f"{where}.unit"),
        )

    def task(self, data: Any, where: str) -> TaskSpec:
        d = _mapping(data, where)
        _keys(
            d,
            where,
            required={"name", "steps"},
            optional={
                "scope",
                "parameters",
                "mask",
                "slots",
                "consumes",
                "description",
                "reports",
            },
        )
        name = _name(d["name"], f"{where}.name")
        scope = _choice(d.get("scope", "per_batch"), SCOPES, f"{where}.scope")
        params = tuple(
            self.parameter(p, f"{where}.parameters[{i}]")
            for i, p in enumerate(_list(d.get("parameters", []), f"{where}.parameters"))
        )
        _unique([p.name for p in params], f"{where}.parameters")
        names = {p.name for p in params} | BATCH_BUILTINS
        if scope == "per_sample":
            names |= SAMPLE_BUILTINS
        for i, p in enumerate(params):
            if p.name in BATCH_BUILTINS | SAMPLE_BUILTINS:
                raise DescriptionError(
                    f"{where}.parameters[{i}].name: '{p.name}' is a reserved name"
                )
        mask = self.mask(d.get("mask", []), f"{where}.mask")
        slots = []
        for i, s in enumerate(_list(d.get("slots", []), f"{where}.slots")):
            sw = f"{where}.slots[{i}]"
            sd = _mapping(s, sw)
            _keys(sd, sw, required={"type", "use"})
            if sd["type"] not in self.slot_types:
                raise DescriptionError(f"{sw}.type: unknown slot type '{sd['type']}'")
            slots.append(SlotUse(sd["type"], _choice(sd["use"], SLOT_USES, f"{sw}.use")))
        _unique([s.type for s in slots], f"{where}.slots")
        consumes = []
        for i, c in enumerate(_list(d.get("consumes", []), f"{where}.consumes")):
            cw = f"{where}.consumes[{i}]"
            cd = _mapping(c, cw)
            _keys(cd, cw, required={"name", "amount"})
            if cd["name"] not in self.consumable_names:
                raise DescriptionError(f"{cw}.name: unknown consumable '{cd['name']}'")
            consumes.append(
                Consumption(cd["name"], self.expression(cd["amount"], f"{cw}.amount", names))
            )
        raw_steps = _list(d["steps"], f"{where}.steps")
        if not raw_steps:
            raise DescriptionError(f"{where}.steps: a task needs at least one step")
        steps = tuple(self.step(s, f"{where}.steps[{i}]", names) for i, s in enumerate(raw_steps))
        reports = None
        if "reports" in d:
            raw_reports = _list(d["reports"], f"{where}.reports")
            reports = tuple(_name(r, f"{where}.reports[{i}]") for i, r in enumerate(raw_reports))
            _unique(list(reports), f"{where}.reports")
        return TaskSpec(
            name,
            scope,
            params,
            steps,
            mask,
            tuple(slots),
            tuple(consumes),
            str(d.get("description", "")),
            reports,
        )

    def parameter(self, data: Any, where: str) -> ParameterSpec:
        d = _mapping(data, where)
        _keys(
            d,
            where,
            required={"name"},
            optional={"type", "unit", "min", "max", "choices", "default", "description"},
        )
        type_name = _choice(d.get("type", "float"), PARAMETER_TYPES, f"{where}.type")
        minimum = _optional_number(d.get("min"), f"{where}.min")
        maximum = _optional_number(d.get("max"), f"{where}.max")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise DescriptionError(f"{where}.max: {maximum} is below min {minimum}")
        choices = tuple(_list(d.get("choices", []), f"{where}.choices"))
        spec = ParameterSpec(
            _name(d["name"], f"{where}.name"),
            type_name,
            _optional_text(d.get("unit", ""), f"{where}.unit"),
            minimum,
            maximum,
            choices,
            None,
            str(d.get("description", "")),
        )
        if d.get("default") is not None:
            default = spec.check(d["default"], f"{where}.default")
            spec = ParameterSpec(
                spec.name,
                spec.type,
                spec.unit,
                spec.minimum,
                spec.maximum,
                spec.choices,
                default,
                spec.description,
            )
        return spec

    def mask(self, data: Any, where: str) -> tuple[str, ...]:
        mask = tuple(_text(m, f"{where}[{i}]") for i, m in enumerate(_list(data, where)))
        for i, entry in enumerate(mask):
            if "/" in entry:  # a device of another module: "UV-Vis/UV_RobotArm"
                module, _, device = entry.partition("/")
                if not _NAME.match(module) or not _NAME.match(device):
                    raise DescriptionError(f"{where}[{i}]: expected 'Module/Device', got '{entry}'")
            elif entry not in self.devices:
                raise DescriptionError(
                    f"{where}[{i}]: unknown device '{entry}' (devices of other modules are "
                    f"written 'Module/Device')"
                )
        _unique(list(mask), where)
        return mask

    def step(self, data: Any, where: str, names: set[str] | frozenset[str]) -> StepSpec:
        d = _mapping(data, where)
        _keys(d, where, required={"mode"}, optional={"name", "actions", "duration_s", "mask"})
        mode = _choice(d["mode"], MODES, f"{where}.mode")
        actions = tuple(
            self.action(a, f"{where}.actions[{i}]", names)
            for i, a in enumerate(_list(d.get("actions", []), f"{where}.actions"))
        )
        duration = (
            self.expression(d["duration_s"], f"{where}.duration_s", names)
            if "duration_s" in d
            else None
        )
        mask = self.mask(d["mask"], f"{where}.mask") if "mask" in d else None
        if mode == "standby":
            if actions:
                raise DescriptionError(
                    f"{where}.actions: a standby step holds no device, so it has no actions"
                )
            if duration is None:
                raise DescriptionError(f"{where}.duration_s: a standby step needs a duration")
            if mask:
                raise DescriptionError(f"{where}.mask: a standby step holds no device")
        else:
            if not actions:
                raise DescriptionError(f"{where}.actions: an active step needs at least one action")
            if duration is None and any(a.duration_s is None for a in actions):
                raise DescriptionError(
                    f"{where}.duration_s: give the step a duration or every action one"
                )
        return StepSpec(str(d.get("name", mode)), mode, actions, duration, mask)

    def action(self, data: Any, where: str, names: set[str] | frozenset[str]) -> ActionSpec:
        d = _mapping(data, where)
        _keys(d, where, required={"device", "action"}, optional={"params", "duration_s"})
        device_name = _text(d["device"], f"{where}.device")
        device = self.devices.get(device_name)
        if device is None:
            raise DescriptionError(f"{where}.device: unknown device '{device_name}'")
        action = _text(d["action"], f"{where}.action")
        signature = KINDS[device.kind].get(action)
        if signature is None:
            raise DescriptionError(
                f"{where}.action: device '{device_name}' ({device.kind}) has no action '{action}';"
                f" known: {', '.join(sorted(KINDS[device.kind]))}"
            )
        raw_params = _mapping(d.get("params", {}), f"{where}.params")
        try:
            signature.check(raw_params, f"{where}.params")
        except ValueError as exc:
            raise DescriptionError(str(exc)) from None
        params = compile_template(dict(raw_params), f"{where}.params")
        _known_names(params.names, names, f"{where}.params")
        duration = (
            self.expression(d["duration_s"], f"{where}.duration_s", names)
            if "duration_s" in d
            else None
        )
        return ActionSpec(device_name, action, params, duration)

    def expression(self, text: Any, where: str, names: set[str] | frozenset[str]) -> Expression:
        expr = compile_expression(text, where)
        _known_names(expr.names, names, where)
        return expr


# --------------------------------------------------------------------------- small checks


def _known_names(used: frozenset[str], known: set[str] | frozenset[str], where: str) -> None:
    unknown = sorted(used - known)
    if unknown:
        raise DescriptionError(
            f"{where}: unknown name '{unknown[0]}' (known: {', '.join(sorted(known))})"
        )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DescriptionError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DescriptionError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise DescriptionError(f"{where}: expected non-empty text, got {value!r}")
    return value


def _optional_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DescriptionError(f"{where}: expected text, got {value!r}")
    return value


def _name(value: Any, where: str) -> str:
    text = _text(value, where)
    if not _NAME.match(text):
        raise DescriptionError(
            f"{where}: '{text}' is not a valid name (letter, then letters, digits, _ or -)"
        )
    return text


def _choice(value: Any, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise DescriptionError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _count(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DescriptionError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _optional_number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DescriptionError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _keys(
    d: Mapping[str, Any],
    where: str,
    required: set[str],
    optional: set[str] | frozenset[str] = frozenset(),
) -> None:
    prefix = f"{where}." if where else ""
    for key in sorted(required):
        if key not in d:
            raise DescriptionError(f"{prefix}{key}: missing")
    unknown = sorted(set(d) - required - set(optional))
    if unknown:
        allowed = ", ".join(sorted(required | set(optional)))
        raise DescriptionError(f"{prefix}{unknown[0]}: unknown field (allowed: {allowed})")


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DescriptionError(f"{where}: duplicate name '{name}'")
        seen.add(name)
