"""What a task execution reports: feedback while it runs, a result when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from octopus_modules.runtime.status import DeviceStatus


@dataclass(frozen=True)
class ActionTiming:
    """One device action as it ran (wall-clock times, seconds since the epoch)."""

    device: str
    action: str
    start: float
    end: float
    step: str = ""
    sample: str = ""
    ok: bool = True


@dataclass(frozen=True)
class TaskFeedback:
    goal_id: str
    task: str
    #: action_started | action_finished | standby_started | standby_finished | waiting_for_devices
    event: str
    step_index: int
    step: str
    sample: str = ""
    device: str = ""
    action: str = ""
    #: share of the expected duration done so far, 0..1
    progress: float = 0.0


@dataclass
class TaskResult:
    goal_id: str
    task: str
    success: bool
    #: "<Device>.<action>" (per batch) or "<sample>/<Device>.<action>" (per sample) -> data
    measured_data: dict[str, Any] = field(default_factory=dict)
    timings: list[ActionTiming] = field(default_factory=list)
    #: empty on success; otherwise names the step, device and action
    error: str = ""
    #: "succeeded", "failed", "cancelled", "aborted" (emergency stop)
    outcome: str = "succeeded"
    #: wall time the task ended, as the lab counts it: for simulated devices its planned start
    #: plus its lab durations (see ModuleRuntime.accept), never later than its real end
    ended_at: float = 0.0
    #: the module's devices in error or disconnected when the task ended: whoever retries the
    #: task learns of a fault with the failure it caused (a status saying so may come later)
    device_faults: tuple[DeviceStatus, ...] = ()
