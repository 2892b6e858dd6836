"""Qt widget that paints a :class:`GanttModel`; works inside rqt and standalone.

Written against python_qt_binding so the same class runs in rqt (which picks the binding) and in
``octopus gantt --live``. Drawing is done with integer rectangles and no antialiasing for bars,
so that what is drawn lands on predictable pixels (the tests check them).
"""

from __future__ import annotations

from python_qt_binding.QtCore import QEvent, QPoint, QRect, QSize, Qt
from python_qt_binding.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from python_qt_binding.QtWidgets import QToolTip, QWidget

from octopus_client.gantt.geometry import RowGeometry
from octopus_client.gantt.hover import describe_step
from octopus_client.gantt.model import Bar, GanttModel, JobEntry, build_model
from octopus_client.gantt.palette import (
    ALT_ROW_COLOR,
    BACKGROUND_COLOR,
    FAILED_COLOR,
    GRID_COLOR,
    LABEL_BACKGROUND_COLOR,
    NOW_COLOR,
    SEPARATOR_COLOR,
    TEXT_COLOR,
)
from octopus_client.gantt.timeaxis import format_time, tick_times

MIN_LABEL_WIDTH = 60
MAX_LABEL_WIDTH = 220
LABEL_PADDING = 12
AXIS_HEIGHT = 24
LEGEND_LINE_HEIGHT = 20
LEGEND_MARGIN = 6
RIGHT_MARGIN = 14
ROW_PIXELS = 24  # pixels per row unit
HOLLOW_BORDER = 2
FAILED_BORDER = 2
NOW_LINE_WIDTH = 2
HOLLOW_TINT = 0.15
FILLED_EDGE_DARKER = (
    150  # percent, QColor.darker  # how much of the job colour shows inside a planned bar
)


