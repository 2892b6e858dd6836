"""The ROS 2 adapters of the scheduler: the node, its SubmitJob action, its state topics and the
message conversions. Message in, call the service, message out.

Imports the service and the core.
"""
