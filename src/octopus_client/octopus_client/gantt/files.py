"""What ``octopus gantt --out FILE`` calls: the current lab schedule or a simulation, to a file.

matplotlib is imported when a file is written, rclpy only when the live schedule is captured, so
importing this module stays cheap for the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from octopus_client.gantt.model import build_model
from octopus_client.gantt.ros_io import SCHEDULE_TOPIC
from octopus_client.gantt.timeaxis import format_time
from octopus_client.gantt.timeline import module_devices_of_lab, steps_from_sim_report


class ScheduleUnavailable(RuntimeError):
    """No schedule arrived on the topic in time (no scheduler running?)."""


def export_current_schedule(
    path: str | Path,
    *,
    topic: str = SCHEDULE_TOPIC,
    timeout_s: float = 5.0,
    module_devices: Mapping[str, Sequence[str]] | None = None,
    title: str | None = None,
    capture: Callable[[str, float], Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> Path:
    """Capture the latched schedule from ``topic`` and write it (.png/.svg/.pdf) to ``path``.

    Raises :class:`ScheduleUnavailable` when nothing arrives within ``timeout_s``.
    """
    from octopus_client.gantt.export import export_gantt

    if capture is None:
        from octopus_client.gantt.ros_io import capture_schedule as capture
    snapshot = capture(topic, timeout_s)
    if snapshot is None:
        raise ScheduleUnavailable(
            f"no schedule on {topic} within {timeout_s:g} s: is the lab (its scheduler) running?"
        )
    stamp = snapshot.stamp
    # the schedule's stamp is the scheduler's clock, which runs faster for a time-scaled lab
    now = stamp if stamp is not None else clock()
    if title is None:
        policy = f" ({snapshot.policy})" if snapshot.policy else ""
        title = f"Lab schedule at {format_time(now)}{policy}"
    return export_gantt(build_model(snapshot.steps, now, module_devices), path, title=title)


def export_simulation(
    report: Any, path: str | Path, *, lab: Any = None, title: str | None = None
) -> Path:
    """Write the timeline of a ``SimReport`` (or its ``to_dict()``) to ``path``.

    ``lab`` (the scenario's ``Lab``) orders the rows as the lab description does and shows idle
    devices too; without it, rows come from the devices the steps used.
    """
    from octopus_client.gantt.export import export_gantt

    steps = steps_from_sim_report(report)
    modules = module_devices_of_lab(lab) if lab is not None else None
    if title is None:
        data = report if isinstance(report, Mapping) else report.to_dict()
        title = f"{data.get('scenario', 'simulation')}: policy {data.get('policy', '?')}"
    return export_gantt(build_model(steps, None, modules), path, title=title)
