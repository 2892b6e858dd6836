"""A deadline for a node process's last step, the DDS teardown.

Fast DDS 2.14.5 (the Jazzy wheels) can deadlock there: destroying the participant calls
``DomainParticipant::set_listener(nullptr)``, which holds the participant's listener mutex and
waits for the listener callbacks in progress to end, while a discovery callback in progress (a
peer that is stopping too removes its endpoints) waits for that mutex to end. Seen on this
machine in about 1 of 20 stops of the demo lab (``ros2 launch``, Ctrl-C): one module node spun
forever with the GIL held, ignored SIGTERM, and launch killed it (exit -9).

By then the node's own clean-up is done (goals ended, database closed). What is left belongs to
DDS, and the operating system releases it; peers drop the participant when its lease runs out.
So past the deadline the process ends with exit code 0. The teardown holds the GIL, so no Python
thread can act: a POSIX timer (``SIGEV_THREAD``) calls libc's ``_exit`` from a thread of its own.
"""

from __future__ import annotations

import ctypes
import sys

#: seconds the DDS teardown gets; launch escalates a stop to SIGTERM after 5 s
DDS_TEARDOWN_S = 3.0

_CLOCK_MONOTONIC = 1
_SIGEV_THREAD = 2


class _NotifyThread(ctypes.Structure):
    _fields_ = [("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p)]


class _NotifyUnion(ctypes.Union):
    _fields_ = [("pad", ctypes.c_int * 12), ("thread", _NotifyThread)]


class _SigEvent(ctypes.Structure):  # struct sigevent (Linux, 64 bytes)
    _fields_ = [
        ("value", ctypes.c_void_p),  # union sigval: the argument the function gets
        ("signo", ctypes.c_int),
        ("notify", ctypes.c_int),
        ("how", _NotifyUnion),
    ]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("seconds", ctypes.c_long), ("nanoseconds", ctypes.c_long)]


class _TimerSpec(ctypes.Structure):  # struct itimerspec
    _fields_ = [("interval", _TimeSpec), ("value", _TimeSpec)]


def exit_after(seconds: float, code: int = 0) -> bool:
    """End the process with ``code`` in ``seconds`` unless it has ended by then, even if a
    thread holds the GIL forever. False where the platform has no POSIX timers (nothing armed)."""
    if not sys.platform.startswith("linux"):
        return False
    sys.stdout.flush()  # _exit does not flush what Python buffered
    sys.stderr.flush()
    libc = ctypes.CDLL(None, use_errno=True)
    event = _SigEvent(value=code, notify=_SIGEV_THREAD)
    event.how.thread.function = ctypes.cast(libc._exit, ctypes.c_void_p).value
    timer = ctypes.c_void_p()
    if libc.timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer)) != 0:
        return False
    whole = int(seconds)
    spec = _TimerSpec(value=_TimeSpec(whole, int((seconds - whole) * 1e9)))
    return libc.timer_settime(timer, 0, ctypes.byref(spec), None) == 0
