"""Charts of market cap against each rule's line (matplotlib, Agg, the optional ``plot`` extra).

``chart_data`` turns rule series into plain lists (pure, no matplotlib); ``render`` hands those
very lists to matplotlib, so tests can compare what was plotted with the engine's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor import present
from monitor.errors import ConfigError, InputError
from monitor.history.backtest import BacktestResult
from monitor.history.series import RuleSeries, rule_series
from monitor.settings import Settings
from monitor.store import Store

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 1200, 700, 100
INSTALL_HINT = "install the plot extra: pip install 'mcap-monitor[plot]'"
SHORT = {
    "baseline": "start",
    "touched_above": "touch",
    "crossed_above": "▲ above",
    "crossed_below": "▼ below",
}
MARKERS = {
    "baseline": "s",
    "touched_above": "o",
    "crossed_above": "^",
    "crossed_below": "v",
}
VALUE_COLOUR, QUOTE_COLOUR = "#0072b2", "#cc79a7"
BAND_COLOUR, BAND_EDGE = "#f0b94a", "#a06d00"
NARROW_RIGHT, LIST_X = 0.74, 0.815  # room for the numbered events' key on the right
KINDS = {
    "baseline": "start",
    "touched_above": "touched (day high)",
    "crossed_above": "crossed above",
    "crossed_below": "crossed below",
}
COLOURS = {
    "baseline": "#555555",
    "touched_above": "#e69f00",
    "crossed_above": "#009e73",
    "crossed_below": "#d55e00",
}


@dataclass
class Panel:
    """One rule's chart: exchange-local times and the floats handed to matplotlib."""

    rule_id: str
    label: str
    currency: str
    quote_currency: str
    hysteresis: float
    timezone: str
    rank: bool = False
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    band_low: list[float] = field(default_factory=list)
    quote_values: list[float] | None = None
    events: list[tuple[datetime, float, str]] = field(default_factory=list)


@dataclass
class Chart:
    """Everything drawn: title lines and one panel per rule that has data."""

    title: str
    subtitle: str
    panels: list[Panel]
    notes: list[str] = field(default_factory=list)
    empty: str = "no evaluated observations"  # shown instead of panels when there are none
    figure: Any = field(default=None, repr=False)  # the drawn matplotlib Figure


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    # naive exchange-local times: the axis reads in the exchange's clock
    return moment.astimezone(zone).replace(tzinfo=None)


def chart_data(series: list[RuleSeries], title: str, subtitle: str) -> Chart:
    """Plain data for every rule with at least one evaluated observation."""
    chart = Chart(title, subtitle, [])
    for s in series:
        if not s.points:
            if s.unevaluated:
                chart.notes.append(f"{s.label}: not evaluated ({s.unevaluated} observations)")
            continue
        zone = ZoneInfo(s.timezone)
        h = s.rule.hysteresis
        rank = s.rule.top_n is not None
        panel = Panel(s.rule.id, s.label, s.currency, s.quote_currency, float(h), s.timezone, rank)
        for p in s.points:
            panel.times.append(_local(p.time, zone))
            panel.values.append(float(p.value))
            panel.thresholds.append(float(p.threshold))
            panel.band_low.append(float(p.threshold * (Decimal(1) - h)))
        if s.currency != s.quote_currency:
            panel.quote_values = [float(p.quote_value) for p in s.points]
        for e in s.events:
            panel.events.append((_local(e.time, zone), float(e.value), e.kind))
        chart.panels.append(panel)
    return chart


def _money_axis(currency: str) -> object:
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _pos: object) -> str:
        # tick values arrive as numpy floats; whole billions are plenty for an axis
        if round(float(value) / 1e9) == 0:
            return "0"
        return present.money_short(Decimal(round(float(value) / 1e9)) * 10**9, currency)

    return FuncFormatter(label)


FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def chart_format(path: Path) -> str:
    """The file format named by ``path``'s extension; anything but png, svg, pdf is refused."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        what = f"extension {path.suffix!r}" if path.suffix else "no extension"
        raise InputError(
            f"cannot draw a chart to a file with {what}", f"--plot {path}",
            "name the file .png, .svg or .pdf",
        )  # fmt: skip
    return fmt


def require_matplotlib(path: Path | None = None) -> None:
    """Fail before any work is done when ``--plot`` cannot be honoured."""
    if path is not None:
        chart_format(path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib, which is not installed", "--plot", INSTALL_HINT
        ) from None


def _inline_text(kind: str, when: datetime, long_span: bool) -> str:
    return (
        f"{SHORT.get(kind, kind)} {when:%Y-%m-%d}"
        if long_span
        else f"{SHORT.get(kind, kind)} {when:%d %b}"
    )


def _event_marks(panel: Panel, numbered: bool) -> list[tuple[datetime, float, str, str]]:
    long_span = panel.times[-1] - panel.times[0] > timedelta(days=300)
    return [
        (when, value, str(n) if numbered else _inline_text(kind, when, long_span),
         COLOURS.get(kind, "black"))
        for n, (when, value, kind) in enumerate(panel.events, 1)
    ]  # fmt: skip


def _draw_panel(ax: Any, panel: Panel) -> None:
    ax.plot(panel.times, panel.values, color=VALUE_COLOUR, lw=1.4, zorder=3)
    times, lines, lows = panel.times, panel.thresholds, panel.band_low
    if len(times) == 1:  # one observation: its line and band still span a day around it
        half = timedelta(hours=12)
        times, lines, lows = [times[0] - half, times[0] + half], lines * 2, lows * 2
    ax.plot(times, lines, color="#333333", lw=1.1, ls="--", drawstyle="steps-post")
    ax.fill_between(times, lows, lines, step="post", color=BAND_COLOUR, alpha=0.45, lw=0)
    ax.plot(times, lows, color=BAND_EDGE, lw=0.8, ls=":", drawstyle="steps-post")
    for when, value, kind in panel.events:
        ax.plot(
            [when], [value], marker=MARKERS.get(kind, "o"), ms=6, color=COLOURS.get(kind, "k"),
            ls="none", zorder=4,
        )  # fmt: skip
    ax.margins(y=0.18)
    ax.yaxis.set_major_formatter(_money_axis(panel.currency))
    ax.set_ylabel(f"{panel.label}\n({panel.currency})", fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    if panel.quote_values is None:
        return
    twin = ax.twinx()
    # a wide ribbon on the same vertical scale (at the median FX rate): it shows behind the
    # value line and drifts from it as the rate moves; the right axis reads it in quote money
    twin.plot(panel.times, panel.quote_values, color=QUOTE_COLOUR, lw=6, alpha=0.35)
    ratios = sorted(q / v for q, v in zip(panel.quote_values, panel.values, strict=True))
    ratio = ratios[len(ratios) // 2]
    low, high = ax.get_ylim()
    twin.set_ylim(low * ratio, high * ratio)
    twin.yaxis.set_major_formatter(_money_axis(panel.quote_currency))
    twin.set_ylabel(f"{panel.quote_currency} value\n(right axis, pink ribbon)", fontsize=8)
    twin.tick_params(labelsize=7, colors="#7a3d63")
    ax.set_zorder(twin.get_zorder() + 1)  # labels and the value line above the ribbon
    ax.patch.set_visible(False)


def _x_axis(ax: Any, panels: list[Panel]) -> None:
    from matplotlib import dates as mdates

    locator = mdates.AutoDateLocator(maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
            locator,
            formats=["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
            zero_formats=["", "%Y", "%d %b", "%d %b", "%H:%M", "%H:%M"],
            offset_formats=[""] * 6,  # the span is in the axis label, not a "2025-Mar" corner
        )
    )
    first = min(p.times[0] for p in panels)
    last = max(p.times[-1] for p in panels)
    zones = ", ".join(sorted({p.timezone for p in panels}))
    span = f"{first:%Y-%m-%d}" + ("" if first.date() == last.date() else f" to {last:%Y-%m-%d}")
    ax.set_xlabel(f"{span}, exchange time ({zones})", fontsize=8)


def _legend(fig: Figure, panels: list[Panel]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    bands = sorted({p.hysteresis for p in panels})
    line = "milestone line / top-N cutoff" if any(p.rank for p in panels) else "milestone line"
    band = (
        f"hysteresis band {bands[0]:.1%} below the line" if len(bands) == 1 else "hysteresis band"
    )
    handles: list[Any] = [
        Line2D([], [], color=VALUE_COLOUR, lw=1.4, label="market cap"),
        Line2D([], [], color="#333333", lw=1.1, ls="--", label=line),
        Patch(color=BAND_COLOUR, alpha=0.45, label=band),
    ]
    quotes = sorted({p.quote_currency for p in panels if p.quote_values is not None})
    if quotes:
        label = f"{'/'.join(quotes)} value (right axis)"
        handles.append(Line2D([], [], color=QUOTE_COLOUR, lw=6, alpha=0.35, label=label))
    kinds = {k for p in panels for (_, _, k) in p.events}
    handles += [
        Line2D([], [], marker=MARKERS[k], color=COLOURS[k], ls="none", label=KINDS[k])
        for k in SHORT if k in kinds
    ]  # fmt: skip
    fig.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.935), ncol=len(handles),
        fontsize=8, frameon=False, handlelength=1.8, columnspacing=1.4,
    )  # fmt: skip


def _key_rows(panel: Panel) -> list[tuple[str, str]]:
    """The numbered events' key: ``3  ▲ above 2025-02-06  HK$1.018T``, in the marker colour."""

    def money(value: float) -> str:
        return present.money_short(Decimal(str(value)).quantize(Decimal(10) ** 8), panel.currency)

    return [
        (f"{n:>2}  {SHORT.get(k, k)} {w:%Y-%m-%d}  {money(v)}", COLOURS.get(k, "black"))
        for n, (w, v, k) in enumerate(panel.events, 1)
    ]


