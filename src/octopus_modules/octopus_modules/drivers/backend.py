"""The contract between a module's runtime and a device back end.

A back end drives one device (simulated or real). The module runtime calls
``execute`` for every device action of a task step, from a worker thread, and
``safe_state`` on cancel and on an emergency stop. ``execute(action, params, cancel)`` is the
one path from a goal to a device: the runtime renders the action and its parameters from the
module description, which :mod:`octopus_modules.drivers.kinds` checked when it was loaded.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any


class DeviceError(RuntimeError):
    """A device refused or failed an action; the message names device and action."""

    def __init__(self, device: str, action: str, reason: str) -> None:
        super().__init__(f"{device}.{action}: {reason}")
        self.device = device
        self.action = action
        self.reason = reason


class DeviceCancelled(DeviceError):
    """An action stopped early because its cancel event was set."""

    def __init__(self, device: str, action: str) -> None:
        super().__init__(device, action, "cancelled")


class DeviceDisconnected(DeviceError):
    """The connection to the device is lost; the runtime calls ``connect()`` before reuse.

    Added after the first version of this contract (backwards compatible): back ends
    may raise it, or a subclass; the runtime also recognises any exception class
    named ``DeviceDisconnected`` in the MRO (e.g. the serial link's own).
    """

    def __init__(self, device: str, action: str, reason: str = "connection lost") -> None:
        super().__init__(device, action, reason)


class DeviceBackend(ABC):
    """One device. Implementations must be safe to call from one thread at a time."""

    #: kind of device: "robot_arm", "pump", "stirrer", "spectrometer", "actuator", ...
    #: (the catalogue of kinds and their actions is ``drivers/kinds.py``)
    kind: str = "generic"

    #: True if the back end wants the runtime to pass the description's expected
    #: duration of the action as ``params["expected_duration_s"]`` (simulated back
    #: ends do; real ones need not). Added later; default False keeps old back ends as they were.
    uses_expected_duration: bool = False

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def actions(self) -> frozenset[str]:
        """Names of the actions this device accepts."""

    @abstractmethod
    def execute(
        self, action: str, params: Mapping[str, Any], cancel: threading.Event
    ) -> dict[str, Any]:
        """Run one action to completion and return its measured data.

        Blocks until done. Raises DeviceCancelled soon after ``cancel`` is set
        (the device must then be stopped), DeviceError on any failure.
        """

    @abstractmethod
    def safe_state(self) -> None:
        """Stop motion, heating, flow; must not raise and must return quickly."""

    def connect(self) -> None:  # noqa: B027 (optional hook)
        """Open the connection (serial port, ...); idempotent."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the connection; idempotent."""
