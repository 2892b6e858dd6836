"""The scheduler service without ROS: real core, real SQLite store, the demo lab's module
descriptions. Module answers are given by the test (the node does that over DDS)."""

from __future__ import annotations

import gc
import threading
import tracemalloc
from pathlib import Path

import pytest

from octopus_modules.description import load_builtin_description
from octopus_modules.lab_clock import VirtualClock as Clock
from octopus_scheduler.core import events as ev
from octopus_scheduler.ros.ros_messages import goal_message
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.store import Store, StoreClosed

MODULES = ("batch_synthesis", "uv_vis")

SYNTHESIS = """
metadata: {name: silver seeds, owner: ignored}
campaign:
  kind: manual
  experiments: [{React.Time: 20 min}, {React.Time: 40 min}]
process:
  Synthesis:
    BatchSynthesis:
      sequence: [PrepareContainer, Mix, React, MoveContainer]
      fixedParams: {Temperature: 60 C}
"""


@pytest.fixture
def clock() -> Clock:
    return Clock()


def service(path: Path, clock: Clock) -> LabService:
    descriptions = [load_builtin_description(m) for m in MODULES]
    return LabService(descriptions, Store(path), policy="planner", admins=["boss"], clock=clock)


def run_to_end(lab: LabService, goals: list, clock: Clock, limit: int = 200) -> list:
    """Answer every goal as a module would (in order), until no work is left."""
    done = []
    pending = list(goals)
    while pending and limit:
        goal = pending.pop(0)
        clock.advance(goal.expected_s)
        pending += lab.step_finished(goal.step_id, {}).goals
        done.append(goal)
        limit -= 1
    return done


def test_a_job_runs_step_by_step_with_module_units_and_positions(tmp_path: Path, clock) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    submission, outbox = lab.submit(SYNTHESIS, "alice")
    assert submission.accepted and submission.job_id == "J0001"
    assert lab.job("J0001").owner == "alice"  # the submitter, not the script's claim
    first = outbox.goals[0]
    assert (first.module, first.task, first.step_index) == ("BatchSynthesis", "PrepareContainer", 0)
    # two samples enter two distinct stirrer positions
    positions = {g.slots["stirrer"][0][0] for g in outbox.goals if g.task == "PrepareContainer"}
    done = run_to_end(lab, outbox.goals, clock)
    assert lab.job("J0001").state == "succeeded"
    react = [g for g in done if g.task == "React" and g.step_index == 1]
    assert react and react[0].parameters["Time"] in (20.0, 40.0)  # back in the module's minutes
    mix = next(g for g in done if g.task == "Mix")
    assert mix.parameters["Temperature"] == pytest.approx(60.0)
    all_positions = {p for g in done for p, _ in g.slots.get("stirrer", [])}
    assert len(positions | all_positions) == 2
    assert lab.goals.positions.samples() == []  # MoveContainer released them
    assert [j.state for j in lab.store.jobs()] == ["succeeded"]
    # each experiment's parameters are kept with it (canonical units: the reaction time in s)
    kept = {e.experiment_id: e.parameters for e in lab.store.experiments("J0001")}
    assert sorted(p["React.Time"] for p in kept.values()) == [1200.0, 2400.0]
    summary = lab.summaries()[0]
    assert (summary.progress, summary.experiments_done, summary.experiments_total) == (1.0, 2, 2)


def test_text_parameters_reach_the_module_and_are_checked(tmp_path: Path, clock) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    script = SYNTHESIS.replace(
        "sequence: [PrepareContainer, Mix, React, MoveContainer]",
        "sequence: [PrepareContainer, {task: AddSolution, params: {Solution: AgNO3, "
        "Volume: 0.5 mL}}, Mix, React, MoveContainer]",
    )
    submission, outbox = lab.submit(script, "alice")
    assert submission.accepted, submission.error
    done = run_to_end(lab, outbox.goals, clock)
    dose = next(g for g in done if g.task == "AddSolution")
    assert dose.parameters["Solution"] == "AgNO3"
    assert dose.parameters["Volume"] == pytest.approx(500.0)  # the module's uL
    wrong = script.replace("Solution: AgNO3", "Solution: Gold")
    error = lab.submit(wrong, "alice")[0].error
    assert "sequence[1].params.Solution" in error and "'Gold' is not one of" in error


