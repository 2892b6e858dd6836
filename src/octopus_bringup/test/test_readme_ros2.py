"""Every `ros2 ...` command of the README, run as written against a lab that the README's own
`ros2 launch` line brought up.

The commands are read from README.md's bash blocks (not copied here): a README line that stops
working fails this test. They run in a folder that holds the `my_lab.yaml` and `my_job.yaml`
they name. The lab is stopped as Ctrl-C stops it (SIGINT to its process group) and every node
must finish cleanly. `ros2 interface show` is also run for every interface of octopus_interfaces.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from octopus_testing.ros2_tools import require, stop_ros2_daemon

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
INTERFACES = ROOT / "src" / "octopus_interfaces"
DEMO_LAB = ROOT / "src" / "octopus_bringup" / "config" / "demo_lab.yaml"
MODULES = ("BatchSynthesis", "UV-Vis", "SolidState", "ElectroChemicalRDE")
OWNER, OTHER = "alice", "mallory"  # the README's user, and someone else

# Long enough (at the README's time scale) to be held while it runs.
MY_JOB = """\
metadata: {name: readme-job}
campaign:
  kind: manual
  experiments: [{React.Time: 120 min}, {React.Time: 90 min}]
process:
  Synthesis:
    BatchSynthesis:
      sequence: [PrepareContainer, Mix, React, MoveContainer]
      fixedParams: {Temperature: 60 C}
