"""Alerts to people: job finished/failed, module down, low consumables, emergency stop.

Channels are e-mail (SMTP, ``smtplib``) and a generic JSON webhook (HTTP POST, ``urllib``),
configured by the ``notifications:`` section of the lab description::

    notifications:
      events: [job_finished, job_failed, module_down, low_consumables, estop]  # default: all
      email:
        host: smtp.lab.example
        port: 587                    # default: 587 with starttls, else 25
        from: octopus@lab.example
        to: [ops@lab.example]
        starttls: true               # default: false
        user: octopus                # optional: log in
        password_env: OCTOPUS_SMTP_PASSWORD   # the password never sits in the file
        timeout_s: 10                # default 10
        events: [job_failed, estop]  # optional: a subset for this channel
      webhook:
        urls: [https://chat.lab.example/hooks/octopus]
        timeout_s: 5                 # default 5
        events: [...]                # optional

Never required: no section (or an empty one) gives a disabled notifier whose ``notify`` does
nothing. Never blocking: ``notify`` only puts the alert on a bounded queue (dropped with a
warning when full); one worker thread sends with socket timeouts; a failed send is logged, never
raised. A structurally wrong section raises :class:`NotificationConfigError` naming the field at
construction, so a typo is seen at bring-up rather than when the first alert is lost.

The webhook body is ``{"event", "subject", "lab", "time", "details"}`` as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import smtplib
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

log = logging.getLogger(__name__)

EVENTS = ("job_finished", "job_failed", "job_cancelled", "module_down", "low_consumables", "estop")
DEFAULT_EVENTS = ("job_finished", "job_failed", "module_down", "low_consumables", "estop")
_SECTION = "notifications"


class NotificationConfigError(ValueError):
    """The ``notifications`` section is invalid; the message starts with the field."""


@dataclass(frozen=True)
class Notification:
    event: str  # one of EVENTS
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"event: unknown notification event {self.event!r}")


# -- the alerts the scheduler raises ---------------------------------------------------------


def job_ended(
    job_id: str, state: str, reason: str = "", *, owner: str = "", name: str = ""
) -> Notification | None:
    """A job's end (a core ``JobEnded``): finished, failed or cancelled; None for other states."""
    event = {"succeeded": "job_finished", "failed": "job_failed", "cancelled": "job_cancelled"}
    if state not in event:
        return None
    words = {"succeeded": "finished", "failed": "failed", "cancelled": "was cancelled"}[state]
    subject = f"job {job_id}{f' ({name})' if name else ''} {words}"
    if reason:
        subject += f": {reason}"
    details = {"job_id": job_id, "state": state, "reason": reason, "owner": owner, "name": name}
    return Notification(event[state], subject, details)


def module_down(module: str, reason: str = "") -> Notification:
    subject = f"module {module} is down" + (f": {reason}" if reason else "")
    return Notification("module_down", subject, {"module": module, "reason": reason})


def low_consumables(module: str, item: str, remaining: int) -> Notification:
    subject = f"{module}: {item} is running low ({remaining} left)"
    return Notification(
        "low_consumables", subject, {"module": module, "item": item, "remaining": remaining}
    )


def estop(engaged: bool, by: str = "", reason: str = "") -> Notification:
    subject = f"emergency stop {'ENGAGED' if engaged else 'released'}" + (f" by {by}" if by else "")
    if reason:
        subject += f": {reason}"
    return Notification("estop", subject, {"engaged": engaged, "by": by, "reason": reason})


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool
    user: str | None
    password: str | None
    timeout_s: float
    events: frozenset[str]


@dataclass(frozen=True)
class WebhookChannel:
    urls: tuple[str, ...]
    timeout_s: float
    events: frozenset[str]


def _fail(path: str, message: str) -> NotificationConfigError:
    return NotificationConfigError(f"{path}: {message}")


def _events(raw: Any, path: str, default: Sequence[str]) -> frozenset[str]:
    if raw is None:
        return frozenset(default)
    if not isinstance(raw, list):
        raise _fail(path, "expected a list of events")
    for i, name in enumerate(raw):
        if name not in EVENTS:
            raise _fail(f"{path}[{i}]", f"unknown event {name!r} (known: {', '.join(EVENTS)})")
    return frozenset(raw)


def _timeout(raw: Any, path: str, default: float) -> float:
    value = default if raw is None else raw
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise _fail(path, f"expected seconds in (0, 300], got {raw!r}")
    return float(value)


def _check_keys(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(allowed))})")


