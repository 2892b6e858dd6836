"""The scheduler node's state topics, for :mod:`octopus_scheduler.ros.scheduler_node`.

``schedule`` (latched: the plan and what ran), ``resources`` (latched: free slots, busy devices
and their holders, modules up), ``jobs`` (a job's update when it changed) and ``/diagnostics``
(the scheduler and each module, for rqt_robot_monitor). Published when the
:class:`~octopus_scheduler.service.publication_pacer.PublicationPacer` says: on change, at
least every 2 s, planning at most 20 % of the time.

The schedule shows the plan, the steps that ran within ``history_s`` of lab time, and the live
jobs and those that ended within it: what ran before is in the database (``GetSchedule`` of one
job, ``GetJob``). With all of the lab's history every publication grew with it (1,071 steps
rebuilt every 0.5 s after 1,000 actions).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence

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
#: lab seconds an ended job stays on the schedule: a day
HISTORY_S = 24 * 3600.0


def job_updates(sent: Mapping[str, Job], jobs: Sequence[Job]) -> list[Job]:
    """The jobs whose message differs from the one last sent: a job's update when it changed,
    not every job of the lab on every change (a thousand messages each time at 1,000 jobs)."""
    return [job for job in jobs if sent.get(job.id) != job]


class SchedulePublisher:
    def __init__(
        self,
        node: Node,
        service: LabService,
        dispatcher: Dispatcher,
        policy: str,
        clock: Callable[[], float],
        history_s: float = HISTORY_S,
    ) -> None:
        self._node = node
        self._history_s = history_s
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
        self._sent_jobs: dict[str, Job] = {}  # job id -> its last message on ``jobs``
        self._pacer = PublicationPacer()
        node.create_timer(0.25, self._publish_if_dirty, MutuallyExclusiveCallbackGroup())

    def changed(self) -> None:
        """What the plan shows changed: publish soon."""
        self._dirty.set()

    def schedule(self, job_id: str = "") -> Schedule:
        """The plan and what ran within the history (live jobs, and those ended within it), or
        all of one job."""
        placements = self._service.plan()
        now = self._clock()
        since = None if job_id else now - self._history_s
        executed = self._service.store.steps(job_id or None, ended_since=since)
        if job_id:
            placements = [p for p in placements if p.job_id == job_id]
        schedule = schedule_message(
            self._policy, placements, executed, now, self._service.step_shape
        )
        summaries = self._service.summaries(placements, ended_since=since)
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
        if changed:
            for job in job_updates(self._sent_jobs, schedule.jobs):
                self._jobs_pub.publish(job)
            self._sent_jobs = {job.id: job for job in schedule.jobs}
        by_state = self._service.job_states()
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
