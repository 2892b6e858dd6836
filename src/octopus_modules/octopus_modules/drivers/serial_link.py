"""Shared request/reply line I/O over a serial port, with timeouts and reconnect.

Both real serial back ends talk in strict request/reply pairs, so one small class
owns the port: it opens it through pyserial (exactly as a USB/RS-232 port), sends a
request, reads until the protocol's terminator or a deadline, and turns every
transport failure into a ``DeviceError`` that names the device and the action.

Reconnect policy: a lost port (unplugged adapter, instrument power-cycled,
emulator restarted, fd closed) is noticed on the next I/O. A failure while
*writing* means nothing reached the instrument, so the link reopens the port
(bounded attempts) and sends again. A failure while *reading* is reported
(the instrument may have acted on the request) and the port is reopened on the
next request.
"""

from __future__ import annotations

import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import serial

from octopus_modules.drivers.backend import DeviceCancelled, DeviceDisconnected, DeviceError

__all__ = ["DeviceDisconnected", "DeviceTimeout", "SerialLink", "SerialSettings", "as_action"]

# What a vanished port raises: pyserial wraps most errors, but termios calls
# (flush, reconfigure) on a hung-up tty raise termios.error directly.
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)


class DeviceTimeout(DeviceError):
    """The instrument did not answer within the reply timeout."""


@contextmanager
def as_action(device: str, action: str) -> Iterator[None]:
    """Re-label DeviceErrors raised by inner steps with the task-level action.

    ``stir`` runs set_speed, start_stirring, ...: the runtime (and the user) must see
    ``hotplate1.stir: set_speed: ...``, not only the inner step. The error type is kept.
    """
    try:
        yield
    except DeviceCancelled:
        raise DeviceCancelled(device, action) from None
    except DeviceError as exc:
        if exc.action == action:
            raise
        relabelled = type(exc).__new__(type(exc))
        DeviceError.__init__(relabelled, device, action, f"{exc.action}: {exc.reason}")
        raise relabelled from exc


@dataclass(frozen=True)
class SerialSettings:
    """How to open the port; the defaults of each instrument live in its driver."""

    port: str
    baudrate: int = 9600
    bytesize: int = serial.EIGHTBITS
    parity: str = serial.PARITY_NONE
    stopbits: float = serial.STOPBITS_ONE
    timeout_s: float = 1.0
    reconnect_attempts: int = 3
    reconnect_delay_s: float = 0.2


class SerialLink:
    """One serial port used for request/reply exchanges; thread-safe."""

    def __init__(self, device: str, settings: SerialSettings) -> None:
        self.device = device
        self.settings = settings
        self._port: serial.Serial | None = None
        self._lock = threading.RLock()
        self._late_reply: bytes | None = None  # terminator of a reply that timed out
        self.opens = 0  # how many times the port was (re)opened: observable reconnects

    @property
    def is_open(self) -> bool:
        return self._port is not None and self._port.is_open

    def open(self, action: str = "connect", urgent: bool = False) -> None:
        """Open the port if needed, retrying a bounded number of times (once if urgent)."""
        with self._lock:
            if self.is_open:
                return
            attempts = 1 if urgent else max(1, self.settings.reconnect_attempts)
            last_error: Exception | None = None
            for attempt in range(attempts):
                if attempt:
                    time.sleep(self.settings.reconnect_delay_s)  # give a replug time to settle
                try:
                    self._port = serial.Serial(
                        self.settings.port,
                        self.settings.baudrate,
                        bytesize=self.settings.bytesize,
                        parity=self.settings.parity,
                        stopbits=self.settings.stopbits,
                        timeout=self.settings.timeout_s,
                        write_timeout=self.settings.timeout_s,
                    )
                    self.opens += 1
                    return
                except (*_PORT_ERRORS, ValueError) as exc:
                    last_error = exc
            raise DeviceDisconnected(
                self.device,
                action,
                f"cannot open serial port {self.settings.port} after {attempts} attempt(s): "
                f"{last_error}",
            )

    def close(self) -> None:
        with self._lock:
            self._late_reply = None
            port, self._port = self._port, None
            if port is not None:
                try:
                    port.close()
                except _PORT_ERRORS:
                    pass  # already dead; closing is best effort

    def exchange(
        self,
        request: bytes,
        terminator: bytes,
        action: str,
        timeout_s: float | None = None,
        urgent: bool = False,
    ) -> bytes:
        """Send ``request`` and return the reply up to and including ``terminator``.

        ``urgent`` (safe_state): one attempt, no reopen delays, no waiting for a late
        reply to an earlier request, so a stop goes out at once or fails fast.
        """
        with self._lock:
            self._write_with_reconnect(request, action, urgent)
            return self._read_reply(request, terminator, action, timeout_s)

    def send(self, request: bytes, action: str, urgent: bool = False) -> None:
        """Send a request that the instrument does not answer (``urgent``: see exchange)."""
        with self._lock:
            self._write_with_reconnect(request, action, urgent)

    def _write_with_reconnect(self, request: bytes, action: str, urgent: bool) -> None:
        attempts = 1 if urgent else max(1, self.settings.reconnect_attempts)
        last_error: Exception | None = None
        for _ in range(attempts):
            self.open(action, urgent)  # raises DeviceDisconnected if the port stays gone
            port = self._port
            assert port is not None
            try:
                self._discard_late_reply(port, wait=not urgent)
                port.write(request)
                port.flush()
                return
            except _PORT_ERRORS as exc:
                last_error = exc
                self.close()  # nothing was delivered: safe to reopen and send again
        raise DeviceDisconnected(
            self.device,
            action,
            f"serial port {self.settings.port} lost while sending {_show(request)}: {last_error}",
        )

    def _discard_late_reply(self, port: serial.Serial, wait: bool) -> None:
        """Keep the reply to an earlier, timed-out request from answering this one.

        After a timeout the instrument may still answer; wait up to one more timeout
        for that late reply, then drop whatever input is pending.
        """
        if self._late_reply is not None:
            terminator, self._late_reply = self._late_reply, None
            if wait:
                port.read_until(terminator)
        port.reset_input_buffer()

    def _read_reply(
        self, request: bytes, terminator: bytes, action: str, timeout_s: float | None
    ) -> bytes:
        port = self._port
        assert port is not None
        wait_s = self.settings.timeout_s if timeout_s is None else timeout_s
        try:
            if port.timeout != wait_s:  # setting it reconfigures the port: only when it changes
                port.timeout = wait_s
            reply = port.read_until(terminator)
        except _PORT_ERRORS as exc:
            self.close()  # the next request reopens the port
            raise DeviceDisconnected(
                self.device,
                action,
                f"serial port {self.settings.port} lost while waiting for the reply to "
                f"{_show(request)}: {exc}",
            ) from exc
        if not reply.endswith(terminator):
            self._late_reply = terminator
            partial = f" (partial reply {_show(reply)})" if reply else ""
            raise DeviceTimeout(
                self.device,
                action,
                f"no reply to {_show(request)} within {wait_s:g} s on {self.settings.port}"
                f"{partial}",
            )
        return reply


def _show(data: bytes) -> str:
    """Printable form of wire bytes for error messages (control characters escaped)."""
    return repr(data.decode("ascii", errors="backslashreplace"))
