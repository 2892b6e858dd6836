"""A small synchronous client of the scheduler node, for the ``octopus`` CLI and scripts.

Every request has a timeout: over DDS a response to a not-yet-matched client is dropped, so a
first request can stay unanswered forever (see docs on discovery pitfalls). Idempotent requests
are retried; the non-idempotent ones (submit, hold/resume/cancel) are made after an idempotent
warm-up and, if their answer is lost, checked against the job's state instead of being re-sent.

rclpy and the messages are imported here, so import this module only inside commands.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import rclpy
from rclpy.action import ActionClient
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from octopus_client.commands.errors import EXIT_FAILED, EXIT_INVALID, ClientError
from octopus_interfaces.action import SubmitJob
from octopus_interfaces.msg import EmergencyStop, Job, ModuleStatus, ResourceState, Schedule
from octopus_interfaces.srv import (
    ClearDeviceError,
    GetJob,
    GetSchedule,
    JobCommand,
    ListJobs,
    SetEmergencyStop,
)

__all__ = ["ClientError", "OctopusClient", "Submission", "default_user", "normalize_namespace"]

DEFAULT_NAMESPACE = "/octopus"
DEFAULT_TIMEOUT_S = 5.0
# How long a server of a lab that is up may take to be found: on an idle machine a new process
# matches the lab's endpoints within a second, on a loaded one Fast DDS can take seconds to repair
# a lost discovery message (the project's CI once took more than 5 s). A lab with no node on the
# graph is reported after ``timeout_s`` as before.
DISCOVERY_LIMIT_S = 20.0
RESEND_S = 0.2  # an idempotent request unanswered this long is sent again (a response to a
# client the server has not matched yet is dropped; discovery completes within a few 100 ms)
FIRST_FEEDBACK_S = 0.15  # then the job id is looked up instead
SPIN_SLICE_S = 0.05  # how long a send may wait for the spin thread
ENDED_STATES = (Job.STATE_SUCCEEDED, Job.STATE_FAILED, Job.STATE_CANCELLED)
LATCHED = QoSProfile(
    depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# The action's services keep 1,000 responses: with the default (the last 10) a burst of goals
# loses the answers that arrive while the executor is busy (the status arrays it converts grow
# with the number of goals). Feedback of every user's goals shares one topic.
REQUESTS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
FEEDBACK = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def submit_job_client(node: Any, name: str) -> ActionClient:
    """A SubmitJob action client that loses no goal response in a burst."""
    return ActionClient(
        node,
        SubmitJob,
        name,
        goal_service_qos_profile=REQUESTS,
        result_service_qos_profile=REQUESTS,
        cancel_service_qos_profile=REQUESTS,
        feedback_sub_qos_profile=FEEDBACK,
    )


def _wait_ready(is_ready: Callable[[], bool], timeout_s: float) -> bool:
    """Poll for discovery every 10 ms (rclpy's wait_for_service sleeps 0.25 s between looks)."""
    deadline = time.monotonic() + timeout_s
    while not is_ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def default_user() -> str:
    return os.environ.get("OCTOPUS_USER") or getpass.getuser()


def user_key(user: str) -> bytes | None:
    """The user's signing key: $OCTOPUS_KEY (hex), else the user's entry in the lab secrets
    file $OCTOPUS_SECRETS; None: requests go unsigned (a lab without ``auth: required``)."""
    from octopus_scheduler.service.identity import AuthError, load_secrets, parse_key

    if os.environ.get("OCTOPUS_KEY"):
        return parse_key(os.environ["OCTOPUS_KEY"], "OCTOPUS_KEY")
    path = os.environ.get("OCTOPUS_SECRETS")
    if not path:
        return None
    try:
        return load_secrets(path).get(user)
    except AuthError as error:
        raise ClientError(str(error), EXIT_INVALID) from None


def normalize_namespace(namespace: str | None) -> str:
    ns = (namespace or os.environ.get("OCTOPUS_NAMESPACE") or DEFAULT_NAMESPACE).strip()
    return "/" + ns.strip("/") if ns.strip("/") else ""


@dataclass
class Submission:
    job_id: str
    accepted: bool
    final_state: int | None = None  # Job.STATE_*, once followed to the end
    summary: str = ""  # the rejection reason naming the field, or the results summary
    feedback: list[Any] = field(default_factory=list)


class OctopusClient:
    """One node (``octopus_cli_<pid>``) in a Context of its own, spun in a background thread."""

    def __init__(
        self,
        namespace: str | None = None,
        user: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        discovery_limit_s: float = DISCOVERY_LIMIT_S,
    ) -> None:
        self.namespace = normalize_namespace(namespace)
        self.user = user or default_user()
        self.key = user_key(self.user)
        self.timeout_s = timeout_s
        self.discovery_limit_s = discovery_limit_s
        self.context = Context()
        # no rclpy signal handlers: Ctrl-C stays a KeyboardInterrupt in the main thread
        rclpy.init(
            context=self.context,
            domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0")),
            signal_handler_options=SignalHandlerOptions.NO,
        )
        self.node = rclpy.create_node(f"octopus_cli_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        # rclpy's ActionClient registers a goal/result request only after sending it: an answer
        # handled in between is dropped. Sends hold this lock, and so does each spin_once.
        self._spin_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="octopus-cli-spin", daemon=True)
        self._thread.start()
        self._services: dict[str, Any] = {}
        self._action: ActionClient | None = None

    def _spin(self) -> None:
        try:
            while not self._stopping.is_set():
                with self._spin_lock:
                    self.executor.spin_once(timeout_sec=SPIN_SLICE_S)
        except Exception:  # noqa: BLE001 - the context went down under the spin: we are closing
            pass

    def close(self) -> None:
        # order matters: a spin thread left running aborts the process at exit
        self._stopping.set()
        self._thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> OctopusClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def name(self, relative: str) -> str:
        return f"{self.namespace}/{relative}"

    # ---- requests --------------------------------------------------------------------------------

    def _service(self, srv_type: Any, relative: str) -> Any:
        client = self._services.get(relative)
        if client is None:
            client = self.node.create_client(srv_type, self.name(relative))
            self._services[relative] = client
        self._find(client.service_is_ready, relative)
        return client

    def _find(self, is_ready: Callable[[], bool], relative: str) -> None:
        """Wait for the server of ``relative``: ``timeout_s``, and while a node of the lab is
        on the graph (the lab is up, discovery is slow) up to ``discovery_limit_s`` in all."""
        if _wait_ready(is_ready, self.timeout_s):
            return
        if not self._lab_on_graph():
            raise self._unavailable(relative)
        if not _wait_ready(is_ready, max(0.0, self.discovery_limit_s - self.timeout_s)):
            raise ClientError(
                f"{self.name(relative)} not found within {self.discovery_limit_s:g} s, though the "
                "lab's nodes are up: is the node that serves it running? (ros2 node list)"
            )

    def _lab_on_graph(self) -> bool:
        inside = f"{self.namespace}/"
        return any(
            f"{namespace.rstrip('/')}/".startswith(inside)
            for _name, namespace in self.node.get_node_names_and_namespaces()
        )

    def _unavailable(self, relative: str, waited_s: float | None = None) -> ClientError:
        return ClientError(
            f"nothing answered on {self.name(relative)} "
            f"within {waited_s or self.timeout_s:g} s: "
            "is the lab up? (octopus lab up)"
        )

    def _wait(self, future: Any, timeout: float) -> Any | None:
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            future.cancel()
            return None
        return future.result()

    def auth(self, action: str, fields: dict[str, Any]) -> str:
        """The request's signature with the user's key ("" without a key)."""
        from octopus_scheduler.service.identity import sign

        return sign(self.key, action, fields, self.user) if self.key else ""

    def call(
        self,
        srv_type: Any,
        relative: str,
        request: Any,
        signed: tuple[str, dict[str, Any]] | None = None,
    ) -> Any:
        """Call ``<namespace>/<relative>`` with an idempotent request.

        Re-sent every RESEND_S until one copy is answered (a lost first answer costs RESEND_S,
        not a whole timeout); ClientError after ``2 x timeout_s``. ``signed``: (action, fields)
        of a request the scheduler checks; every copy gets a fresh signature (a copy of a
        signed request would be refused as a replay).
        """
        client = self._service(srv_type, relative)
        deadline = time.monotonic() + 2 * self.timeout_s
        answered = threading.Event()
        sent: list[Any] = []
        try:
            while True:
                if signed is not None:
                    request.auth = self.auth(*signed)
                future = client.call_async(request)
                future.add_done_callback(lambda _f: answered.set())
                sent.append(future)
                left = deadline - time.monotonic()
                answered.wait(max(0.0, min(RESEND_S, left)))
                done = next((f for f in sent if f.done() and not f.cancelled()), None)
                if done is not None:
                    return done.result()
                if left <= RESEND_S:
                    raise self._unavailable(relative, 2 * self.timeout_s)
        finally:
            for future in sent:
                if not future.done():
                    future.cancel()  # drops it from the client's pending requests

    def list_jobs(self, owner: str = "", states: Iterable[int] = ()) -> list[Any]:
        request = ListJobs.Request(owner=owner, states=list(states))
        return list(self.call(ListJobs, "list_jobs", request).jobs)

    def get_job(self, job_id: str) -> Any:
        """The GetJob response; ClientError (exit 2) when there is no such job."""
        response = self.call(GetJob, "get_job", GetJob.Request(job_id=job_id))
        if not response.found:
            raise ClientError(response.message or f"no job {job_id}", EXIT_INVALID)
        return response

    def get_schedule(self, job_id: str = "") -> Any:
        return self.call(GetSchedule, "get_schedule", GetSchedule.Request(job_id=job_id)).schedule

    def set_estop(self, engaged: bool, reason: str = "") -> Any:
        """Engage or reset; returns the response.

        Sent once, never re-sent: a late copy of an earlier request must not land after a newer
        one (a delayed copy of a reset would release a stop engaged since; the e-stop bench saw a
        re-sent engage arrive after the reset that followed it)."""
        request = SetEmergencyStop.Request(engaged=engaged, reason=reason, source=self.user)
        fields = {"engaged": "true" if engaged else "false", "reason": reason}
        request.auth = self.auth("set_emergency_stop", fields)
        client = self._service(SetEmergencyStop, "set_emergency_stop")
        response = self._wait(client.call_async(request), self.timeout_s * 2)
        if response is None:
            raise self._unavailable("set_emergency_stop", self.timeout_s * 2)
        return response

    def clear_device_error(self, module: str, device: str) -> Any:
        """Tell a module, then the scheduler, that a device is fine again (idempotent).
        ``module`` is the module's name ("UV-Vis") or its node name ("uv_vis")."""
        from octopus_modules.ros.ros_conversions import node_name_for

        request = ClearDeviceError.Request(device=device, user=self.user)
        relative = f"modules/{node_name_for(module)}/clear_device_error"
        on_module = self.call(ClearDeviceError, relative, request)
        if not on_module.success:
            return on_module
        # the scheduler may hold the device out of order for failing too often in a row
        on_scheduler = self.call(
            ClearDeviceError,
            "clear_device_error",
            request,
            ("clear_device_error", {"device": device}),
        )
        on_module.success = on_scheduler.success
        on_module.message = f"{on_module.message}; scheduler: {on_scheduler.message}"
        return on_module

    def command(self, kind: str, job_id: str, reason: str = "") -> Any:
        """``hold``, ``resume`` or ``cancel`` a job; returns the JobCommand response.

        Not idempotent (a second hold is refused), so it is sent once; if its answer is lost, the
        job's state tells whether it took effect.
        """
        if kind not in ("hold", "resume", "cancel"):
            raise ValueError(kind)
        before = self.get_job(job_id)  # warm-up and a clear "no such job"
        client = self._service(JobCommand, f"{kind}_job")
        request = JobCommand.Request(
            job_id=job_id,
            user=self.user,
            reason=reason,
            auth=self.auth(f"{kind}_job", {"job_id": job_id}),
        )
        response = self._wait(client.call_async(request), self.timeout_s * 2)
        if response is not None:
            return response
        after = self.get_job(job_id).job
        took = {
            "hold": after.state == Job.STATE_HELD,
            "resume": before.job.state == Job.STATE_HELD and after.state != Job.STATE_HELD,
            "cancel": after.state == Job.STATE_CANCELLED,
        }[kind]
        if took:
            return JobCommand.Response(success=True, message=f"{kind}: done", job=after)
        raise self._unavailable(f"{kind}_job")

    # ---- submit ----------------------------------------------------------------------------------

    def submit(
        self,
        script: str,
        *,
        follow: bool = False,
        on_feedback: Callable[[Any], None] | None = None,
        poll_s: float = 2.0,
    ) -> Submission:
        """Submit a job script. Returns once the job id is known, or (``follow``) at its end.

        A rejected script comes back as ``accepted=False`` with the reason in ``summary``.
        ``on_feedback`` gets SubmitJob feedback messages, or Job messages when the goal's answer
        was lost and the job is followed through ``get_job`` instead.
        """
        known = {j.id for j in self.list_jobs(owner=self.user)}  # warm-up, and dedup below
        if self._action is None:
            self._action = submit_job_client(self.node, self.name("submit_job"))
        self._find(self._action.server_is_ready, "submit_job")
        submission = Submission(job_id="", accepted=True)
        news = threading.Event()

        def feedback(message: Any) -> None:
            submission.feedback.append(message.feedback)
            submission.job_id = submission.job_id or message.feedback.job_id
            news.set()
            if on_feedback is not None:
                on_feedback(message.feedback)

        auth = self.auth("submit_job", {"script": script})
        goal = SubmitJob.Goal(script=script, user=self.user, auth=auth)
        with self._spin_lock:
            goal_future = self._action.send_goal_async(goal, feedback_callback=feedback)
        handle = self._wait(goal_future, self.timeout_s * 2)
        if handle is None:  # the answer was lost: did the job arrive anyway? never submit twice
            return self._adopt_new_job(known, submission, follow, on_feedback, poll_s)
        if not handle.accepted:
            raise ClientError("the scheduler refused the goal", EXIT_FAILED)
        with self._spin_lock:
            result_future = handle.get_result_async()
        result_future.add_done_callback(lambda _f: news.set())
        # The job id comes with the first feedback, which is lost when the scheduler has not
        # matched our feedback reader yet (the next comes a second later). The job is stored
        # before its goal is accepted: one new job of ours in the list is this one.
        if not news.wait(FIRST_FEEDBACK_S) and not submission.job_id:
            new = [j.id for j in self.list_jobs(owner=self.user) if j.id not in known]
            if len(new) == 1 and not submission.job_id:
                submission.job_id = new[0]
        deadline = time.monotonic() + self.timeout_s * 2
        while not result_future.done() and (follow or not submission.job_id):
            if not news.wait(poll_s if follow else max(0.0, deadline - time.monotonic())):
                if not follow or (not submission.job_id and time.monotonic() > deadline):
                    # no feedback, no result: look the job up
                    return self._adopt_new_job(known, submission, follow, on_feedback, poll_s)
                if submission.job_id:  # a lost result must not hang us: ask for the state
                    job = self.get_job(submission.job_id).job
                    if job.state in ENDED_STATES and not news.wait(poll_s):
                        return self._ended(submission, job)
            news.clear()
        if result_future.done():
            result = result_future.result().result
            if not result.job_id:
                return Submission("", False, result.final_state, result.summary)
            submission.job_id = result.job_id
            submission.final_state = result.final_state
            submission.summary = result.summary
        return submission

    def _adopt_new_job(
        self,
        known: set[str],
        submission: Submission,
        follow: bool,
        on_progress: Callable[[Any], None] | None,
        poll_s: float,
    ) -> Submission:
        new = [j for j in self.list_jobs(owner=self.user) if j.id not in known]
        if not new:
            raise self._unavailable("submit_job")
        submission.job_id = new[-1].id  # newest first: the oldest new one is ours
        while follow:
            job = self.get_job(submission.job_id).job
            if on_progress is not None:
                on_progress(job)
            if job.state in ENDED_STATES:
                return self._ended(submission, job)
            time.sleep(poll_s)
        return submission

    @staticmethod
    def _ended(submission: Submission, job: Any) -> Submission:
        submission.final_state = job.state
        submission.summary = job.message
        return submission

    # ---- topics ----------------------------------------------------------------------------------

    def subscribe_schedule(self, callback: Callable[[Any], None]) -> Any:
        return self.node.create_subscription(Schedule, self.name("schedule"), callback, LATCHED)

    def subscribe_jobs(self, callback: Callable[[Any], None]) -> Any:
        return self.node.create_subscription(Job, self.name("jobs"), callback, RELIABLE)

    def subscribe_resources(self, callback: Callable[[Any], None]) -> Any:
        return self.node.create_subscription(
            ResourceState, self.name("resources"), callback, LATCHED
        )

    def subscribe_module_status(self, topic: str, callback: Callable[[Any], None]) -> Any:
        return self.node.create_subscription(ModuleStatus, topic, callback, RELIABLE)

    def subscribe_estop(self, callback: Callable[[Any], None]) -> Any:
        return self.node.create_subscription(
            EmergencyStop, self.name("emergency_stop"), callback, LATCHED
        )
