"""Which rows of a block of observations can move a rule: float bounds, a wide margin.

A replay's rows mostly change nothing: a rule below its line stays below while the value
and the day high stay under the threshold; above it, while the value stays at or over
threshold x keep (``rules.is_quiet``). Over a block's columns (numpy), this finds, for each
rule, the rows where that may fail, computed in floats and widened by ``MARGIN``:

- ``up``: value >= threshold x (1 - MARGIN) (a rule below may cross or start a streak),
- ``touch``: day-high value >= threshold x (1 - MARGIN) (a rule below may touch the line),
- ``down``: value < threshold x keep x (1 + MARGIN) (a rule above may fall below).

Every other row is certainly quiet for that rule in that position: the float value of
price x shares x rate(s) / threshold is within a few units of 1e-16 of the exact one
(a handful of roundings of 53-bit floats), and Decimal's 28 digits are closer still, so no
row within 1e-9 of a line is ever left out. The engine steps the rows it finds exactly, in
Decimal, and only those; the results are those of evaluating every row (property-tested).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

MARGIN = 1e-9

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def may_rise(ratio: Floats) -> Bools:
    """Value (or day-high value) over threshold >= 1 - MARGIN: a rule below may move."""
    out: Bools = ratio >= 1.0 - MARGIN  # NaN (no day high) never may
    return out


def may_fall(ratio: Floats, keep: Floats | float) -> Bools:
    """Value over threshold < keep x (1 + MARGIN): a rule above may move."""
    out: Bools = ratio < keep * (1.0 + MARGIN)
    return out


class LineRows:
    """Where one rule may move, by the position it is in: sorted row positions, each kind
    found on first use (a rule above its line never asks for the rows that may cross up)."""

    def __init__(self, ratio: Floats | None, high: Floats | None, keep: float, n: int) -> None:
        # None: no float can stand for the rule, every row is stepped exactly
        self._ratio, self._high, self._keep, self._n = ratio, high, keep, n
        self._up: Ints | None = None
        self._touch: Ints | None = None
        self._down: Ints | None = None

    def _rows(self, kind: str) -> Ints:
        ratio, high = self._ratio, self._high
        if ratio is None or high is None:
            return np.arange(self._n, dtype=np.int64)
        if kind == "up":
            return np.flatnonzero(may_rise(ratio))
        if kind == "touch":
            return np.flatnonzero(may_rise(high))
        return np.flatnonzero(may_fall(ratio, self._keep))

    @property
    def up(self) -> Ints:
        """Value >= threshold, give or take the margin: a rule below may cross up."""
        if self._up is None:
            self._up = self._rows("up")
        return self._up

    @property
    def touch(self) -> Ints:
        """Day-high value >= threshold: a rule below may touch the line."""
        if self._touch is None:
            self._touch = self._rows("touch")
        return self._touch

    @property
    def down(self) -> Ints:
        """Value < threshold x keep: a rule above may fall below."""
        if self._down is None:
            self._down = self._rows("down")
        return self._down

    def next_move(self, below: bool, start: int, touch_from: int, end: int) -> int:
        """The first row at or after ``start`` that may move the rule (``end`` if none);
        touches count only from ``touch_from`` (the day after the last touch)."""
        if not below:
            return _first(self.down, start, end)
        return min(_first(self.up, start, end), _first(self.touch, max(start, touch_from), end))


def _first(rows: Ints, start: int, end: int) -> int:
    at = bisect_left(rows, start)  # a few element reads, cheaper than a numpy call
    return int(rows[at]) if at < len(rows) else end


def effective_rates(fx: Sequence[Floats], legs: Sequence[tuple[int, bool]]) -> Floats | float:
    """The rate quote currency -> rule currency of every row, from its legs (``path_legs``):
    each a column of rates or its inverse."""
    out: Floats | float = 1.0
    for column, inverted in legs:
        out = out / fx[column] if inverted else out * fx[column]
    return out


def line_rows(
    cap: Floats,
    high_cap: Floats,
    rate: Floats | float,
    threshold: Floats | float,
    keep: float,
) -> LineRows:
    """The rows of one rule (``cap`` and ``high_cap``: price and day high x shares, in the
    quote currency; NaN where there is no day high)."""
    n = len(cap)
    if isinstance(threshold, float) and not 0.0 < threshold < np.inf:
        return LineRows(None, None, keep, n)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = rate / threshold
        ratio = cap * scale
        high = high_cap * scale
    if not np.isfinite(ratio).all():
        return LineRows(None, None, keep, n)
    return LineRows(ratio, high, keep, n)
