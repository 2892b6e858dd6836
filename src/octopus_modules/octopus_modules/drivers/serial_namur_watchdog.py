"""Keeps the NAMUR data-flow watchdog (``OUT_WD1@m``) of a hotplate armed.

In watchdog mode 1 an IKA device switches heating and stirring off (display ``Er 2``)
when it has not received ``OUT_WD1@m`` for ``m`` seconds (20..1500). Re-sending it from a
small background thread means: while this process lives the device runs normally;
if the process dies or the cable is pulled, the device stops heating by itself.
"""

from __future__ import annotations

import logging
import threading

from octopus_modules.drivers.backend import DeviceError
from octopus_modules.drivers.serial_link import SerialLink

_log = logging.getLogger(__name__)

WATCHDOG_MIN_S = 20
WATCHDOG_MAX_S = 1500


class NamurWatchdog:
    def __init__(self, link: SerialLink, watchdog_s: int, keepalive_s: float | None = None) -> None:
        if not WATCHDOG_MIN_S <= watchdog_s <= WATCHDOG_MAX_S or int(watchdog_s) != watchdog_s:
            raise ValueError(
                f"{link.device}: watchdog_s must be a whole number of seconds in "
                f"{WATCHDOG_MIN_S}..{WATCHDOG_MAX_S}, got {watchdog_s!r}"
            )
        self.link = link
        self.watchdog_s = int(watchdog_s)
        # A third of the period leaves room for two lost keep-alives before the device trips.
        self.keepalive_s = watchdog_s / 3.0 if keepalive_s is None else keepalive_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def arm(self, action: str = "watchdog") -> None:
        """Send ``OUT_WD1@m``; the device echoes ``m``. DeviceError if it does not."""
        request = f"OUT_WD1@{self.watchdog_s}".encode("ascii") + b"\r\n"
        reply = self.link.exchange(request, b"\n", action).decode("ascii", errors="replace")
        if reply.split() != [str(self.watchdog_s)]:
            raise DeviceError(
                self.link.device,
                action,
                f"watchdog not armed: OUT_WD1@{self.watchdog_s} answered {reply.strip()!r}",
            )

    def start(self, action: str = "connect") -> None:
        """Arm now (errors raised to the caller), then keep it armed in the background."""
        if self._thread is not None:
            return
        self.arm(action)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._keep_alive, name=f"{self.link.device}-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.keepalive_s):
            try:
                self.arm()
            except DeviceError as exc:  # the next command reports the link; keep trying
                _log.warning("%s: watchdog keep-alive failed: %s", self.link.device, exc)
