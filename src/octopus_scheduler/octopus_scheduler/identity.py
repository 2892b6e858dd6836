"""Who may act on a job: the one place that decides it.

Rule: a job belongs to its submitter. Cancel, hold, resume and re-prioritise are allowed to the
job's owner and to the lab's admins (``admins:`` in the lab description); to nobody else.

User names are compared exactly (after trimming blanks): ``Alice`` is not ``alice``, so a
look-alike name never gains someone else's rights. An empty name is never allowed.

Binding to SROS2 later: today ``user`` is the name the client puts in its request, which any
client can forge. With SROS2 enabled, the node will take ``user`` from the authenticated
identity of the caller instead (the enclave / certificate subject of the DDS participant that
sent the request) and map it to a lab user name; :meth:`AccessPolicy.check` itself stays the same,
so every caller already goes through the right gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

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
