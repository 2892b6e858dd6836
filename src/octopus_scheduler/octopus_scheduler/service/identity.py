"""Who may act on a job: the one place that decides it.

Rule: a job belongs to its submitter. Cancel, hold, resume and re-prioritise are allowed to the
job's owner and to the lab's admins (``admins:`` in the lab description); to nobody else.

User names are compared exactly (after trimming blanks): ``Alice`` is not ``alice``, so a
look-alike name never gains someone else's rights. An empty name is never allowed.

Who a user is: SROS2 cannot say here (the Fast DDS of the PyPI wheels is built without the DDS
security plugins; README, "Authenticated users"). A lab with ``auth: required`` therefore takes
``user`` only from a request signed with that user's key (:class:`Authenticator`, below);
:meth:`AccessPolicy.check` then decides what the user may do, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

#: actions that change someone's job and so need the owner or an admin
CONTROL_ACTIONS = ("cancel", "hold", "resume", "set_priority")


class Verdict(NamedTuple):
    """``allowed`` and why; unpacks as ``allowed, reason = policy.check(...)``."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class AccessPolicy:
    admins: frozenset[str] = frozenset()

    @classmethod
    def from_admins(cls, admins: Iterable[str]) -> AccessPolicy:
        names = list(admins)
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"admins[{i}]: expected a non-empty user name, got {name!r}")
        return cls(frozenset(n.strip() for n in names))

    @classmethod
    def from_lab_description(cls, lab: Mapping[str, Any]) -> AccessPolicy:
        """From the lab description's ``admins:`` list (absent: no admins)."""
        admins = lab.get("admins", []) or []
        if not isinstance(admins, list):
            raise ValueError("admins: expected a list of user names")
        return cls.from_admins(admins)

    def is_admin(self, user: str) -> bool:
        return user.strip() in self.admins

    def check(self, user: str, owner: str, action: str = "cancel") -> Verdict:
        """May ``user`` perform ``action`` on a job owned by ``owner``?"""
        if action not in CONTROL_ACTIONS:
            return Verdict(False, f"action: unknown action {action!r}")
        who = user.strip() if isinstance(user, str) else ""
        if not who:
            return Verdict(False, "user: not identified (a user name is required)")
        if who == owner.strip():
            return Verdict(True, f"{who} owns the job")
        if who in self.admins:
            return Verdict(True, f"{who} is an admin")
        return Verdict(
            False, f"user: '{who}' may not {action} a job of '{owner}' (owner or admin only)"
        )


# ---- signed requests: who a user is (the wheels' Fast DDS has no DDS security; README) --------
#
# Every enrolled user has a secret key, kept in the lab's secrets file (outside the repository:
# ``secrets:`` in the lab file or $OCTOPUS_SECRETS). A request carries ``auth``:
#
#     v1:<user>:<unix time>:<nonce>:<HMAC-SHA256 hex>
#
# the MAC over the request's action, its fields, the user, the time and the nonce (see
# :func:`signed_text`). The scheduler refuses, when the lab says ``auth: required``: an unsigned
# request, a user other than the one who signed, an unknown user, a wrong key (or an altered
# request), a time more than ``max_skew_s`` away, and a nonce seen before (a replay). Admin
# actions (e-stop reset, clear-error) need the signature of an admin.

AUTH_VERSION = "v1"
AUTH_MODES = ("off", "required")
SCRIPT_FIELD = "script"  # signed by the digest of its whitespace-normalised text (see below)


class AuthError(ValueError):
    """The secrets file or a key is unusable; the message names the field."""


def script_digest(script: str) -> str:
    """SHA-256 of the script with every run of white space made one blank: the text a user
    keeps in a file arrives folded by the ros2 command line's YAML ('$(cat my_job.yaml)'), so
    the signature must not depend on line breaks (the content is covered word for word)."""
    return hashlib.sha256(" ".join(script.split()).encode("utf-8")).hexdigest()


