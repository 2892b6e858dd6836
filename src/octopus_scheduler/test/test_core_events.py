"""The core driven event by event, as the live node drives it."""

from __future__ import annotations

import json

from octopus_scheduler.core import decisions as dc
from octopus_scheduler.core import events as ev
from octopus_scheduler.core.invariants import check_invariants
from octopus_scheduler.core.jobscript import parse_job_script
from octopus_scheduler.core.scheduler_core import EventRejected, SchedulerCore
from octopus_scheduler.twin.examples import synth_job


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def starts(decisions):
    return [d for d in decisions if isinstance(d, dc.StartStep)]


def make(lab, policy="closed_packing"):
    clock = Clock()
    return SchedulerCore(lab, policy, clock=clock), clock


def run_to_end(core, clock, decisions, fail=()):
    """Finish every started step after its expected time; return all decisions seen."""
    seen = list(decisions)
    running = {d.step_id: clock.t + d.expected_s for d in starts(decisions)}
    while running:
        sid = min(running, key=lambda k: (running[k], k))
        clock.t = running.pop(sid)
        event = ev.StepFailed(sid, "boom") if sid in fail else ev.StepFinished(sid)
        out = core.handle(event)
        check_invariants(core)
        seen += out
        for d in starts(out):
            running[d.step_id] = clock.t + d.expected_s
        for d in out:
            if isinstance(d, dc.AbortStep):
                running[d.step_id] = clock.t
    return seen


def test_start_step_reserves_devices_and_slots_atomically(tiny_lab):
    core, clock = make(tiny_lab)
    out = core.handle(ev.JobSubmitted("a", parse_job_script(synth_job(batch=2), tiny_lab)))
    (first,) = starts(out)
    assert first.task == "Prep" and first.devices == ("ArmA",)
    assert first.slots == (dc.SlotUse("Synth", "stirrer", 2),)
    assert core.devices()["ArmA"] == first.step_id
    assert core.slots()[("Synth", "stirrer")] == (2, 2)
    # a second job finds no stirrer: nothing starts, nothing is half-reserved
    out = core.handle(ev.JobSubmitted("b", parse_job_script(synth_job(), tiny_lab)))
    assert starts(out) == []
    assert core.devices()["Pump"] is None
    check_invariants(core)


def test_standby_step_releases_devices_and_slots_leave_with_the_samples(tiny_lab):
    core, clock = make(tiny_lab)
    spec = parse_job_script(synth_job(react="100 s", measure=True), tiny_lab)
    out = core.handle(ev.JobSubmitted("a", spec))
    seen = run_to_end(core, clock, out)
    react = next(d for d in seen if isinstance(d, dc.StartStep) and d.task == "React")
    assert react.kind == "standby" and react.devices == ()
    read = next(d for d in seen if isinstance(d, dc.StartStep) and d.task == "Read")
    assert read.slots == (dc.SlotUse("Meas", "holder", 1),)
    assert core.slots()[("Synth", "stirrer")] == (0, 2)
    assert core.slots()[("Meas", "holder")] == (0, 1)
    assert core.job("a").state == "succeeded"
    ended = [d for d in seen if isinstance(d, dc.JobEnded)]
    assert [(d.job_id, d.state) for d in ended] == [("a", "succeeded")]


def test_cancel_aborts_running_steps_and_frees_everything(tiny_lab):
    core, clock = make(tiny_lab)
    out = core.handle(ev.JobSubmitted("a", parse_job_script(synth_job(batch=2), tiny_lab)))
    (first,) = starts(out)
    out = core.handle(ev.CancelJob("a"))
    assert [type(d) for d in out] == [dc.AbortStep]
    assert core.job("a").state == "running"  # ends when the module confirms the abort
    clock.t = 3
    out = core.handle(ev.StepFailed(first.step_id, "aborted"))
    assert [(type(d), getattr(d, "state", None)) for d in out] == [(dc.JobEnded, "cancelled")]
    assert core.devices()["ArmA"] is None
    assert core.slots()[("Synth", "stirrer")] == (0, 2)


def test_failure_is_retried_then_fails_the_job(tiny_lab):
    core, clock = make(tiny_lab)
    job = synth_job()
    job["metadata"]["retries"] = 1
    out = core.handle(ev.JobSubmitted("a", parse_job_script(job, tiny_lab)))
    prep = starts(out)[0].step_id
    clock.t = 5
    out = core.handle(ev.StepFailed(prep, "gripper"))
    assert [d.step_id for d in starts(out)] == [prep]  # retried at once
    clock.t = 15
    out = core.handle(ev.StepFailed(prep, "gripper"))
    ended = [d for d in out if isinstance(d, dc.JobEnded)]
    assert ended and ended[0].state == "failed" and "gripper" in ended[0].reason
    assert core.slots()[("Synth", "stirrer")] == (0, 2)


