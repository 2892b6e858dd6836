"""The module's goal bookkeeping without ROS: repeated goal ids, cancel of unknown and finished
goals, a goal that fails in its device, two goals on one device. The module is built as the
module node builds it (``build_module``), on simulated back ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from octopus_modules.description import ModuleDescription, TaskSpec
from octopus_modules.drivers.simulated import SimulatedBackend
from octopus_modules.module_factory import build_module
from octopus_modules.runtime.goal_book import ORIGINAL_CANCELLED, GoalBook
from octopus_modules.runtime.goals import GoalRejected
from octopus_modules.runtime.results import TaskFeedback, TaskResult

TIME_SCALE = 1000.0  # as in conftest: 100 s of description time = 0.1 s

LONG_MOVE = {"Seconds": 2000}  # 2 s of wall time at TIME_SCALE: runs while the test acts
SHORT_MOVE = {"Seconds": 1}


@pytest.fixture
def book(description: ModuleDescription) -> Iterator[GoalBook]:
    book = build_module(description, time_scale=TIME_SCALE, seed=7)
    yield book
    book.runtime.close()


def backend(book: GoalBook, device: str) -> SimulatedBackend:
    found = book.runtime.backends[device]
    assert isinstance(found, SimulatedBackend)
    return found


class Running:
    """``book.run(goal_id)`` in a thread of its own; ``started`` is set at its first feedback."""

    def __init__(self, book: GoalBook, goal_id: str) -> None:
        self.started = threading.Event()
        self.result: TaskResult | None = None
        self._thread = threading.Thread(target=self._run, args=(book, goal_id))
        self._thread.start()

    def _run(self, book: GoalBook, goal_id: str) -> None:
        self.result = book.run(goal_id, lambda _feedback: self.started.set())

    def join(self) -> TaskResult:
        self._thread.join(timeout=20)
        assert self.result is not None, "the goal did not end"
        return self.result


def test_a_repeated_goal_id_runs_once_and_gets_the_original_result(book: GoalBook) -> None:
    assert book.accept("g1", "Move", LONG_MOVE)
    original = Running(book, "g1")
    assert original.started.wait(10)
    # a restarted scheduler re-sends the goal while it runs: accepted, not started again
    assert not book.accept("g1", "Move", LONG_MOVE)
    repeat = Running(book, "g1")
    first, second = original.join(), repeat.join()
    assert first.outcome == "succeeded"
    assert second is first
    assert not repeat.started.is_set()  # the repeat ran nothing, so it had no feedback
    # after the end, from the kept result, without touching the runtime
    assert not book.accept("g1", "Move", LONG_MOVE)
    assert book.run("g1") is first
    assert backend(book, "Arm").executed == ["move"]


def test_a_goal_id_is_forgotten_after_kept_newer_goals(book: GoalBook) -> None:
    book.kept = 2
    results = {}
    for goal_id in ("g1", "g2", "g3"):
        assert book.accept(goal_id, "Move", SHORT_MOVE)
        results[goal_id] = book.run(goal_id)
    assert not book.known("g1") and book.known("g2") and book.known("g3")
    assert book.accept("g1", "Move", SHORT_MOVE)  # a new goal now: it runs again
    again = book.run("g1")
    assert again.success and again is not results["g1"]
    assert backend(book, "Arm").executed == ["move"] * 4


def test_a_second_goal_with_the_id_of_one_not_yet_running_is_refused(book: GoalBook) -> None:
    assert book.accept("g1", "Move", SHORT_MOVE)
    with pytest.raises(GoalRejected, match="^goal_id: goal g1 is already running"):
        book.accept("g1", "Move", SHORT_MOVE)
    assert book.run("g1").success


def test_cancel_of_an_unknown_or_finished_goal_changes_nothing(book: GoalBook) -> None:
    assert not book.cancel("never-sent")
    assert book.accept("g1", "Move", SHORT_MOVE)
    done = book.run("g1")
    assert done.success
    assert not book.cancel("g1")
    assert book.finished("g1") is done
    assert not book.accept("g1", "Move", SHORT_MOVE)
    assert book.run("g1") is done
    assert book.runtime.status().running_goals == ()


def test_a_cancelled_goal_is_not_kept_and_its_waiting_repeat_is_told(book: GoalBook) -> None:
    assert book.accept("g1", "Move", LONG_MOVE)
    original = Running(book, "g1")
    assert original.started.wait(10)
    assert not book.accept("g1", "Move", LONG_MOVE)
    repeat = Running(book, "g1")
    assert book.cancel("g1")
    assert original.join().outcome == "cancelled"
    told = repeat.join()
    assert (told.success, told.outcome, told.error) == (False, "failed", ORIGINAL_CANCELLED)
    assert not book.known("g1") and book.finished("g1") is None
    # the same id may be sent again: it runs anew
    assert book.accept("g1", "Move", SHORT_MOVE)
    assert book.run("g1").success
    assert backend(book, "Arm").executed == ["move", "move"]


def test_a_goal_cancelled_before_it_runs_ends_cancelled_and_frees_its_devices(
    book: GoalBook,
) -> None:
    assert book.accept("g1", "Move", LONG_MOVE)
    assert book.cancel("g1")
    result = book.run("g1")
    assert result.outcome == "cancelled"
    assert backend(book, "Arm").executed == []
    assert book.accept("g2", "Move", SHORT_MOVE)  # Arm is free again
    assert book.run("g2").success


def test_a_goal_that_fails_in_its_device_is_kept_failed_and_the_device_refuses(
    description: ModuleDescription,
) -> None:
    failing_pump = {"Pump": {"settings": {"fail_actions": ["dispense"]}}}
    book = build_module(description, driver_overrides=failing_pump, time_scale=TIME_SCALE, seed=7)
    try:
        assert book.accept("d1", "Dose", {"Volume": 10}, {"rack": [0]}, ["s1"])
        failed = book.run("d1")
        assert (failed.success, failed.outcome) == (False, "failed")
        assert "Pump.dispense" in failed.error and "simulated device fault" in failed.error
        assert [(t.device, t.action, t.ok) for t in failed.timings] == [("Pump", "dispense", False)]
        # a repeat gets the failure, it does not dose again
        assert not book.accept("d1", "Dose", {"Volume": 10}, {"rack": [0]}, ["s1"])
        assert book.run("d1") is failed
        assert backend(book, "Pump").executed == ["dispense"]
        # the pump is in error: a new goal on it is refused until an operator clears it
        with pytest.raises(GoalRejected, match="^devices: device Pump is error"):
            book.accept("d2", "Dose", {"Volume": 10}, {"rack": [1]}, ["s2"])
        book.runtime.clear_device_error("Pump")
        assert book.accept("d2", "Dose", {"Volume": 10}, {"rack": [1]}, ["s2"])
    finally:
        book.runtime.close()


def test_two_goals_on_one_device_the_second_is_refused_others_run_alongside(
    book: GoalBook,
) -> None:
    assert book.accept("m1", "Move", LONG_MOVE)
    first = Running(book, "m1")
    assert first.started.wait(10)
    with pytest.raises(GoalRejected, match="^devices: device Arm is busy with goal m1"):
        book.accept("m2", "Move", SHORT_MOVE)
    assert not book.known("m2")  # a refused goal leaves no trace
    # the pump is not the arm: a dose runs while the move goes on
    assert book.accept("d1", "Dose", {"Volume": 10}, {"rack": [0]}, ["s1"])
    dose = book.run("d1")
    assert dose.success
    moved = first.join()
    assert moved.success
    assert dose.timings[0].end < moved.timings[0].end  # the dose ended inside the move
    assert book.accept("m2", "Move", SHORT_MOVE)  # the arm is free again
    assert book.run("m2").success


def test_a_goal_names_a_task_of_the_description_and_one_step_of_it(book: GoalBook) -> None:
    seen: list[str] = []

    def parameters(task: TaskSpec) -> dict[str, Any]:
        seen.append(task.name)
        return {"Minutes": 0}

    with pytest.raises(GoalRejected) as unknown:
        book.accept("w0", "Wait#1", parameters, {"rack": [0]}, ["s1"])
    assert unknown.value.field == "task"
    assert "known: Dose, Move, MoveAndDose, Wait, Measure" in unknown.value.reason
    with pytest.raises(GoalRejected, match=r"^step_indices\[0\]: task Wait has steps 0..2"):
        book.accept("w0", "Wait", parameters, {"rack": [0]}, ["s1"], step_indices=[3])
    assert seen == []  # the parameters are read only once the task and step are known

    feedback: list[TaskFeedback] = []
    assert book.accept("w1", "Wait", parameters, {"rack": [0]}, ["s1"], step_indices=[1])
    assert seen == ["Wait"]
    result = book.run("w1", feedback.append)
    assert result.success and result.task == "Wait#1"
    assert [f.event for f in feedback] == ["standby_started", "standby_finished"]


def test_a_job_s_samples_are_released_from_their_slots(book: GoalBook) -> None:
    for goal_id, sample, position in (("d1", "J1/s0", 0), ("d2", "J2/s0", 1), ("d3", "J1/s1", 2)):
        assert book.accept(goal_id, "Dose", {"Volume": 1}, {"rack": [position]}, [sample])
        assert book.run(goal_id).success
    runtime = book.runtime
    assert runtime.release_job_samples("") == []
    assert runtime.release_job_samples("J") == []  # "J1/..." is not a sample of job "J"
    assert runtime.release_job_samples("J1") == ["rack:0", "rack:2"]
    assert runtime.status().slot("rack").occupied == ((1, "J2/s0"),)
