"""Colours of the Gantt: a stable colour per job and the fixed marks (now-line, failure)."""

from __future__ import annotations

import re
import zlib

# Twelve colours that stay apart on screen and in print; red is kept out so that the
# now-line and failure marks never look like a job.
JOB_PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#7b4173",
)
NOW_COLOR = "#d62728"
FAILED_COLOR = "#b00020"
GRID_COLOR = "#d0d0d0"
TEXT_COLOR = "#202020"
BACKGROUND_COLOR = "#ffffff"
ALT_ROW_COLOR = "#f4f6f8"
LABEL_BACKGROUND_COLOR = "#e9ecef"
SEPARATOR_COLOR = "#9aa0a6"  # between modules

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def job_color(job_id: str) -> str:
    """The job's colour, the same in every process and on every update.

    Scheduler ids end in a counter ("J0007"), so consecutive jobs get consecutive palette
    entries and never share a colour among any twelve in a row; other ids fall back to a
    CRC (not ``hash()``, which is salted per process).
    """
    match = _TRAILING_NUMBER.search(job_id)
    index = int(match.group(1)) - 1 if match else zlib.crc32(job_id.encode("utf-8"))
    return JOB_PALETTE[index % len(JOB_PALETTE)]


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) in 0..255."""
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
