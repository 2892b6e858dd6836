"""The ROS 2 adapters of a module: the module node, its status topic and the message
conversions, and what every OCTOPUS node does the same way (ros_common).

Imports the runtime and everything below it.
"""
