"""rqt loads the Gantt plugin, under Xvfb, on a running lab.

- `rqt --list-plugins` (a fresh configuration, --force-discover) finds the plugin: rqt_gui_py
  discovers plugins only through the ament index and the plugin.xml a package exports.
- `rqt --standalone octopus_client.gantt.rqt_plugin.GanttPlugin` shows its window; a screenshot
  of the X screen is taken from another process, as a person would.
- A job is submitted: its bars, in the job's colour, appear in the window.
- rqt ignores SIGTERM; SIGINT closes it, exit code 0.

The screenshot is saved in the test's folder; with OCTOPUS_UPDATE_DOCS=1 also as
docs/rqt_gantt.png (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from octopus_testing.ros2_tools import require

PLUGIN = "octopus_client.gantt.rqt_plugin.GanttPlugin"
DOCS = Path(__file__).resolve().parents[3] / "docs"
SCREEN = (1280, 800)

GRAB = """
import sys
from python_qt_binding.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
if not app.primaryScreen().grabWindow(0).save(sys.argv[1]):
    sys.exit("could not save the screenshot")
"""


@pytest.fixture
def display(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An Xvfb server on a free display; the environment of a GUI process on it."""
    require(executables=("rqt",), modules=("rqt_gui_py", "qt_gui"))
    if shutil.which("Xvfb") is None:
        pytest.skip(
            "Xvfb is missing: apt-get install xvfb (tools/setup.sh installs it when it runs as "
            "root)"
        )
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
         "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    run_dir = tmp_path / "xdg-run"
    run_dir.mkdir(mode=0o700)
    env = dict(
        os.environ,
        DISPLAY=f":{number}",
        QT_QPA_PLATFORM="xcb",
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # rqt's settings: a fresh configuration
        XDG_RUNTIME_DIR=str(run_dir),
        ROS_HOME=str(tmp_path / "ros"),
        PYTHONUNBUFFERED="1",
    )
    try:
        assert number, "Xvfb did not say its display"
        probe = subprocess.run(
            [sys.executable, "-c", GRAB, str(tmp_path / "probe.png")], env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if "Could not load the Qt platform plugin" in probe.stderr:
            pytest.skip(
                "Qt's xcb platform cannot load: apt-get install libxcb-icccm4 libxcb-keysyms1 "
                "libxcb-xinerama0 (tools/setup.sh installs them when it runs as root)"
            )
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)


def screenshot(env: dict[str, str], path: Path):
    """The whole X screen as an (h, w, 3) uint8 array, saved as ``path``."""
    import numpy as np
    from python_qt_binding.QtGui import QImage

    result = subprocess.run(
        [sys.executable, "-c", GRAB, str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"screenshot failed:\n{result.stderr}"
    image = QImage(str(path)).convertToFormat(QImage.Format_RGB888)
    buffer = image.constBits()
    buffer.setsize(image.sizeInBytes())
    rows = np.frombuffer(buffer, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def window_box(pixels) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of what is not the black root window."""
    import numpy as np

    ys, xs = np.nonzero(pixels.max(axis=2) > 0)
    if len(xs) == 0:
        return (0, 0, 0, 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def pixels_of(pixels, color: str, tolerance: int = 12) -> int:
    import numpy as np

    from octopus_client.gantt.palette import hex_to_rgb

    distance = np.abs(pixels.astype(int) - np.array(hex_to_rgb(color))).max(axis=2)
    return int((distance <= tolerance).sum())


def test_rqt_discovers_shows_and_draws_the_gantt_of_a_running_job(
    display: dict[str, str], node_processes, tmp_path: Path
) -> None:
    from octopus_client.client import OctopusClient
    from octopus_client.gantt.palette import job_color
    from octopus_testing.lab import SYNTHESIS_JOB, start_lab

    listed = subprocess.run(
        ["rqt", "--force-discover", "--list-plugins"], env=display, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert PLUGIN in listed.stdout.split(), listed.stdout + listed.stderr

    start_lab(node_processes, tmp_path)
    rqt = subprocess.Popen(
        ["rqt", "--standalone", PLUGIN], env=display, stdout=(tmp_path / "rqt.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        # the window is shown: a box on the black screen, the size of rqt's standalone window
        deadline = time.monotonic() + 60
        while True:
            pixels = screenshot(display, tmp_path / "before.png")
            x0, y0, x1, y1 = window_box(pixels)
            if x1 - x0 >= 300 and y1 - y0 >= 200:
                break
            assert rqt.poll() is None, (tmp_path / "rqt.log").read_text()
            assert time.monotonic() < deadline, "no rqt window on the screen within 60 s"
            time.sleep(0.5)
        color = job_color("J0001")
        assert pixels_of(pixels, color) < 50, "the job's colour is on screen before the job"

        with OctopusClient(user="alice", timeout_s=15.0) as client:
            job_id = client.submit(SYNTHESIS_JOB.format(name="rqt", react=120)).job_id
            assert job_id == "J0001"
            # its bars: planned (outlined) at once, filled as its steps run
            deadline = time.monotonic() + 60
            while True:
                pixels = screenshot(display, tmp_path / "rqt_gantt_screen.png")
                drawn = pixels_of(pixels, color)
                running = client.get_job(job_id).job.experiments_done == 0
                if drawn >= 800:  # the legend swatch alone is about 150
                    break
                assert rqt.poll() is None, (tmp_path / "rqt.log").read_text()
                assert time.monotonic() < deadline, f"{drawn} pixels of the job's colour"
                time.sleep(0.5)
        assert running, "the job should still have been running in the screenshot"
        x0, y0, x1, y1 = window_box(pixels)
        from python_qt_binding.QtGui import QImage

        window = QImage(str(tmp_path / "rqt_gantt_screen.png")).copy(x0, y0, x1 - x0, y1 - y0)
        window.save(str(tmp_path / "rqt_gantt.png"))
        if os.environ.get("OCTOPUS_UPDATE_DOCS") == "1":
            window.save(str(DOCS / "rqt_gantt.png"))
        print(f"\nrqt window {x1 - x0}x{y1 - y0}, {drawn} pixels of {job_id}'s colour {color}")
    finally:
        if rqt.poll() is None:
            rqt.send_signal(signal.SIGINT)  # rqt ignores SIGTERM
        try:
            code = rqt.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rqt.kill()
            raise
    log = (tmp_path / "rqt.log").read_text(errors="replace")
    assert code == 0, log
    assert "Traceback" not in log, log
