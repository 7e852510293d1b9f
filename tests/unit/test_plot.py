"""Charts: the data handed to matplotlib equals the engine's values; the PNG is 1200x700; a
clear message when matplotlib is missing. Data: the bundled Xiaomi tape (real 1810.HK closes
and ECB rates, see monitor/data and tests/fixtures/data/SOURCES.md)."""

from __future__ import annotations

import struct
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from monitor import bootstrap
from monitor.core.events import Event
from monitor.errors import ConfigError
from monitor.history.plot import chart_data, plot_replay, render
from monitor.service import Engine
from monitor.settings import Settings, load_settings
from monitor.sources.tape import TapeReader
from monitor.store import Store

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "mcap-monitor.toml"


@pytest.fixture
def replayed() -> tuple[Settings, Store, list[Event]]:
    settings, _ = load_settings(CONFIG)
    store = Store.open(None)
    result = Engine(settings, store).process(TapeReader(bootstrap.BUNDLED_TAPE), 0.0)
    return settings, store, list(result.events)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_replay_chart_is_a_1200x700_png(
    replayed: tuple[Settings, Store, list[Event]], tmp_path: Path
) -> None:
    settings, store, _ = replayed
    out = tmp_path / "chart.png"
    chart = plot_replay(settings, store, out)
    assert png_size(out) == (1200, 700)
    assert [p.rule_id for p in chart.panels] == ["hkd-1t", "cny-1t"]
    assert chart.notes == ["global top 100: not evaluated (32 observations)"]
    assert "1810.HK Xiaomi" in chart.title and "2025-01-20 to 2025-03-10" in chart.title


def test_plotted_values_are_the_engines_values(
    replayed: tuple[Settings, Store, list[Event]], tmp_path: Path
) -> None:
    settings, store, events = replayed
    chart = plot_replay(settings, store, tmp_path / "chart.png")
    rows = list(TapeReader(bootstrap.BUNDLED_TAPE))
    hkd, cny = chart.panels
    # every point: close x shares (x the row's ECB rate), exactly as the engine values it
    assert hkd.values == [float(r.price * 25_105_000_000) for r in rows]
    cny_rate = [next(f.rate for f in r.fx if f.quote == "CNY") for r in rows]
    assert cny.values == [
        float(r.price * 25_105_000_000 * x) for r, x in zip(rows, cny_rate, strict=True)
    ]
    assert hkd.thresholds == [1e12] * len(rows)
    assert hkd.band_low == [float(Decimal(10) ** 12 * Decimal("0.99"))] * len(rows)
    assert cny.quote_values == hkd.values
    # event markers sit on the engine's own event values (day-high value for touches)
    engine_marks = [(e.rule_id, float(e.value), e.kind) for e in events]
    plotted = [(p.rule_id, v, k) for p in chart.panels for (_, v, k) in p.events]
    assert sorted(plotted) == sorted(engine_marks)


def test_render_hands_exactly_those_lists_to_matplotlib(
    replayed: tuple[Settings, Store, list[Event]], tmp_path: Path
) -> None:
    from monitor.history.backtest import rule_series

    settings, store, _ = replayed
    chart = chart_data(rule_series(settings, store), "t", "s")
    fig = render(chart, tmp_path / "c.png")
    value_lines = [ax.lines[0] for ax in fig.axes[: len(chart.panels)]]
    for line, panel in zip(value_lines, chart.panels, strict=True):
        assert list(line.get_ydata()) == panel.values
        assert list(line.get_xdata()) == panel.times
    assert tuple(fig.get_size_inches() * fig.dpi) == (1200, 700)


def test_without_matplotlib_the_error_names_the_extra(
    replayed: tuple[Settings, Store, list[Event]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store, _ = replayed
    # None in sys.modules makes the import fail as if the package were absent
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigError) as info:
        plot_replay(settings, store, tmp_path / "c.png")
    assert "pip install 'mcap-monitor[plot]'" in str(info.value)
    assert not (tmp_path / "c.png").exists()


def test_empty_store_still_draws_a_labelled_chart(tmp_path: Path) -> None:
    settings, _ = load_settings(CONFIG)
    out = tmp_path / "empty.png"
    chart = plot_replay(settings, Store.open(None), out)
    assert chart.panels == []
    assert png_size(out) == (1200, 700)


@pytest.mark.parametrize(("name", "fmt"), [("a.png", "png"), ("a.SVG", "svg"), ("a.pdf", "pdf")])
def test_the_extension_names_the_format(name: str, fmt: str) -> None:
    from monitor.history.plot import chart_format

    assert chart_format(Path(name)) == fmt


@pytest.mark.parametrize("name", ["a.jpg", "a", "a.png.txt"])
def test_other_extensions_are_input_errors(name: str) -> None:
    from monitor.errors import InputError
    from monitor.history.plot import chart_format

    with pytest.raises(InputError) as info:
        chart_format(Path(name))
    assert info.value.exit_code == 2 and ".png, .svg or .pdf" in str(info.value)


def test_labels_of_events_on_one_spot_never_overlap() -> None:
    # thirty events on the same day and value: each label either finds its own place or is
    # left out (and reported by the shorter result), never drawn over another
    from datetime import datetime, timedelta

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from monitor.history.chart_labels import place

    fig = Figure(figsize=(6, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    times = [datetime(2025, 1, 1) + timedelta(days=d) for d in range(60)]
    ax.plot(times, [float(d) for d in range(60)])
    marks = [(times[30], 30.0, f"label number {n}", "black") for n in range(30)]
    drawn = place(ax, fig.canvas.get_renderer(), marks, (times, [float(d) for d in range(60)]))
    assert 0 < len(drawn) < len(marks)
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in drawn]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not (a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1)
    assert len(ax.texts) == len(drawn)  # the ones that found no place are not left behind