def test_rejected_script_names_the_field_and_loses_nothing(tmp_path: Path, clock) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    assert lab.submit(SYNTHESIS, "alice")[0].accepted
    bad = SYNTHESIS.replace("PrepareContainer, Mix", "PrepareContainer, Mixx")
    submission, outbox = lab.submit(bad, "bob")
    assert not submission.accepted and outbox.goals == []
    assert "process.Synthesis.BatchSynthesis.sequence[1]" in submission.error
    negative = SYNTHESIS.replace("{React.Time: 20 min}", "{React.Time: -20 min}")
    assert "campaign.experiments[0].React.Time" in lab.submit(negative, "bob")[0].error
    assert [j.job_id for j in lab.jobs()] == ["J0001"]


def test_restart_replays_the_store_and_recovers_goals_in_flight(tmp_path: Path, clock) -> None:
    db = tmp_path / "db.sqlite"
    first = service(db, clock)
    _, outbox = first.submit(SYNTHESIS, "alice")
    clock.advance(60)
    in_flight = first.step_finished(outbox.goals[0].step_id, {}).goals
    expected = {g.step_id for g in outbox.goals[1:] + in_flight}
    first.store.close()

    second = service(db, clock)  # a restarted scheduler
    assert {g.step_id for g in second.recovered_goals} == expected
    assert second.job("J0001").state == "running"
    # the recovered goals carry the same positions as before the restart
    before = {g.step_id: g.slots for g in outbox.goals[1:] + in_flight}
    assert {g.step_id: g.slots for g in second.recovered_goals} == before
    run_to_end(second, list(second.recovered_goals), clock)
    assert second.job("J0001").state == "succeeded"
    # a duplicate answer for a step already counted changes nothing
    assert second.step_finished(outbox.goals[0].step_id, {}).goals == []


def test_only_owner_or_admin_controls_a_job(tmp_path: Path, clock) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    job_id = lab.submit(SYNTHESIS, "alice")[0].job_id
    refused, _ = lab.command("hold", job_id, "mallory")
    assert not refused.success and "owner or admin" in refused.message
    held, _ = lab.command("hold", job_id, "alice")
    assert held.success and lab.job(job_id).state == "held"
    assert lab.command("resume", job_id, "boss")[0].success
    cancelled, outbox = lab.command("cancel", job_id, "alice")
    assert cancelled.success
    assert lab.job(job_id).state in ("cancelled", "running")  # running steps end first
    assert not lab.command("cancel", "J9999", "alice")[0].success
    for goal in lab._running_goals.copy().values():
        lab.step_failed(goal.step_id, "cancelled")
    assert lab.job(job_id).state == "cancelled"
    again, _ = lab.command("hold", job_id, "alice")
    assert not again.success and "has already ended (cancelled)" in again.message
    summary = next(s for s in lab.summaries() if s.view.job_id == job_id)
    assert summary.progress < 1.0 and summary.experiments_done == 0


def test_resources_show_slots_in_use_and_device_holders(tmp_path: Path, clock) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    idle = lab.resources()
    assert idle["BatchSynthesis"] == ({"stirrer": (0, 8), "vial_holder": (0, 8)}, {})
    _, outbox = lab.submit(SYNTHESIS, "alice")
    slots, busy = lab.resources()["BatchSynthesis"]
    assert slots["stirrer"] == (2, 8)  # both samples entered the module
    first = outbox.goals[0]
    assert set(busy.values()) == {first.step_id}  # PrepareContainer's arm, storage, actuator
    assert "Batch_RobotArm" in busy and lab.resources()["UV-Vis"][1] == {
        "UV_RobotArm": first.step_id  # the shared-workspace mask of the other module
    }


