"""The live Gantt of the lab: a ROS-free model, a Qt widget, a file export, ROS adapters.

Import the Qt/matplotlib/ROS parts from their modules (``widget``, ``export``, ``messages``,
``live``, ``rqt_plugin``); this package root only exposes the plain-data model so that it
imports without any GUI or ROS library.
"""

from __future__ import annotations

from octopus_client.gantt.model import Bar, GanttModel, GanttStep, JobEntry, Row, build_model

__all__ = ["Bar", "GanttModel", "GanttStep", "JobEntry", "Row", "build_model"]
