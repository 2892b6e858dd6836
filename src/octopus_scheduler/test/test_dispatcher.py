"""The dispatcher without ROS: goals in flight, their answers, deadlines, lost modules, resends.

Real LabService, core and SQLite store on the demo lab's module descriptions; a virtual wall
clock for the dispatcher and a virtual lab clock for the service (the lab runs at the wall's
pace, time scale 1). The test plays the modules through :class:`Modules`, the dispatcher's port:
it records what was sent and cancelled, and answers as a module would, when the test says."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from octopus_modules.description import load_builtin_description
from octopus_modules.lab_clock import ScaledClock, VirtualClock
from octopus_scheduler.core.retry_policy import RetryPolicy
from octopus_scheduler.service.dispatcher import Dispatcher
from octopus_scheduler.service.lab_service import LabService
from octopus_scheduler.service.notifications import Notification
from octopus_scheduler.service.step_goals import StepGoal
from octopus_scheduler.service.store import Store

MODULES = ("batch_synthesis", "uv_vis")
BATCH = "BatchSynthesis"
HEARTBEAT_S = 1.0
FACTOR, MARGIN_S = 3.0, 10.0

JOB = """
metadata: {{name: seeds, owner: ann, retries: {retries}}}
campaign: {{kind: manual, experiments: [{{React.Time: 1 min}}]}}
process:
  Synthesis:
    BatchSynthesis: {{sequence: [PrepareContainer, Mix, React, MoveContainer]}}
"""


class Modules:
    """The dispatcher's port, played by the test."""

    def __init__(self) -> None:
        self.discovered = {"BatchSynthesis", "UV-Vis"}
        self.sent: list[StepGoal] = []
        self.planned_starts: list[float | None] = []
        self.cancelled: list[Any] = []
        self.released: list[str] = []
        self.wakes = 0

    def ready(self, module: str) -> bool:
        return module in self.discovered

    def send_goal(self, goal: StepGoal, planned_start: float | None) -> None:
        self.sent.append(goal)
        self.planned_starts.append(planned_start)

    def cancel_goal(self, handle: Any) -> None:
        self.cancelled.append(handle)

    def release_samples(self, job_id: str) -> None:
        self.released.append(job_id)

    def wake(self) -> None:
        self.wakes += 1


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))

    def has(self, text: str) -> bool:
        return any(text in line for _, line in self.lines)


