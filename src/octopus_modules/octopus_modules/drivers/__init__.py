"""Device drivers: the back-end contract, kinds, simulated and serial back ends.

A package (not a namespace directory) so that ``find_packages`` installs it.
"""