def test_the_lab_retry_policy_applies_unless_the_job_says(tmp_path: Path, clock) -> None:
    descriptions = [load_builtin_description(m) for m in MODULES]
    lab = LabService(descriptions, Store(tmp_path / "db.sqlite"), retries=1, clock=clock)
    _, outbox = lab.submit(SYNTHESIS, "alice")
    first = outbox.goals[0]
    retried = lab.step_failed(first.step_id, "gripper slipped").goals
    assert [g.task for g in retried] == ["PrepareContainer"]  # tried again, job still on
    assert lab.job("J0001").state == "running"
    # the retry is a new module goal (a module answers a known goal id with its stored result)
    assert retried[0].step_id == first.step_id and retried[0].task_id != first.task_id
    assert first.task_id == first.step_id  # a first attempt keeps the id a restart re-sends
    strict = LabService(descriptions, Store(tmp_path / "strict.sqlite"), retries=1, clock=clock)
    script = SYNTHESIS.replace("owner: ignored}", "owner: ignored, retries: 0}")
    _, outbox = strict.submit(script, "bob")
    for goal in outbox.goals:  # both samples' first steps fail: no retry, the job fails
        strict.step_failed(goal.step_id, "gripper slipped")
    assert strict.job("J0001").state == "failed"


def test_a_zoned_module_description_keeps_one_temperature_on_its_plate(
    tmp_path: Path, clock
) -> None:
    """`zone_by` in a module description reaches the core: jobs at different temperatures never
    share the stirrer plate; at one temperature they do."""
    from octopus_modules.description import parse_description_text

    text = load_builtin_description("batch_synthesis").to_yaml()
    zoned = text.replace(
        "- type: stirrer\n  capacity: 8",
        "- type: stirrer\n  capacity: 8\n  zone_by: Mix.Temperature",
    )
    assert zoned != text

    def order(second_temperature: str, db: str) -> list[str]:
        descriptions = [parse_description_text(zoned), load_builtin_description("uv_vis")]
        lab = LabService(descriptions, Store(tmp_path / db), clock=clock)
        assert lab.lab.modules["BatchSynthesis"].slots["stirrer"].zone_by == ("Mix", "Temperature")
        _, first = lab.submit(SYNTHESIS, "alice")  # fixedParams Temperature: 60 C
        _, second = lab.submit(SYNTHESIS.replace("60 C", second_temperature), "bob")
        done = run_to_end(lab, first.goals + second.goals, clock)
        assert {j.state for j in lab.store.jobs()} == {"succeeded"}
        return [f"{g.job_id} {g.task}" for g in done]

    apart = order("40 C", "apart.sqlite")
    last_out = max(i for i, g in enumerate(apart) if g == "J0001 MoveContainer")
    assert min(i for i, g in enumerate(apart) if g.startswith("J0002")) > last_out
    shared = order("60 C", "shared.sqlite")
    last_out = max(i for i, g in enumerate(shared) if g == "J0001 MoveContainer")
    assert min(i for i, g in enumerate(shared) if g.startswith("J0002")) < last_out


def test_the_emergency_stop_is_kept_and_only_an_admin_resets_it(tmp_path: Path, clock) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    assert not lab.emergency_stop().engaged
    result, _ = lab.set_emergency_stop(True, "spill", "alice", alive=["BatchSynthesis"])
    assert result.success and lab.core.modules_down() == {"BatchSynthesis", "UV-Vis"}
    _, outbox = lab.submit(SYNTHESIS, "alice")
    assert not outbox.goals  # nothing starts while it is engaged
    refused, _ = lab.set_emergency_stop(False, "", "alice", alive=["BatchSynthesis"])
    assert not refused.success and "only an admin" in refused.message
    lab.store.close()
    again = service(tmp_path / "db.sqlite", clock)  # a restart does not release it
    assert again.emergency_stop().engaged and again.emergency_stop().reason == "spill"
    reset, outbox = again.set_emergency_stop(False, "", "boss", alive=["BatchSynthesis", "UV-Vis"])
    assert reset.success and not again.emergency_stop().engaged
    assert again.core.modules_down() == set() and outbox.goals


