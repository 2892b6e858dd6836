"""Test double, labelled as such: a stand-in server for the SubmitJob and ExecuteTask contracts.

The real scheduler and module nodes come with their own packages; this peer exists so that the
interface package's test can show two processes exchanging goals, feedback, results and cancels
over real DDS with nothing but the generated types. SubmitJob: three feedback messages, then a
result whose job id is derived from the script. ExecuteTask: feedback every 50 ms until
cancelled or 100 rounds have passed.
"""

from __future__ import annotations

import hashlib
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from octopus_interfaces.action import ExecuteTask, SubmitJob
from octopus_interfaces.msg import Job


class ContractPeer(Node):
    def __init__(self) -> None:
        super().__init__("contract_peer")
        ActionServer(self, SubmitJob, "/octopus/submit_job", self.submit_job)
        ActionServer(
            self,
            ExecuteTask,
            "/octopus/modules/test/execute_task",
            self.execute_task,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda handle: CancelResponse.ACCEPT,
        )
        self.get_logger().info("contract peer ready")

    def submit_job(self, handle: object) -> SubmitJob.Result:
        goal = handle.request
        job_id = "J" + hashlib.sha256(goal.script.encode()).hexdigest()[:6]
        for step in range(3):
            feedback = SubmitJob.Feedback(job_id=job_id, state=Job.STATE_RUNNING)
            feedback.progress = (step + 1) / 3
            handle.publish_feedback(feedback)
            time.sleep(0.05)
        handle.succeed()
        return SubmitJob.Result(
            job_id=job_id, final_state=Job.STATE_SUCCEEDED, summary=f"owner: {goal.user}"
        )

    def execute_task(self, handle: object) -> ExecuteTask.Result:
        for round_index in range(100):
            if handle.is_cancel_requested:
                handle.canceled()
                return ExecuteTask.Result(success=False, error="cancelled")
            handle.publish_feedback(
                ExecuteTask.Feedback(current_action="Test.Wait", action_index=round_index)
            )
            time.sleep(0.05)
        handle.succeed()
        return ExecuteTask.Result(success=True)


def main() -> None:
    rclpy.init()
    node = ContractPeer()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
