"""Schedule message -> step records (no Qt here), on the generated message types."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from builtin_interfaces.msg import Time

from octopus_client.gantt import messages
from octopus_client.gantt.messages import snapshot_from_schedule_msg, step_from_task_step
from octopus_client.gantt.model import build_model
from octopus_interfaces.msg import Job, Schedule, TaskStep

T0 = 1_760_000_000.0  # a wall-clock epoch, as in a live lab


def stamp(seconds: float) -> Time:
    whole = int(seconds)
    return Time(sec=whole, nanosec=int(round((seconds - whole) * 1e9)))


def task_step(state: int, *, planned: tuple[float, float] | None = None,
              actual: tuple[float, float] | None = None, mode: int = 0,
              outcome: str = "", job: str = "J0001") -> TaskStep:  # fmt: skip
    planned_start, planned_end = planned or (0.0, 0.0)
    actual_start, actual_end = actual or (0.0, 0.0)
    return TaskStep(
        job_id=job, experiment_id="e0", task_id="t1", module="BatchSynthesis", task="Synthesis",
        step_index=2, step_name="stir", mode=mode, devices=["Batch_Stirrer"] if mode == 0 else [],
        slots=[], planned_start=stamp(planned_start), planned_end=stamp(planned_end),
        actual_start=stamp(actual_start), actual_end=stamp(actual_end), state=state,
        outcome=outcome,
    )  # fmt: skip


def test_planned_and_ready_steps_use_planned_times_and_say_what_they_wait_for() -> None:
    for code in (messages.STATE_PLANNED, messages.STATE_READY):
        step = step_from_task_step(
            task_step(code, planned=(T0 + 10, T0 + 70), outcome="slots BatchSynthesis.stirrer")
        )
        assert step is not None
        assert (step.state, step.start, step.end) == ("planned", T0 + 10, T0 + 70)
        assert step.reason == "slots BatchSynthesis.stirrer"
        assert step.step_id == "J0001/e0/t1/2" and step.experiment_id == "e0"
    assert step_from_task_step(task_step(messages.STATE_READY)) is None  # not placed yet


def test_a_running_step_runs_from_its_actual_start_to_its_planned_end() -> None:
    step = step_from_task_step(
        task_step(messages.STATE_RUNNING, planned=(T0, T0 + 60), actual=(T0 + 5.5, 0.0))
    )
    assert step is not None
    assert (step.state, step.start, step.end) == ("running", T0 + 5.5, T0 + 60)


def test_ended_steps_use_actual_times_and_outcomes() -> None:
    done = step_from_task_step(
        task_step(messages.STATE_SUCCEEDED, planned=(T0, T0 + 60), actual=(T0 + 1, T0 + 75))
    )
    failed = step_from_task_step(
        task_step(messages.STATE_FAILED, actual=(T0 + 1, T0 + 20), outcome="stirrer timeout")
    )
    assert done is not None and failed is not None
    assert (done.state, done.start, done.end) == ("done", T0 + 1, T0 + 75)
    assert (failed.state, failed.reason) == ("failed", "stirrer timeout")


def test_cancelled_steps_are_shown_only_if_they_ran() -> None:
    assert step_from_task_step(task_step(messages.STATE_CANCELLED, planned=(T0, T0 + 5))) is None
    ran = step_from_task_step(task_step(messages.STATE_CANCELLED, actual=(T0, T0 + 3)))
    assert ran is not None and (ran.state, ran.reason) == ("failed", "cancelled")


def test_standby_mode_and_unknown_state() -> None:
    step = step_from_task_step(
        task_step(messages.STATE_PLANNED, planned=(T0, T0 + 600), mode=messages.MODE_STANDBY)
    )
    assert step is not None and step.mode == "standby" and step.devices == ()
    with pytest.raises(ValueError, match="unknown state 9"):
        step_from_task_step(task_step(9, planned=(T0, T0 + 1)))


def test_a_schedule_gives_owners_names_stamp_and_policy() -> None:
    msg = Schedule(
        policy="planner",
        steps=[
            task_step(messages.STATE_SUCCEEDED, actual=(T0, T0 + 20)),
            task_step(messages.STATE_PLANNED, planned=(T0 + 40, T0 + 60), job="J0002"),
            task_step(messages.STATE_READY, job="J0002"),  # unplaced: dropped
        ],
        jobs=[
            Job(id="J0001", owner="alice", name="AgNP", state=1),
            Job(id="J0002", owner="bob", name="BO", state=0),
        ],
    )
    msg.header.stamp = stamp(T0 + 30)
    snapshot = snapshot_from_schedule_msg(msg)
    assert snapshot.stamp == T0 + 30 and snapshot.policy == "planner"
    assert [(s.job_id, s.owner, s.job_name, s.state) for s in snapshot.steps] == [
        ("J0001", "alice", "AgNP", "done"),
        ("J0002", "bob", "BO", "planned"),
    ]
    assert snapshot.job_states == {"J0001": 1, "J0002": 0}
    model = build_model(snapshot.steps, now=snapshot.stamp)
    assert {b.fill for b in model.bars} == {"filled", "hollow"}


# -- with the generated message types ---------------------------------------------------------


def build_real_schedule() -> Any:
    running = TaskStep(
        job_id="J0007", experiment_id="e1", task_id="t0", module="UV-Vis", task="Measure",
        step_index=0, step_name="scan", mode=TaskStep.MODE_ACTIVE,
        devices=["UV_Spectrometer"], planned_start=stamp(T0), planned_end=stamp(T0 + 90),
        actual_start=stamp(T0 + 2), state=TaskStep.STATE_RUNNING,
    )  # fmt: skip
    standby = TaskStep(
        job_id="J0007", experiment_id="e1", task_id="t1", module="BatchSynthesis",
        task="Synthesis", step_index=1, step_name="react", mode=TaskStep.MODE_STANDBY,
        planned_start=stamp(T0 + 100), planned_end=stamp(T0 + 700), state=TaskStep.STATE_PLANNED,
        outcome="predecessor J0007/e1/t0/0",
    )  # fmt: skip
    job = Job(id="J0007", owner="carol", name="sweep", state=Job.STATE_RUNNING)
    schedule = Schedule(policy="backfill", steps=[running, standby], jobs=[job])
    schedule.header.stamp = stamp(T0 + 30)
    return schedule


def test_the_mirrored_constants_match_the_generated_message() -> None:
    for name in ("MODE_STANDBY", "STATE_PLANNED", "STATE_READY", "STATE_RUNNING",
                 "STATE_SUCCEEDED", "STATE_FAILED", "STATE_CANCELLED"):  # fmt: skip
        assert getattr(TaskStep, name) == getattr(messages, name), name


def test_a_generated_schedule_message_converts() -> None:
    snapshot = snapshot_from_schedule_msg(build_real_schedule())
    assert snapshot.stamp == pytest.approx(T0 + 30)
    running, standby = snapshot.steps
    assert (running.state, running.owner, running.devices) == (
        "running",
        "carol",
        ("UV_Spectrometer",),
    )
    assert running.start == pytest.approx(T0 + 2) and running.end == pytest.approx(T0 + 90)
    assert (standby.mode, standby.state, standby.reason) == (
        "standby",
        "planned",
        "predecessor J0007/e1/t0/0",
    )


def test_a_late_subscriber_gets_the_latched_schedule(ros: Any) -> None:
    schedule = build_real_schedule()
    from octopus_client.gantt.ros_io import SCHEDULE_TOPIC, schedule_qos, subscribe_schedule

    topic = SCHEDULE_TOPIC + "_gantt_test"
    publisher = ros.node.create_publisher(type(schedule), topic, schedule_qos())
    publisher.publish(schedule)  # before anyone listens: only a transient local reader gets it
    received: list[Any] = []
    arrived = threading.Event()

    def on_snapshot(snapshot: Any) -> None:
        received.append(snapshot)
        arrived.set()

    subscribe_schedule(ros.node, on_snapshot, topic)
    assert arrived.wait(10.0), "the latched schedule did not arrive"
    assert [s.job_id for s in received[0].steps] == ["J0007", "J0007"]
    assert received[0].policy == "backfill"


def test_capture_schedule_gets_the_current_schedule_once(ros: Any) -> None:
    schedule = build_real_schedule()
    from octopus_client.gantt.ros_io import SCHEDULE_TOPIC, capture_schedule, schedule_qos

    topic = SCHEDULE_TOPIC + "_capture_test"
    publisher = ros.node.create_publisher(type(schedule), topic, schedule_qos())
    publisher.publish(schedule)
    snapshot = capture_schedule(topic, timeout_s=10.0)
    assert snapshot is not None and snapshot.policy == "backfill"
    assert capture_schedule(topic + "_nobody", timeout_s=0.3) is None
