"""lab.launch.py against a labelled test double of launch/launch_ros (test/launch_double)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

HERE = Path(__file__).resolve().parent
LAUNCH_FILE = HERE.parent / "launch" / "lab.launch.py"


def launch_modules() -> list[str]:
    return [m for m in sys.modules if m == "launch" or m.startswith(("launch.", "launch_ros"))]


@pytest.fixture
def launch_api(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(HERE / "launch_double"))
    for name in launch_modules():
        monkeypatch.delitem(sys.modules, name)
    spec = importlib.util.spec_from_file_location("lab_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    for name in launch_modules():  # the doubles must not leak into other tests
        del sys.modules[name]


def run_launch(module, **arguments: str) -> list:
    description = module.generate_launch_description()
    declared = {e.name: e for e in description.entities if hasattr(e, "default_value")}
    values = {name: arg.default_value for name, arg in declared.items()}
    values.update(arguments)
    opaque = next(e for e in description.entities if hasattr(e, "function"))
    return opaque.function(SimpleNamespace(launch_configurations=values))


def test_declares_the_documented_arguments(launch_api) -> None:
    description = launch_api.generate_launch_description()
    names = [e.name for e in description.entities if hasattr(e, "default_value")]
    assert names == ["lab", "time_scale", "policy", "namespace", "respawn"]
    assert all(e.description for e in description.entities if hasattr(e, "default_value"))


def test_default_lab_starts_scheduler_and_module_nodes(launch_api) -> None:
    nodes = run_launch(launch_api)
    assert [(n.package, n.executable, n.name) for n in nodes][:2] == [
        ("octopus_scheduler", "scheduler_node", "scheduler"),
        ("octopus_modules", "module_node", "batch_synthesis"),
    ]
    assert len(nodes) == 5
    assert nodes[1].parameters == [
        {
            "description": "batch_synthesis",
            "time_scale": 600.0,
            "heartbeat_period": 1.0,
            "sample_ledger": "octopus_demo.sqlite.samples.json",
            "estop_topic": "/octopus/emergency_stop",
        }
    ]
    assert nodes[0].kwargs["output"] == "screen"


def test_arguments_reach_the_nodes(launch_api, tmp_path: Path) -> None:
    lab = tmp_path / "two.yaml"
    lab.write_text("name: two\nmodules: [{description: uv_vis}, {description: batch_synthesis}]\n")
    nodes = run_launch(launch_api, lab=str(lab), time_scale="50", policy="fcfs", namespace="/l2")
    assert [n.name for n in nodes] == ["scheduler", "uv_vis", "batch_synthesis"]
    assert nodes[0].parameters[0]["policy"] == "fcfs"
    assert nodes[0].namespace == "/l2"
    assert nodes[2].parameters[0]["time_scale"] == 50.0


def test_respawn_is_off_unless_asked(launch_api) -> None:
    assert not any(n.kwargs["respawn"] for n in run_launch(launch_api))
    assert all(n.kwargs["respawn"] for n in run_launch(launch_api, respawn="true"))
