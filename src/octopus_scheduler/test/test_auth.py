"""Signed requests (identity.Authenticator in the ROS-free LabService): on a lab with
``auth: required`` a forged user, a replayed request, a wrong key, a stale or unsigned request is
refused with a clear error and changes nothing; admin actions need an admin's signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from octopus_modules.description import load_builtin_description
from octopus_scheduler.service.identity import (
    Authenticator,
    AuthError,
    lab_authenticator,
    load_secrets,
    script_digest,
    sign,
)
from octopus_scheduler.service.lab_config import parse_lab_config
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.store import Store

KEYS = {"alice": bytes(range(32)), "bob": bytes(range(1, 33)), "boss": bytes(range(2, 34))}
JOB = """
metadata: {name: seeds, owner: whoever}
campaign: {kind: manual, experiments: [{React.Time: 20 min}]}
process:
  Synthesis:
    BatchSynthesis: {sequence: [PrepareContainer, Mix, React, MoveContainer]}
"""


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lab(tmp_path: Path) -> LabService:
    clock = Clock()
    return LabService(
        [load_builtin_description(m) for m in ("batch_synthesis", "uv_vis")],
        Store(tmp_path / "db.sqlite"),
        admins=["boss"],
        clock=clock,
        auth=Authenticator(KEYS, required=True, clock=clock),
    )


def signed(user: str, action: str, fields: dict, key: bytes | None = None, **kw) -> str:
    return sign(key or KEYS[user], action, fields, user, timestamp=Clock.now, **kw)


def test_a_signed_submission_is_accepted_and_owned_by_its_signer(lab: LabService) -> None:
    submission, _ = lab.submit(JOB, "alice", signed("alice", "submit_job", {"script": JOB}))
    assert submission.accepted, submission.error
    assert lab.job(submission.job_id).owner == "alice"


def test_unsigned_forged_replayed_wrong_key_stale_all_refused_nothing_stored(lab) -> None:
    def refused(user: str, auth: str) -> str:
        submission, outbox = lab.submit(JOB, user, auth)
        assert not submission.accepted and not outbox.goals
        return submission.error

    assert refused("alice", "").startswith("auth: unsigned request refused")
    # bob signs with his own key but claims to be alice; then puts alice's name in the auth
    forged = signed("bob", "submit_job", {"script": JOB})
    assert refused("alice", forged) == "auth: signed by 'bob' but the request is made as 'alice'"
    as_alice = signed("alice", "submit_job", {"script": JOB}, key=KEYS["bob"])
    assert refused("alice", as_alice).startswith("auth: bad signature for 'alice'")
    altered = signed("alice", "submit_job", {"script": JOB})  # alice's, for another script
    other_script = JOB.replace("20 min", "40 min")
    assert lab.submit(other_script, "alice", altered)[0].error.startswith("auth: bad signature")
    stale = sign(KEYS["alice"], "submit_job", {"script": JOB}, "alice", timestamp=Clock.now - 301)
    assert refused("alice", stale).startswith("auth: stale request (signed +301 s from now")
    assert refused("mallory", signed("alice", "submit_job", {"script": JOB})).startswith(
        "auth: signed by 'alice'"
    )
    unknown = sign(bytes(32), "submit_job", {"script": JOB}, "mallory", timestamp=Clock.now)
    assert refused("mallory", unknown) == "auth: user 'mallory' is not enrolled in this lab"
    assert lab.jobs() == [] and lab.store.load_events() == []
    # a good one goes through once; the same request again is a replay
    good = signed("alice", "submit_job", {"script": JOB})
    assert lab.submit(JOB, "alice", good)[0].accepted
    assert refused("alice", good) == "auth: replayed request refused (its nonce was used before)"
    assert len(lab.jobs()) == 1


def test_job_commands_are_signed_by_the_owner_or_an_admin(lab: LabService) -> None:
    job_id = lab.submit(JOB, "alice", signed("alice", "submit_job", {"script": JOB}))[0].job_id
    hold = {"job_id": job_id}
    result, _ = lab.command("hold", job_id, "alice")
    assert not result.success and result.message.startswith("auth: unsigned request refused")
    forged = signed("bob", "hold_job", hold)
    assert lab.command("hold", job_id, "alice", forged)[0].message.startswith("auth: signed by")
    wrong_action = signed("alice", "cancel_job", hold)  # a cancel's signature cannot hold
    assert lab.command("hold", job_id, "alice", wrong_action)[0].message.startswith(
        "auth: bad signature"
    )
    assert lab.job(job_id).state != "held"
    ok = signed("alice", "hold_job", hold)
    assert lab.command("hold", job_id, "alice", ok)[0].success
    assert lab.command("hold", job_id, "alice", ok)[0].message.startswith("auth: replayed")
    bobs = signed("bob", "cancel_job", hold)  # signed, but bob does not own it
    assert "may not cancel" in lab.command("cancel", job_id, "bob", bobs)[0].message
    assert lab.command("cancel", job_id, "boss", signed("boss", "cancel_job", hold))[0].success


def test_emergency_stop_reset_and_clear_error_need_an_admin_signature(lab: LabService) -> None:
    engage = {"engaged": "true", "reason": "spill"}
    modules = list(lab.lab.modules)
    result, _ = lab.set_emergency_stop(True, "spill", "lab_manager", modules)
    assert not result.success and result.message.startswith("auth: unsigned")
    assert not lab.emergency_stop().engaged
    auth = signed("bob", "set_emergency_stop", engage)
    assert lab.set_emergency_stop(True, "spill", "bob", modules, auth)[0].success
    reset = {"engaged": "false", "reason": ""}
    forged = signed("bob", "set_emergency_stop", reset)
    result, _ = lab.set_emergency_stop(False, "", "boss", modules, forged)
    assert result.message == "auth: signed by 'bob' but the request is made as 'boss'"
    result, _ = lab.set_emergency_stop(False, "", "bob", modules, forged)  # bob's own: no admin
    assert result.message == "user: only an admin may do this ('bob' is not one)"
    assert lab.emergency_stop().engaged
    by_boss = signed("boss", "set_emergency_stop", reset)
    assert lab.set_emergency_stop(False, "", "boss", modules, by_boss)[0].success
    assert not lab.emergency_stop().engaged
    clear = {"device": "Batch_Stirrer"}
    result, _ = lab.clear_device("Batch_Stirrer", "bob", signed("bob", "clear_device_error", clear))
    assert result.message == "user: only an admin may do this ('bob' is not one)"
    assert lab.clear_device("Batch_Stirrer", "boss", signed("boss", "clear_device_error", clear))[
        0
    ].success


def test_the_script_signature_survives_the_ros2_command_lines_folding() -> None:
    folded = " ".join(JOB.split("\n"))  # '$(cat my_job.yaml)' in a single-quoted YAML string
    assert script_digest(folded) == script_digest(JOB)
    assert script_digest(JOB.replace("20 min", "21 min")) != script_digest(JOB)


def test_a_lab_without_auth_takes_unsigned_requests_and_the_secrets_file(tmp_path: Path) -> None:
    config = parse_lab_config(
        {"name": "x", "modules": [{"description": "uv_vis"}], "auth": "required"}
    )
    with pytest.raises(AuthError, match="lab.auth: required, but no secrets file"):
        lab_authenticator(config, environ={})
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"users:\n  alice: {{key: {KEYS['alice'].hex()}}}\n")
    auth = lab_authenticator(config, environ={"OCTOPUS_SECRETS": str(secrets)})
    assert auth.required and auth.keys == {"alice": KEYS["alice"]} == load_secrets(secrets)
    plain = {"name": "x", "modules": [{"description": "uv_vis"}]}
    off = lab_authenticator(parse_lab_config(plain), environ={})
    assert not off.required and off.verify("submit_job", {"script": ""}, "bob", "").allowed
    secrets.write_text("users: {alice: {key: abcd}}\n")
    with pytest.raises(AuthError, match="users.alice.key: too short"):
        load_secrets(secrets)
