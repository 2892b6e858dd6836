"""Vertical geometry of the Gantt in row units, shared by the Qt widget and the file export.

A device row is one unit tall; a standby row grows with its lanes. Both renderers scale these
units (pixels per unit in the widget, data units with an inverted y axis in matplotlib), so a
bar sits at the same relative place in both.
"""

from __future__ import annotations

from dataclasses import dataclass

from octopus_client.gantt.model import Bar, GanttModel, Row

DEVICE_BAR_INSET = 0.18  # space above and below an active bar, in row units
LANE_PITCH = 0.45  # vertical distance between standby lanes
LANE_HEIGHT = 0.32  # a standby bar is thinner than an active one
LANE_MARGIN = 0.12  # space above the first lane


def row_height(row: Row) -> float:
    if not row.is_standby:
        return 1.0
    return max(1.0, 2 * LANE_MARGIN + (row.lanes - 1) * LANE_PITCH + LANE_HEIGHT)


@dataclass(frozen=True)
class RowGeometry:
    """Top and height of each row (units, from the top of the plot) and the total height."""

    tops: tuple[float, ...]
    heights: tuple[float, ...]
    total: float

    @classmethod
    def of(cls, model: GanttModel) -> RowGeometry:
        tops: list[float] = []
        heights: list[float] = []
        y = 0.0
        for row in model.rows:
            tops.append(y)
            heights.append(row_height(row))
            y += heights[-1]
        return cls(tuple(tops), tuple(heights), y)

    def bar_span(self, model: GanttModel, bar: Bar) -> tuple[float, float]:
        """(top, height) of a bar in row units."""
        top = self.tops[bar.row]
        if model.rows[bar.row].is_standby:
            return top + LANE_MARGIN + bar.lane * LANE_PITCH, LANE_HEIGHT
        return top + DEVICE_BAR_INSET, 1.0 - 2 * DEVICE_BAR_INSET

    def row_at(self, y: float) -> int | None:
        for index, (top, height) in enumerate(zip(self.tops, self.heights, strict=True)):
            if top <= y < top + height:
                return index
        return None
