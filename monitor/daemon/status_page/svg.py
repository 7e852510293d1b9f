"""A rule's chart as SVG, drawn on the server: value, threshold, hysteresis band, events.

Colours come from the page's stylesheet (classes, no inline styles), so the page's
Content-Security-Policy needs no ``unsafe-inline`` and the red/green convention is one CSS
variable.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape

from monitor import present
from monitor.daemon.status_page.chart import RuleWindow

W, H = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 90, 12, 24


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def chart_svg(window: RuleWindow, rule_id: str, texts: dict[str, str]) -> str:
    """The chart of one rule's window; a short note instead when nothing is stored yet."""
    pts = window.points()
    if not pts:
        return f'<p class="nochart">{escape(texts["no_data"])}</p>'
    band = [(x, p.threshold * (1 - window.hysteresis)) for x, p in pts]
    marks = [(window.x_of(e.time), e) for e in window.events]
    values = [p.value for _, p in pts] + [p.threshold for _, p in pts] + [b for _, b in band]
    values += [e.value for x, e in marks if x is not None]
    lo, hi = float(min(values)), float(max(values))
    pad = (hi - lo) * 0.08 or hi * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    x_max = max(x for x, _ in pts) or 1.0

    def sx(x: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * x / x_max

    def sy(v: Decimal | float) -> float:
        return TOP + (H - TOP - BOTTOM) * (hi - float(v)) / (hi - lo)

    cur = window.currency
    out = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" data-rule="{escape(rule_id)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(rule_id)}</title>'
    ]
    for i in range(4):
        v = lo + (hi - lo) * (i + 0.5) / 4
        y = sy(v)
        label = present.money_short(Decimal(str(round(v, 0))), cur)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{_fmt(y + 4)}">{escape(label)}</text>'
        )
    upper = " ".join(f"{_fmt(sx(x))},{_fmt(sy(p.threshold))}" for x, p in pts)
    lower = " ".join(f"{_fmt(sx(x))},{_fmt(sy(b))}" for x, b in reversed(band))
    out.append(
        f'<polygon class="band" points="{upper} {lower}"><title>'
        f"{escape(texts['band'])}</title></polygon>"
    )
    if len(pts) == 1:
        upper = (
            f"{LEFT},{_fmt(sy(pts[0][1].threshold))} {W - RIGHT},{_fmt(sy(pts[0][1].threshold))}"
        )
    out.append(f'<polyline class="threshold" points="{upper}"/>')
    last = pts[-1][1]
    label = present.money_short(last.threshold, cur)
    out.append(
        f'<text class="thr-label" x="{W - RIGHT + 4}" y="{_fmt(sy(last.threshold) + 4)}">'
        f"{escape(label)}</text>"
    )
    line = " ".join(f"{_fmt(sx(x))},{_fmt(sy(p.value))}" for x, p in pts)
    out.append(f'<polyline class="value" points="{line}"/>')
    out.append(
        f'<circle class="now" cx="{_fmt(sx(pts[-1][0]))}" cy="{_fmt(sy(last.value))}" r="3"/>'
    )
    for x, event in marks:
        if x is None:
            continue
        cx, cy = sx(x), sy(event.value)
        tip = (
            f"{texts[event.kind]} {present.local_time(event.time, str(window.zone))} "
            f"{present.money_long(event.value, cur)}"
        )
        if event.kind == "crossed_above":
            shape = f'<path d="M{_fmt(cx)},{_fmt(cy - 7)} l6,10 h-12 z"/>'
        elif event.kind == "crossed_below":
            shape = f'<path d="M{_fmt(cx)},{_fmt(cy + 7)} l6,-10 h-12 z"/>'
        else:
            shape = f'<circle cx="{_fmt(cx)}" cy="{_fmt(cy)}" r="5"/>'
        out.append(
            f'<g class="mark {event.kind}" data-kind="{event.kind}" '
            f'data-event="{escape(event.id)}">'
            f"{shape}<title>{escape(tip)}</title></g>"
        )
    first, newest = pts[0][1].time, last.time
    zone = str(window.zone)
    out.append(
        f'<text class="axis" x="{LEFT}" y="{H - 6}">{escape(present.local_time(first, zone)[:10])}'
        f'</text><text class="axis end" x="{W - RIGHT}" y="{H - 6}">'
        f"{escape(present.local_time(newest, zone))}</text></svg>"
    )
    return "".join(out)
