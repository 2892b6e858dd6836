"""The scheduler node's state topics, for :mod:`octopus_scheduler.ros.scheduler_node`.

``schedule`` (latched: the plan and what ran), ``resources`` (latched: free slots, busy devices
and their holders, modules up), ``jobs`` (job updates, only when something changed) and
``/diagnostics`` (the scheduler and each module, for rqt_robot_monitor). Published when the
:class:`~octopus_scheduler.service.publication_pacer.PublicationPacer` says: on change, at
least every 2 s, planning at most 20 % of the time.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from octopus_interfaces.msg import Job, ResourceState, Schedule
from octopus_modules.ros.ros_common import LATCHED
from octopus_scheduler.ros.ros_messages import (
    diagnostics_message,
    job_message,
    resource_message,
    schedule_message,
)
from octopus_scheduler.service.dispatcher import Dispatcher
from octopus_scheduler.service.lab_service import JobSummary, LabService
from octopus_scheduler.service.publication_pacer import PublicationPacer

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class SchedulePublisher:
    def __init__(
        self,
        node: Node,
        service: LabService,
        dispatcher: Dispatcher,
        policy: str,
        clock: Callable[[], float],
    ) -> None:
        self._node = node
        self._service = service
        self._dispatcher = dispatcher
        self._policy = policy
        self._clock = clock
        self._schedule_pub = node.create_publisher(Schedule, "schedule", LATCHED)
        self._jobs_pub = node.create_publisher(Job, "jobs", RELIABLE)
        self._resources_pub = node.create_publisher(ResourceState, "resources", LATCHED)
        self._diagnostics_pub = node.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self._dirty = threading.Event()
        #: job id -> its summary in the last published schedule (feedback reads it: planning is
        #: not free)
        self.published: dict[str, JobSummary] = {}
        self._pacer = PublicationPacer()
        node.create_timer(0.25, self._publish_if_dirty, MutuallyExclusiveCallbackGroup())

    def changed(self) -> None:
        """What the plan shows changed: publish soon."""
        self._dirty.set()

    def schedule(self, job_id: str = "") -> Schedule:
        """The plan and what ran, of every job or of one."""
        placements = self._service.plan()
        executed = self._service.store.steps(job_id or None)
        if job_id:
            placements = [p for p in placements if p.job_id == job_id]
        schedule = schedule_message(
            self._policy, placements, executed, self._clock(), self._service.step_shape
        )
        summaries = self._service.summaries(placements)
        if not job_id:
            self.published = {s.view.job_id: s for s in summaries}
        schedule.jobs = [job_message(s) for s in summaries if not job_id or s.view.job_id == job_id]
        return schedule

    def _publish_if_dirty(self) -> None:
        started = time.monotonic()
        changed = self._dirty.is_set()
        if not self._pacer.due(started, changed):
            return
        self._dirty.clear()
        try:
            self._publish_state(changed)
        except Exception:  # a broken publication must not take the scheduler down
            self._node.get_logger().error(
                f"publishing the schedule failed:\n{traceback.format_exc()}"
            )
        self._pacer.published(started, time.monotonic() - started)

    def _publish_state(self, changed: bool) -> None:
        schedule = self.schedule()
        self._schedule_pub.publish(schedule)
        down = self._dispatcher.liveness.down
        resources = self._service.resources()
        self._resources_pub.publish(resource_message(resources, down, self._clock()))
        if changed:  # job updates only when something happened
            for job in schedule.jobs:
                self._jobs_pub.publish(job)
        by_state = Counter(view.state for view in self._service.jobs())
        self._diagnostics_pub.publish(
            diagnostics_message(
                resources,
                down,
                by_state,
                self._dispatcher.in_flight,
                self._policy,
                self._clock(),
            )
        )