def test_a_policy_that_plans_whole_tasks_sends_each_task_as_one_goal(tmp_path: Path, clock) -> None:
    # fcfs (and the planner when it follows fcfs's rules) holds a task's devices for the whole
    # task: the module runs every step of it in one goal (ExecuteTask step_indices empty)
    descriptions = [load_builtin_description(m) for m in MODULES]
    lab = LabService(descriptions, Store(tmp_path / "db.sqlite"), policy="fcfs", clock=clock)
    submission, outbox = lab.submit(SYNTHESIS, "alice")
    done = run_to_end(lab, outbox.goals, clock)
    assert lab.job(submission.job_id).state == "succeeded"
    react = next(g for g in done if g.task == "React")
    assert react.whole_task and react.step_index == 2  # close, react, open: one goal
    assert list(goal_message(react, {}).step_indices) == []
    assert lab.goals.positions.samples() == []  # the last step's release still happened


BO_TWO_CYCLES = """
metadata: {name: bo}
campaign:
  kind: bayesian
  batch: 2
  cycles: 2
  space:
    AddSolution.Volume: {range: [100, 1000, 50], unit: uL}
  loss:
    dispensed_ul: {target: 573, weight: 1.0}
process:
  Synthesis:
    BatchSynthesis:
      sequence: [PrepareContainer, {task: AddSolution, params: {Solution: AgNO3}}, Mix,
                 {task: React, params: {Time: 10 min}}, MoveContainer]
"""


def test_each_experiment_is_kept_once_with_its_parameters_and_cycle(tmp_path: Path, clock) -> None:
    """The service records an experiment from the decision that starts its first step (the
    core's StartStep carries each sample's parameters and cycle), once."""
    lab = service(tmp_path / "db.sqlite", clock)
    submission, outbox = lab.submit(SYNTHESIS, "alice")
    run_to_end(lab, outbox.goals, clock)
    kept = lab.store.experiments(submission.job_id)
    assert sorted(e.parameters["React.Time"] for e in kept) == [1200.0, 2400.0]  # seconds
    assert [e.cycle for e in kept] == [0, 0]

    submission, outbox = lab.submit(BO_TWO_CYCLES, "bob")
    run_to_end(lab, outbox.goals, clock)
    assert lab.job(submission.job_id).state == "succeeded"
    kept = lab.store.experiments(submission.job_id)
    assert sorted(e.cycle for e in kept) == [0, 0, 1, 1]
    assert len({e.experiment_id for e in kept}) == 4
    assert all(100 <= e.parameters["AddSolution.Volume"] <= 1000 for e in kept)


def test_an_experiment_is_recorded_at_its_first_start_and_not_again_after_a_restart(
    tmp_path: Path, clock
) -> None:
    # the store says what is recorded: a restarted service neither records an experiment again
    # nor reads every experiment of the lab's history to know which ones are
    db = tmp_path / "db.sqlite"
    first = service(db, clock)
    submission, outbox = first.submit(SYNTHESIS, "alice")
    clock.advance(60)
    first.step_finished(outbox.goals[0].step_id, {})
    recorded = {e.experiment_id: e.recorded_at for e in first.store.experiments()}
    assert len(recorded) == 2  # both vials of the batch started
    first.store.close()

    clock.advance(3600)
    second = service(db, clock)
    run_to_end(second, list(second.recovered_goals), clock)
    assert second.job(submission.job_id).state == "succeeded"
    kept = second.store.experiments(submission.job_id)
    assert {e.experiment_id: e.recorded_at for e in kept} == recorded
    assert sorted(e.parameters["React.Time"] for e in kept) == [1200.0, 2400.0]


