"""The module runtime without ROS: goals checked against the description, one worker per
device, the goal book, per-action timeouts, the module's state.

Imports the package's top-level modules (description, clock, expressions), drivers and sim;
never ros.
"""
