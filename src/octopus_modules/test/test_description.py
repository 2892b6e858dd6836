from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from octopus_modules.description import (
    DescriptionError,
    builtin_description_names,
    load_builtin_description,
    parse_description,
)


def base() -> dict[str, Any]:
    return yaml.safe_load(TEST_MODULE_TEXT)


TEST_MODULE_TEXT = """
module: M
devices:
  - {name: Arm, kind: robot_arm}
  - {name: Pump, kind: pump, driver: simulated, settings: {failure_rate: 0.1}}
slots: [{type: stirrer, capacity: 8}]
consumables: [{name: vial, stock: 10, low_stock: 2}]
tasks:
  - name: AddSolution
    scope: per_sample
    parameters:
      - {name: Volume, type: float, unit: uL, min: 1, max: 5000}
      - {name: Rate, type: float, unit: uL/s, min: 1, max: 200, default: 20}
    mask: [Pump, Other/RobotArm]
    slots: [{type: stirrer, use: use}]
    consumes: [{name: vial, amount: 1}]
    steps:
      - mode: active
        actions:
          - {device: Arm, action: home, duration_s: 3}
      - mode: active
        actions:
          - device: Pump
            action: dispense
            params: {volume_ul: "{Volume}", rate_ul_s: "{Rate}", samples: ["{sample}"]}
            duration_s: "3.7 + Volume / Rate"
      - {mode: standby, duration_s: "Volume / 10"}
"""


def mutated(path: list[Any], value: Any, delete: bool = False) -> dict[str, Any]:
    data = copy.deepcopy(base())
    target = data
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


