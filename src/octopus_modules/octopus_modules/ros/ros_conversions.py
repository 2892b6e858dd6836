"""Module runtime objects <-> octopus_interfaces messages. No node, no DDS: testable alone."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml
from builtin_interfaces.msg import Time

from octopus_interfaces import msg
from octopus_interfaces.action import ExecuteTask
from octopus_modules.description import ModuleDescription, StepSpec, TaskSpec
from octopus_modules.runtime.goals import GoalRejected
from octopus_modules.runtime.results import TaskResult
from octopus_modules.runtime.status import DeviceStatus, ModuleStatus

_DEVICE_STATES = {
    "idle": msg.DeviceState.STATE_IDLE,
    "busy": msg.DeviceState.STATE_BUSY,
    "error": msg.DeviceState.STATE_ERROR,
    "disconnected": msg.DeviceState.STATE_DISCONNECTED,
}


def node_name_for(module: str) -> str:
    """REP 144 node name of a module, e.g. "UV-Vis" -> "uv_vis"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", module)
    name = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")
    return name if name and not name[0].isdigit() else f"m_{name}"


def stamp(seconds: float) -> Time:
    whole = int(seconds)
    return Time(sec=whole, nanosec=int(round((seconds - whole) * 1e9)) % 1_000_000_000)


def seconds_of(time: Time) -> float | None:
    """Epoch seconds of a stamp; None for the zero stamp (not given)."""
    if time.sec == 0 and time.nanosec == 0:
        return None
    return time.sec + time.nanosec * 1e-9


# ---- goals ----------------------------------------------------------------------------------


def goal_parameters(task: TaskSpec, entries: Sequence[msg.TaskParameter]) -> dict[str, Any]:
    """TaskParameter entries -> the runtime's parameter dict; GoalRejected names the entry.

    Numbers travel in ``value``, names in ``text``, lists as YAML/JSON text. A unit, when
    given, must be the description's unit: converting silently would hide a typo.
    """
    params: dict[str, Any] = {}
    for index, entry in enumerate(entries):
        where = f"parameters[{index}]"
        if not entry.name:
            raise GoalRejected(f"{where}.name", "empty parameter name")
        if entry.name in params:
            raise GoalRejected(f"{where}.name", f"duplicate parameter '{entry.name}'")
        spec = task.parameter(entry.name)
        if spec is None:
            known = ", ".join(p.name for p in task.parameters) or "none"
            raise GoalRejected(
                f"{where}.name", f"unknown parameter '{entry.name}' (task {task.name}: {known})"
            )
        if entry.unit and spec.unit and entry.unit != spec.unit:
            raise GoalRejected(
                f"{where}.unit", f"'{entry.name}' is in {spec.unit}, not {entry.unit}"
            )
        params[entry.name] = _typed_value(spec.type, entry, where)
    return params


def _typed_value(type_name: str, entry: msg.TaskParameter, where: str) -> Any:
    if type_name.startswith("list["):
        try:
            return yaml.safe_load(entry.text) if entry.text else []
        except yaml.YAMLError as exc:
            raise GoalRejected(f"{where}.text", f"not a YAML/JSON list: {exc}") from None
    if type_name == "str":
        return entry.text
    if type_name == "bool":
        if entry.text:
            return entry.text.strip().lower() in ("true", "yes", "1")
        return bool(entry.value)
    if entry.text:
        raise GoalRejected(f"{where}.text", f"'{entry.name}' is a number: use `value`")
    if type_name == "int":
        if entry.value != int(entry.value):
            raise GoalRejected(f"{where}.value", f"'{entry.name}' must be a whole number")
        return int(entry.value)
    return float(entry.value)


def goal_slots(
    entries: Sequence[msg.SlotAssignment], experiment_id: str
) -> tuple[dict[str, list[int]], list[str]]:
    """Slot assignments -> ({slot type: positions}, samples in position order)."""
    slots: dict[str, list[int]] = {}
    samples: list[str] = []
    for entry in entries:
        slots.setdefault(entry.slot_type, []).append(int(entry.index))
        sample = entry.experiment_id or experiment_id
        if sample and sample not in samples:
            samples.append(sample)
    if not samples and experiment_id:
        samples.append(experiment_id)
    return slots, samples