class Lab:
    """A service, its dispatcher and the test's modules, on virtual clocks."""

    def __init__(self, path: Path, *, backoff_s: float = 0.0) -> None:
        self.wall = VirtualClock(0.0)
        self.lab_time = VirtualClock(1000.0)
        descriptions = [load_builtin_description(m) for m in MODULES]
        self.service = LabService(
            descriptions,
            Store(path),
            clock=self.lab_time,
            retry=RetryPolicy(backoff_s=backoff_s),
        )
        self.modules = Modules()
        self.log = Log()
        self.notes: list[Notification] = []
        self.changes: list[bool] = []
        self.dispatcher = Dispatcher(
            self.service,
            self.modules,
            self.log,
            monotonic=self.wall,
            lab_clock=ScaledClock(1.0),
            timeout_factor=FACTOR,
            timeout_margin_s=MARGIN_S,
            heartbeat_period_s=HEARTBEAT_S,
            notify=lambda note: self.notes.append(note) if note else None,
            changed=self.changes.append,
        )
        self.boot = {"BatchSynthesis": "boot1", "UV-Vis": "boot1"}

    def advance(self, seconds: float) -> None:
        self.wall.advance(seconds)
        self.lab_time.advance(seconds)

    def watch_after(self, seconds: float) -> None:
        """Time passes, every module stays alive, and the watchdog looks as its timer does."""
        end = self.wall.now() + seconds
        while self.wall.now() < end:
            self.advance(min(self.dispatcher.watchdog_period_s, end - self.wall.now()))
            self.beat_all()
            self.dispatcher.watchdog()

    def watch_silently(self, seconds: float) -> None:
        """Time passes, no module beats, and the watchdog looks as its timer does."""
        end = self.wall.now() + seconds
        while self.wall.now() < end:
            self.advance(min(self.dispatcher.watchdog_period_s, end - self.wall.now()))
            self.dispatcher.watchdog()

    def beat(
        self, module: str = BATCH, faults: dict[str, str] | None = None, stamp: float | None = None
    ) -> None:
        self.dispatcher.heartbeat(module, self.boot[module], faults or {}, stamp)

    def beat_all(self) -> None:
        for module in self.boot:
            self.beat(module)

    def submit(self, retries: int = 0) -> str:
        submission, outbox = self.service.submit(JOB.format(retries=retries), "ann")
        assert submission.accepted, submission.error
        self.dispatcher.dispatch(outbox)
        return submission.job_id

    def send(self) -> list[StepGoal]:
        """What the node's goal group does when woken: the goals sent now."""
        before = len(self.modules.sent)
        self.dispatcher.send_queued()
        return self.modules.sent[before:]

    def accept(self, goal: StepGoal) -> str:
        handle = f"handle of {goal.task_id}"
        self.dispatcher.answered(goal, handle, True)
        return handle

    def succeed(self, goal: StepGoal) -> None:
        self.advance(goal.expected_s)
        self.dispatcher.finished(goal, True, {})

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.service.store.load_events() if e["type"] == kind]

    def steps(self, step_id: str) -> list[Any]:
        return [s for s in self.service.store.steps() if s.step_id == step_id]

    def state(self, job_id: str) -> str:
        view = self.service.job(job_id)
        assert view is not None
        return view.state


def done_while_the_lock_is_held(dispatcher: Dispatcher, work: Callable[[], object]) -> bool:
    """Run ``work`` in a thread while another thread holds the dispatcher's lock (a decision, a
    submission): did it end without waiting for the lock?"""
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with dispatcher.lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    worker = threading.Thread(target=work)
    try:
        assert held.wait(5)
        worker.start()
        worker.join(5)
        return not worker.is_alive()
    finally:
        release.set()
        holder.join()
        worker.join(10)


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = Lab(tmp_path / "db.sqlite")
    lab.beat_all()
    return lab


def test_goals_accepted_and_succeeded_run_the_job_to_its_end(lab: Lab) -> None:
    job = lab.submit()
    assert lab.modules.wakes >= 1 and lab.dispatcher.in_flight == 1
    done = []
    while goals := lab.send():
        (goal,) = goals
        assert goal.module == BATCH and goal.attempt == 0
        lab.accept(goal)
        lab.succeed(goal)
        done.append(goal.task)
    assert done[0] == "PrepareContainer" and done[-1] == "MoveContainer"
    assert lab.state(job) == "succeeded"
    assert lab.dispatcher.in_flight == 0 and lab.modules.cancelled == []
    assert lab.modules.released == [job]  # the modules free the job's positions
    assert [(n.event, n.details["job_id"]) for n in lab.notes] == [("job_finished", job)]
    assert lab.changes[-1] is True  # the node ends the job's SubmitJob goal now


def test_a_rejected_goal_fails_its_step_and_the_retry_is_a_new_goal(lab: Lab) -> None:
    job = lab.submit(retries=1)
    (goal,) = lab.send()
    lab.dispatcher.answered(goal, None, False)
    assert lab.log.has(f"step {goal.step_id} failed: rejected by the module")
    assert [s.outcome for s in lab.steps(goal.step_id)][:1] == ["rejected by the module"]
    (retry,) = lab.send()  # no back-off: at once
    assert (retry.step_id, retry.attempt) == (goal.step_id, 1)
    assert retry.task_id == f"{goal.step_id}~retry1"  # a new goal for the module
    lab.dispatcher.answered(retry, None, False)
    assert lab.send() == []
    assert lab.state(job) == "failed" and lab.dispatcher.in_flight == 0
    assert [n.event for n in lab.notes] == ["job_failed"]


