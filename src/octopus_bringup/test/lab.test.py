"""A launch_testing test of lab.launch.py: run it with `launch_test` (as ROS 2's add_launch_test
does); test_launch_lab.py runs it under pytest.

    launch_test src/octopus_bringup/test/lab.test.py lab:=LAB.yaml time_scale:=1200 policy:=fcfs

It includes the installed lab.launch.py with those arguments, waits until the scheduler is ready
and has heard every module's heartbeat, submits a job with the client library and follows it to
its end. After the launch has shut down (SIGINT to every process, as Ctrl-C), every process must
have exited 0 without a traceback.
"""

import time
import unittest
from pathlib import Path

import launch_testing
import launch_testing.actions
import launch_testing.asserts
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from octopus_testing.lab import SYNTHESIS_JOB

# the modules of the demo lab (src/octopus_bringup/config/demo_lab.yaml)
MODULES = ("BatchSynthesis", "UV-Vis", "SolidState", "ElectroChemicalRDE")
ARGUMENTS = ("lab", "time_scale", "policy")


def generate_test_description():
    launch_file = Path(get_package_share_directory("octopus_bringup")) / "launch" / "lab.launch.py"
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(launch_file)),
        launch_arguments={name: LaunchConfiguration(name) for name in ARGUMENTS}.items(),
    )
    declared = [DeclareLaunchArgument(name, default_value="") for name in ARGUMENTS]
    return (
        LaunchDescription([*declared, include, launch_testing.actions.ReadyToTest()]),
        {"launched_at": time.monotonic()},
    )


class TestLabUp(unittest.TestCase):
    def test_every_node_ready_then_a_job_runs_to_its_end(self, proc_output, launched_at):
        from octopus_client.client import OctopusClient
        from octopus_interfaces.msg import Job

        proc_output.assertWaitFor("scheduler ready: lab demo", timeout=60)
        for module in MODULES:
            proc_output.assertWaitFor(f"module {module} is up", timeout=60)
        bring_up_s = time.monotonic() - launched_at

        started = time.monotonic()
        with OctopusClient(namespace="/octopus", user="alice", timeout_s=15.0) as client:
            submission = client.submit(
                SYNTHESIS_JOB.format(name="launched", react=30), follow=True, poll_s=0.5
            )
            job = client.get_job(submission.job_id).job
        job_s = time.monotonic() - started
        self.assertTrue(submission.accepted, submission.summary)
        self.assertEqual(submission.final_state, Job.STATE_SUCCEEDED, submission.summary)
        self.assertEqual(job.owner, "alice")
        print(f"MEASURED bring-up until every node ready: {bring_up_s:.1f} s", flush=True)
        print(f"MEASURED one job end to end: {job_s:.1f} s", flush=True)


@launch_testing.post_shutdown_test()
class TestLabDown(unittest.TestCase):
    def test_every_process_exited_cleanly(self, proc_info, proc_output):
        self.assertEqual(len(proc_info.process_names()), 1 + len(MODULES))
        launch_testing.asserts.assertExitCodes(proc_info)  # 0 for every process
        for io in proc_output:
            text = io.text.decode(errors="replace")
            self.assertNotIn("Traceback", text, f"{io.process_name}: {text}")
