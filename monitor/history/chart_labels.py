"""Event labels that never overlap: greedy placement on the rendered text extents.

Each label is tried at a list of offsets from its marker (above, below, further out with a
leader line); an offset is taken only if the label's rendered box stays inside the axes and
clear of every label and marker already placed, preferring offsets whose box the value line
does not cross. A label that finds no place is not drawn, and the caller is told so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

PAD = 2.0  # pixels kept clear around each label box
MARKER = 5.0  # half the size of an event marker, in pixels


Box = tuple[float, float, float, float]


def _needs_leader(dx: float, dy: float) -> bool:
    return abs(dy) > 16 or abs(dx) > 6


def _segment_hits(seg: Box, box: Box) -> bool:
    """Whether the segment (x0, y0, x1, y1) passes through ``box`` (sampled)."""
    x0, y0, x1, y1 = seg
    for i in range(33):
        t = i / 32
        x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
        if box[0] < x < box[2] and box[1] < y < box[3]:
            return True
    return False


def _boxes_overlap(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _crosses_line(box: tuple[float, float, float, float], xs: Any, ys: Any) -> bool:
    """Whether the polyline (display pixels) passes through ``box`` (sampled densely)."""
    import numpy as np

    x0, y0, x1, y1 = box
    inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    if bool(inside.any()):
        return True
    # segments spanning the box without a vertex in it: sample along those segments
    lo, hi = np.minimum(xs[:-1], xs[1:]), np.maximum(xs[:-1], xs[1:])
    for i in np.nonzero((hi >= x0) & (lo <= x1))[0]:
        t = np.linspace(0.0, 1.0, 24)
        px = xs[i] + (xs[i + 1] - xs[i]) * t
        py = ys[i] + (ys[i + 1] - ys[i]) * t
        if bool(((px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)).any()):
            return True
    return False


def _offsets(far: bool) -> list[tuple[float, float]]:
    rows = [10, -16, 22, -28, 34, -40, 46, -52]
    if far:
        rows += [58, -64, 70, -76, 82, -88, 94, -100]
    sides = [6.0, -6.0, 26.0, -26.0] if far else [6.0, -6.0]
    return [(dx, float(dy)) for dy in rows for dx in sides]


def place(
    ax: Any,
    renderer: Any,
    marks: Sequence[tuple[datetime, float, str, str]],
    line: tuple[Sequence[datetime], Sequence[float]],
    *,
    far: bool = False,
    fontsize: float = 7,
) -> list[Any]:
    """Annotate ``marks`` (time, value, text, colour); return the annotations drawn.

    The result is shorter than ``marks`` when some label found no free place; every returned
    annotation's box is clear of the others' (and of all markers) by ``PAD`` pixels.
    """
    import numpy as np
    from matplotlib import dates as mdates

    ax.get_xlim(), ax.get_ylim()  # settle autoscaled limits: transData must be final
    frame = ax.get_window_extent(renderer)
    limits = (frame.x0, frame.y0, frame.x1, frame.y1)
    num: Any = mdates.date2num  # untyped in matplotlib's stubs
    pts = ax.transData.transform(
        np.column_stack([num(list(line[0])), np.asarray(line[1], dtype=float)])
    )
    xs, ys = pts[:, 0], pts[:, 1]
    taken: list[Box] = []
    for when, value, _text, _colour in marks:
        mx, my = ax.transData.transform((num(when), value))
        taken.append((mx - MARKER, my - MARKER, mx + MARKER, my + MARKER))
    leaders: list[tuple[float, float, float, float]] = []
    drawn = []
    for when, value, text, colour in marks:
        mx, my = ax.transData.transform((num(when), value))
        note = ax.annotate(
            text, (when, value), xytext=(0, 0), textcoords="offset points", fontsize=fontsize,
            color=colour, va="center", annotation_clip=False,
        )  # fmt: skip
        best: tuple[tuple[int, int], float, float, Box, Box | None] | None = None
        for dx, dy in _offsets(far):
            note.set_horizontalalignment("left" if dx > 0 else "right")
            note.xyann = (dx, dy)
            ext = note.get_window_extent(renderer)
            box = (ext.x0 - PAD, ext.y0 - PAD, ext.x1 + PAD, ext.y1 + PAD)
            inside = (
                box[0] >= limits[0] and box[2] <= limits[2]
                and box[1] >= limits[1] and box[3] <= limits[3]
            )  # fmt: skip
            if not inside or any(_boxes_overlap(box, other) for other in taken):
                continue
            leader = None
            if _needs_leader(dx, dy):
                edge = ext.x0 if dx > 0 else ext.x1
                leader = (mx, my, edge, (ext.y0 + ext.y1) / 2)
            crossings = sum(_segment_hits(seg, box) for seg in leaders)
            if leader is not None:
                crossings += sum(_segment_hits(leader, other) for other in taken[len(marks) :])
            score = (crossings, int(_crosses_line(box, xs, ys)))  # leaders through labels: worst
            if best is None or score < best[0]:
                best = (score, dx, dy, box, leader)
            if score == (0, 0):
                break
        note.remove()
        if best is None:
            continue
        _score, dx, dy, box, leader = best
        arrow = None
        if leader is not None:
            arrow = {
                "arrowstyle": "-", "color": colour, "lw": 0.6, "shrinkA": 0, "shrinkB": 4,
                "relpos": (0.0 if dx > 0 else 1.0, 0.5),
            }  # fmt: skip
            leaders.append(leader)
        note = ax.annotate(
            text, (when, value), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
            color=colour, va="center", ha="left" if dx > 0 else "right",
            annotation_clip=False, arrowprops=arrow,
        )  # fmt: skip
        taken.append(box)
        drawn.append(note)
    return drawn


def key(fig: Any, ax: Any, rows: Sequence[tuple[str, str]], *, x: float, line: float) -> None:
    """A key of numbered labels (text, colour), one per line from the top of ``ax`` down, at
    figure-fraction ``x``; what does not fit beside the panel ends in "... and N more"."""
    box = ax.get_position()
    room = max(1, int(box.height / line))
    shown = list(rows)
    if len(shown) > room:
        rest = len(shown) - room + 1
        shown = [*shown[: room - 1], (f"    … and {rest} more", "#555555")]
    for i, (text, colour) in enumerate(shown):
        fig.text(x, box.y1 - i * line, text, fontsize=7, color=colour, va="top", family="monospace")