def test_a_burst_of_submissions_shares_one_look_ahead_on_the_next_tick(
    tmp_path: Path, clock
) -> None:
    """The planner's look-ahead (0.1-0.3 s with tens of jobs) is not run in a submission's own
    dispatch once more than 5 jobs are live: the submissions are answered at once, the next tick
    runs one look-ahead for all of them on a copy of the core, and its choice is a logged event
    that a restart replays. Up to 5 live jobs it takes a few ms and runs inside the event."""
    db = tmp_path / "db.sqlite"
    lab = service(db, clock)
    policy = lab.core.policy
    for i in range(8):
        submission, _ = lab.submit(SYNTHESIS.replace("silver seeds", f"seeds {i}"), "alice")
        assert submission.job_id
    # inside the submissions of the 2nd to the 5th job; none for the 6th to the 8th
    assert len(policy.mode_history) == 4
    assert lab.next_wake() is not None and lab.next_wake() <= clock()
    lab.tick()
    assert len(policy.mode_history) == 5  # one look-ahead for the last three submissions
    assert lab.next_wake() is None
    assert lab.tick().goals == []  # nothing more is due
    chosen = policy.mode_history[-1][1]
    assert chosen in policy.modes
    stored = [e for e in lab.store.load_events() if e["type"] == "RulesChosen"]
    assert [tuple(e["rules"]) for e in stored] == [chosen]
    history = [h[1] for h in policy.mode_history]
    running = {s.step_id for s in lab.core.running_steps()}
    lab.store.close()

    again = service(db, clock)  # a restart follows the logged choice without looking again
    assert [h[1] for h in again.core.policy.mode_history] == history
    assert {s.step_id for s in again.core.running_steps()} == running
    assert again.next_wake() is None


def test_a_job_is_submitted_when_its_request_arrived_not_when_it_was_handled(
    tmp_path: Path, clock
) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    first, outbox = lab.submit(SYNTHESIS, "alice")
    started = outbox.goals[0].started_at
    assert started == clock.now()
    clock.advance(100.0)
    # the request arrived 30 lab s ago (its checks and a wait for the lock since: at 400x a
    # 75 ms wait); its job waits from then, and its first step is planned from then
    arrived = clock.now() - 30.0
    second, outbox = lab.submit(SYNTHESIS, "bob", received_at=arrived)
    assert second.accepted, second.error
    record = lab.store.job(second.job_id)
    assert record is not None and record.submitted_at == arrived
    # not before the lab's last event: lab time never runs back
    third, _ = lab.submit(SYNTHESIS, "carol", received_at=started - 50.0)
    record = lab.store.job(third.job_id)
    assert record is not None and record.submitted_at == arrived


def test_views_of_recent_history_leave_out_jobs_that_ended_before(tmp_path: Path, clock) -> None:
    # the schedule topic shows live jobs and recent ones: with the lab's whole history each
    # publication grew with it
    lab = service(tmp_path / "db.sqlite", clock)
    first, outbox = lab.submit(SYNTHESIS, "alice")
    run_to_end(lab, outbox.goals, clock)
    ended = lab.job(first.job_id).end_time
    clock.advance(3600.0)
    second, outbox = lab.submit(SYNTHESIS, "bob")
    lab.step_finished(outbox.goals[0].step_id, {})  # one step ended, more running
    since = ended + 1.0
    assert [s.view.job_id for s in lab.summaries(ended_since=since)] == [second.job_id]
    assert [v.job_id for v in lab.jobs(ended_since=since)] == [second.job_id]
    assert lab.job_states() == {"succeeded": 1, "running": 1}  # the diagnostics' counts
    assert {s.view.job_id for s in lab.summaries(ended_since=ended)} == {"J0001", "J0002"}
    recent = lab.store.steps(ended_since=since)
    assert {s.job_id for s in recent} == {second.job_id}
    assert {s.state for s in recent} == {"succeeded", "running"}
    assert len(lab.store.steps(first.job_id)) == len(lab.store.steps(first.job_id, ended_since=0))