def test_base_is_valid_and_flat() -> None:
    d = parse_description(base())
    assert d.module == "M"
    assert [x.name for x in d.devices] == ["Arm", "Pump"]
    task = d.task("AddSolution")
    assert task is not None and [p.name for p in task.parameters] == ["Volume", "Rate"]
    assert task.mask == ("Pump", "Other/RobotArm")
    # expected duration: per sample 3 + (3.7 + V/R) + V/10, for 2 samples
    params = task.check_params({"Volume": 100})
    assert task.expected_duration_s(params, 2) == pytest.approx(2 * (3 + 3.7 + 5 + 10))
    assert task.consumption(params, 3) == {"vial": 3}
    assert d.local_mask(task, task.steps[1]) == frozenset({"Pump"})
    assert d.local_mask(task, task.steps[2]) == frozenset()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["tasks", 0, "steps", 1, "actions", 0, "device"],
            "Pmp",
            "tasks.AddSolution.steps[1].actions[0].device: unknown device 'Pmp'",
        ),
        (
            ["tasks", 0, "steps", 1, "actions", 0, "action"],
            "squirt",
            "tasks.AddSolution.steps[1].actions[0].action: device 'Pump' (pump) has no action",
        ),
        (
            ["tasks", 0, "steps", 1, "actions", 0, "params"],
            {"volume_ul": 1},
            "tasks.AddSolution.steps[1].actions[0].params: missing parameter(s) rate_ul_s",
        ),
        (
            ["tasks", 0, "steps", 1, "actions", 0, "params", "colour"],
            "red",
            "tasks.AddSolution.steps[1].actions[0].params: unknown parameter(s) colour",
        ),
        (
            ["tasks", 0, "steps", 1, "actions", 0, "duration_s"],
            "Volme / Rate",
            "tasks.AddSolution.steps[1].actions[0].duration_s: unknown name 'Volme'",
        ),
        (
            ["tasks", 0, "steps", 1, "actions", 0, "duration_s"],
            "__import__('os')",
            "tasks.AddSolution.steps[1].actions[0].duration_s: call of anything but",
        ),
        (
            ["tasks", 0, "steps", 1, "actions", 0, "params", "volume_ul"],
            "{Volume",
            "tasks.AddSolution.steps[1].actions[0].params.volume_ul: unbalanced brace",
        ),
        (["tasks", 0, "steps", 2, "mode"], "sleeping", "tasks.AddSolution.steps[2].mode:"),
        (
            ["tasks", 0, "steps", 2, "actions"],
            [{"device": "Arm", "action": "home"}],
            "tasks.AddSolution.steps[2].actions: a standby step holds no device",
        ),
        (["tasks", 0, "mask", 0], "Pmp", "tasks.AddSolution.mask[0]: unknown device 'Pmp'"),
        (["tasks", 0, "slots", 0, "type"], "stirer", "tasks.AddSolution.slots[0].type:"),
        (["tasks", 0, "consumes", 0, "name"], "vail", "tasks.AddSolution.consumes[0].name:"),
        (["tasks", 0, "scope"], "per_vial", "tasks.AddSolution.scope: expected one of"),
        (["tasks", 0, "parameters", 0, "type"], "number", "tasks.AddSolution.parameters[0].type"),
        (
            ["tasks", 0, "parameters", 0, "max"],
            0,
            "tasks.AddSolution.parameters[0].max: 0.0 is below",
        ),
        (
            ["tasks", 0, "parameters", 1, "default"],
            500,
            "tasks.AddSolution.parameters[1].default: 500 uL/s is above maximum 200",
        ),
        (
            ["tasks", 0, "parameters", 0, "name"],
            "n_samples",
            "tasks.AddSolution.parameters[0].name: 'n_samples' is a reserved",
        ),
        (["tasks", 0, "stepz"], [], "tasks.AddSolution.stepz: unknown field"),
        (["devices", 1, "kind"], "teleporter", "devices[1].kind: unknown device kind"),
        (["devices", 1, "name"], "Arm", "devices: duplicate name 'Arm'"),
        (["slots", 0, "capacity"], 0, "slots[0].capacity: expected an integer >= 1"),
        (["consumables", 0, "stock"], -1, "consumables[0].stock: expected an integer >= 0"),
        (["module"], "bad name!", "module: 'bad name!' is not a valid name"),
        (["tasks"], [], "tasks: a module needs at least one task"),
    ],
)
def test_errors_name_the_field(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(DescriptionError) as info:
        parse_description(mutated(path, value))
    assert message in str(info.value)
    field = message.split(":")[0]
    assert str(info.value).startswith(field), str(info.value)


def test_missing_fields_are_named() -> None:
    with pytest.raises(DescriptionError, match=r"^tasks\.AddSolution\.steps\[2\]\.duration_s"):
        parse_description(mutated(["tasks", 0, "steps", 2, "duration_s"], None, delete=True))
    with pytest.raises(DescriptionError, match=r"^devices: missing"):
        parse_description(mutated(["devices"], None, delete=True))
    with pytest.raises(DescriptionError, match=r"duration_s: give the step a duration"):
        parse_description(
            mutated(["tasks", 0, "steps", 0, "actions", 0, "duration_s"], None, delete=True)
        )


def test_builtin_descriptions_load_and_match_the_published_masks() -> None:
    names = builtin_description_names()
    assert {"batch_synthesis", "uv_vis", "solid_state", "electrochemical_rde"} <= set(names)
    modules = {n: load_builtin_description(n) for n in names}
    batch, uv = modules["batch_synthesis"], modules["uv_vis"]
    fig8_masks = {
        "PrepareContainer": {
            "Batch_RobotArm",
            "Batch_VialStorage",
            "Batch_LinearActuator",
            "UV_RobotArm",
        },
        "AddSolution": {"Batch_LinearActuator", "Batch_Pump"},
        "React": {"Batch_RobotArm", "Batch_LinearActuator", "UV_RobotArm"},
        "MoveContainer": {
            "Batch_RobotArm",
            "Batch_VialStorage",
            "Batch_LinearActuator",
            "UV_RobotArm",
        },
        "PrepareCuvette": {"Batch_RobotArm", "UV_RobotArm", "UV_Pipette"},
        "GetAbs": {"UV_RobotArm", "UV_Pipette", "UV_Spectrometer"},
        "StoreCuvette": {"Batch_RobotArm", "UV_RobotArm", "UV_Pipette"},
    }
    for task_name, mask in fig8_masks.items():
        task = batch.task(task_name) or uv.task(task_name)
        assert task is not None, task_name
        assert {m.split("/")[-1] for m in task.mask} == mask, task_name
    assert {s.type: s.capacity for s in batch.slots} == {"stirrer": 8, "vial_holder": 8}
    react = batch.task("React")
    assert react is not None
    assert [s.mode for s in react.steps] == ["active", "standby", "active"]
    # React for 120 min: the standby step dominates and equals the parameter
    params = react.check_params({"Time": 120})
    assert react.expected_duration_s(params) == pytest.approx(120 * 60 + 3.4 + 5 + 5)
    # the description round-trips to plain data (what the node publishes)
    assert parse_description(yaml.safe_load(batch.to_yaml())).module == "BatchSynthesis"


def test_measured_fig8_action_times_are_used() -> None:
    batch = load_builtin_description("batch_synthesis")
    add = batch.task("AddSolution")
    assert add is not None
    dispense = add.steps[0].actions[3]
    env = add.environment(add.check_params({"Solution": "AgNO3", "Volume": 950}), ["s"], [0])
    # measured pump_prepare_solution spans 3.7 .. 51.1 s with volume and rate
    assert dispense.duration_s is not None
    assert dispense.duration_s.evaluate(env) == pytest.approx(3.7 + 950 / 20)
