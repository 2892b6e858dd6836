"""Bring up an OCTOPUS lab: the scheduler and one node per module of a lab description.

    ros2 launch octopus_bringup lab.launch.py [lab:=FILE] [time_scale:=600] [policy:=planner]
        [namespace:=/octopus] [respawn:=true]

Which nodes start, and with which parameters, is decided by octopus_bringup.nodes.node_specs
(tested without ROS); this file only turns its answer into launch_ros Node actions.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from octopus_bringup.nodes import default_lab_file, node_specs
from octopus_scheduler.service.lab_config import load_lab_config


def _nodes(context, *args, **kwargs):
    def argument(name):
        return LaunchConfiguration(name).perform(context)

    config = load_lab_config(argument("lab") or default_lab_file())
    scale = argument("time_scale")
    specs = node_specs(
        config,
        time_scale=float(scale) if scale else None,
        policy=argument("policy") or None,
        namespace=argument("namespace") or None,
    )
    respawn = argument("respawn").lower() in ("true", "1", "yes")
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            namespace=spec.namespace,
            # as -p arguments: launch_ros writes a parameter dict to a temporary file that it
            # never deletes (one per node and launch, in /tmp)
            ros_arguments=spec.parameter_arguments(),
            output="screen",
            emulate_tty=True,
            respawn=respawn,  # a crashed node comes back, as under `octopus lab up`
        )
        for spec in specs
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("lab", default_value="", description="Lab description YAML"),
            DeclareLaunchArgument(
                "time_scale", default_value="", description="Override the lab's time scale"
            ),
            DeclareLaunchArgument(
                "policy",
                default_value="",
                description="Override the policy: fcfs, backfill, closed_packing or planner",
            ),
            DeclareLaunchArgument(
                "namespace", default_value="", description="Override the lab's ROS namespace"
            ),
            DeclareLaunchArgument(
                "respawn", default_value="false", description="Restart nodes that exit"
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