def test_an_ended_job_lets_its_steps_go_and_keeps_its_views(tmp_path: Path, clock) -> None:
    # a lab runs for months: the core held every step of every ended job (23 KB a job)
    lab = service(tmp_path / "db.sqlite", clock)
    done, outbox = lab.submit(SYNTHESIS, "alice")
    steps = [g.step_id for g in run_to_end(lab, outbox.goals, clock)]
    cancelled, outbox = lab.submit(SYNTHESIS, "bob")
    lab.step_finished(outbox.goals[0].step_id, {})
    lab.command("cancel", cancelled.job_id, "bob")
    for goal in lab._running_goals.copy().values():
        lab.step_failed(goal.step_id, "cancelled")
    assert lab.job(cancelled.job_id).state == "cancelled"
    assert all(lab.core.run_step(step_id) is None for step_id in steps)
    # a late answer about one of them is ignored, as about any step that is not running
    assert (
        lab.core.handle(ev.StepFinished(steps[-1], {}))[0].reason == f"unknown step '{steps[-1]}'"
    )
    summaries = {s.view.job_id: s for s in lab.summaries()}
    assert (summaries[done.job_id].progress, summaries[done.job_id].experiments_done) == (1.0, 2)
    stopped = summaries[cancelled.job_id]
    assert 0.0 < stopped.progress < 1.0 and stopped.experiments_done == 0
    assert len(lab.store.steps(done.job_id)) == len(steps)  # the store keeps every step


def test_what_a_step_measured_is_stored_not_kept_in_memory(tmp_path: Path, clock) -> None:
    # the core's event log (kept to rebuild the core after a failed event) held every result
    lab = service(tmp_path / "db.sqlite", clock)
    _submission, outbox = lab.submit(SYNTHESIS, "alice")
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        pending = list(outbox.goals)
        while pending:
            goal = pending.pop(0)
            clock.advance(goal.expected_s)
            spectrum = [float(i) for i in range(20_000)]  # 0.6 MB each, as a module sends it
            pending += lab.step_finished(goal.step_id, {"absorbance": spectrum}).goals
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert lab.job("J0001").state == "succeeded"
    assert kept < 1_000_000, f"{kept / 1e6:.1f} MB kept after the job ended"
    stored = [e.measured for e in lab.store.experiments("J0001")]
    assert stored and all(len(m) for m in stored)


def test_a_submission_while_the_scheduler_shuts_down_is_recorded_whole_or_refused(
    tmp_path: Path, clock
) -> None:
    lab = service(tmp_path / "db.sqlite", clock)
    assert lab.submit(SYNTHESIS, "alice")[0].job_id == "J0001"
    with lab._lock:  # noqa: SLF001 - a submission in progress holds the lab
        closing = threading.Thread(target=lab.close)
        closing.start()
        closing.join(timeout=0.2)
        assert closing.is_alive()  # the store waits for the event in progress
        in_progress = lab.submit(SYNTHESIS, "bob")[0]  # (re-entrant: the same thread)
    closing.join(timeout=5.0)
    assert in_progress.job_id == "J0002"
    late, outbox = lab.submit(SYNTHESIS, "carol")
    assert not late.accepted and "shutting down" in late.error and "not recorded" in late.error
    assert outbox.goals == []
    with pytest.raises(StoreClosed, match="shutting down"):
        lab.store.jobs()
    # what was accepted is all there after a restart, and nothing else
    again = service(tmp_path / "db.sqlite", clock)
    assert [job.job_id for job in again.jobs()] == ["J0001", "J0002"]
    assert again.submit(SYNTHESIS, "carol")[0].job_id == "J0003"