def test_a_late_result_of_an_attempt_that_timed_out_is_ignored(lab: Lab) -> None:
    job = lab.submit(retries=1)
    (first,) = lab.send()
    handle = lab.accept(first)
    lab.advance(first.expected_s * FACTOR + MARGIN_S + 0.1)
    lab.beat_all()  # the modules are alive: only the step is late
    lab.dispatcher.watchdog()
    assert lab.log.has(f"step {first.step_id} failed: timed out")
    (retry,) = lab.send()
    assert lab.modules.cancelled == [handle]  # the late goal must not run on
    assert retry.attempt == 1
    late = lab.accept(retry)
    lab.dispatcher.finished(first, True, {})  # the first attempt's result, late
    lab.dispatcher.answered(first, "a late accept", True)
    assert lab.send() == [] and lab.dispatcher.in_flight == 1  # the retry still runs
    assert [s.state for s in lab.steps(first.step_id)] == ["failed", "running"]
    lab.dispatcher.dispatch(lab.service.command("cancel", job, "ann")[1])
    lab.send()
    assert lab.modules.cancelled == [handle, late]  # the retry's handle, not the late accept's


def test_a_duplicate_result_counts_once(lab: Lab) -> None:
    lab.submit()
    (goal,) = lab.send()
    lab.accept(goal)
    lab.succeed(goal)
    lab.dispatcher.finished(goal, True, {})  # the same result again
    lab.dispatcher.finished(goal, False, {}, "failed twice")
    (following,) = lab.send()
    assert following.step_id != goal.step_id
    assert lab.send() == []
    assert [e["step_id"] for e in lab.events("StepFinished")] == [goal.step_id]
    assert lab.events("StepFailed") == []
    assert [s.state for s in lab.steps(goal.step_id)] == ["succeeded"]


def test_a_silent_module_loses_its_step_which_is_retried_when_it_is_back(lab: Lab) -> None:
    assert lab.dispatcher.watchdog_period_s == HEARTBEAT_S / 4  # down at most that late
    job = lab.submit(retries=1)
    (goal,) = lab.send()
    handle = lab.accept(goal)
    lab.advance(1.5)  # 1.5 periods of silence: not down yet
    lab.beat("UV-Vis")
    lab.dispatcher.watchdog()
    assert lab.events("ModuleDown") == []
    lab.advance(0.6)  # silent for 2.1 periods: down
    lab.beat("UV-Vis")
    lab.dispatcher.watchdog()
    assert lab.log.has("module BatchSynthesis went down: no heartbeat")
    (failed,) = lab.events("StepFailed")
    assert failed["reason"] == "module BatchSynthesis went down (no heartbeat; its goal was lost)"
    assert failed["lost"] is True
    assert [e["module"] for e in lab.events("ModuleDown")] == [BATCH]
    assert [n.event for n in lab.notes] == ["module_down"]
    assert lab.send() == [] and lab.modules.cancelled == [handle]  # waits for the module
    lab.dispatcher.watchdog()  # still silent: told once
    assert len(lab.events("ModuleDown")) == 1
    lab.boot[BATCH] = "boot2"  # a new process
    lab.beat()
    assert lab.log.has("module BatchSynthesis is back")
    assert [e["module"] for e in lab.events("ModuleUp")] == [BATCH]
    (retry,) = lab.send()
    assert (retry.step_id, retry.attempt) == (goal.step_id, 1)
    assert lab.state(job) == "running"


