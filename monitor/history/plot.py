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
        panel = Panel(s.rule.id, s.label, s.currency, s.quote_currency, float(h))
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
        return present.money_short(Decimal(round(float(value) / 1e9)) * 10**9, currency)

    return FuncFormatter(label)


def require_matplotlib() -> None:
    """Fail before any work is done when ``--plot`` cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib, which is not installed", "--plot", INSTALL_HINT
        ) from None


def render(chart: Chart, path: Path) -> Figure:
    """Draw ``chart`` to a 1200x700 PNG at ``path``; return the figure for inspection."""
    try:
        from matplotlib import dates as mdates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib, which is not installed", "--plot", INSTALL_HINT
        ) from None
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.suptitle(chart.title + "\n" + chart.subtitle, fontsize=10)
    panels = chart.panels
    if not panels:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no evaluated observations", ha="center", va="center")
        ax.set_axis_off()
    axes: Any = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0] if panels else []
    for ax, panel in zip(axes, panels, strict=True):
        ax.plot(panel.times, panel.values, color="#0072b2", lw=1.4, label=f"{panel.currency}")
        ax.plot(
            panel.times, panel.thresholds, color="#444444", lw=1, ls="--", drawstyle="steps-post"
        )
        ax.fill_between(
            panel.times, panel.band_low, panel.thresholds, step="post", color="#999999",
            alpha=0.2, lw=0, label=f"hysteresis {panel.hysteresis:.1%}",
        )  # fmt: skip
        long_span = panel.times[-1] - panel.times[0] > timedelta(days=300)
        stamp = "%Y-%m-%d" if long_span else "%m-%d"
        for n, (when, value, kind) in enumerate(panel.events):
            colour = COLOURS.get(kind, "black")
            ax.plot([when], [value], marker="o", ms=5, color=colour, ls="none")
            ax.annotate(
                f"{SHORT.get(kind, kind)} {when:{stamp}}", (when, value),
                xytext=(4, 8 if n % 2 == 0 else -12), textcoords="offset points",
                fontsize=7, color=colour,
            )  # fmt: skip
        ax.yaxis.set_major_formatter(_money_axis(panel.currency))
        ax.set_ylabel(f"{panel.label}\n({panel.currency})", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
        if panel.quote_values is not None:
            twin = ax.twinx()
            twin.plot(panel.times, panel.quote_values, color="#999999", lw=0.8, ls=":")
            # the same vertical scale at the median FX rate, so both axes read off one line
            ratios = sorted(q / v for q, v in zip(panel.quote_values, panel.values, strict=True))
            ratio = ratios[len(ratios) // 2]
            low, high = ax.get_ylim()
            twin.set_ylim(low * ratio, high * ratio)
            twin.yaxis.set_major_formatter(_money_axis(panel.quote_currency))
            twin.set_ylabel(f"{panel.quote_currency} (dotted)", fontsize=8, color="#777777")
            twin.tick_params(labelsize=7, colors="#777777")
    if panels:
        bottom = axes[-1]
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(
            mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        )
    if chart.notes:
        fig.text(0.01, 0.01, "; ".join(chart.notes), fontsize=7, color="#777777")
    fig.subplots_adjust(left=0.09, right=0.92, top=0.9, bottom=0.08, hspace=0.25)
    try:
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as exc:
        raise InputError(
            f"cannot write chart: {exc.strerror}", str(path), "check the path"
        ) from None
    return fig


def _span(series: list[RuleSeries]) -> str:
    times = [p.time for s in series for p in s.points]
    if not times:
        return "no data"
    return f"{min(times):%Y-%m-%d} to {max(times):%Y-%m-%d}"


def _names(settings: Settings, series: list[RuleSeries]) -> str:
    symbols = sorted({s.rule.symbol for s in series if s.points})
    return ", ".join(f"{sym} {settings.symbol(sym).display_name}" for sym in symbols) or "-"


def plot_backtest(result: BacktestResult, path: Path) -> Chart:
    """Chart a backtest of one symbol; title names the period and data sources."""
    series = [s for s in result.series if s.rule.symbol == result.symbol]
    name = series[0].rule.symbol if series else result.symbol
    title = f"{name}: market cap, backtest {result.start} to {result.end} ({result.interval} bars)"
    subtitle = "; ".join(f"{k}: {v}" for k, v in result.sources.items())
    chart = chart_data(series, title, subtitle)
    render(chart, path)
    return chart


def _store_sources(store: Store) -> str:
    prices, shares = store.observation_sources()
    return f"prices: {prices or '-'}; shares: {shares or '-'}"


def plot_replay(settings: Settings, store: Store, path: Path) -> Chart:
    """Chart everything in ``store`` (a replayed tape)."""
    series = rule_series(settings, store)
    title = f"{_names(settings, series)}: market cap, replay {_span(series)}"
    chart = chart_data(series, title, _store_sources(store))
    render(chart, path)
    return chart


def plot_report(
    settings: Settings, store: Store, path: Path, since: datetime | None = None
) -> Chart:
    """Chart the daemon's stored observations and events since ``since``."""
    series = rule_series(settings, store, since)
    title = f"{_names(settings, series)}: market cap, daemon history {_span(series)}"
    chart = chart_data(series, title, _store_sources(store))
    render(chart, path)
    return chart
