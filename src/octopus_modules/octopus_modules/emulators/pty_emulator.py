"""A serial instrument emulator on a pseudo-terminal (TEST DOUBLE for real hardware).

The emulator owns the master side of a pty and answers requests from a thread;
a driver opens the slave side with pyserial exactly as it would open
``/dev/ttyUSB0``. A stable symlink (like udev's ``/dev/serial/by-id/...``) points
at the current slave, so a restarted emulator, which gets a new pty, is found
again under the same port path, as a power-cycled instrument would be.

Faults for tests: ``reply_delay_s`` (slow instrument), ``silent`` (no replies:
timeouts), ``disconnect()`` (cable pulled: the pty goes away) and
``restart()`` (power cycle). Subclasses implement the protocol in
``handle(request)`` and set ``request_terminator``.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import tempfile
import threading
import tty
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Self


class PtyEmulator(ABC):
    """Base class: pty lifecycle, reader thread and fault switches."""

    #: byte that ends one request on the wire
    request_terminator: bytes = b"\n"

    def __init__(self, link_path: str | os.PathLike[str] | None = None) -> None:
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        if link_path is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="octopus-emu-")
            link_path = Path(self._own_dir.name) / type(self).__name__.lower()
        self.link_path = Path(link_path)
        self.reply_delay_s = 0.0
        self.silent = False
        self.received: list[bytes] = []  # every request seen, for tests
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._lock = threading.Lock()

    # ---- lifecycle -----------------------------------------------------

    @property
    def port(self) -> str:
        """Stable port path to give to the driver (a symlink to the current pty)."""
        return str(self.link_path)

    @property
    def pty_path(self) -> str:
        """The current slave device, e.g. /dev/pts/3."""
        if self._slave is None:
            raise RuntimeError("emulator is not running")
        return os.ttyname(self._slave)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation before pyserial configures it
        self._wake_r, self._wake_w = os.pipe()
        self._stop.clear()
        tmp_link = self.link_path.with_name(self.link_path.name + ".new")
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(os.ttyname(self._slave))
        tmp_link.replace(self.link_path)  # atomic: the port path never dangles while running
        self.on_power_up()
        self._thread = threading.Thread(
            target=self._serve, name=f"{type(self).__name__}-pty", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Power off: the pty disappears, a driver holding the port sees I/O errors."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd is not None and fd >= 0:
                os.close(fd)
        self._master = self._slave = None
        self._wake_r = self._wake_w = -1
        self.link_path.unlink(missing_ok=True)

    def disconnect(self) -> None:
        """Cable pulled: same as power off from the driver's point of view."""
        self.stop()

    def restart(self) -> None:
        """Power cycle: new pty behind the same port path, state reset to power-up."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the temporary directory holding the port symlink."""
        self.stop()
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- protocol hooks ------------------------------------------------

    @abstractmethod
    def on_power_up(self) -> None:
        """Reset the instrument state as after switching it on."""

    @abstractmethod
    def handle(self, request: bytes) -> bytes | None:
        """Answer one request (terminator included); None means no reply."""

    # ---- thread --------------------------------------------------------

    def _serve(self) -> None:
        master, wake = self._master, self._wake_r
        assert master is not None
        buffer = b""
        while not self._stop.is_set():
            readable, _, _ = select.select([master, wake], [], [])
            if wake in readable:
                return
            try:
                chunk = os.read(master, 1024)
            except OSError:
                return  # pty torn down
            buffer += chunk
            while self.request_terminator in buffer:
                request, _, buffer = buffer.partition(self.request_terminator)
                self._answer(request + self.request_terminator)

    def _answer(self, request: bytes) -> None:
        with self._lock:
            self.received.append(request)
            reply = self.handle(request)
        if reply is None or self.silent:
            return
        if self.reply_delay_s > 0 and self._stop.wait(self.reply_delay_s):
            return  # stopped while "thinking"
        if self._master is not None:
            try:
                os.write(self._master, reply)
            except OSError:
                pass  # pty torn down mid-reply


def emulator_arguments(doc: str | None) -> argparse.ArgumentParser:
    """Command-line options shared by the ``python -m`` entry points of the emulators."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--link", help="port path (symlink) to create; default: a temp dir")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated s per real s")
    return parser


def serve_until_interrupted(emulator: PtyEmulator) -> None:
    """Start, print ``<port> -> <pty>`` for the user, run until Ctrl-C, clean up."""
    # started from a non-interactive shell's background job, SIGINT arrives ignored: Ctrl-C
    # (and a test's SIGINT) must still stop the emulator
    signal.signal(signal.SIGINT, signal.default_int_handler)
    emulator.start()
    print(emulator.port, "->", emulator.pty_path, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()