def test_a_heartbeat_is_on_time_while_the_scheduler_is_busy(lab: Lab) -> None:
    """A beat is recorded when it arrives, not when the lab's lock is free: a long decision
    must not make live modules look silent (a loaded scheduler marked them down)."""
    lab.advance(1.5)
    fault = {"Batch_Stirrer": "overheated"}  # news for the core: this status needs the lock
    with lab.dispatcher.lock:  # a long decision holds the lab
        beats = [
            threading.Thread(target=lab.beat, args=(BATCH, fault)),
            threading.Thread(target=lab.beat, args=("UV-Vis",)),  # nothing new: no wait
        ]
        for beat in beats:  # each module's status on an executor thread of its own
            beat.start()
        time.sleep(0.2)  # the beats arrive now; what the fault changes in the core waits
        assert beats[0].is_alive() and not beats[1].is_alive()
        lab.advance(1.0)  # 2.5 periods since the last beats before these
        lab.dispatcher.watchdog()
    for beat in beats:
        beat.join(timeout=5.0)
    assert not lab.log.has("went down") and lab.events("ModuleDown") == []
    assert lab.log.has("device Batch_Stirrer is out of order: overheated")
    lab.beat(BATCH, fault)  # the same report again: heard, nothing new for the core
    lab.watch_silently(2.1)  # and a module that does fall silent is still found
    assert lab.log.has("module BatchSynthesis went down: no heartbeat")


def test_a_beat_racing_the_watchdog_leaves_the_core_and_liveness_agreeing(lab: Lab) -> None:
    lab.advance(2.5)
    with lab.dispatcher._beats:  # noqa: SLF001 - the watchdog's first half, by hand
        lost = lab.dispatcher.liveness.newly_down(lab.wall())
    assert BATCH in lost
    lab.beat()  # heard between the watchdog finding it silent and telling the core
    for module in lost:
        lab.dispatcher._module_lost(module, restarted=False)  # noqa: SLF001
    assert BATCH not in lab.service.core.modules_down()
    assert [e["module"] for e in lab.events("ModuleDown")] == ["UV-Vis"]
    assert lab.events("ModuleUp") == [] and not lab.log.has("BatchSynthesis is back")


def test_a_restarted_module_loses_its_step_at_once(lab: Lab) -> None:
    lab.submit(retries=1)
    (goal,) = lab.send()
    handle = lab.accept(goal)
    lab.advance(0.5)
    lab.boot[BATCH] = "boot2"  # respawned before its silence was noticed
    lab.beat()
    assert lab.log.has("module BatchSynthesis restarted: 1 step(s) lost")
    assert lab.log.has("module BatchSynthesis is back (a new process)")
    (failed,) = lab.events("StepFailed")
    assert failed["reason"] == "module BatchSynthesis restarted (its goal was lost)"
    assert failed["lost"] is True
    (retry,) = lab.send()
    assert lab.modules.cancelled == [handle]  # what the new process took must not run on
    assert (retry.step_id, retry.attempt) == (goal.step_id, 1)
    lab.dispatcher.finished(goal, True, {})  # the lost attempt's answer: ignored
    assert lab.send() == [] and lab.dispatcher.in_flight == 1


def test_a_module_lost_without_retries_fails_the_job_with_the_reason(lab: Lab) -> None:
    job = lab.submit(retries=0)
    (goal,) = lab.send()
    lab.accept(goal)
    lab.boot[BATCH] = "boot2"
    lab.beat()
    assert lab.state(job) == "failed"
    view = lab.service.job(job)
    assert view is not None and "module BatchSynthesis restarted" in view.reason
    assert lab.send() == [] and lab.dispatcher.in_flight == 0


def test_a_step_past_its_deadline_times_out(lab: Lab) -> None:
    job = lab.submit()
    (goal,) = lab.send()
    handle = lab.accept(goal)
    deadline = goal.expected_s * FACTOR + MARGIN_S
    lab.watch_after(deadline - 0.1)
    assert lab.dispatcher.in_flight == 1 and lab.events("StepFailed") == []
    lab.watch_after(0.2)
    (failed,) = lab.events("StepFailed")
    assert (failed["step_id"], failed["reason"], failed["lost"]) == (
        goal.step_id,
        "timed out",
        False,
    )
    assert lab.send() == [] and lab.modules.cancelled == [handle]
    assert lab.state(job) == "failed" and lab.dispatcher.in_flight == 0
    lab.dispatcher.finished(goal, True, {})  # the module's result after all: too late
    assert lab.events("StepFinished") == []


