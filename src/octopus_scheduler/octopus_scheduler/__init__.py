"""The OCTOPUS scheduler, in layers (imports go down only; docs/ARCHITECTURE.md):

- ``core``: the lab model, job scripts, events in, decisions out, the policies. No ROS.
- ``service``: the event-sourced LabService, its store, campaigns, identity, notifications and
  the Dispatcher of module goals. No ROS.
- ``twin``: the digital twin (simulator, scenarios, generator, offline optimum, benchmarks).
  No ROS.
- ``ros``: the scheduler node and its adapters.

It may import ``octopus_modules``' description format, clock and ROS helpers, never its node.
"""
