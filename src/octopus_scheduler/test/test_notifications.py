"""Notifications against real sockets on loopback: a small SMTP sink and an HTTP sink."""

from __future__ import annotations

import base64
import email
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from octopus_scheduler.service.notifications import (
    NotificationConfigError,
    Notifier,
    estop,
    job_ended,
    low_consumables,
    module_down,
)

# -- sinks ---------------------------------------------------------------------------------------


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[tuple[str, list[str], Message]] = []
        self.logins: list[tuple[str, str]] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: SmtpSink

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink ready")
        sender, recipients = "", []
        while line := self.rfile.readline():
            verb, _, arg = line.decode().rstrip("\r\n").partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-sink")
                self.reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(arg.split()[1]).decode().split("\0")
                self.server.logins.append((user, password))
                self.reply("235 ok")
            elif verb == "MAIL":
                sender, recipients = arg.split(":", 1)[1].strip("<> "), []
                self.reply("250 ok")
            elif verb == "RCPT":
                recipients.append(arg.split(":", 1)[1].strip("<> "))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                message = email.message_from_bytes(data)
                self.server.messages.append((sender, recipients, message))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class HttpSink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _HttpHandler)
        self.status = status
        self.posts: list[tuple[str, dict[str, str], Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HttpHandler(BaseHTTPRequestHandler):
    server: HttpSink

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _serve(server: socketserver.BaseServer) -> Iterator[Any]:
    # a short poll interval: shutdown() returns quickly at teardown
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    yield from _serve(SmtpSink())


@pytest.fixture
def http() -> Iterator[HttpSink]:
    yield from _serve(HttpSink())


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def notifiers() -> Iterator[list[Notifier]]:
    made: list[Notifier] = []
    yield made
    for notifier in made:
        notifier.close(timeout=5.0)


def email_config(port: int, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "from": "octopus@lab.test",
            "to": ["ops@lab.test", "alice@lab.test"], "timeout_s": 5, **extra}  # fmt: skip


# -- tests -------------------------------------------------------------------------------------


def test_no_configuration_is_a_silent_no_op() -> None:
    for config in (None, {}):
        notifier = Notifier(config)
        assert not notifier.enabled
        assert notifier.notify(job_ended("J1", "failed", "x")) is False
        assert notifier._worker is None
        notifier.close()


def test_email_arrives_with_login_from_the_environment(
    smtp: SmtpSink, notifiers: list[Notifier]
) -> None:
    config = {"email": email_config(smtp.port, user="octopus", password_env="SMTP_PW")}
    notifier = Notifier(config, lab_name="demo", env={"SMTP_PW": "s3cret"})
    notifiers.append(notifier)
    assert notifier.notify(job_ended("J0007", "failed", "UV-Vis lamp off", owner="alice"))
    assert notifier.flush(timeout=10)
    assert smtp.logins == [("octopus", "s3cret")]
    ((sender, recipients, message),) = smtp.messages
    assert sender == "octopus@lab.test"
    assert recipients == ["ops@lab.test", "alice@lab.test"]
    assert message["Subject"] == "[octopus demo] job J0007 failed: UV-Vis lamp off"
    body = message.get_payload()
    assert "owner: alice" in body and "event: job_failed" in body
    assert notifier.sent == 1 and notifier.failed == 0


def test_webhook_posts_json(http: HttpSink, notifiers: list[Notifier]) -> None:
    notifier = Notifier({"webhook": {"urls": [f"{http.url}/hook"]}}, lab_name="demo")
    notifiers.append(notifier)
    alerts = [
        module_down("UV-Vis", "no heartbeat for 2 s"),
        low_consumables("UV-Vis", "cuvette", 5),
        estop(True, by="bob", reason="spill"),
        job_ended("J2", "succeeded", name="silver"),
    ]
    assert all(notifier.notify(a) for a in alerts)
    assert notifier.flush(timeout=10)
    assert [p[0] for p in http.posts] == ["/hook"] * 4
    assert http.posts[0][1]["Content-Type"] == "application/json"
    bodies = [p[2] for p in http.posts]
    assert [b["event"] for b in bodies] == [
        "module_down", "low_consumables", "estop", "job_finished"]  # fmt: skip
    assert bodies[1]["details"] == {"module": "UV-Vis", "item": "cuvette", "remaining": 5}
    assert bodies[2]["subject"] == "[octopus demo] emergency stop ENGAGED by bob: spill"
    assert bodies[3]["lab"] == "demo" and bodies[3]["details"]["name"] == "silver"


def test_event_filters_per_section_and_channel(
    smtp: SmtpSink, http: HttpSink, notifiers: list[Notifier]
) -> None:
    config = {
        "events": ["job_failed", "estop"],
        "email": email_config(smtp.port, events=["estop"]),
        "webhook": {"url": http.url},
    }
    notifier = Notifier(config)
    notifiers.append(notifier)
    assert not notifier.notify(job_ended("J1", "succeeded"))  # not wanted anywhere
    assert notifier.notify(job_ended("J1", "failed", "boom"))
    assert notifier.notify(estop(False, by="root"))
    assert notifier.flush(timeout=10)
    assert [m["Subject"] for _, _, m in smtp.messages] == [
        "[octopus] emergency stop released by root"
    ]
    assert [p[2]["event"] for p in http.posts] == ["job_failed", "estop"]


def test_failures_are_logged_not_raised(
    smtp: SmtpSink, notifiers: list[Notifier], caplog: pytest.LogCaptureFixture
) -> None:
    failing_http = HttpSink(status=500)
    for _ in _serve(failing_http):
        config = {
            "email": email_config(smtp.port, starttls=True),  # the sink offers no STARTTLS
            "webhook": {"urls": [failing_http.url, "http://127.0.0.1:1/closed"]},
        }
        notifier = Notifier(config)
        notifiers.append(notifier)
        with caplog.at_level(logging.WARNING, logger="octopus_scheduler.service.notifications"):
            assert notifier.notify(module_down("SolidState"))
            assert notifier.flush(timeout=20)
        assert len(failing_http.posts) == 1  # it was reached, then answered 500
    assert smtp.messages == []
    assert notifier.failed == 3 and notifier.sent == 0
    text = caplog.text
    assert "smtp 127.0.0.1 failed" in text and "STARTTLS" in text
    assert "500" in text and "127.0.0.1:1/closed failed" in text


def test_a_dead_server_never_blocks_the_caller(notifiers: list[Notifier]) -> None:
    """A server that accepts connections but never speaks: the caller returns at once, the
    bounded queue drops the excess, the worker gives up after its timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nobody ever answers
        port = silent.getsockname()[1]
        notifier = Notifier({"email": email_config(port, timeout_s=0.5)}, queue_size=1)
        notifiers.append(notifier)
        start = time.perf_counter()
        queued = [notifier.notify(job_ended(f"J{i}", "failed")) for i in range(6)]
        elapsed = time.perf_counter() - start
        assert elapsed < 0.1
        # at most one being sent and one waiting: the rest were dropped, not waited for
        assert queued.count(False) >= 4 and notifier.dropped == queued.count(False)
        assert notifier.flush(timeout=10)  # each stuck send ends by its own timeout
        assert notifier.failed == queued.count(True)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"emial": {}}, r"^notifications\.emial: unknown field"),
        ({"events": ["job_done"]}, r"^notifications\.events\[0\]: unknown event 'job_done'"),
        ({"email": {"host": "h", "from": "a@b"}}, r"^notifications\.email\.to:"),
        ({"email": {"host": "h", "from": "a@b", "to": "c@d", "port": 0}},
         r"^notifications\.email\.port:"),
        ({"email": {"host": "h", "from": "a@b", "to": "c@d", "user": "u"}},
         r"^notifications\.email\.password_env: required"),
        ({"email": {"host": "h", "from": "a@b", "to": "c@d", "user": "u", "password_env": "NOPE"}},
         r"^notifications\.email\.password_env: environment variable NOPE is not set"),
        ({"webhook": {"urls": ["ftp://x"]}}, r"^notifications\.webhook\.urls\[0\]: expected an"),
        ({"webhook": {"urls": ["http://x"], "timeout_s": 0}},
         r"^notifications\.webhook\.timeout_s:"),
    ],
)  # fmt: skip
def test_bad_configuration_names_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(NotificationConfigError, match=message):
        Notifier(config, env={})


def test_job_end_states(notifiers: list[Notifier]) -> None:
    assert job_ended("J1", "running") is None
    cancelled = job_ended("J1", "cancelled", "by alice")
    assert cancelled is not None and cancelled.event == "job_cancelled"
    notifier = Notifier({"webhook": {"url": "http://127.0.0.1:9"}})
    notifiers.append(notifier)
    assert not notifier.wants("job_cancelled")  # opt-in: not among the default events
    assert notifier.wants("job_failed")