def test_a_result_that_waited_out_a_stall_of_the_scheduler_is_read_before_any_timeout(
    lab: Lab,
) -> None:
    lab.submit()
    (goal,) = lab.send()
    lab.accept(goal)
    deadline = goal.expected_s * FACTOR + MARGIN_S
    lab.watch_after(deadline - 1.0)
    lab.advance(2.0)  # the scheduler's process stalls past the deadline; the result came in it
    lab.dispatcher.watchdog()  # it wakes: the result waits in its queue, unread
    assert lab.events("StepFailed") == [] and lab.modules.cancelled == []
    assert not lab.log.has("went down")  # nor was any module heard, but nobody listened
    lab.dispatcher.finished(goal, True, {})  # read now
    assert [e["step_id"] for e in lab.events("StepFinished")] == [goal.step_id]
    (second,) = lab.send()
    lab.accept(second)
    lab.watch_after(HEARTBEAT_S)  # awake again, then a stall past this one's deadline
    lab.advance(second.expected_s * FACTOR + MARGIN_S + 2.0 - HEARTBEAT_S)
    lab.dispatcher.watchdog()
    assert lab.events("StepFailed") == []
    lab.watch_after(HEARTBEAT_S)  # a period awake and still no result: it timed out
    (failed,) = lab.events("StepFailed")
    assert (failed["step_id"], failed["reason"]) == (second.step_id, "timed out")


def test_a_step_has_its_whole_time_from_when_its_module_accepted_it(lab: Lab) -> None:
    lab.submit()
    (goal,) = lab.send()
    budget = goal.expected_s * FACTOR + MARGIN_S
    lab.advance(budget - 1.0)  # the goal waited (a busy module, a backlog) before its answer
    lab.beat_all()
    lab.accept(goal)
    lab.watch_after(budget - 0.1)  # past the deadline counted from sending, not from accepting
    assert lab.dispatcher.in_flight == 1 and lab.events("StepFailed") == []
    lab.watch_after(0.2)
    (failed,) = lab.events("StepFailed")
    assert (failed["step_id"], failed["reason"]) == (goal.step_id, "timed out")


def test_a_goal_never_answered_times_out_from_when_it_was_sent(lab: Lab) -> None:
    lab.submit()
    (goal,) = lab.send()
    lab.watch_after(goal.expected_s * FACTOR + MARGIN_S + 0.1)  # the goal was lost on the way
    (failed,) = lab.events("StepFailed")
    assert (failed["step_id"], failed["reason"]) == (goal.step_id, "timed out")
    lab.accept(goal)  # its answer, too late: no step comes back to life
    assert lab.dispatcher.in_flight == 0


def test_a_result_that_expired_at_the_module_is_asked_for_again(lab: Lab) -> None:
    # a busy scheduler asked after the action server's result_timeout: the goal goes again,
    # and the module answers it from the result it kept (it does not run it twice)
    lab.submit()
    (goal,) = lab.send()
    lab.accept(goal)
    lab.dispatcher.result_lost(goal)
    assert lab.log.has(f"step {goal.step_id}: its result had expired, asking again")
    assert lab.send() == [goal] and lab.dispatcher.in_flight == 1
    lab.accept(goal)
    lab.succeed(goal)
    assert [e["step_id"] for e in lab.events("StepFinished")] == [goal.step_id]
    lab.dispatcher.result_lost(goal)  # an outcome of a step that ended: nothing is sent
    assert goal not in lab.send()


def test_a_goal_waits_until_its_module_is_discovered(lab: Lab) -> None:
    lab.modules.discovered = {"UV-Vis"}
    lab.submit()
    assert lab.send() == []
    lab.dispatcher.resend()
    assert lab.send() == [] and lab.dispatcher.in_flight == 1
    lab.modules.discovered.add(BATCH)
    wakes = lab.modules.wakes
    lab.dispatcher.resend()  # the node's 0.1 s timer
    (goal,) = lab.modules.sent
    assert goal.task == "PrepareContainer" and lab.modules.wakes == wakes
    lab.dispatcher.resend()
    assert lab.modules.sent == [goal]  # sent once


