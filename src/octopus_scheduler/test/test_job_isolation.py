"""One user's bad job never stops the lab: complete validation before anything is stored, limits
on what a job may ask, and quarantine of a job whose stored events break the scheduler (issue 10).

Real core, real SQLite store, the demo lab's module descriptions; the test answers the module
goals as the node would."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from octopus_modules.description import load_builtin_description, parse_description_text
from octopus_modules.lab_clock import VirtualClock as Clock
from octopus_scheduler.core.errors import JobScriptError
from octopus_scheduler.core.jobscript import load_document
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.store import Store

MODULES = ("batch_synthesis", "uv_vis")

GOOD = """
metadata: {name: seeds, owner: ignored}
campaign:
  kind: manual
  experiments: [{React.Time: 20 min}, {React.Time: 40 min}]
process:
  Synthesis:
    BatchSynthesis:
      sequence: [PrepareContainer, Mix, React, MoveContainer]
"""

# The probe's script: React has no Time (a required parameter, no default) in a BO campaign.
NO_REACT_TIME = """
metadata: {name: bo, owner: x}
campaign:
  kind: bayesian
  batch: 2
  cycles: 3
  space:
    AddSolution.Volume: {range: [100, 1000, 50], unit: uL}
  loss:
    dispensed_ul: {target: 573, weight: 1.0}  # what AddSolution reports
process:
  Synthesis:
    BatchSynthesis:
      sequence: [PrepareContainer, {task: AddSolution, params: {Solution: AgNO3}}, Mix, React,
                 MoveContainer]
