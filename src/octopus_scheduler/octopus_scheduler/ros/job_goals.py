"""The scheduler node's ``submit_job`` action (SubmitJob), for
:mod:`octopus_scheduler.ros.scheduler_node`.

A job script in, feedback while the job runs, the result when it ends; cancelling the goal
cancels the job. A rejected script ends the goal at once (aborted) with the reason, naming the
field, in ``summary``. A goal waits without holding an executor thread: feedback and the result
come from a follower (a timer, once a second, and a trigger when jobs end). Feedback goes out
when it changed, and at least every ``FEEDBACK_KEEPALIVE_S`` (a client whose reader matched
late learns its job id): a thousand queued jobs sent a thousand messages a second.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import CallbackGroup, MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from octopus_interfaces.action import SubmitJob
from octopus_interfaces.msg import Job
from octopus_scheduler.ros.ros_messages import JOB_STATES, stamp
from octopus_scheduler.ros.schedule_publisher import RELIABLE
from octopus_scheduler.service.dispatcher import Dispatcher
from octopus_scheduler.service.lab_service import ENDED, JobSummary, LabService, Outbox, Submission

# The SubmitJob services keep 10,000 requests (the default keeps 10: a burst overflowed the reader
# before the executor took the requests). Not KEEP_ALL: a response writer that keeps all waits
# for the slowest client's acknowledgements, and a write that waits too long is dropped.
REQUESTS = QoSProfile(depth=10000, reliability=ReliabilityPolicy.RELIABLE)
FEEDBACK_KEEPALIVE_S = 5.0


def feedback_due(
    last: tuple[SubmitJob.Feedback, float] | None, feedback: SubmitJob.Feedback, now: float
) -> bool:
    """Whether ``feedback`` goes out at ``now`` (monotonic s), ``last`` (message, when) sent."""
    return last is None or last[0] != feedback or now - last[1] >= FEEDBACK_KEEPALIVE_S


class JobGoals:
    def __init__(
        self,
        node: Node,
        service: LabService,
        dispatcher: Dispatcher,
        published: Callable[[], Mapping[str, JobSummary]],
        callbacks: CallbackGroup,
    ) -> None:
        """``published()``: job id -> its summary in the last published schedule."""
        self._node = node
        self._service = service
        self._dispatcher = dispatcher
        self._lock = dispatcher.lock
        self._published = published
        self._followed: dict[str, ServerGoalHandle] = {}  # job id -> its SubmitJob goal
        self._told: dict[str, tuple[SubmitJob.Feedback, float]] = {}  # job id -> last feedback
        self._submissions: dict[int, Submission] = {}  # id(goal) -> its submission, until accepted
        ActionServer(
            node,
            SubmitJob,
            "submit_job",
            execute_callback=self._job_result,
            goal_callback=self._submit_job,
            handle_accepted_callback=self._accept_job,
            cancel_callback=self._cancel_job_goal,
            callback_group=callbacks,
            goal_service_qos_profile=REQUESTS,
            result_service_qos_profile=REQUESTS,
            cancel_service_qos_profile=REQUESTS,
            feedback_pub_qos_profile=RELIABLE,
        )
        following = MutuallyExclusiveCallbackGroup()
        self._follow_trigger = node.create_guard_condition(
            self._follow_jobs, callback_group=following
        )
        node.create_timer(1.0, self._follow_jobs, following)  # feedback once a second

    def jobs_ended(self) -> None:
        """Jobs ended: their goals get their results now."""
        self._follow_trigger.trigger()

    def _submit_job(self, goal: SubmitJob.Goal) -> GoalResponse:
        """Persist the job before the goal response leaves: a client that sees its goal accepted
        finds its job in list_jobs. A script that fails validation is accepted too, so that its
        result can name the field (a goal rejection carries no message)."""
        log = self._node.get_logger()
        received_at = self._service.clock()
        with self._lock:
            try:
                submission, outbox = self._service.submit(
                    goal.script, goal.user, goal.auth, received_at=received_at
                )
            except Exception:  # a bug must not leave the client without an answer
                log.error(f"submission failed:\n{traceback.format_exc()}")
                submission = Submission(error="internal error: see the scheduler log")
                outbox = Outbox()
            # rclpy hands this same Goal object to the accepted handle (handle.request)
            self._submissions[id(goal)] = submission
        if submission.accepted:
            log.info(f"job {submission.job_id} accepted from {goal.user}")
            self._dispatcher.dispatch(outbox)
        else:
            log.warning(f"job of {goal.user} rejected: {submission.error}")
        return GoalResponse.ACCEPT

    def _accept_job(self, handle: ServerGoalHandle) -> None:
        """The goal then waits, holding no executor thread, until its job ends (feedback comes
        from the follower timer). Many users' jobs may be followed at once.
        """
        with self._lock:
            submission = self._submissions.pop(id(handle.request))
        if not submission.accepted:
            handle._octopus_rejection = submission.error  # noqa: SLF001 - read by _job_result
            handle.execute()
            return
        job_id = submission.job_id
        handle._octopus_job_id = job_id  # noqa: SLF001 - read by the cancel callback
        with self._lock:
            self._followed[job_id] = handle
        self._follow(job_id, handle)  # the client learns its job id now (only this job: a burst
        # of accepts must not each tell every followed job)

    def _follow_jobs(self) -> None:
        """Feedback to every followed job; a job that ended gets its result."""
        with self._lock:
            followed = list(self._followed.items())
        for job_id, handle in followed:
            self._follow(job_id, handle)

    def _follow(self, job_id: str, handle: ServerGoalHandle) -> None:
        view = self._service.job(job_id)
        if view is None:
            return
        if view.state in ENDED:
            with self._lock:
                mine = self._followed.pop(job_id, None) is not None
                self._told.pop(job_id, None)
            if mine:  # exactly once, whichever thread saw the end first
                handle.execute()  # runs _job_result, which ends the goal
            return
        # progress and estimates from the last published schedule: planning is not free
        summary = self._published().get(job_id)
        feedback = SubmitJob.Feedback(
            job_id=job_id,
            state=JOB_STATES[view.state],
            progress=float(summary.progress) if summary else 0.0,
            experiments_done=summary.experiments_done if summary else 0,
            experiments_total=self._service.experiments_total(job_id),
            estimated_finish=stamp(summary.estimated_finish if summary else None),
        )
        now = time.monotonic()
        with self._lock:
            if not feedback_due(self._told.get(job_id), feedback, now):
                return
            self._told[job_id] = (feedback, now)
        try:
            handle.publish_feedback(feedback)
        except Exception:  # the goal is no longer active (cancelled): nothing to tell
            pass

    def _job_result(self, handle: ServerGoalHandle) -> SubmitJob.Result:
        rejection = getattr(handle, "_octopus_rejection", None)
        if rejection is not None:
            handle.abort()
            return SubmitJob.Result(job_id="", final_state=Job.STATE_FAILED, summary=rejection)
        job_id = handle._octopus_job_id  # noqa: SLF001
        view = self._service.job(job_id)
        state = view.state if view is not None else "failed"
        report = self._service.result_summary(job_id)
        result = SubmitJob.Result(job_id=job_id, final_state=JOB_STATES[state], summary=report)
        if state == "succeeded":
            handle.succeed()
        elif state == "cancelled" and handle.is_cancel_requested:
            handle.canceled()
        else:
            handle.abort()
        return result

    def _cancel_job_goal(self, handle: ServerGoalHandle) -> CancelResponse:
        job_id = getattr(handle, "_octopus_job_id", "")
        with self._lock:
            result, outbox = self._service.command(
                "cancel", job_id, handle.request.user, goal_owner=True
            )
        self._dispatcher.dispatch(outbox)
        return CancelResponse.ACCEPT if result.success else CancelResponse.REJECT
