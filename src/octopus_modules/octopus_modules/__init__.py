"""OCTOPUS modules: one workstation each, configured by its module description.

In layers (imports go down only; docs/ARCHITECTURE.md): the description format, the clock and
the module factory at the top level; ``sim`` below ``drivers`` (simulated and serial back ends)
and ``emulators`` (serial test doubles); ``runtime`` (the module runtime without ROS); ``ros``
(the module node and its adapters). Imports nothing of the other OCTOPUS packages but the
interfaces.
"""