"""

BO = NO_REACT_TIME.replace("Mix, React,", "Mix, {task: React, params: {Time: 10 min}},")


def service(path: Path, clock: Clock | None = None, checkpoint_events: int = 2000) -> LabService:
    descriptions = [load_builtin_description(m) for m in MODULES]
    return LabService(
        descriptions,
        Store(path),
        policy="planner",
        clock=clock or Clock(),
        checkpoint_events=checkpoint_events,
    )


def answer_all(lab: LabService, goals: list, clock: Clock, limit: int = 400) -> None:
    pending = list(goals)
    while pending and limit:
        goal = pending.pop(0)
        clock.advance(goal.expected_s)
        pending += lab.step_finished(goal.step_id, {}).goals
        limit -= 1


def stored_events(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def test_a_missing_required_parameter_is_refused_before_anything_is_stored(tmp_path) -> None:
    lab = service(tmp_path / "db.sqlite")
    submission, outbox = lab.submit(NO_REACT_TIME, "alice")
    assert not submission.accepted and not outbox.goals
    assert submission.error.startswith("process.Synthesis.BatchSynthesis.sequence[3]: ")
    assert "task React needs parameter 'Time'" in submission.error
    assert lab.store.jobs() == [] and stored_events(tmp_path / "db.sqlite") == 0
    # a manual list must give it in every experiment, and the error says which one lacks it
    partial = GOOD.replace("{React.Time: 40 min}", "{Mix.Time: 40 s}")
    assert lab.submit(partial, "alice")[0].error.startswith("campaign experiment 1: task React")
    # a named choice with no default (AddSolution's Solution) is required too
    no_solution = BO.replace("{task: AddSolution, params: {Solution: AgNO3}}", "AddSolution")
    error = lab.submit(no_solution, "alice")[0].error
    assert "task AddSolution needs parameter 'Solution'" in error
    # and the lab goes on: a good job is accepted and runs
    assert lab.submit(GOOD, "alice")[0].job_id == "J0001"


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (("cycles: 3", "cycles: 100000000"), "campaign.cycles", "maximum 1000"),
        (("owner: x}", "owner: x, retries: 1000000000}"), "metadata.retries", "maximum 10"),
        (("owner: x}", "owner: x, deadline: 1e12 h}"), "metadata.deadline", "at most 30 days"),
        (("owner: x}", "owner: x, retries: -1}"), "metadata.retries", "at least 0"),
    ],
)
def test_limits_name_the_field_and_the_limit(tmp_path, change, field, says) -> None:
    lab = service(tmp_path / "db.sqlite")
    submission, _ = lab.submit(BO.replace(*change), "alice")
    assert submission.error.startswith(f"{field}: ") and says in submission.error
    assert lab.store.jobs() == []


def test_grids_scripts_and_nesting_have_limits(tmp_path) -> None:
    lab = service(tmp_path / "db.sqlite")
    values = ", ".join(f"{t} s" for t in range(1, 201))
    grid = GOOD.replace(
        "kind: manual\n  experiments: [{React.Time: 20 min}, {React.Time: 40 min}]",
        f"kind: sweep\n  grid: {{Mix.Time: [{values}], React.Time: [{values}]}}",
    )
    error = lab.submit(grid, "alice")[0].error
    assert error == "campaign.grid: 40000 experiments is too many (max 10000)"
    many = ", ".join(["{React.Time: 1 min}"] * 10_001)
    listed = GOOD.replace("[{React.Time: 20 min}, {React.Time: 40 min}]", f"[{many}]")
    error = lab.submit(listed, "alice")[0].error
    assert error == "campaign.experiments: 10001 experiments is too many (max 10000)"
    huge = GOOD + "#" + "x" * 1_100_000
    assert lab.submit(huge, "alice")[0].error.startswith("<document>: 1100")
    assert "too large (max 1000000)" in lab.submit(huge, "alice")[0].error
    deep = "[" * 100_000 + "]" * 100_000
    assert lab.submit(deep, "alice")[0].error == "<document>: nested more than 32 levels deep"
    nested_json = '{"metadata": ' + "[" * 40 + "]" * 40 + "}"
    assert "nested more than 32 levels" in lab.submit(nested_json, "alice")[0].error
    with pytest.raises(JobScriptError, match=r"<document>: not UTF-8 text: byte 0xff at 3"):
        load_document(b"abc\xff")
    assert lab.store.jobs() == [] and lab.submit(GOOD, "alice")[0].accepted


def test_a_route_that_returns_to_a_module_it_left_is_refused(tmp_path) -> None:
    lab = service(tmp_path / "db.sqlite")
    back = GOOD.replace(
        "MoveContainer]",
        "{task: MoveContainer, params: {Target: UV-Vis}}]\n"
        "  Characterization:\n    UV-Vis: {sequence: [GetAbs]}\n"
        "  Evaluation:\n    BatchSynthesis: {sequence: [PrepareContainer]}",
    )
    error = lab.submit(back, "alice")[0].error
    assert error.startswith("process.Evaluation.BatchSynthesis: the route already visited")
    assert "at process.Synthesis.BatchSynthesis" in error


def poison(path: Path, event_type: str, change) -> None:
    """Edit one stored event in place, as an older version or a damaged file may have left it."""
    with sqlite3.connect(path) as db:
        seq, body = db.execute(
            "SELECT seq, body FROM events WHERE body LIKE ? ORDER BY seq LIMIT 1",
            (f'%"type":"{event_type}"%',),
        ).fetchone()
        data = json.loads(body)
        change(data)
        db.execute("UPDATE events SET body = ? WHERE seq = ?", (json.dumps(data), seq))


# a checkpoint after every event: the core is rebuilt from a checkpoint, not from the start
@pytest.mark.parametrize("every", [1, 2000])
def test_a_poisoned_submission_in_the_log_is_quarantined_on_restart(tmp_path, every) -> None:
    path, clock = tmp_path / "db.sqlite", Clock()
    lab = service(path, clock, every)
    poisoned = lab.submit(BO, "alice")[0].job_id
    healthy, outbox = lab.submit(GOOD, "bob")
    lab.store.close()

    # the probe's database: the BO job's React lost its Time (saved by a version that let it in)
    def drop_time(data: dict) -> None:
        sequence = data["spec"]["process"]["Synthesis"]["BatchSynthesis"]["sequence"]
        sequence[3] = "React"

    poison(path, "JobSubmitted", drop_time)
    restarted = service(path, clock, every)  # no exception: the scheduler starts
    view = restarted.job(poisoned)
    assert view is not None and view.state == "failed"
    assert view.reason.startswith("quarantined: its stored JobSubmitted cannot be read: process.")
    assert "task React needs parameter 'Time'" in view.reason
    assert restarted.store.job(poisoned).state == "failed"
    assert [s.view.job_id for s in restarted.summaries()] == [poisoned, healthy.job_id]
    # the other job goes on from where it was
    answer_all(restarted, restarted.recovered_goals, clock)
    assert restarted.job(healthy.job_id).state == "succeeded"
    result = restarted.command("cancel", poisoned, "alice")[0]
    assert not result.success and "already ended (failed)" in result.message


# a checkpoint after every event: the core is rebuilt from a checkpoint, not from the start
@pytest.mark.parametrize("every", [1, 2000])
def test_events_that_break_the_core_quarantine_their_job_live_and_on_replay(
    tmp_path, every
) -> None:
    path, clock = tmp_path / "db.sqlite", Clock()
    lab = service(path, clock, every)
    bo = lab.submit(BO, "alice")[0].job_id  # its first cycle's proposals are stored
    healthy, outbox = lab.submit(GOOD, "bob")
    lab.store.close()

    # the stored proposals carry a volume the module formulas cannot compute with
    def bad_volume(data: dict) -> None:
        data["parameter_sets"][0]["AddSolution.Volume"] = "a lot"

    poison(path, "ProposalsReady", bad_volume)
    restarted = service(path, clock, every)
    view = restarted.job(bo)
    assert view.state == "failed" and view.reason.startswith("quarantined: TypeError")
    answer_all(restarted, restarted.recovered_goals, clock)
    assert restarted.job(healthy.job_id).state == "succeeded"
    restarted.store.close()

    # a second restart takes the same way: same states, and the quarantine is not doubled
    again = service(path, clock, every)
    assert [(j.job_id, j.state) for j in again.jobs()] == [
        (bo, "failed"),
        (healthy.job_id, "succeeded"),
    ]
    assert again.job(bo).reason == view.reason


MEASURE = """
metadata: {name: absorbance, owner: x}
campaign: {kind: manual, experiments: [{}]}
process:
  Characterization:
    UV-Vis: {sequence: [GetAbs]}
