"""lab.launch.py read by the real launch and launch_ros (the ROS 2 underlay, or a ROS 2 install).

The launch description is evaluated in a real LaunchContext without starting processes: which
nodes it makes of a lab description, under which names and namespaces. Parameters come from
octopus_bringup.nodes.node_specs (test_lab_config.py); the launch test (lab.test.py, run by
test_launch_lab.py) starts the nodes for real, and the respawn e2e
(octopus_client/test/test_module_restart_e2e.py) restarts one under `respawn:=true`.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

import pytest

from octopus_testing.ros2_tools import require

require(modules=("launch", "launch_ros"))

from launch import LaunchContext  # noqa: E402
from launch.actions import OpaqueFunction  # noqa: E402
from launch.substitutions import LocalSubstitution  # noqa: E402
from launch.utilities import perform_substitutions  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "lab.launch.py"


@pytest.fixture
def launch_file():
    spec = importlib.util.spec_from_file_location("lab_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nodes_of(module, **arguments: str) -> list[Node]:
    """The Node actions of the launch description, given launch arguments, as launch makes them."""
    description = module.generate_launch_description()
    context = LaunchContext()
    for argument in description.get_launch_arguments():
        context.launch_configurations[argument.name] = argument.default_value[0].perform(context)
    context.launch_configurations.update(arguments)
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    nodes = opaque.execute(context)
    assert all(isinstance(n, Node) for n in nodes)
    for node in nodes:
        node._perform_substitutions(context)  # what Node.execute does first: names, namespaces
    return nodes


def parameters_of(node: Node) -> list[str]:
    """The node's ``-p`` arguments, as launch puts them on its command line."""
    parts = [
        perform_substitutions(LaunchContext(), part)
        for part in node.cmd
        if not any(isinstance(s, LocalSubstitution) for s in part)  # filled in at execution
    ]
    return [parts[i + 1] for i, part in enumerate(parts) if part == "-p"]


def test_declares_the_documented_arguments(launch_file) -> None:
    arguments = launch_file.generate_launch_description().get_launch_arguments()
    assert [a.name for a in arguments] == ["lab", "time_scale", "policy", "namespace", "respawn"]
    assert all(a.description for a in arguments)
    # every argument is named in the file's docstring, which `ros2 launch -s` does not show
    assert all(f"{a.name}:=" in launch_file.__doc__ for a in arguments)


def test_default_lab_starts_scheduler_and_module_nodes(launch_file) -> None:
    nodes = nodes_of(launch_file)
    assert [(n.node_package, n.node_executable, n.node_name) for n in nodes] == [
        ("octopus_scheduler", "scheduler_node", "/octopus/scheduler"),
        ("octopus_modules", "module_node", "/octopus/modules/batch_synthesis"),
        ("octopus_modules", "module_node", "/octopus/modules/uv_vis"),
        ("octopus_modules", "module_node", "/octopus/modules/solid_state"),
        ("octopus_modules", "module_node", "/octopus/modules/electro_chemical_rde"),
    ]


def test_arguments_reach_the_nodes(launch_file, tmp_path: Path) -> None:
    lab = tmp_path / "two.yaml"
    lab.write_text("name: two\nmodules: [{description: uv_vis}, {description: batch_synthesis}]\n")
    nodes = nodes_of(launch_file, lab=str(lab), time_scale="50", policy="fcfs", namespace="/l2")
    assert [n.node_name for n in nodes] == [
        "/l2/scheduler", "/l2/modules/uv_vis", "/l2/modules/batch_synthesis",
    ]  # fmt: skip
    assert [n.expanded_node_namespace for n in nodes] == ["/l2", "/l2/modules", "/l2/modules"]
    scheduler, uv_vis = parameters_of(nodes[0]), parameters_of(nodes[1])
    assert 'policy:="fcfs"' in scheduler and f"lab_file:={json.dumps(str(lab))}" in scheduler
    assert "time_scale:=50.0" in uv_vis and 'estop_topic:="/l2/emergency_stop"' in uv_vis


def test_parameters_leave_no_temporary_file(launch_file, tmp_path: Path, monkeypatch) -> None:
    """launch_ros writes a parameter dict to a temporary file that it never deletes; the lab's
    parameters are ``-p`` arguments instead."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    nodes = nodes_of(launch_file)
    assert all(parameters_of(node) for node in nodes)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_policy_stops_the_launch_with_the_reason(launch_file) -> None:
    from octopus_scheduler.service.lab_config import LabConfigError

    with pytest.raises(LabConfigError, match="policy"):
        nodes_of(launch_file, policy="fastest")
