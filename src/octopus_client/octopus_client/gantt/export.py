"""PNG/SVG export of a :class:`GanttModel` with matplotlib, in the widget's visual language.

Uses ``matplotlib.figure.Figure`` directly (no pyplot): no global state, no GUI backend, safe to
call from a CLI or a test. Rows are one unit tall on an inverted y axis, as in the widget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter
from matplotlib.transforms import blended_transform_factory

from octopus_client.gantt.geometry import RowGeometry
from octopus_client.gantt.model import Bar, GanttModel, GanttStep, build_model
from octopus_client.gantt.palette import (
    ALT_ROW_COLOR,
    FAILED_COLOR,
    GRID_COLOR,
    NOW_COLOR,
    SEPARATOR_COLOR,
    TEXT_COLOR,
)
from octopus_client.gantt.timeaxis import format_time, tick_times

FORMATS: tuple[str, ...] = (".png", ".svg", ".pdf")
DPI = 120
PLOT_WIDTH_IN = 11.0
ROW_HEIGHT_IN = 0.32
TOP_IN = 0.55  # title and time labels
BOTTOM_IN = 0.35
LEGEND_ROW_IN = 0.22
LEGEND_COLUMNS = 5
CHAR_WIDTH_IN = 0.075  # rough width of a label character at the 9 pt font used
HOLLOW_TINT = 0.15
MODULE_LABEL_X = 0.008  # figure fraction
STYLE_KEY_ENTRIES = 4


def export_schedule(
    steps: Iterable[GanttStep],
    path: str | Path,
    *,
    now: float | None = None,
    module_devices: Mapping[str, Sequence[str]] | None = None,
    title: str | None = None,
) -> Path:
    """Build the model from step records and write it to ``path`` (.png, .svg or .pdf)."""
    return export_gantt(build_model(steps, now, module_devices), path, title=title)


def export_gantt(model: GanttModel, path: str | Path, *, title: str | None = None) -> Path:
    """Write ``model`` to ``path``; the format follows the suffix (.png, .svg or .pdf)."""
    return save_figure(render_figure(model, title=title), path)


def save_figure(figure: Figure, path: str | Path) -> Path:
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ValueError(f"{target}: the Gantt is written as {', '.join(FORMATS)} (by suffix)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # No bbox_inches="tight": the saved pixels then match the figure's own transforms.
    # SVG keeps text as text (searchable, editable) instead of glyph outlines.
    with rc_context({"svg.fonttype": "none"}):
        figure.savefig(target, dpi=figure.dpi, facecolor="white")
    return target


def render_figure(model: GanttModel, *, title: str | None = None) -> Figure:
    """Draw ``model`` on a new figure (one axes: x = time, y = row units, top row first)."""
    geometry = RowGeometry.of(model)
    rows_in = max(geometry.total, 1.0) * ROW_HEIGHT_IN
    legend_entries = len(model.jobs) + STYLE_KEY_ENTRIES if model.jobs else 0
    legend_rows = -(-legend_entries // LEGEND_COLUMNS)
    legend_in = legend_rows * LEGEND_ROW_IN + (0.12 if legend_rows else 0.0)
    labels_in = _label_width_in(model)
    width_in = PLOT_WIDTH_IN + labels_in + 0.3
    height_in = TOP_IN + rows_in + BOTTOM_IN + legend_in
    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    axes = figure.add_axes(
        (
            labels_in / width_in,
            (BOTTOM_IN + legend_in) / height_in,
            PLOT_WIDTH_IN / width_in,
            rows_in / height_in,
        )
    )
    axes.set_xlim(model.t_min, model.t_max)
    axes.set_ylim(max(geometry.total, 1.0), 0.0)  # inverted: first row on top
    _draw_rows(axes, model, geometry)
    _draw_time_axis(axes, model)
    for bar in model.bars:
        _draw_bar(axes, model, geometry, bar)
    if model.now is not None:
        axes.axvline(model.now, color=NOW_COLOR, linewidth=1.6, zorder=5)
        axes.text(model.now, -0.01, "now", color=NOW_COLOR, ha="center", va="top",
                  fontsize=8, transform=blended_transform_factory(axes.transData, axes.transAxes),
                  clip_on=False)  # fmt: skip
    if model.jobs:
        handles = [Patch(facecolor=e.color, edgecolor=e.color, label=e.label) for e in model.jobs]
        handles += _style_key()
        figure.legend(
            handles=handles,
            loc="lower center",
            ncol=LEGEND_COLUMNS,
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )
    if model.is_empty:
        axes.text(0.5, 0.5, "No scheduled steps", ha="center", va="center",
                  transform=axes.transAxes, color=TEXT_COLOR)  # fmt: skip
    if title:
        figure.suptitle(title, fontsize=11, y=1.0 - 0.08 / height_in, va="top")
    return figure


def _label_width_in(model: GanttModel) -> float:
    module_chars = max((len(r.module) for r in model.rows), default=6)
    device_chars = max((len(r.label) for r in model.rows), default=6)
    return min(0.3 + (module_chars + device_chars) * CHAR_WIDTH_IN, 4.5)


def _draw_rows(axes: Axes, model: GanttModel, geometry: RowGeometry) -> None:
    centres = [
        top + height / 2 for top, height in zip(geometry.tops, geometry.heights, strict=True)
    ]
    for index, (top, height) in enumerate(zip(geometry.tops, geometry.heights, strict=True)):
        if index % 2:
            axes.axhspan(top, top + height, color=ALT_ROW_COLOR, zorder=0, linewidth=0)
    axes.yaxis.set_major_locator(FixedLocator(centres))
    axes.set_yticklabels(
        [r.label for r in model.rows], fontsize=9, color=TEXT_COLOR
    )  # set after the locator: one label per row
    for label, row in zip(axes.get_yticklabels(), model.rows, strict=True):
        if row.is_standby:
            label.set_fontstyle("italic")
    axes.tick_params(axis="y", length=0)
    # Module names in a column at the figure's left edge, centred on their group of rows.
    to_figure = blended_transform_factory(axes.figure.transFigure, axes.transData)
    for module, first, last in model.module_groups():
        top = geometry.tops[first]
        bottom = geometry.tops[last - 1] + geometry.heights[last - 1]
        axes.text(MODULE_LABEL_X, (top + bottom) / 2, module,
                  transform=to_figure, ha="left", va="center", fontsize=9, fontweight="bold",
                  color=TEXT_COLOR)  # fmt: skip
        if first:
            axes.axhline(top, color=SEPARATOR_COLOR, linewidth=0.8, zorder=1)


def _draw_time_axis(axes: Axes, model: GanttModel) -> None:
    ticks = tick_times(model.t_min, model.t_max, max_ticks=12)
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: format_time(t)))
    axes.xaxis.tick_top()
    axes.tick_params(axis="x", labelsize=8, colors=TEXT_COLOR)
    axes.grid(axis="x", color=GRID_COLOR, linewidth=0.6, zorder=0)
    axes.set_axisbelow(True)


def _draw_bar(axes: Axes, model: GanttModel, geometry: RowGeometry, bar: Bar) -> None:
    top, height = geometry.bar_span(model, bar)
    width = max(bar.end - bar.start, (model.t_max - model.t_min) * 1e-3)
    standby = model.rows[bar.row].is_standby
    failed = bar.step.state == "failed"
    style: dict[str, object] = {"zorder": 3, "linewidth": 1.0}
    if standby and bar.fill == "filled":
        style |= {"facecolor": "none", "edgecolor": bar.color, "hatch": "////"}
    elif standby:
        style |= {"facecolor": "none", "edgecolor": bar.color, "linestyle": "--"}
    elif bar.fill == "filled":
        style |= {"facecolor": bar.color, "edgecolor": _darker(bar.color), "linewidth": 0.6}
    else:
        style |= {"facecolor": _tint(bar.color), "edgecolor": bar.color, "linewidth": 1.6}
    if failed:
        style |= {"edgecolor": FAILED_COLOR, "linewidth": 2.0}
        if standby:
            style["facecolor"] = "none"
    axes.add_patch(Rectangle((bar.start, top), width, height, **style))


def _style_key() -> list[Patch]:
    """Legend entries that explain the bar styles (neutral grey, not a job colour)."""
    grey = "#6c757d"
    return [
        Patch(facecolor=grey, edgecolor=grey, label="ran (filled)"),
        Patch(facecolor=_tint(grey), edgecolor=grey, label="planned (hollow)"),
        Patch(facecolor="none", edgecolor=grey, hatch="////", label="standby"),
        Patch(facecolor=grey, edgecolor=FAILED_COLOR, linewidth=2.0, label="failed"),
    ]


def _darker(color: str) -> tuple[float, float, float]:
    """The edge of a filled bar: back-to-back steps of one job stay apart."""
    value = color.lstrip("#")
    return tuple(int(value[i : i + 2], 16) / 255 * 0.67 for i in (0, 2, 4))  # type: ignore[return-value]


def _tint(color: str) -> tuple[float, float, float]:
    value = color.lstrip("#")
    rgb = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    return tuple(1.0 + (c - 1.0) * HOLLOW_TINT for c in rgb)  # type: ignore[return-value]