def _email(raw: Any, events: frozenset[str], env: Mapping[str, str]) -> EmailChannel:
    path = f"{_SECTION}.email"
    if not isinstance(raw, Mapping):
        raise _fail(path, "expected a mapping")
    _check_keys(
        raw,
        {"host", "port", "from", "to", "starttls", "user", "password_env", "timeout_s", "events"},
        path,
    )
    for key in ("host", "from"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise _fail(f"{path}.{key}", "required, a non-empty string")
    to = raw.get("to")
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
        raise _fail(f"{path}.to", "expected one or more e-mail addresses")
    starttls = raw.get("starttls", False)
    if not isinstance(starttls, bool):
        raise _fail(f"{path}.starttls", "expected true or false")
    port = raw.get("port", 587 if starttls else 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise _fail(f"{path}.port", f"expected a TCP port, got {port!r}")
    user = raw.get("user")
    password = None
    if user is not None:
        if not isinstance(user, str) or not user:
            raise _fail(f"{path}.user", "expected a user name")
        var = raw.get("password_env")
        if not isinstance(var, str) or not var:
            raise _fail(f"{path}.password_env", "required with user: the variable holding it")
        if var not in env:
            raise _fail(f"{path}.password_env", f"environment variable {var} is not set")
        password = env[var]
    return EmailChannel(
        host=raw["host"],
        port=port,
        sender=raw["from"],
        recipients=tuple(to),
        starttls=starttls,
        user=user,
        password=password,
        timeout_s=_timeout(raw.get("timeout_s"), f"{path}.timeout_s", 10.0),
        events=_events(raw.get("events"), f"{path}.events", sorted(events)),
    )


def _webhook(raw: Any, events: frozenset[str]) -> WebhookChannel:
    path = f"{_SECTION}.webhook"
    if not isinstance(raw, Mapping):
        raise _fail(path, "expected a mapping")
    _check_keys(raw, {"url", "urls", "timeout_s", "events"}, path)
    urls = raw.get("urls", [raw["url"]] if "url" in raw else None)
    if not isinstance(urls, list) or not urls:
        raise _fail(f"{path}.urls", "expected a list of http(s) URLs")
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _fail(f"{path}.urls[{i}]", f"expected an http(s) URL, got {url!r}")
    return WebhookChannel(
        urls=tuple(urls),
        timeout_s=_timeout(raw.get("timeout_s"), f"{path}.timeout_s", 5.0),
        events=_events(raw.get("events"), f"{path}.events", sorted(events)),
    )


# -- the notifier ------------------------------------------------------------------------------


class Notifier:
    """Sends notifications from one worker thread; see the module docstring."""

    def __init__(
        self,
        config: Mapping[str, Any] | None,
        *,
        lab_name: str = "",
        queue_size: int = 100,
        env: Mapping[str, str] | None = None,
    ) -> None:
        config = config or {}
        if not isinstance(config, Mapping):
            raise _fail(_SECTION, "expected a mapping")
        _check_keys(config, {"events", "email", "webhook"}, _SECTION)
        events = _events(config.get("events"), f"{_SECTION}.events", DEFAULT_EVENTS)
        environment = os.environ if env is None else env
        self.email = _email(config["email"], events, environment) if config.get("email") else None
        self.webhook = _webhook(config["webhook"], events) if config.get("webhook") else None
        self.lab_name = lab_name
        self._queue: queue.Queue[Notification | None] = queue.Queue(maxsize=queue_size)
        self._idle = threading.Condition()
        self._pending = 0  # queued or being sent
        self.sent = 0  # deliveries that succeeded (per channel target), for diagnostics
        self.failed = 0
        self.dropped = 0
        self._worker: threading.Thread | None = None
        if self.enabled:
            # daemon: a stuck SMTP server must never keep the scheduler process alive
            self._worker = threading.Thread(target=self._run, name="notifier", daemon=True)
            self._worker.start()

    @property
    def enabled(self) -> bool:
        return self.email is not None or self.webhook is not None

    def wants(self, event: str) -> bool:
        return any(c is not None and event in c.events for c in (self.email, self.webhook))

    def notify(self, notification: Notification | None) -> bool:
        """Queue an alert; returns at once. False when disabled, not wanted, or dropped."""
        if notification is None or self._worker is None or not self.wants(notification.event):
            return False
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            with self._idle:
                self._pending -= 1
                self.dropped += 1
            log.warning("notification queue full: dropped %r", notification.subject)
            return False
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was sent (or failed); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (within ``timeout``) and stop the worker."""
        if self._worker is None:
            return
        self.flush(timeout)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            log.warning("notifier closed with alerts still queued")
            return  # daemon thread; it dies with the process
        self._worker.join(timeout)
        self._worker = None

    # -- worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            notification = self._queue.get()
            if notification is None:
                return
            try:
                self._deliver(notification)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, n: Notification) -> None:
        if self.email is not None and n.event in self.email.events:
            self._count(self._send_email, self.email, n, f"smtp {self.email.host}")
        if self.webhook is not None and n.event in self.webhook.events:
            for url in self.webhook.urls:
                self._count(self._post, url, n, f"webhook {url}")

    def _count(self, send: Any, target: Any, n: Notification, where: str) -> None:
        try:
            send(target, n)
            self.sent += 1
        except Exception as error:  # noqa: BLE001 - any failure of a channel is only logged
            self.failed += 1
            log.warning("notification %r via %s failed: %s", n.subject, where, error)

    def _subject(self, n: Notification) -> str:
        return f"[octopus{f' {self.lab_name}' if self.lab_name else ''}] {n.subject}"

    def _send_email(self, channel: EmailChannel, n: Notification) -> None:
        message = EmailMessage()
        message["Subject"] = self._subject(n)
        message["From"] = channel.sender
        message["To"] = ", ".join(channel.recipients)
        lines = [n.subject, "", *(f"{k}: {v}" for k, v in n.details.items() if v != "")]
        lines += [
            "",
            f"event: {n.event}",
            f"time: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(n.time))}",
        ]
        message.set_content("\n".join(lines) + "\n")
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_s) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if channel.user is not None:
                smtp.login(channel.user, channel.password or "")
            smtp.send_message(message)

    def _post(self, url: str, n: Notification) -> None:
        body = json.dumps(
            {
                "event": n.event,
                "subject": self._subject(n),
                "lab": self.lab_name,
                "time": n.time,
                "details": dict(n.details),
            }
        ).encode()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "octopus-scheduler"},
        )
        assert self.webhook is not None
        with urllib.request.urlopen(request, timeout=self.webhook.timeout_s) as response:
            response.read()  # urlopen raises HTTPError for 4xx/5xx