class GanttWidget(QWidget):
    """Paints the schedule; hover a bar for its job/task/step details."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model: GanttModel = build_model([])
        self._geometry = RowGeometry.of(self._model)
        self.empty_text = "No schedule yet"
        self._module_width, self._device_width = MIN_LABEL_WIDTH, MIN_LABEL_WIDTH
        self.setMouseTracking(True)
        self.setMinimumWidth(2 * MIN_LABEL_WIDTH + 200)

    # -- model ---------------------------------------------------------------------------------
    @property
    def model(self) -> GanttModel:
        return self._model

    def set_model(self, model: GanttModel) -> None:
        self._model = model
        self._geometry = RowGeometry.of(model)
        self._module_width, self._device_width = self._label_widths()
        self.setMinimumHeight(self.preferred_height())
        self.updateGeometry()
        self.update()

    # -- pixel geometry (public: the tests and tooltips use it) -------------------------------
    def preferred_height(self) -> int:
        layout = self._legend_layout(max(self.width(), 1))
        legend = (layout[-1][2] + 1) * LEGEND_LINE_HEIGHT + 8 if layout else 0
        rows = self._geometry.total
        return AXIS_HEIGHT + int(round(rows * ROW_PIXELS)) + legend + 2

    def _label_widths(self) -> tuple[int, int]:
        """Label columns wide enough for the names (bounded), so long names are rarely elided."""
        bold = QFont(self.font())
        bold.setBold(True)
        module_metrics, device_metrics = QFontMetrics(bold), QFontMetrics(self.font())

        def fit(metrics: QFontMetrics, texts: list[str]) -> int:
            widest = max((_text_width(metrics, t) for t in texts), default=0)
            return min(max(widest + LABEL_PADDING, MIN_LABEL_WIDTH), MAX_LABEL_WIDTH)

        rows = self._model.rows
        return fit(module_metrics, [r.module for r in rows]), fit(
            device_metrics, [r.label for r in rows]
        )

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(900, self.preferred_height())

    def plot_rect(self) -> QRect:
        left = self._module_width + self._device_width
        height = int(round(self._geometry.total * ROW_PIXELS))
        width = max(self.width() - left - RIGHT_MARGIN, 1)
        return QRect(left, AXIS_HEIGHT, width, height)

    def x_of(self, t: float) -> int:
        plot = self.plot_rect()
        span = self._model.t_max - self._model.t_min
        return plot.left() + int(round((t - self._model.t_min) / span * plot.width()))

    def y_of(self, units: float) -> int:
        return AXIS_HEIGHT + int(round(units * ROW_PIXELS))

    def row_rect(self, row: int) -> QRect:
        plot = self.plot_rect()
        top = self.y_of(self._geometry.tops[row])
        bottom = self.y_of(self._geometry.tops[row] + self._geometry.heights[row])
        return QRect(plot.left(), top, plot.width(), bottom - top)

    def bar_rect(self, bar: Bar) -> QRect:
        top_units, height_units = self._geometry.bar_span(self._model, bar)
        left, right = self.x_of(bar.start), self.x_of(bar.end)
        top, bottom = self.y_of(top_units), self.y_of(top_units + height_units)
        return QRect(left, top, max(right - left, 2), max(bottom - top, 2))

    def bar_at(self, x: int, y: int) -> Bar | None:
        # Later bars are painted on top, so they win.
        for bar in reversed(self._model.bars):
            if self.bar_rect(bar).adjusted(-1, -1, 1, 1).contains(QPoint(x, y)):
                return bar
        return None

    def tooltip_at(self, x: int, y: int) -> str | None:
        bar = self.bar_at(x, y)
        return None if bar is None else describe_step(bar.step, self._model.now)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self.setMinimumHeight(self.preferred_height())  # the legend wraps with the width

    # -- events --------------------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.ToolTip:
            pos = event.pos()
            text = self.tooltip_at(pos.x(), pos.y())
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    # -- painting ------------------------------------------------------------------------------
    def _paint(self, painter: QPainter) -> None:
        painter.fillRect(self.rect(), QColor(BACKGROUND_COLOR))
        if not self._model.rows:
            painter.setPen(QColor(TEXT_COLOR))
            painter.drawText(self.rect(), Qt.AlignCenter, self.empty_text)
            return
        self._paint_rows(painter)
        self._paint_axis(painter)
        for bar in self._model.bars:
            self._paint_bar(painter, bar)
        self._paint_now(painter)
        self._paint_legend(painter)

    def _paint_rows(self, painter: QPainter) -> None:
        plot = self.plot_rect()
        label_font = QFont(self.font())
        standby_font = QFont(self.font())
        standby_font.setItalic(True)
        module_font = QFont(self.font())
        module_font.setBold(True)
        painter.fillRect(
            QRect(0, plot.top(), plot.left(), plot.height()), QColor(LABEL_BACKGROUND_COLOR)
        )
        for index, row in enumerate(self._model.rows):
            rect = self.row_rect(index)
            if index % 2:
                painter.fillRect(rect, QColor(ALT_ROW_COLOR))
            painter.setFont(standby_font if row.is_standby else label_font)
            painter.setPen(QColor(TEXT_COLOR))
            label_rect = QRect(
                self._module_width + 4, rect.top(), self._device_width - 8, rect.height()
            )
            text = painter.fontMetrics().elidedText(row.label, Qt.ElideRight, label_rect.width())
            painter.drawText(label_rect, Qt.AlignVCenter | Qt.AlignLeft, text)
        painter.setFont(module_font)
        for module, first, last in self._model.module_groups():
            top = self.row_rect(first).top()
            bottom = self.row_rect(last - 1).bottom()
            painter.setPen(QColor(TEXT_COLOR))
            box = QRect(4, top, self._module_width - 8, bottom - top + 1)
            text = painter.fontMetrics().elidedText(module, Qt.ElideRight, box.width())
            painter.drawText(box, Qt.AlignVCenter | Qt.AlignLeft, text)
            painter.fillRect(QRect(0, top, self.width(), 1), QColor(SEPARATOR_COLOR))
        painter.setFont(self.font())

    def _paint_axis(self, painter: QPainter) -> None:
        plot = self.plot_rect()
        max_ticks = max(plot.width() // 90, 2)
        painter.setPen(QColor(TEXT_COLOR))
        now_x = None if self._model.now is None else self.x_of(self._model.now)
        last_right = -1
        for t in tick_times(self._model.t_min, self._model.t_max, max_ticks):
            x = self.x_of(t)
            painter.fillRect(QRect(x, plot.top(), 1, plot.height()), QColor(GRID_COLOR))
            if now_x is not None and abs(x - now_x) < 70:
                continue  # the "now" label goes there
            label = QRect(min(x - 45, self.width() - 92), 2, 90, AXIS_HEIGHT - 4)
            if label.left() <= last_right:
                continue  # pushed left at the right edge: would overlap its neighbour
            painter.drawText(label, Qt.AlignCenter, format_time(t))
            last_right = label.right()

    def _paint_bar(self, painter: QPainter, bar: Bar) -> None:
        rect = self.bar_rect(bar)
        color = QColor(bar.color)
        standby = self._model.rows[bar.row].is_standby
        if standby and bar.fill == "filled":
            # Standby work occupies slots, not devices: a hatched bar, lighter than active work.
            painter.fillRect(rect, QBrush(color, Qt.BDiagPattern))
            _frame(painter, rect, color, 1)
        elif standby:
            painter.setPen(QPen(color, 1, Qt.DashLine))
            painter.setBrush(Qt.NoBrush)
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
        elif bar.fill == "filled":
            painter.fillRect(rect, color)
            if rect.width() > 4:  # back-to-back steps of one job stay apart
                _frame(painter, rect, color.darker(FILLED_EDGE_DARKER), 1)
        else:
            painter.fillRect(rect, _tint(color, HOLLOW_TINT))
            _frame(painter, rect, color, HOLLOW_BORDER)
        if bar.step.state == "failed":
            _frame(painter, rect, QColor(FAILED_COLOR), FAILED_BORDER)

    def _paint_now(self, painter: QPainter) -> None:
        now = self._model.now
        if now is None:
            return
        plot = self.plot_rect()
        x = self.x_of(now)
        painter.fillRect(
            QRect(x - NOW_LINE_WIDTH // 2, plot.top(), NOW_LINE_WIDTH, plot.height()),
            QColor(NOW_COLOR),
        )
        painter.setPen(QColor(NOW_COLOR))
        painter.drawText(QRect(x - 30, 2, 60, AXIS_HEIGHT - 4), Qt.AlignCenter, "now")

    def _paint_legend(self, painter: QPainter) -> None:
        top = self.plot_rect().bottom() + 6
        painter.setPen(QColor(TEXT_COLOR))
        for entry, x, line, width in self._legend_layout(self.width()):
            y = top + line * LEGEND_LINE_HEIGHT
            painter.fillRect(QRect(x, y + 3, 12, 12), QColor(entry.color))
            painter.drawText(
                QRect(x + 16, y, width + 4, 18), Qt.AlignVCenter | Qt.AlignLeft, entry.label
            )

    def _legend_layout(self, width: int) -> list[tuple[JobEntry, int, int, int]]:
        """(entry, x, line, text width) of each legend entry, wrapped to ``width``."""
        metrics = QFontMetrics(self.font())
        placed: list[tuple[JobEntry, int, int, int]] = []
        x, line = LEGEND_MARGIN, 0
        for entry in self._model.jobs:
            text_width = _text_width(metrics, entry.label)
            if x > LEGEND_MARGIN and x + 16 + text_width > width - LEGEND_MARGIN:
                x, line = LEGEND_MARGIN, line + 1
            placed.append((entry, x, line, text_width))
            x += 16 + text_width + 14
        return placed


def _frame(painter: QPainter, rect: QRect, color: QColor, width: int) -> None:
    """An inside border of ``width`` pixels, drawn as four filled strips (pixel-exact)."""
    painter.fillRect(QRect(rect.left(), rect.top(), rect.width(), width), color)
    painter.fillRect(QRect(rect.left(), rect.bottom() - width + 1, rect.width(), width), color)
    painter.fillRect(QRect(rect.left(), rect.top(), width, rect.height()), color)
    painter.fillRect(QRect(rect.right() - width + 1, rect.top(), width, rect.height()), color)


def _text_width(metrics: QFontMetrics, text: str) -> int:
    # horizontalAdvance is Qt >= 5.11; rqt on older Qt only has width().
    if hasattr(metrics, "horizontalAdvance"):
        return int(metrics.horizontalAdvance(text))
    return int(metrics.width(text))


def _tint(color: QColor, amount: float) -> QColor:
    """``color`` blended over white."""
    return QColor(
        int(round(255 + (color.red() - 255) * amount)),
        int(round(255 + (color.green() - 255) * amount)),
        int(round(255 + (color.blue() - 255) * amount)),
    )
