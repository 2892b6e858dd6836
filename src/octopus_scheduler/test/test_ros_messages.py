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