def test_a_queued_goal_that_ended_meanwhile_is_not_sent(lab: Lab) -> None:
    lab.modules.discovered = {"UV-Vis"}
    job = lab.submit()
    lab.advance(MARGIN_S + 1000.0)
    lab.beat_all()
    lab.dispatcher.watchdog()  # timed out while it waited
    assert lab.state(job) == "failed"
    lab.modules.discovered.add(BATCH)
    lab.dispatcher.resend()
    assert lab.modules.sent == [] and lab.modules.cancelled == []  # never accepted: no cancel


def test_a_retry_waits_for_its_back_off_in_lab_time(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "db.sqlite", backoff_s=30.0)
    lab.beat_all()
    lab.submit(retries=1)
    (goal,) = lab.send()
    lab.accept(goal)
    lab.dispatcher.finished(goal, False, {}, "stirrer jammed")
    assert lab.log.has(f"step {goal.step_id} failed: stirrer jammed")
    lab.dispatcher.tick()
    assert lab.send() == []
    wake = lab.service.next_wake()
    assert wake is not None and 15.0 <= wake - lab.lab_time.now() <= 30.0
    lab.lab_time.set(wake)
    lab.dispatcher.tick()
    (retry,) = lab.send()
    assert (retry.step_id, retry.attempt) == (goal.step_id, 1)


def test_a_fault_in_a_result_holds_the_retry_until_the_module_clears_it(tmp_path: Path) -> None:
    """A module's status and a goal's result travel on different topics: the result that says
    a device failed may come first. Its faults take the device out of order before the retry
    is due, so the retry waits for the device instead of being refused by the module."""
    lab = Lab(tmp_path / "db.sqlite", backoff_s=30.0)
    lab.beat_all()
    lab.submit(retries=2)
    (goal,) = lab.send()
    lab.accept(goal)
    failed = {"Batch_VialStorage": "stuck"}
    lab.dispatcher.finished(goal, False, {}, "fetch failed", ended_at=500.0, faults=failed)
    assert lab.log.has("device Batch_VialStorage is out of order: stuck")
    lab.beat(stamp=499.9)  # published before the fault, arriving after the result: no news
    lab.lab_time.advance(60.0)  # the back-off is over
    lab.dispatcher.tick()
    assert lab.send() == []  # the retry waits for the device
    lab.beat(faults=failed, stamp=500.0)  # the status that reports the fault
    lab.beat(stamp=510.0)  # cleared on the module
    assert lab.log.has("device Batch_VialStorage is back in order")
    (retry,) = lab.send()
    assert (retry.step_id, retry.attempt) == (goal.step_id, 1)


def test_a_fault_in_a_result_is_cleared_by_a_later_status_though_none_showed_it(
    tmp_path: Path,
) -> None:
    """Statuses are best effort: the one that showed the fault may be lost, and the device
    back before the next. A status published after the failure that omits the device clears
    it (the last status said the same, which would otherwise be news to nobody)."""
    lab = Lab(tmp_path / "db.sqlite", backoff_s=30.0)
    lab.beat_all()
    lab.submit(retries=2)
    (goal,) = lab.send()
    lab.accept(goal)
    lab.dispatcher.finished(
        goal, False, {}, "fetch failed", ended_at=500.0, faults={"Batch_VialStorage": "stuck"}
    )
    lab.beat(stamp=499.0)
    assert not lab.log.has("back in order")
    lab.beat(stamp=501.0)
    assert lab.log.has("device Batch_VialStorage is back in order")
    lab.lab_time.advance(60.0)
    lab.dispatcher.tick()
    (retry,) = lab.send()
    assert retry.attempt == 1


