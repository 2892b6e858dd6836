"""Retries with sense (issue 10): a lab-wide cap, exponential back-off with jitter in lab time, a
device that fails too often in a row taken out of order until an operator clears it, and other
jobs keep their turn meanwhile.

Real LabService, core and SQLite store on the demo lab's module descriptions; the test plays the
modules in virtual time: each goal ends after its expected duration, failing when told to."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from pathlib import Path

import pytest

from octopus_modules.description import load_builtin_description
from octopus_modules.lab_clock import VirtualClock as Clock
from octopus_scheduler.core.retry_policy import RetryPolicy
from octopus_scheduler.service.lab_config import LabConfigError, parse_lab_config
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.step_goals import StepGoal
from octopus_scheduler.service.store import Store

MODULES = ("batch_synthesis", "uv_vis")

FAILING = """
metadata: {name: always fails, owner: x, retries: 6}
campaign: {kind: manual, experiments: [{React.Time: 1 min}]}
process:
  Synthesis:
    BatchSynthesis: {sequence: [PrepareContainer, Mix, React, MoveContainer]}
"""

HEALTHY = """
metadata: {name: healthy, owner: x}
campaign: {kind: manual, experiments: [{React.Time: 20 min}, {React.Time: 30 min}]}
process:
  Synthesis:
    BatchSynthesis: {sequence: [PrepareContainer, Mix, React, MoveContainer]}