def signed_text(
    action: str, fields: Mapping[str, Any], user: str, timestamp: int, nonce: str
) -> bytes:
    """The exact bytes the MAC covers."""
    values = {k: script_digest(str(v)) if k == SCRIPT_FIELD else str(v) for k, v in fields.items()}
    body = [AUTH_VERSION, action, user, int(timestamp), nonce, sorted(values.items())]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(
    key: bytes,
    action: str,
    fields: Mapping[str, Any],
    user: str,
    *,
    timestamp: float | None = None,
    nonce: str | None = None,
) -> str:
    """The ``auth`` string of a request (what the ``octopus`` command puts in every request)."""
    when = int(time.time() if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(12)
    mac = hmac.new(key, signed_text(action, fields, user, when, nonce), hashlib.sha256)
    return f"{AUTH_VERSION}:{user}:{when}:{nonce}:{mac.hexdigest()}"


def parse_key(raw: Any, field: str) -> bytes:
    """A key as written in a secrets file: at least 32 hex digits (``openssl rand -hex 32``)."""
    if not isinstance(raw, str):
        raise AuthError(f"{field}: expected a hex string")
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        raise AuthError(f"{field}: not a hex string") from None
    if len(key) < 16:
        raise AuthError(f"{field}: too short ({len(key)} bytes; at least 16, better 32)")
    return key


def load_secrets(path: str | Path) -> dict[str, bytes]:
    """``users: {alice: {key: <hex>}, ...}`` from a lab secrets file (YAML)."""
    path = Path(path)
    try:
        # every scalar as text: a hex key of digits only (or "12e4...") must not become a number
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}  # noqa: S506
    except (OSError, yaml.YAMLError) as error:
        raise AuthError(f"secrets file {path}: {error}") from None
    users = data.get("users") if isinstance(data, Mapping) else None
    if not isinstance(users, Mapping) or not users:
        raise AuthError(f"secrets file {path}: users: expected a mapping user -> {{key: <hex>}}")
    keys = {}
    for name, entry in users.items():
        if not isinstance(entry, Mapping) or "key" not in entry:
            raise AuthError(f"secrets file {path}: users.{name}: expected {{key: <hex>}}")
        keys[str(name)] = parse_key(entry["key"], f"users.{name}.key")
    return keys


@dataclass
class Authenticator:
    """Checks the ``auth`` of requests (ROS-free; the scheduler's LabService calls it)."""

    keys: Mapping[str, bytes] = field(default_factory=dict)
    required: bool = False
    max_skew_s: float = 300.0
    clock: Callable[[], float] = time.time
    _seen: dict[str, float] = field(default_factory=dict, repr=False)  # nonce -> its timestamp

    def verify(self, action: str, fields: Mapping[str, Any], user: str, auth: str) -> Verdict:
        """Allowed, or why not (a message starting with ``auth:``). Unsigned requests pass
        only when the lab does not require signatures."""
        if not auth:
            if self.required:
                return Verdict(
                    False,
                    "auth: unsigned request refused: this lab requires signed requests (the "
                    "octopus command signs with your key; for ros2 lines use octopus sign)",
                )
            return Verdict(True, "unsigned (this lab does not require signatures)")
        parts = auth.split(":")
        if len(parts) != 5 or parts[0] != AUTH_VERSION:
            return Verdict(False, f"auth: malformed (expected {AUTH_VERSION}:user:time:nonce:mac)")
        _, signer, stamp, nonce, mac = parts
        if signer != user.strip():
            return Verdict(
                False, f"auth: signed by '{signer}' but the request is made as '{user.strip()}'"
            )
        key = self.keys.get(signer)
        if key is None:
            return Verdict(False, f"auth: user '{signer}' is not enrolled in this lab")
        try:
            when = int(stamp)
        except ValueError:
            return Verdict(False, "auth: malformed time")
        now = self.clock()
        if abs(now - when) > self.max_skew_s:
            return Verdict(
                False,
                f"auth: stale request (signed {now - when:+.0f} s from now; at most "
                f"{self.max_skew_s:g} s)",
            )
        expected = hmac.new(key, signed_text(action, fields, signer, when, nonce), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), mac):
            return Verdict(
                False, f"auth: bad signature for '{signer}' (a wrong key or an altered request)"
            )
        for old in [n for n, t in self._seen.items() if abs(now - t) > self.max_skew_s]:
            del self._seen[old]  # older than any request that could still pass
        if nonce in self._seen:
            return Verdict(False, "auth: replayed request refused (its nonce was used before)")
        self._seen[nonce] = when
        return Verdict(True, f"signed by {signer}")


def lab_authenticator(config: Any, environ: Mapping[str, str] | None = None) -> Authenticator:
    """A lab's check of signed requests, from its lab file (``auth``, ``secrets``): the keys
    come from $OCTOPUS_SECRETS or the lab's ``secrets:`` file; ``auth: required`` refuses
    unsigned requests and needs keys."""
    environ = os.environ if environ is None else environ
    path = environ.get("OCTOPUS_SECRETS") or getattr(config, "secrets", "")
    keys = load_secrets(path) if path else {}
    required = getattr(config, "auth", "off") == "required"
    if required and not keys:
        raise AuthError("lab.auth: required, but no secrets file (lab.secrets or OCTOPUS_SECRETS)")
    return Authenticator(keys, required=required)