def test_the_faults_of_a_late_result_are_not_applied_at_once(lab: Lab) -> None:
    """A result of an attempt that already ended (here: timed out) does not end a step: its
    faults wait for the next status, which says whether the device is still in error."""
    lab.submit(retries=1)
    (first,) = lab.send()
    lab.accept(first)
    lab.advance(first.expected_s * FACTOR + MARGIN_S + 0.1)
    lab.beat_all()
    lab.dispatcher.watchdog()
    (retry,) = lab.send()
    lab.dispatcher.finished(first, False, {}, "late", faults={"Batch_VialStorage": "stuck"})
    assert not lab.log.has("out of order")
    assert retry.attempt == 1 and lab.dispatcher.in_flight == 1
    lab.beat()
    assert not lab.log.has("out of order")


def test_the_emergency_stop_keeps_a_module_that_is_heard_again_down(lab: Lab) -> None:
    result, outbox = lab.dispatcher.set_emergency_stop(True, "spill", "ann")
    assert result.success
    lab.dispatcher.dispatch(outbox)
    lab.advance(2.5)
    lab.beat("UV-Vis")
    lab.dispatcher.watchdog()  # BatchSynthesis is silent: down
    lab.beat()  # and heard again, under the stop
    assert not lab.log.has("module BatchSynthesis is back")
    result, outbox = lab.dispatcher.set_emergency_stop(False, "", "ann")
    assert not result.success  # only an admin resets it
    assert lab.dispatcher.estop_engaged


def test_a_device_in_error_is_reported_once_and_back_when_cleared(lab: Lab) -> None:
    lab.beat(faults={"Batch_Stirrer": "jammed"})
    lab.beat(faults={"Batch_Stirrer": "jammed"})
    assert [line for line in lab.log.lines if "out of order" in line[1]] == [
        ("error", "device Batch_Stirrer is out of order: jammed")
    ]
    assert lab.changes == [False]  # the plan's reasons changed
    lab.beat()
    assert lab.log.has("device Batch_Stirrer is back in order")


def test_a_tick_does_not_hold_the_dispatchers_lock(lab: Lab) -> None:
    """A tick may run a look-ahead of 0.1-0.3 s: results, goal answers and status changes take
    the dispatcher's lock and must not wait for it. The tick runs while another thread holds
    that lock, and its look-ahead is applied."""
    for _ in range(7):  # more live jobs than a look-ahead inside the submission (5) handles
        lab.submit()
    policy = lab.service.core.policy
    assert policy.rules_due()
    assert done_while_the_lock_is_held(lab.dispatcher, lab.dispatcher.tick)
    assert not policy.rules_due()


def test_an_acceptance_is_recorded_while_a_decision_holds_the_lock(lab: Lab) -> None:
    """Goal answers run on the goal node's threads: under load, each waiting for the lab's lock
    held them all and answers queued for seconds. An acceptance needs no lock; its handle
    cancels the goal and its deadline counts from then."""
    job = lab.submit()
    (goal,) = lab.send()
    assert done_while_the_lock_is_held(lab.dispatcher, lambda: lab.accept(goal))
    lab.dispatcher.dispatch(lab.service.command("cancel", job, "ann")[1])
    lab.send()
    assert lab.modules.cancelled == [f"handle of {goal.task_id}"]


def test_a_goal_goes_out_while_a_decision_holds_the_lock(lab: Lab) -> None:
    # the first goal of the 4,000x day waited 96 ms (6 lab minutes) behind the next submission
    submission, outbox = lab.service.submit(JOB.format(retries=0), "ann")
    assert submission.accepted

    def send_it() -> None:  # the core's outbox, then the goal group
        lab.dispatcher.dispatch(outbox)
        lab.dispatcher.send_queued()

    assert done_while_the_lock_is_held(lab.dispatcher, send_it)
    assert [g.task for g in lab.modules.sent] == ["PrepareContainer"]


