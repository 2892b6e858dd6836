"""Every job script example of JOB_SCRIPT.md and the README's `octopus` lines run as written on a
live demo lab: `octopus lab up src/octopus_bringup/config/demo_lab.yaml` (the scheduler and the
four simulated modules, each its own process, real DDS), once for the whole file, at time scale
2000; each example is saved to a file and submitted with `octopus submit FILE --wait`, which must
succeed.

The only departures from the text: `octopus watch` gets `--once` (it is a live terminal view),
`octopus gantt --live` (a window) is not run, `J0003` becomes a real job id, and the e-stop
reset, which the README gives to an admin, runs as the demo lab's admin (lab_manager).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEMO_LAB = ROOT / "src/octopus_bringup/config/demo_lab.yaml"
TIME_SCALE = 2000


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)


def readme_octopus_lines() -> list[str]:
    """The `octopus` commands of the README's "Submit and follow jobs" block, one per command
    ("hold J0003 / resume J0003 / cancel J0003" is three), comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"### Submit and follow jobs.*?```bash\n(.*?)```", text, re.S)
    assert block, "the README's 'Submit and follow jobs' block is gone"
    lines = []
    for raw in block.group(1).splitlines():
        line = raw.split("#", 1)[0].strip()
        for part in line.split(" / "):
            part = part.strip()
            lines.append(part if part.startswith("octopus ") else f"octopus {part}")
    return lines


def octopus(line: str, cwd: Path, user: str = "alice", timeout: float = 240.0):
    argv = shlex.split(line)
    assert argv[0] == "octopus"
    return subprocess.run(
        [sys.executable, "-m", "octopus_client.cli", *argv[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "OCTOPUS_USER": user},
        timeout=timeout,
    )


def test_the_documented_examples_run_on_a_live_demo_lab(node_processes, tmp_path: Path) -> None:
    examples = yaml_blocks(ROOT / "src/octopus_scheduler/JOB_SCRIPT.md")
    assert len(examples) == 3
    # the lab file's database (octopus_demo.sqlite) is relative: to the lab's working directory
    up = node_processes.start(
        "lab_up",
        ["sh", "-c", f"cd {shlex.quote(str(tmp_path))} && exec {shlex.quote(sys.executable)} "
         f"-m octopus_client.cli lab up {DEMO_LAB} --time-scale {TIME_SCALE}"],
    )  # fmt: skip
    up.wait_for_output(r"scheduler ready: lab demo", timeout=60)
    for module in ("BatchSynthesis", "UV-Vis", "SolidState", "ElectroChemicalRDE"):
        up.wait_for_output(rf"module {module} ready", timeout=60)

    # every JOB_SCRIPT.md example at once, each followed to its end by `octopus submit --wait`
    followers = []
    for i, text in enumerate(examples):
        path = tmp_path / f"example{i}.yaml"
        path.write_text(text)
        followers.append(
            subprocess.Popen(
                [sys.executable, "-m", "octopus_client.cli", "submit", str(path), "--wait"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                env={**os.environ, "OCTOPUS_USER": ["alice", "bob", "carol"][i]},
            )
        )  # fmt: skip

    # the README's lines, with the manual example as my_job.yaml
    (tmp_path / "my_job.yaml").write_text(examples[0])
    lines = readme_octopus_lines()
    assert lines[0] == "octopus submit my_job.yaml --wait", lines
    first = octopus(lines[0], tmp_path)
    assert first.returncode == 0 and "succeeded" in first.stdout, first.stdout + first.stderr
    done_id = re.search(r"(J\d{4})", first.stdout).group(1)
    # a job that lasts long enough to hold, resume and cancel it (a 2 x 1000 min reaction)
    (tmp_path / "long.yaml").write_text(
        re.sub(r"React.Time: \d+ min", "React.Time: 1000 min", examples[0])
    )
    held = octopus("octopus submit long.yaml", tmp_path)
    assert held.returncode == 0, held.stderr
    held_id = held.stdout.strip().splitlines()[-1]
    ran = {}
    for line in lines[1:]:
        if "gantt --live" in line:
            continue
        if line == "octopus watch":
            line += " --once"
        command = line.split()[1]
        target = held_id if command in ("hold", "resume", "cancel") else done_id
        line = line.replace("J0003", target)
        if command == "estop":  # last: after every job ended
            continue
        result = octopus(line, tmp_path)
        assert result.returncode == 0, f"{line}: {result.stdout}{result.stderr}"
        ran[command] = result
    assert {
        "status",
        "watch",
        "hold",
        "resume",
        "cancel",
        "clear-error",
        "results",
        "gantt",
    } <= set(ran)
    assert (tmp_path / "j3.csv").read_text().count("\n") == 3  # header + two experiments
    assert (tmp_path / "plan.png").stat().st_size > 0

    for i, follower in enumerate(followers):
        out, err = follower.communicate(timeout=600)
        assert follower.returncode == 0, f"example {i}: {out}{err}"
        assert re.search(r"J\d{4} .*succeeded", out), f"example {i}: {out}{err}"

    estop = [line for line in lines if line.split()[1] == "estop"]
    assert estop == ["octopus estop --reason spill"]
    engaged = octopus(estop[0], tmp_path)
    assert engaged.returncode == 0 and "ENGAGED" in engaged.stdout, engaged.stderr
    reset = octopus("octopus estop --reset", tmp_path, user="lab_manager")
    assert reset.returncode == 0 and "reset" in reset.stdout, reset.stderr
    time.sleep(0.1)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_example_names_only_what_the_demo_lab_has(index: int) -> None:
    """Cheap guard beside the live run: the examples parse against the demo lab's modules."""
    from octopus_modules.description import load_builtin_description
    from octopus_scheduler.core.jobscript import parse_job_script
    from octopus_scheduler.service.lab_from_modules import lab_from_modules

    demo = ("batch_synthesis", "uv_vis", "solid_state", "electrochemical_rde")
    lab = lab_from_modules([load_builtin_description(m) for m in demo])
    text = yaml_blocks(ROOT / "src/octopus_scheduler/JOB_SCRIPT.md")[index]
    assert parse_job_script(text, lab).campaign.kind == ["manual", "sweep", "bayesian"][index]
