"""Signed requests over DDS: a live lab with `auth: required` (scheduler and two modules in
processes of their own). The `octopus` command signs with the user's key; an unsigned request, a
forged user (bob's key, alice's name), a replayed request and a non-admin's e-stop reset are
refused with the reason, and nothing changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from octopus_scheduler.service.identity import sign
from octopus_testing.futures import call_once, call_with_retry
from octopus_testing.lab import SYNTHESIS_JOB, start_lab

KEYS = {"alice": "11" * 32, "bob": "22" * 32, "boss": "33" * 32}


def octopus(*args: str, user: str, key: str | None = None, secrets: Path | None = None):
    env = {**os.environ, "OCTOPUS_USER": user}
    env.pop("OCTOPUS_KEY", None)
    env.pop("OCTOPUS_SECRETS", None)
    if key:
        env["OCTOPUS_KEY"] = key
    if secrets:
        env["OCTOPUS_SECRETS"] = str(secrets)
    return subprocess.run(
        [sys.executable, "-m", "octopus_client.cli", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_a_lab_that_requires_signatures_over_dds(ros, node_processes, tmp_path: Path) -> None:
    from octopus_interfaces.srv import JobCommand, ListJobs

    secrets = tmp_path / "secrets.yaml"  # the lab's file: every user's key
    secrets.write_text("users:\n" + "".join(f"  {u}: {{key: {k}}}\n" for u, k in KEYS.items()))
    start_lab(node_processes, tmp_path, extra=f"auth: required\nsecrets: {secrets}\n")
    job = tmp_path / "job.yaml"
    job.write_text(SYNTHESIS_JOB.format(name="signed", react=600))

    unsigned = octopus("submit", str(job), user="mallory")
    assert unsigned.returncode == 2
    assert "auth: unsigned request refused" in unsigned.stderr, unsigned.stderr
    forged = octopus("submit", str(job), user="alice", key=KEYS["bob"])
    assert "auth: bad signature for 'alice'" in forged.stderr, forged.stderr
    accepted = octopus("submit", str(job), user="alice", key=KEYS["alice"])
    assert accepted.returncode == 0, accepted.stderr
    job_id = accepted.stdout.strip().splitlines()[-1]

    reset = octopus("estop", "--reset", user="alice", key=KEYS["alice"])
    assert "only an admin may do this" in reset.stderr, reset.stdout + reset.stderr

    # a raw client (what a ros2 line sends): a signed hold goes through once; the same request
    # again is a replay; bob cannot sign for alice
    hold = ros.node.create_client(JobCommand, "/octopus/hold_job")
    listing = ros.node.create_client(ListJobs, "/octopus/list_jobs")
    assert hold.wait_for_service(timeout_sec=10)
    auth = sign(bytes.fromhex(KEYS["alice"]), "hold_job", {"job_id": job_id}, "alice")
    request = JobCommand.Request(job_id=job_id, user="alice", auth=auth)
    unsigned = JobCommand.Request(job_id=job_id, user="alice")  # refused: changes nothing
    first = call_once(hold, request, 5.0, probe=unsigned)
    assert first.success, first.message
    again = call_with_retry(lambda: hold.call_async(request), timeout=5.0)
    assert again.message == "auth: replayed request refused (its nonce was used before)"
    bobs = sign(bytes.fromhex(KEYS["bob"]), "resume_job", {"job_id": job_id}, "bob")
    as_alice = JobCommand.Request(job_id=job_id, user="alice", auth=bobs)
    resume = ros.node.create_client(JobCommand, "/octopus/resume_job")
    assert resume.wait_for_service(timeout_sec=10)
    refused = call_with_retry(lambda: resume.call_async(as_alice), timeout=5.0)
    assert refused.message == "auth: signed by 'bob' but the request is made as 'alice'"
    jobs = call_with_retry(lambda: listing.call_async(ListJobs.Request()), timeout=5.0).jobs
    assert [(j.id, j.owner) for j in jobs] == [(job_id, "alice")]  # nothing else got in
    assert octopus("cancel", job_id, user="boss", key=KEYS["boss"]).returncode == 0
