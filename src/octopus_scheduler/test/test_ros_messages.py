"""Message conversions of the scheduler (generated types, no DDS)."""

from __future__ import annotations

import math

from octopus_scheduler.ros_messages import stamp


def test_stamps_that_time_cannot_hold_are_unknown() -> None:
    known = stamp(1_795_528_000.25)
    assert (known.sec, known.nanosec) == (1_795_528_000, 250_000_000)
    for never in (None, math.inf, math.nan, 1e300, 2.0**31, -1.0):
        assert (stamp(never).sec, stamp(never).nanosec) == (0, 0)
