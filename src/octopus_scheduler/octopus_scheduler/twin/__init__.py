"""The digital twin: the discrete-event simulator, scenarios, the generator, the offline optimum
and the benchmarks.

No ROS. Imports the core only.
"""
