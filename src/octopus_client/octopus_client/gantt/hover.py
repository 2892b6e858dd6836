"""Hover text of a step: who, what, where, when, and why it waits or how it ended."""

from __future__ import annotations

from octopus_client.gantt.model import GanttStep
from octopus_client.gantt.timeaxis import format_duration, format_time


def describe_step(step: GanttStep, now: float | None = None) -> str:
    job = step.job_id + (f" {step.job_name}" if step.job_name else "")
    if step.owner:
        job += f" ({step.owner})"
    lines = [
        f"Job: {job}",
        f"Task: {step.module} / {step.task}",
        f"Step: {step.step_name} ({step.mode})",
    ]
    if step.experiment_id:
        lines.append(f"Experiment: {step.experiment_id}")
    if step.step_id:
        lines.append(f"Step id: {step.step_id}")
    lines.append("Devices: " + (", ".join(step.devices) if step.devices else "none (holds slots)"))
    when = "Planned" if step.state == "planned" else "Ran"
    if step.state == "running":
        when = "Running, expected"
    lines.append(
        f"{when}: {format_time(step.start)} - {format_time(step.end)}"
        f" ({format_duration(step.end - step.start)})"
    )
    if step.state == "running" and now is not None and now > step.end:
        lines.append(f"Overrunning by {format_duration(now - step.end)}")
    state = step.state + (f": {step.reason}" if step.reason else "")
    lines.append(f"State: {state}")
    return "\n".join(lines)
