"""Message conversions of the scheduler (generated types, no DDS)."""

from __future__ import annotations

import math

from octopus_scheduler.ros.ros_messages import stamp


def test_stamps_that_time_cannot_hold_are_unknown() -> None:
    known = stamp(1_795_528_000.25)
    assert (known.sec, known.nanosec) == (1_795_528_000, 250_000_000)
    for never in (None, math.inf, math.nan, 1e300, 2.0**31, -1.0):
        assert (stamp(never).sec, stamp(never).nanosec) == (0, 0)


def test_diagnostics_report_the_scheduler_and_each_module() -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from octopus_scheduler.ros.ros_messages import diagnostics_message

    resources = {"A": ({"stirrer": (3, 8)}, {"arm": "J1/s"}), "B": ({}, {})}
    array = diagnostics_message(resources, {"B"}, {"running": 2}, 1, "planner", 100.0)
    by_name = {s.name: s for s in array.status}
    assert by_name["octopus: scheduler"].values[0].value == "2"
    assert by_name["octopus: module A"].level == DiagnosticStatus.OK
    assert by_name["octopus: module A"].values[0].value == "5/8"
    assert by_name["octopus: module B"].level == DiagnosticStatus.ERROR


def test_a_job_is_sent_on_the_jobs_topic_when_its_message_changed() -> None:
    from octopus_interfaces.msg import Job
    from octopus_scheduler.ros.schedule_publisher import job_updates

    ended = Job(id="J0001", state=Job.STATE_SUCCEEDED, progress=1.0)
    running = Job(id="J0002", state=Job.STATE_RUNNING, progress=0.25)
    sent = {"J0001": ended, "J0002": running}
    moved = Job(id="J0002", state=Job.STATE_RUNNING, progress=0.5)
    new = Job(id="J0003", state=Job.STATE_QUEUED)
    same = Job(id="J0001", state=Job.STATE_SUCCEEDED, progress=1.0)  # an equal copy
    assert job_updates(sent, [same, moved, new]) == [moved, new]
    assert job_updates({}, [same]) == [same]


def test_a_jobs_feedback_goes_out_when_it_changed_and_to_keep_a_late_client_told() -> None:
    # every followed job got feedback every second: a thousand queued jobs, a thousand messages
    from octopus_interfaces.action import SubmitJob
    from octopus_scheduler.ros.job_goals import FEEDBACK_KEEPALIVE_S, feedback_due

    queued = SubmitJob.Feedback(job_id="J0001", state=1, experiments_total=2)
    same = SubmitJob.Feedback(job_id="J0001", state=1, experiments_total=2)
    running = SubmitJob.Feedback(job_id="J0001", state=2, experiments_total=2)
    assert feedback_due(None, queued, 100.0)
    assert not feedback_due((queued, 100.0), same, 101.0)
    assert feedback_due((queued, 100.0), running, 100.5)
    assert feedback_due((queued, 100.0), same, 100.0 + FEEDBACK_KEEPALIVE_S)
