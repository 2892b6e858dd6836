"""The owner/admin rule for job commands."""

from __future__ import annotations

import pytest

from octopus_scheduler.service.identity import CONTROL_ACTIONS, AccessPolicy

POLICY = AccessPolicy.from_lab_description({"name": "lab", "admins": ["root", "carol"]})


@pytest.mark.parametrize("action", CONTROL_ACTIONS)
def test_owner_and_admins_may_others_not(action: str) -> None:
    assert POLICY.check("alice", "alice", action) == (True, "alice owns the job")
    assert POLICY.check("carol", "alice", action) == (True, "carol is an admin")
    allowed, reason = POLICY.check("bob", "alice", action)
    assert not allowed
    assert reason == f"user: 'bob' may not {action} a job of 'alice' (owner or admin only)"


def test_names_are_exact_and_required() -> None:
    assert not POLICY.check("Alice", "alice").allowed  # look-alike names gain nothing
    assert not POLICY.check("ROOT", "alice").allowed
    assert POLICY.check(" alice ", "alice").allowed  # blanks around a name are not identity
    assert POLICY.check("", "alice") == (False, "user: not identified (a user name is required)")
    assert not POLICY.check("   ", "").allowed  # an anonymous job is not everyone's


def test_unknown_action_is_refused_even_for_the_owner() -> None:
    verdict = POLICY.check("alice", "alice", "delete")
    assert verdict == (False, "action: unknown action 'delete'")


def test_no_admins_without_configuration() -> None:
    policy = AccessPolicy.from_lab_description({"name": "lab"})
    assert not policy.check("root", "alice").allowed
    assert policy.check("alice", "alice").allowed


@pytest.mark.parametrize(
    ("lab", "message"),
    [({"admins": "root"}, "^admins: expected a list"), ({"admins": ["ok", ""]}, r"^admins\[1\]:")],
)
def test_bad_admin_list_names_the_field(lab: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccessPolicy.from_lab_description(lab)
