"""Imports go down the layers only (docs/ARCHITECTURE.md): each package's subpackages say what
they may import in their ``__init__``; this test reads every module's imports (lazy ones too)
and fails on one that goes up or sideways."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
ROS = ("rclpy", "octopus_interfaces", "launch", "rqt_gui_py", "python_qt_binding")

# layer -> prefixes it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "octopus_modules": ("octopus_scheduler", "octopus_client", "octopus_bringup"),
    "octopus_scheduler": ("octopus_client", "octopus_bringup"),
    "octopus_scheduler.core": (
        "octopus_scheduler.service", "octopus_scheduler.twin", "octopus_scheduler.ros",
        "octopus_modules", *ROS,
    ),
    "octopus_scheduler.service": ("octopus_scheduler.twin", "octopus_scheduler.ros", *ROS),
    "octopus_scheduler.twin": ("octopus_scheduler.service", "octopus_scheduler.ros", *ROS),
    "octopus_modules.runtime": ("octopus_modules.ros", *ROS),
    "octopus_modules.drivers": (
        "octopus_modules.runtime", "octopus_modules.ros", "octopus_modules.module_factory", *ROS,
    ),
    "octopus_modules.sim": (
        "octopus_modules.drivers", "octopus_modules.runtime", "octopus_modules.ros", *ROS,
    ),
    "octopus_modules.emulators": ("octopus_modules.runtime", "octopus_modules.ros", *ROS),
    "octopus_modules.description": ("octopus_modules.runtime", "octopus_modules.ros", *ROS),
    "octopus_modules.lab_clock": ("octopus_modules.runtime", "octopus_modules.ros", *ROS),
    "octopus_modules.expressions": ("octopus_modules.runtime", "octopus_modules.ros", *ROS),
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts[1:]  # drop the colcon package folder
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Absolute names this file imports, anywhere in it (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layered_files() -> list[Path]:
    return [
        path
        for package in ("octopus_scheduler", "octopus_modules")
        for path in sorted((SRC / package / package).rglob("*.py"))
    ]


def violations(name: str, imports: set[str]) -> list[str]:
    rules = [bad for layer, bad in FORBIDDEN.items() if within(name, layer)]
    return [
        f"{name} imports {target}"
        for target in sorted(imports)
        if any(within(target, bad) for rule in rules for bad in rule)
    ]


def test_imports_go_down_the_layers_only() -> None:
    files = layered_files()
    checked = [module_name(p) for p in files if any(within(module_name(p), x) for x in FORBIDDEN)]
    assert len(checked) > 50, f"only {len(checked)} modules checked: is the layout as we think?"
    wrong = [v for path in files for v in violations(module_name(path), imported(path))]
    assert not wrong, "imports up or across the layers:\n" + "\n".join(wrong)


def test_an_import_up_or_of_ros_is_caught() -> None:
    lab = SRC / "octopus_scheduler" / "octopus_scheduler" / "core" / "lab.py"
    assert "octopus_scheduler.core.units" in imported(lab)  # a relative import, resolved
    assert violations("octopus_scheduler.core.lab", {"octopus_scheduler.service.store"})
    assert violations("octopus_modules.runtime.goal_book", {"rclpy.node"})
    assert violations("octopus_modules.sim.simulated_data", {"octopus_modules.drivers.simulated"})
    assert not violations("octopus_scheduler.service.store", {"octopus_scheduler.core.lab"})