"""


def test_a_step_whose_module_goal_cannot_be_built_quarantines_its_job(tmp_path) -> None:
    path, clock = tmp_path / "db.sqlite", Clock()
    lab = service(path, clock)
    # the module's description as the goal mapper knows it no longer has the lab's first step
    # of GetAbs (a description that changed under a running lab)
    changed = load_builtin_description("uv_vis").to_yaml().replace("name: reference", "name: ref")
    lab.goals.add(parse_description_text(changed, "changed"))
    submission, outbox = lab.submit(MEASURE, "alice")
    assert submission.accepted and outbox.goals == []
    view = lab.job(submission.job_id)
    assert view.state == "failed"
    assert (
        view.reason.startswith(f"quarantined: step {submission.job_id}/")
        and "cannot be sent" in view.reason
    )
    # the others go on: the synthesis job runs to its end
    healthy, outbox = lab.submit(GOOD, "bob")
    answer_all(lab, outbox.goals, clock)
    assert lab.job(healthy.job_id).state == "succeeded"
    lab.store.close()
    # a restart (with the right description) replays the stored quarantine: the same states
    again = service(path, clock)
    assert [(j.job_id, j.state) for j in again.jobs()] == [
        (submission.job_id, "failed"),
        (healthy.job_id, "succeeded"),
    ]


def test_flow_nesting_is_measured_before_parsing_outside_quotes_and_comments() -> None:
    from octopus_scheduler.core.jobscript import _bracket_depth

    assert _bracket_depth('a: [1, {b: "x]]][[["}, # [[[[\n c: [[]]]') == 3
    assert _bracket_depth("name: '[[[['  # {{{{") == 0
    assert _bracket_depth('name: "a\\"[[[["') == 0
    # a document nested past the limit is refused before PyYAML builds it
    with pytest.raises(JobScriptError, match="nested more than 32 levels deep"):
        load_document("x: " + "[" * 33 + "]" * 33)
    nested = load_document("x: " + "[" * 30 + "]" * 30)["x"]  # 31 levels with the mapping
    for _ in range(29):
        nested = nested[0]
    assert nested == []


def test_odd_keys_are_quoted_in_the_field_path(tmp_path) -> None:
    # found by fuzzing: a key ':' made the error read "<document>.:: unknown field"
    lab = service(tmp_path / "db.sqlite")
    assert lab.submit("''':'':'", "alice")[0].error == (
        "<document>.'\\x3a': unknown field (allowed: campaign, metadata, process)"
    )
    assert lab.submit('{"": 1}', "alice")[0].error.startswith("<document>.'': unknown field")
    odd = GOOD.replace("MoveContainer]", "MoveContainer]\n      fixedParams: {'a: b': 1}")
    assert lab.submit(odd, "alice")[0].error.startswith(
        "process.Synthesis.BatchSynthesis.fixedParams.'a\\x3a b': "
    )
