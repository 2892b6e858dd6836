"""Lab description -> nodes: validation naming the field, and the node list both ways of
bringing a lab up start."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from octopus_bringup.nodes import default_lab_file, node_specs
from octopus_scheduler.service.lab_config import LabConfigError, load_lab_config, parse_lab_config


def demo() -> dict:
    return yaml.safe_load(default_lab_file().read_text())


def test_demo_lab_gives_the_scheduler_and_four_module_nodes() -> None:
    config = load_lab_config(default_lab_file())
    specs = node_specs(config)
    assert [(s.package, s.executable, s.name) for s in specs] == [
        ("octopus_scheduler", "scheduler_node", "scheduler"),
        ("octopus_modules", "module_node", "batch_synthesis"),
        ("octopus_modules", "module_node", "uv_vis"),
        ("octopus_modules", "module_node", "solid_state"),
        ("octopus_modules", "module_node", "electro_chemical_rde"),
    ]
    assert specs[0].namespace == "/octopus"
    assert {s.namespace for s in specs[1:]} == {"/octopus/modules"}
    assert specs[0].parameters["policy"] == "planner"
    assert specs[0].parameters["lab_file"] == str(default_lab_file().resolve())
    assert specs[1].parameters["time_scale"] == 600.0


def test_launch_arguments_override_the_description() -> None:
    specs = node_specs(
        load_lab_config(default_lab_file()), time_scale=60.0, policy="fcfs", namespace="/lab2"
    )
    assert specs[0].parameters["policy"] == "fcfs"
    assert specs[0].namespace == "/lab2" and specs[1].namespace == "/lab2/modules"
    assert specs[1].parameters["estop_topic"] == "/lab2/emergency_stop"
    assert all(s.parameters["time_scale"] == 60.0 for s in specs[1:])
    with pytest.raises(LabConfigError, match="policy: 'fastest'"):
        node_specs(load_lab_config(default_lab_file()), policy="fastest")


def test_ros_arguments_carry_name_namespace_and_typed_parameters() -> None:
    spec = node_specs(load_lab_config(default_lab_file()))[1]
    args = spec.ros_arguments()
    assert args[:3] == ["--ros-args", "-r", "__node:=batch_synthesis"]
    assert args[3:5] == ["-r", "__ns:=/octopus/modules"]
    assert "time_scale:=600.0" in args  # a float stays a float for the declared double


def test_driver_overrides_travel_as_yaml() -> None:
    data = demo()
    data["modules"][0]["drivers"] = {
        "Batch_Stirrer": {"driver": "namur_stirrer", "settings": {"port": "/dev/ttyUSB0"}}
    }
    spec = node_specs(parse_lab_config(data))[1]
    assert yaml.safe_load(spec.parameters["driver_overrides"]) == data["modules"][0]["drivers"]
    # on the command line, rcl reads the value as YAML: the multi-line text must come back whole
    args = spec.ros_arguments()
    value = next(a.split(":=", 1)[1] for a in args if a.startswith("driver_overrides:="))
    assert yaml.safe_load(yaml.safe_load(value)) == data["modules"][0]["drivers"]
    described = next(a.split(":=", 1)[1] for a in args if a.startswith("description:="))
    assert yaml.safe_load(described) == "batch_synthesis"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(colour="blue"), "lab.colour: unknown field"),
        (lambda d: d.update(time_scale=-1), "lab.time_scale: expected a positive number"),
        (lambda d: d.update(policy="lifo"), "lab.policy: 'lifo'"),
        (lambda d: d.update(namespace="octopus"), "lab.namespace"),
        (lambda d: d.update(modules=[]), "lab.modules"),
        (lambda d: d["modules"][1].update(description=""), r"lab.modules\[1\].description"),
        (lambda d: d["modules"][0].update(colour=1), r"lab.modules\[0\].colour"),
        (lambda d: d.update(policy_options={"lifo": {}}), "lab.policy_options"),
        (lambda d: d.update(policy_options={"planner": 3}), "lab.policy_options"),
    ],
)
def test_bad_lab_descriptions_name_the_field(change, field: str) -> None:
    data = demo()
    change(data)
    with pytest.raises(LabConfigError, match=field):
        node_specs(parse_lab_config(data))


def test_unknown_module_description_and_duplicates_name_the_entry(tmp_path: Path) -> None:
    data = demo()
    data["modules"][2]["description"] = str(tmp_path / "missing.yaml")
    with pytest.raises(LabConfigError, match=r"lab.modules\[2\].description"):
        node_specs(parse_lab_config(data))
    data = demo()
    data["modules"].append({"description": "uv_vis"})
    with pytest.raises(LabConfigError, match=r"lab.modules\[4\]: module UV-Vis is already"):
        node_specs(parse_lab_config(data))


def test_policy_options_are_kept_per_policy() -> None:
    data = demo()
    data["policy_options"] = {"planner": {"improve": "cpsat", "improve_jobs": 10}}
    config = parse_lab_config(data)
    assert config.policy_options["planner"] == {"improve": "cpsat", "improve_jobs": 10}
