"""The scheduler as a service: the event-sourced LabService, its SQLite store, campaigns,
identity, notifications and the Dispatcher of module goals.

No ROS. Imports the core and octopus_modules' description and clock; never the twin or the ROS
adapters.
"""
