"""docker/Dockerfile and docker/compose.yaml cannot rot silently: every repository path and
command they name exists, and their commands are the README's.

No Docker engine runs on our machines: the image is not built here. This test reads the files.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
README = ROOT / "README.md"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def arguments(name: str) -> list[str]:
    return [rest for keyword, rest in instructions() if keyword == name]


def exec_form(rest: str) -> list[str]:
    return yaml.safe_load(rest)  # a JSON array


def workdir() -> str:
    (path,) = arguments("WORKDIR")
    return path


def readme_commands() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        lines += [line.split("#")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line]


def test_the_base_is_the_official_ros_jazzy_image() -> None:
    (base,) = arguments("FROM")
    assert re.fullmatch(r"ros:jazzy(-[a-z-]+)?", base), base


def test_the_repository_is_copied_to_the_workdir() -> None:
    (copy,) = arguments("COPY")
    source, destination = copy.split()
    assert (ROOT / source).resolve() == ROOT  # the build context is the repository root
    assert destination == workdir() == "/octopus"


def test_every_repository_path_named_exists() -> None:
    text = " ".join(rest for _, rest in instructions())
    prefix = workdir() + "/"
    named = set(re.findall(re.escape(prefix) + r"([\w./-]+)", text))
    named |= {
        word for rest in arguments("RUN") for word in shlex.split(rest) if word.startswith("tools/")
    }
    assert "tools/setup.sh" in named and "env.sh" in named, named
    for path in named:
        if path == "env.sh":  # written by the setup that the image runs
            assert 'envfile="$root/env.sh"' in (ROOT / "tools" / "setup.sh").read_text()
            continue
        assert (ROOT / path).exists(), path
        if path.endswith(".sh"):
            assert os.access(ROOT / path, os.X_OK), path


def test_the_entrypoint_sources_ros_then_the_workspace() -> None:
    (entrypoint,) = arguments("ENTRYPOINT")
    script = exec_form(entrypoint)[2]
    assert script.index("/opt/ros/jazzy/setup.bash") < script.index(f"{workdir()}/env.sh")


def test_the_ros_packages_installed_are_the_ones_the_workspace_needs() -> None:
    installed = {
        word.removeprefix("ros-jazzy-").replace("-", "_")
        for rest in arguments("RUN")
        for word in rest.split()
        if word.startswith("ros-jazzy-")
    }
    manifests = " ".join(p.read_text() for p in ROOT.glob("src/*/package.xml"))
    depended = set(re.findall(r"<(?:exec_)?depend>([a-z0-9_]+)</", manifests))
    assert installed <= depended, installed - depended
    assert {"rqt_gui", "rqt_gui_py", "diagnostic_msgs"} <= installed


def launch_command_exists(command: list[str]) -> None:
    assert command[:2] == ["ros2", "launch"], command
    package, launch_file = command[2:4]
    assert (ROOT / "src" / package / "launch" / launch_file).is_file(), command
    assert (
        '"/launch", glob("launch/*.launch.py")' in (ROOT / "src" / package / "setup.py").read_text()
    )


def test_the_commands_exist_and_are_the_readmes() -> None:
    (cmd,) = arguments("CMD")
    command = exec_form(cmd)
    launch_command_exists(command)
    joined = " ".join(command)
    assert any(line.startswith(joined) for line in readme_commands()), joined
    compose = yaml.safe_load(COMPOSE.read_text())["services"]["lab"]
    assert compose["command"] == command


def test_compose_builds_this_dockerfile_and_keeps_the_database() -> None:
    lab = yaml.safe_load(COMPOSE.read_text())["services"]["lab"]
    context = (COMPOSE.parent / lab["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / lab["build"]["dockerfile"]).resolve() == DOCKERFILE
    # the demo lab's database is a relative path: it lands in the working directory, the volume
    mounts = [volume.split(":")[1] for volume in lab["volumes"]]
    assert lab["working_dir"] in mounts
    assert lab["environment"]["ROS_AUTOMATIC_DISCOVERY_RANGE"] in ("LOCALHOST", "SUBNET")


def test_stopping_the_container_stops_the_nodes() -> None:
    # ros2 launch stops its nodes on SIGINT; on SIGTERM (docker's default) it exits at once and
    # leaves them running (launch's own warning says so)
    assert arguments("STOPSIGNAL") == ["SIGINT"]
    assert yaml.safe_load(COMPOSE.read_text())["services"]["lab"]["stop_signal"] == "SIGINT"


def test_host_build_artefacts_stay_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "build", "install", "log", ".underlay", "env.sh"} <= ignored