def scaled_lab(tmp_path: Path) -> tuple[ScaledClock, LabService, Modules, Dispatcher]:
    """One scaled clock for the service and the dispatcher, as in the node: 100 lab s per wall
    s."""
    clock = ScaledClock(100.0)
    service = LabService(
        [load_builtin_description(m) for m in MODULES], Store(tmp_path / "db.sqlite"), clock=clock
    )
    modules = Modules()
    return clock, service, modules, Dispatcher(service, modules, Log(), lab_clock=clock)


def test_a_step_ends_in_lab_time_where_its_module_says_and_the_next_starts_there(
    tmp_path: Path,
) -> None:
    clock, service, modules, dispatcher = scaled_lab(tmp_path)
    submission, outbox = service.submit(JOB.format(retries=0), "ann")
    dispatcher.dispatch(outbox)
    dispatcher.send_queued()
    (first,) = modules.sent
    assert first.started_at is not None
    # the goal tells the module, in wall time, when the core started the step
    (planned,) = modules.planned_starts
    assert planned == pytest.approx(clock.wall_time_at(first.started_at), abs=0.005)
    assert planned <= time.time()
    time.sleep(0.1)  # 10 lab s; the module ended 4 lab s before its answer arrives
    ended = time.time() - 0.04
    dispatcher.answered(first, "handle", True)
    dispatcher.finished(first, True, {}, ended_at=ended)
    (step,) = [s for s in service.store.steps() if s.step_id == first.step_id]
    assert step.ended_at == pytest.approx(clock.lab_time_at(ended), abs=1.0)
    assert step.ended_at < clock.now() - 3.0
    dispatcher.send_queued()
    second = modules.sent[-1]
    assert second.started_at == step.ended_at  # not when the answer arrived
    # an end before the last event or after now is not believed: the lab's time never runs back
    dispatcher.answered(second, "handle", True)
    dispatcher.finished(second, True, {}, ended_at=ended - 10.0)
    (again,) = [s for s in service.store.steps() if s.step_id == second.step_id]
    assert again.ended_at == second.started_at
    dispatcher.send_queued()
    third = modules.sent[-1]
    dispatcher.answered(third, "handle", True)
    dispatcher.finished(third, True, {}, ended_at=time.time() + 3600.0)
    (late,) = [s for s in service.store.steps() if s.step_id == third.step_id]
    assert late.ended_at is not None and late.ended_at <= clock.now()


def test_results_that_wait_for_the_lock_are_taken_in_the_order_they_ended(
    tmp_path: Path,
) -> None:
    # the core takes a step's end no earlier than its last event: an earlier end taken after a
    # later one was moved to the later time (at 4,000x, lab minutes)
    clock, service, modules, dispatcher = scaled_lab(tmp_path)
    for _ in range(2):
        dispatcher.dispatch(service.submit(JOB.format(retries=0), "ann")[1])
    dispatcher.send_queued()
    (first,) = modules.sent  # the arm is the first job's
    dispatcher.answered(first, "handle", True)
    dispatcher.finished(first, True, {})
    dispatcher.send_queued()
    running = modules.sent[1:]
    assert len(running) == 2  # the first job's stir, the second job's PrepareContainer
    for goal in running:
        dispatcher.answered(goal, f"handle of {goal.step_id}", True)
    time.sleep(0.1)
    earlier, later = running
    ends = {earlier.step_id: time.time() - 0.06, later.step_id: time.time() - 0.02}
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:  # a decision or a submission
        with dispatcher.lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert held.wait(5)
    answers = []
    for goal in (later, earlier):  # the later end arrives first
        answer = threading.Thread(
            target=dispatcher.finished,
            args=(goal, True, {}),
            kwargs={"ended_at": ends[goal.step_id]},
        )
        answer.start()
        answers.append(answer)
        time.sleep(0.2)
    release.set()
    for thread in (holder, *answers):
        thread.join(10)
    recorded = {s.step_id: s.ended_at for s in service.store.steps() if s.step_id in ends}
    for step_id, wall in ends.items():
        assert recorded[step_id] == pytest.approx(clock.lab_time_at(wall), abs=1.0)
    assert recorded[earlier.step_id] < recorded[later.step_id] - 2.0