"""


def readme_commands(first_word: str, text: str | None = None) -> list[str]:
    """The commands of the README's bash blocks that start with ``first_word``, each whole:
    backslash continuations and quoted strings over several lines are kept."""
    text = README.read_text() if text is None else text
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        current: str | None = None
        for line in block.splitlines():
            if current is None:
                if not line.startswith(first_word + " "):
                    continue
                current = line
            else:
                current += "\n" + line
            if not (current.endswith("\\") or current.count('"') % 2):
                commands.append(current)
                current = None
    return commands


def test_readme_commands_are_read_whole() -> None:
    text = '```bash\nros2 a \\\n  b "{x: 1}"\nros2 c "\nuser: u\n"   # note\nls\n```\n'
    assert readme_commands("ros2", text) == [
        'ros2 a \\\n  b "{x: 1}"',
        'ros2 c "\nuser: u\n"   # note',
    ]


def run(command: str, cwd: Path, timeout: float = 60) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"{command}\nexit {result.returncode}:\n{out}"
    return out


class Background:
    """A README command that keeps running (the lab, a followed goal), in its own process group,
    its output in a file."""

    def __init__(self, command: str, cwd: Path, log: Path) -> None:
        self.command, self.log = command, log
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=cwd, env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.started = time.monotonic()

    def output(self) -> str:
        return re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(re.findall(pattern, self.output())) >= count:
                return time.monotonic()
            assert self.process.poll() is None or re.search(pattern, self.output()), (
                f"{self.command}\nended ({self.process.returncode}) without {pattern!r}:\n"
                f"{self.output()}"
            )
            time.sleep(0.1)
        raise AssertionError(f"{self.command}\nno {pattern!r} in {timeout} s:\n{self.output()}")

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C: SIGINT to the whole process group, as a terminal sends it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require(executables=("ros2",), modules=("launch_ros", "ros2action", "ros2service"))
    lab = DEMO_LAB.read_text()
    moved = lab.replace("database: octopus_demo.sqlite", f"database: {tmp_path / 'lab.sqlite'}")
    assert moved != lab, "demo_lab.yaml no longer names its database as this test expects"
    (tmp_path / "my_lab.yaml").write_text(moved)
    (tmp_path / "my_job.yaml").write_text(MY_JOB)
    try:
        yield tmp_path
    finally:
        stop_ros2_daemon()


def as_other_user(command: str) -> str:
    assert f"user: {OWNER}" in command, command
    return command.replace(f"user: {OWNER}", f"user: {OTHER}")


def test_every_ros2_command_of_the_readme_works_as_written(workdir: Path) -> None:
    commands = readme_commands("ros2")
    done: set[str] = set()

    def take(pattern: str) -> str:
        found = [c for c in commands if re.search(pattern, c)]
        assert len(found) == 1, f"the README should have one command matching {pattern!r}: {found}"
        done.add(found[0])
        return found[0]

    # --- the lab, from the README's launch line ---------------------------------------------------
    lab = Background(
        take(r"^ros2 launch octopus_bringup lab\.launch\.py"), workdir, workdir / "lab.log"
    )
    try:
        for module in MODULES:
            lab.wait_for(rf"module {re.escape(module)} is up", timeout=90)
        bring_up_s = time.monotonic() - lab.started

        # --- a job, followed to its end ----------------------------------------------------------
        send_goal = take(r"^ros2 action send_goal")
        goal = Background(send_goal, workdir, workdir / "goal1.log")
        goal.wait_for(r"job_id: J0001", timeout=60)
        listed = run(take(r"/octopus/list_jobs "), workdir)
        assert f"id='J0001', owner='{OWNER}'" in listed, listed

        hold = take(r"/octopus/hold_job ")
        refused = run(as_other_user(hold), workdir)
        assert "success=False" in refused and "may not" in refused, refused
        held = run(hold, workdir)
        assert "success=True" in held and "state=2" in held, held  # Job.STATE_HELD
        resume = take(r"/octopus/resume_job ")
        refused = run(as_other_user(resume), workdir)
        assert "success=False" in refused, refused
        resumed = run(resume, workdir)
        assert "success=True" in resumed and "state=1" in resumed, resumed  # STATE_RUNNING

        assert goal.wait(timeout=180) == 0, goal.output()
        job_s = time.monotonic() - goal.started
        finished = goal.output()
        assert "final_state: 3" in finished, finished  # Job.STATE_SUCCEEDED
        assert "Goal finished with status: SUCCEEDED" in finished, finished

        # --- a second job, cancelled --------------------------------------------------------------
        goal = Background(send_goal, workdir, workdir / "goal2.log")
        goal.wait_for(r"job_id: J0002", timeout=60)
        cancel = take(r"/octopus/cancel_job ")
        assert "J0002" in cancel, cancel
        refused = run(as_other_user(cancel), workdir)
        assert "success=False" in refused, refused
        cancelled = run(cancel, workdir)
        assert "success=True" in cancelled, cancelled  # running steps end first
        assert goal.wait(timeout=120) == 0, goal.output()
        assert "final_state: 5" in goal.output(), goal.output()  # Job.STATE_CANCELLED

        # --- health, devices, e-stop ------------------------------------------------------------
        health = run(take(r"^ros2 topic echo --once /diagnostics"), workdir)
        assert "name: 'octopus: scheduler'" in health, health
        for module in MODULES:
            assert f"name: 'octopus: module {module}'" in health, health
        cleared = run(take(r"/clear_device_error "), workdir)
        assert "success=True" in cleared, cleared
        stopped = run(take(r"/octopus/set_emergency_stop "), workdir)
        assert "success=True" in stopped and "engaged=True" in stopped, stopped

        shown = run(take(r"^ros2 interface show "), workdir)
        assert "string script" in shown, shown
    finally:
        code = lab.interrupt()
    out = lab.output()
    assert code == 0, out
    assert out.count("process has finished cleanly") == 1 + len(MODULES), out
    assert "Traceback" not in out, out
    assert set(commands) == done, (
        f"README ros2 commands this test does not run: {set(commands) - done}"
    )
    print(f"\nros2 launch: every node ready after {bring_up_s:.1f} s; "
          f"ros2 action send_goal: a held and resumed job ended after {job_s:.1f} s")  # fmt: skip


def test_ros2_interface_show_for_every_interface(tmp_path: Path) -> None:
    require(executables=("ros2",), modules=("ros2interface",))
    names = sorted(
        f"octopus_interfaces/{kind}/{path.stem}"
        for kind in ("msg", "srv", "action")
        for path in (INTERFACES / kind).glob(f"*.{kind}")
    )
    assert len(names) > 20
    # one shell for all: each `ros2` start costs a Python start-up
    script = "".join(
        f"echo '=== {n}'; ros2 interface show {n} || echo '!!! ros2 interface show failed: {n}'\n"
        for n in names
    )
    out = run(script, tmp_path, timeout=300)
    assert "!!! ros2 interface show failed" not in out, out
    shown = dict(re.findall(r"=== (\S+)\n(.*?)(?=\n=== |\Z)", out, re.S))
    for name in names:
        kind, stem = name.split("/")[1:]
        source = (INTERFACES / kind / f"{stem}.{kind}").read_text()
        fields = [
            line.split()[1]
            for line in source.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "---")) and len(line.split()) > 1
        ]
        assert all(field in shown[name] for field in fields), (name, fields, shown[name])