"""


def service(path: Path, clock: Clock, retry: RetryPolicy) -> LabService:
    descriptions = [load_builtin_description(m) for m in MODULES]
    return LabService(descriptions, Store(path), policy="planner", clock=clock, retry=retry)


def play(
    lab: LabService,
    clock: Clock,
    goals: list[StepGoal],
    fails: Callable[[StepGoal], bool],
    *,
    stop_at_failure: bool = False,
) -> list[tuple[float, StepGoal, bool]]:
    """Run the lab in virtual time: (end time, goal, ok) of every goal, in order. A failing goal
    fails 2 s in; time jumps to the next goal end or the next back-off end."""
    queue: list[tuple[float, int, StepGoal]] = []
    seq = 0
    log = []

    def send(new: list[StepGoal]) -> None:
        nonlocal seq
        for goal in new:
            seq += 1
            duration = 2.0 if fails(goal) else goal.expected_s
            heapq.heappush(queue, (clock.now() + duration, seq, goal))

    send(goals)
    while not (stop_at_failure and log and not log[-1][2]):
        wake = lab.next_wake()
        if queue and (wake is None or queue[0][0] <= wake):
            at, _, goal = heapq.heappop(queue)
            clock.set(at)
            ok = not fails(goal)
            outbox = (
                lab.step_finished(goal.step_id, {})
                if ok
                else lab.step_failed(goal.step_id, "jammed")
            )
            log.append((clock.now(), goal, ok))
        elif wake is not None:
            clock.set(max(clock.now(), wake))
            outbox = lab.tick()
        else:
            break
        send(outbox.goals)
    return log


def is_failing_mix(goal: StepGoal) -> bool:
    return goal.job_id == "J0001" and goal.task == "Mix"


def test_back_off_doubles_with_jitter_and_is_the_same_on_every_run() -> None:
    policy = RetryPolicy(backoff_s=10.0, backoff_max_s=60.0)
    delays = [policy.delay_s("J0001/s", attempt) for attempt in range(1, 7)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60.0, 10.0 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay < ceiling
    assert delays == [policy.delay_s("J0001/s", a) for a in range(1, 7)]  # replay-safe
    assert policy.delay_s("J0002/s", 1) != delays[0]  # steps failing together spread out
    assert RetryPolicy().delay_s("J0001/s", 3) == 0.0


def test_a_failing_step_backs_off_in_lab_time_and_the_job_fails_when_retries_run_out(
    tmp_path,
) -> None:
    clock = Clock()
    lab = service(tmp_path / "db.sqlite", clock, RetryPolicy(10.0, 600.0, 0))
    submission, outbox = lab.submit(FAILING, "alice")
    log = play(lab, clock, outbox.goals, is_failing_mix)
    mixes = [(t, g) for t, g, ok in log if g.task == "Mix"]
    assert [g.attempt for _, g in mixes] == [0, 1, 2, 3, 4, 5, 6]  # 6 retries, each a new goal
    # each retry starts only after its back-off: 10 s x 2^(n-1) x jitter [0.5, 1)
    gaps = [
        later - earlier - 2.0 for (earlier, _), (later, _) in zip(mixes, mixes[1:], strict=False)
    ]
    for n, gap in enumerate(gaps, start=1):
        assert 5.0 * 2 ** (n - 1) <= gap < 10.0 * 2 ** (n - 1) + 1e-6, (n, gaps)
    view = lab.job(submission.job_id)
    assert view.state == "failed" and "jammed" in view.reason


def test_while_a_retry_backs_off_its_job_says_so(tmp_path) -> None:
    clock = Clock()
    lab = service(tmp_path / "db.sqlite", clock, RetryPolicy(100.0, 600.0, 0))
    submission, outbox = lab.submit(FAILING, "alice")
    failed_at = play(lab, clock, outbox.goals, is_failing_mix, stop_at_failure=True)[-1][0]
    reason = lab.job(submission.job_id).reason
    assert reason.startswith("retry 1 backs off until ")
    assert 50 <= float(reason.rsplit(" ", 1)[1]) - failed_at < 100


def end_of(log: list, job_id: str) -> float:
    return max(t for t, g, ok in log if g.job_id == job_id)


def test_a_job_that_always_fails_does_not_slow_a_healthy_one_down(tmp_path) -> None:
    # the healthy job alone
    clock = Clock()
    alone = service(tmp_path / "alone.sqlite", clock, RetryPolicy(10.0, 600.0, 3))
    start = clock.now()
    outbox = alone.submit(HEALTHY, "bob")[1]
    alone_span = end_of(play(alone, clock, outbox.goals, lambda goal: False), "J0001") - start

    # beside a job whose Mix always fails (submitted first, with six retries)
    clock = Clock()
    lab = service(tmp_path / "both.sqlite", clock, RetryPolicy(10.0, 600.0, 3))
    start = clock.now()
    goals = lab.submit(FAILING, "alice")[1].goals + lab.submit(HEALTHY, "bob")[1].goals
    log = play(lab, clock, goals, is_failing_mix)
    beside_span = end_of(log, "J0002") - start
    assert lab.job("J0002").state == "succeeded"
    assert lab.job("J0001").state == "failed"
    assert lab.core.out_of_order() == {}  # one step failing again and again: the job's problem
    print(f"healthy job: alone {alone_span:.0f} s, beside a failing job {beside_span:.0f} s")
    assert beside_span <= alone_span * 1.05


def test_a_device_on_which_different_steps_fail_in_a_row_waits_for_an_operator(tmp_path) -> None:
    clock = Clock()
    lab = service(tmp_path / "db.sqlite", clock, RetryPolicy(10.0, 600.0, 3))
    goals = [g for _ in range(3) for g in lab.submit(FAILING, "alice")[1].goals]

    def mix_fails(goal: StepGoal) -> bool:
        return goal.job_id in ("J0001", "J0002", "J0003") and goal.task == "Mix"

    log = play(lab, clock, goals, mix_fails)
    failed = [g for _, g, ok in log if not ok]
    assert {g.job_id for g in failed} == {"J0001", "J0002", "J0003"}  # three different steps
    assert lab.core.operator_holds() == {"Batch_Stirrer"}
    assert "Batch_Stirrer" in lab.core.step(failed[-1].step_id).devices
    assert lab.core.out_of_order()["Batch_Stirrer"].startswith(
        "3 steps in a row failed on it (last: jammed)"
    )
    # the module reports the device fine: not enough after such a streak
    assert lab.device_health("BatchSynthesis", {}).goals == []
    # the jobs wait for it and say why; a new healthy job cannot get past its Mix either
    healthy, outbox = lab.submit(HEALTHY, "bob")
    play(lab, clock, outbox.goals, mix_fails)
    assert lab.job(healthy.job_id).state in ("queued", "running")
    for job_id in ("J0001", "J0002", "J0003"):
        view = lab.job(job_id)
        assert view.state in ("queued", "running")
        assert "device Batch_Stirrer out of order" in view.reason, view
    # an operator repairs the stirrer and clears it: the waiting steps start, every job ends
    result, cleared = lab.clear_device("Batch_Stirrer", "operator")
    assert result.message == "Batch_Stirrer is back in order (cleared by operator)"
    assert any(g.task == "Mix" for g in cleared.goals)
    play(lab, clock, cleared.goals, lambda goal: False)
    assert {j.state for j in lab.jobs()} == {"succeeded"}
    unknown, _ = lab.clear_device("Flux_Capacitor", "operator")
    assert not unknown.success and unknown.message.startswith("device: unknown 'Flux_Capacitor'")


def test_the_lab_file_sets_the_retry_policy_and_caps_what_jobs_ask(tmp_path) -> None:
    base = {"name": "lab", "modules": [{"description": "uv_vis"}]}
    config = parse_lab_config(base)
    assert (config.max_retries, config.retry) == (10, RetryPolicy(10.0, 600.0, 3))
    config = parse_lab_config(
        base | {"retries": 2, "retry_policy": {"max_retries": 3, "backoff_s": 5}}
    )
    assert config.max_retries == 3 and config.retry.backoff_s == 5.0
    for bad, says in [
        (
            {"retry_policy": {"max_retries": 1}, "retries": 2},
            "lab.retries: expected a whole number 0..1",
        ),
        ({"retry_policy": {"backoff_s": -1}}, "lab.retry_policy.backoff_s: expected 0..86400 s"),
        ({"retry_policy": {"tries": 1}}, "lab.retry_policy.tries: unknown field"),
        (
            {"retry_policy": {"backoff_s": 100, "backoff_max_s": 10}},
            "backoff_max_s: below backoff_s",
        ),
    ]:
        with pytest.raises(LabConfigError, match=says):
            parse_lab_config(base | bad)


def test_steps_lost_with_their_module_do_not_count_against_its_devices(tmp_path) -> None:
    clock = Clock()
    lab = service(tmp_path / "db.sqlite", clock, RetryPolicy(10.0, 600.0, 3))
    goals = [g for _ in range(4) for g in lab.submit(FAILING, "alice")[1].goals]
    pending = list(goals)
    lost = 0
    while pending:  # every Mix is lost with a crashing module process, the rest succeeds
        goal = pending.pop(0)
        clock.advance(2.0)
        if goal.task == "Mix" and lost < 4:
            lost += 1
            outbox = lab.step_failed(goal.step_id, "module BatchSynthesis restarted", lost=True)
        else:
            outbox = lab.step_finished(goal.step_id, {})
        pending += outbox.goals
        if not pending and lab.next_wake() is not None:
            clock.set(lab.next_wake())
            pending += lab.tick().goals
    assert lost == 4 and lab.core.out_of_order() == {}
    assert {j.state for j in lab.jobs()} == {"succeeded"}
