"""The scheduler core: the lab model, job scripts, events in, decisions out, the policies.

Plain Python, deterministic, no clock of its own. Imports nothing else of octopus_scheduler
(and nothing of ROS).
"""