def test_hold_resume_and_module_down_up(tiny_lab):
    core, clock = make(tiny_lab)
    core.handle(ev.ModuleDown("Synth"))
    out = core.handle(ev.JobSubmitted("a", parse_job_script(synth_job(), tiny_lab)))
    assert starts(out) == []
    core.handle(ev.HoldJob("a"))
    out = core.handle(ev.ModuleUp("Synth"))
    assert starts(out) == [] and core.job("a").state == "held"
    out = core.handle(ev.ResumeJob("a"))
    assert [d.task for d in starts(out)] == ["Prep"]


def test_invalid_events_are_rejected_not_logged(tiny_lab):
    core, clock = make(tiny_lab)
    out = core.handle(ev.StepFinished("nope"))
    assert isinstance(out[0], EventRejected) and "unknown step" in out[0].reason
    out = core.handle(ev.CancelJob("ghost"))
    assert isinstance(out[0], EventRejected)
    assert core.event_log == []


def test_sequential_campaign_asks_for_proposals_cycle_by_cycle(tiny_lab):
    job = synth_job(react="10 s")
    job["campaign"] = {
        "kind": "bayesian",
        "batch": 2,
        "cycles": 2,
        "space": {"Volume": [100, 900, 100]},
        "loss": {"peak": {"target": 1}},
    }
    core, clock = make(tiny_lab)
    out = core.handle(ev.JobSubmitted("bo", parse_job_script(job, tiny_lab)))
    assert [type(d) for d in out] == [dc.NeedProposals]
    assert (out[0].cycle, out[0].count) == (0, 2)
    out = core.handle(ev.ProposalsReady("bo", 0, ({"Volume": 200}, {"Volume": 300})))
    seen = run_to_end(core, clock, out)
    asks = [d for d in seen if isinstance(d, dc.NeedProposals)]
    assert [a.cycle for a in asks] == [1]  # asked only after cycle 0 finished
    last_cycle0_end = clock.t
    out = core.handle(ev.ProposalsReady("bo", 1, ({"Volume": 500}, {"Volume": 600})))
    assert starts(out)[0].time == last_cycle0_end
    run_to_end(core, clock, out)
    assert core.job("bo").state == "succeeded"


def test_replay_of_the_event_log_rebuilds_the_same_state(tiny_lab):
    core, clock = make(tiny_lab, "planner")
    decisions = []
    for i in range(3):
        clock.t = 4 * i
        decisions += core.handle(
            ev.JobSubmitted(f"j{i}", parse_job_script(synth_job(measure=True), tiny_lab))
        )
    running = {d.step_id: d.time + d.expected_s for d in starts(decisions)}
    for _ in range(4):  # advance part of the day
        sid = min(running, key=lambda k: (running[k], k))
        clock.t = running.pop(sid)
        for d in starts(core.handle(ev.StepFinished(sid))):
            running[d.step_id] = clock.t + d.expected_s
    # persist as JSON and restore
    text = json.dumps([ev.to_dict(e) for e in core.event_log])
    events = [ev.from_dict(x, tiny_lab) for x in json.loads(text)]
    copy = SchedulerCore.replay(tiny_lab, "planner", events, clock=clock)
    assert copy.devices() == core.devices()
    assert copy.slots() == core.slots()
    assert [(j.job_id, j.state, j.start_time) for j in copy.jobs()] == [
        (j.job_id, j.state, j.start_time) for j in core.jobs()
    ]
    assert sorted(s.step_id for s in copy.running_steps()) == sorted(running)
    # and both continue identically
    sid = min(running, key=lambda k: (running[k], k))
    clock.t = running[sid]
    a = core.handle(ev.StepFinished(sid))
    b = copy.handle(ev.StepFinished(sid))
    assert a == b


def test_plan_projects_every_step_with_a_reason(tiny_lab):
    core, clock = make(tiny_lab)
    for i in range(2):
        core.handle(ev.JobSubmitted(f"j{i}", parse_job_script(synth_job(batch=2), tiny_lab)))
    plan = core.plan()
    assert {p.state for p in plan} == {"running", "planned"}
    planned = [p for p in plan if p.state == "planned"]
    assert len(plan) == 2 * (2 + 2 + 1)  # 2 jobs x (2 Prep + 2 Add + React)
    j1 = [p for p in planned if p.job_id == "j1"]
    assert min(p.start for p in j1) >= max(p.end for p in plan if p.job_id == "j0")
    waits = {p.reason.split()[0] for p in planned}
    assert "slots" in waits or "devices" in waits
    assert core.event_log and len(core.event_log) == 2  # plan() did not touch the core


def test_low_stock_alert(tiny_lab):
    core, clock = make(tiny_lab)
    out = []
    for i in range(2):
        out += core.handle(ev.JobSubmitted(f"j{i}", parse_job_script(synth_job(batch=2), tiny_lab)))
    seen = run_to_end(core, clock, out)
    # stock 100, low 2: four vials used, no alert; the core counted them
    assert core.stock()[("Synth", "vial")] == 96
    assert not [d for d in seen if isinstance(d, dc.LowStock)]
