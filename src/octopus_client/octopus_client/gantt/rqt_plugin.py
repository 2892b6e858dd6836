"""rqt plugin wrapping the schedule view (declared in the package's plugin.xml).

Only this module imports rqt. rqt (rqt_gui_py) owns and spins the node it hands over as
``context.node``, on its own thread: snapshots reach the GUI through the view's signal bridge.
"""

from __future__ import annotations

from typing import Any

from rqt_gui_py.plugin import Plugin

from octopus_client.gantt.ros_io import SCHEDULE_TOPIC, subscribe_schedule
from octopus_client.gantt.view import ScheduleView

TOPIC_KEY = "topic"
HISTORY_KEY = "history_s"


class GanttPlugin(Plugin):
    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.setObjectName("OctopusGantt")
        self._node = context.node
        self._topic = SCHEDULE_TOPIC
        self._view = ScheduleView()
        self._view.setObjectName("OctopusGanttView")
        title = "OCTOPUS schedule"
        if context.serial_number() > 1:  # several instances in one rqt
            title += f" ({context.serial_number()})"
        self._view.setWindowTitle(title)
        self._subscription: Any = subscribe_schedule(
            self._node, self._view.post_snapshot, self._topic
        )
        context.add_widget(self._view)

    @property
    def view(self) -> ScheduleView:
        return self._view

    @property
    def topic(self) -> str:
        return self._topic

    def shutdown_plugin(self) -> None:
        self._view.stop()
        self._unsubscribe()

    def save_settings(self, plugin_settings: Any, instance_settings: Any) -> None:
        instance_settings.set_value(TOPIC_KEY, self._topic)
        history = self._view.history_s
        instance_settings.set_value(HISTORY_KEY, "" if history is None else str(history))

    def restore_settings(self, plugin_settings: Any, instance_settings: Any) -> None:
        topic = str(instance_settings.value(TOPIC_KEY, SCHEDULE_TOPIC) or SCHEDULE_TOPIC)
        if topic != self._topic:
            self._unsubscribe()
            self._topic = topic
            self._subscription = subscribe_schedule(
                self._node, self._view.post_snapshot, self._topic
            )
        history = str(instance_settings.value(HISTORY_KEY, "") or "")
        try:
            self._view.set_history_s(float(history) if history else None)
        except ValueError:  # a hand-edited perspective file: keep the default
            self._view.set_history_s(None)

    def _unsubscribe(self) -> None:
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None