def result_message(result: TaskResult) -> ExecuteTask.Result:
    error_device, error_action = _error_location(result)
    return ExecuteTask.Result(
        success=result.success,
        measured_data=json.dumps(result.measured_data, default=_jsonable),
        timings=[
            msg.ActionTiming(
                device=t.device,
                action=t.action,
                start=stamp(t.start),
                end=stamp(t.end),
                success=t.ok,
            )
            for t in result.timings
        ],
        error=result.error,
        error_device=error_device,
        error_action=error_action,
        ended_at=stamp(result.ended_at),
        device_faults=[device_state(d) for d in result.device_faults],
    )


def device_state(device: DeviceStatus) -> msg.DeviceState:
    return msg.DeviceState(
        name=device.name,
        state=_DEVICE_STATES[device.state],
        holder=device.holder,
        message=device.message,
    )


def _error_location(result: TaskResult) -> tuple[str, str]:
    failed = next((t for t in reversed(result.timings) if not t.ok), None)
    return (failed.device, failed.action) if failed else ("", "")


def _jsonable(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if tolist is not None:
        return tolist()
    return str(value)


# ---- description and status ------------------------------------------------------------------


def description_message(description: ModuleDescription, action_name: str) -> msg.ModuleDescription:
    return msg.ModuleDescription(
        name=description.module,
        execute_task_action=action_name,
        devices=[
            msg.DeviceDescription(name=d.name, kind=d.kind, driver=d.driver)
            for d in description.devices
        ],
        tasks=[_task_message(task) for task in description.tasks],
        slots=[
            msg.SlotState(slot_type=s.type, free=s.capacity, total=s.capacity)
            for s in description.slots
        ],
        consumables=[
            msg.ConsumableState(
                name=c.name,
                stock=float(c.stock),
                low_threshold=float(c.low_stock),
                unit=c.unit,
                low=c.stock <= c.low_stock,
            )
            for c in description.consumables
        ],
        description_yaml=description.to_yaml(),
    )


def _task_message(task: TaskSpec) -> msg.TaskDescription:
    return msg.TaskDescription(
        name=task.name,
        parameters=[
            msg.ParameterSpec(
                name=p.name,
                type=p.type,
                unit=p.unit,
                min=float(p.minimum) if p.minimum is not None else 1.0,
                max=float(p.maximum) if p.maximum is not None else 0.0,
                required=p.required,
                default_value="" if p.default is None else str(p.default),
            )
            for p in task.parameters
        ],
        steps=[_step_message(step) for step in task.steps],
        mask=list(task.mask),
        slot_type=task.slots[0].type if task.slots else "",
        per_sample=task.scope == "per_sample",
    )


def _step_message(step: StepSpec) -> msg.StepDescription:
    if step.duration_s is not None:
        formula = step.duration_s.text
    else:
        formula = " + ".join(
            f"({a.duration_s.text})" for a in step.actions if a.duration_s is not None
        )
    try:  # with the parameters' defaults, when the formula needs none without one
        expected = step.expected_duration_s({})
    except Exception:  # noqa: BLE001 - depends on a required parameter: unknown up front
        expected = 0.0
    return msg.StepDescription(
        name=step.name,
        mode=msg.StepDescription.MODE_STANDBY
        if step.mode == "standby"
        else msg.StepDescription.MODE_ACTIVE,
        actions=[f"{a.device}.{a.action}" for a in step.actions],
        expected_duration_s=float(expected),
        duration_formula=formula,
    )


def status_message(status: ModuleStatus, now: float) -> msg.ModuleStatus:
    if status.estop_engaged:
        state = msg.ModuleStatus.STATE_ESTOPPED
    elif any(d.state in ("error", "disconnected") for d in status.devices):
        state = msg.ModuleStatus.STATE_ERROR
    elif status.running_goals:
        state = msg.ModuleStatus.STATE_BUSY
    else:
        state = msg.ModuleStatus.STATE_READY
    message = msg.ModuleStatus(
        module=status.module,
        state=state,
        devices=[device_state(d) for d in status.devices],
        slots=[
            msg.SlotState(slot_type=s.type, free=s.free, total=s.capacity) for s in status.slots
        ],
        consumables=[
            msg.ConsumableState(
                name=c.name,
                stock=float(c.stock),
                low_threshold=float(c.low_stock),
                unit=c.unit,
                low=c.low,
            )
            for c in status.consumables
        ],
        running_goals=len(status.running_goals),
    )
    message.header.stamp = stamp(now)
    message.header.frame_id = status.module
    return message