def _labels(fig: Figure, axes: list[Any], panels: list[Panel]) -> None:
    """Inline labels when they all fit; else numbers on the chart and a key beside it."""
    from monitor.history.chart_labels import key, place

    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    drawn: list[Any] = []
    for ax, panel in zip(axes, panels, strict=True):
        marks = _event_marks(panel, numbered=False)
        notes = place(ax, renderer, marks, (panel.times, panel.values))
        drawn += notes
        if len(notes) < len(marks):
            break
    else:
        return
    for note in drawn:
        note.remove()
    fig.subplots_adjust(right=NARROW_RIGHT)
    for ax, panel in zip(axes, panels, strict=True):
        place(
            ax, renderer, _event_marks(panel, numbered=True), (panel.times, panel.values), far=True
        )
        key(fig, ax, _key_rows(panel), x=LIST_X, line=11 / HEIGHT)


def render(chart: Chart, path: Path) -> Figure:
    """Draw ``chart`` as a 1200x700 PNG, SVG or PDF (by ``path``'s extension); return it."""
    fmt = chart_format(path)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib, which is not installed", "--plot", INSTALL_HINT
        ) from None
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.suptitle(chart.title, fontsize=10, y=0.985)
    fig.text(0.5, 0.948, chart.subtitle, ha="center", fontsize=8, color="#333333")
    panels = chart.panels
    if not panels:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, chart.empty, ha="center", va="center", fontsize=11)
        ax.set_axis_off()
    else:
        axes: Any = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        fig.subplots_adjust(left=0.09, right=0.91, top=0.86, bottom=0.1, hspace=0.22)
        for ax, panel in zip(axes, panels, strict=True):
            _draw_panel(ax, panel)
        _x_axis(axes[-1], panels)
        _legend(fig, panels)
        _labels(fig, list(axes), panels)
    if chart.notes:
        fig.text(0.01, 0.01, "; ".join(chart.notes), fontsize=7, color="#555555")
    metadata = {"png": None, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    try:
        fig.savefig(path, dpi=DPI, format=fmt, metadata=metadata)
    except OSError as exc:
        raise InputError(
            f"cannot write chart: {exc.strerror}", str(path), "check the path"
        ) from None
    return fig


def _span(series: list[RuleSeries]) -> str:
    times = [p.time for s in series for p in s.points]
    if not times:
        return "(no observations)"
    return f"{min(times):%Y-%m-%d} to {max(times):%Y-%m-%d}"


def _names(settings: Settings, series: list[RuleSeries]) -> str:
    symbols = sorted({s.rule.symbol for s in series if s.points})
    symbols = symbols or sorted({s.rule.symbol for s in series})  # an empty chart: the rules'
    return ", ".join(f"{sym} {settings.symbol(sym).display_name}" for sym in symbols) or "-"


def plot_backtest(result: BacktestResult, path: Path, display_name: str = "") -> Chart:
    """Chart a backtest of one symbol; title names the period and data sources."""
    series = [s for s in result.series if s.rule.symbol == result.symbol]
    name = f"{result.symbol} {display_name}".strip()
    title = f"{name}: market cap, backtest {result.start} to {result.end} ({result.interval} bars)"
    subtitle = "; ".join(f"{k}: {v}" for k, v in result.sources.items())
    chart = chart_data(series, title, subtitle)
    chart.figure = render(chart, path)
    return chart


def _store_sources(store: Store) -> str:
    prices, shares = (
        " / ".join(part.strip() for part in text.split(",")) or "-"
        for text in store.observation_sources()
    )  # the store lists distinct sources comma-separated
    return f"prices: {prices}; shares: {shares}"


def plot_replay(settings: Settings, store: Store, path: Path) -> Chart:
    """Chart everything in ``store`` (a replayed tape)."""
    series = rule_series(settings, store)
    title = f"{_names(settings, series)}: market cap, replay {_span(series)}"
    chart = chart_data(series, title, _store_sources(store))
    chart.figure = render(chart, path)
    return chart


def plot_report(
    settings: Settings, store: Store, path: Path, since: datetime | None = None
) -> Chart:
    """Chart the daemon's stored observations and events since ``since``."""
    series = rule_series(settings, store, since)
    title = f"{_names(settings, series)}: market cap, daemon history {_span(series)}"
    chart = chart_data(series, title, _store_sources(store))
    if since is not None:
        chart.empty = (
            f"no evaluated observations since {since:%Y-%m-%d %H:%M} UTC\n"
            "(report --since 90d, 52w or a YYYY-MM-DD date looks further back)"
        )
    chart.figure = render(chart, path)
    return chart
