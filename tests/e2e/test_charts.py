"""Charts as a user gets them: ``--plot`` writes the format its extension names (or refuses with
exit 2), says "wrote chart", and the drawn chart is readable: no two labels overlap (checked on
matplotlib's rendered text extents), the hysteresis band and the right-axis HKD ribbon show in
the pixels, and a Jan-Mar axis reads in days and months, not "2025-Mar".

Data: the bundled Xiaomi tape (monitor/data/PROVENANCE.md) and the real 1810.HK daily Yahoo
history 2020-2025 with the ECB reference rates in ``tests/fixtures/data`` (see its README.md).
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_CONFIG, REPO, run_cli

from monitor.history.plot import BAND_COLOUR, QUOTE_COLOUR, Chart, plot_replay, plot_report
from monitor.settings import load_settings
from monitor.store import Store

pytest.importorskip("matplotlib")
from matplotlib.text import Text

DATA = REPO / "tests" / "fixtures" / "data"
PRICES = DATA / "1810.HK_daily_2020-2025_yahoo.csv"
ECB = DATA / "ecb_eurofxref-hist_to_2025-05-09.csv"
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF-"}


# --- the --plot option, run as a user runs it -------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_replay_plot_writes_the_format_its_extension_names(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"chart.{fmt}"
    proc = run_cli("replay", "--plot", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote chart {out}" in proc.stderr.splitlines()
    assert out.read_bytes().startswith(MAGIC[fmt])
    if fmt == "png":
        assert struct.unpack(">II", out.read_bytes()[16:24]) == (1200, 700)
    if fmt == "svg":
        assert "<svg" in out.read_text(encoding="utf-8")[:2000]


@pytest.mark.parametrize("name", ["chart.jpg", "chart"])
def test_an_unsupported_extension_is_refused_before_any_work(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    proc = run_cli("replay", "--plot", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: cannot draw a chart to a file with")
    assert ".png, .svg or .pdf" in lines[0]
    assert proc.stdout == ""  # refused before the replay ran
    assert not out.exists()


def test_backtest_plot_refuses_a_bad_extension_before_reading_prices(tmp_path: Path) -> None:
    proc = run_cli(
        "backtest", "1810.HK", "--from", "2025-01-20", "--to", "2025-03-10",
        "--prices", str(tmp_path / "absent.csv"), "--plot", str(tmp_path / "x.gif"),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "'.gif'" in proc.stderr and "absent.csv" not in proc.stderr


def test_backtest_plot_svg_over_five_years(tmp_path: Path) -> None:
    out = tmp_path / "five.svg"
    proc = run_cli(
        "backtest", "1810.HK", "--from", "2020-06-01", "--to", "2025-05-09",
        "--prices", str(PRICES), "--fx-history", str(ECB), "--plot", str(out), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"wrote chart {out}" in proc.stderr
    assert out.read_bytes().startswith(MAGIC["svg"])


# --- what the drawn chart looks like ----------------------------------------------------------


def _replayed_store(tmp_path: Path, *tape_args: str) -> Store:
    db = tmp_path / "state.db"
    proc = run_cli("replay", *tape_args, "--state-db", str(db), timeout=180)
    assert proc.returncode == 0, proc.stderr
    return Store.open(db)


@pytest.fixture(scope="module")
def five_year_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tape = tmp_path_factory.mktemp("tape") / "xiaomi_5y.csv"
    proc = run_cli(
        "tape", "build", "--prices", str(PRICES), "--fx-history", str(ECB),
        "--from", "2020-06-01", "--to", "2025-05-09", "-o", str(tape), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return tape


def _boxes_overlap(a: Any, b: Any) -> bool:
    return bool(a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1)


def assert_readable_labels(chart: Chart) -> int:
    """No two texts overlap (labels, the event key, the legend); labels sit inside their axes.

    Returns how many event labels were drawn on the axes.
    """
    fig = chart.figure
    renderer = fig.canvas.get_renderer()
    labelled = 0
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        # the text's own box (an annotation's extent would include its leader line)
        boxes = [Text.get_window_extent(t, renderer) for t in ax.texts if t.get_text()]
        labelled += len(boxes)
        for box in boxes:
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, "label outside its panel"
            assert frame.y0 <= box.y0 and box.y1 <= frame.y1, "label outside its panel"
        for a, b in itertools.combinations(boxes, 2):
            assert not _boxes_overlap(a, b), "two event labels overlap"
    loose = [t.get_window_extent(renderer) for t in fig.texts if t.get_text()]
    loose += [lg.get_window_extent(renderer) for lg in fig.legends]
    for a, b in itertools.combinations(loose, 2):
        assert not _boxes_overlap(a, b), "title, key or legend overlap"
    for box in loose:
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width, "text cut off at the figure edge"
    return labelled


def _events(chart: Chart) -> int:
    return sum(len(p.events) for p in chart.panels)


def test_bundled_replay_labels_every_event_without_overlap(tmp_path: Path) -> None:
    settings, _ = load_settings(DEFAULT_CONFIG)
    store = _replayed_store(tmp_path)
    chart = plot_replay(settings, store, tmp_path / "replay.png")
    # 02-04, 02-05, 02-06 cluster on the HK$1T panel: each still gets its own label
    assert assert_readable_labels(chart) == _events(chart) == 9
    texts = sorted(t.get_text() for ax in chart.figure.axes for t in ax.texts)
    assert "touch 04 Feb" in texts and "touch 05 Feb" in texts and "▲ above 06 Feb" in texts


def test_five_year_chart_labels_every_event_without_overlap(
    tmp_path: Path, five_year_tape: Path
) -> None:
    settings, _ = load_settings(DEFAULT_CONFIG)
    store = _replayed_store(tmp_path, str(five_year_tape))
    chart = plot_report(settings, store, tmp_path / "five.png")
    assert _events(chart) >= 12  # Feb and Apr 2025 crowd a few pixels of a 5-year axis
    assert assert_readable_labels(chart) == _events(chart)


def test_crowded_events_are_numbered_with_a_key(tmp_path: Path, five_year_tape: Path) -> None:
    # a line the price hovers around for two years, with a thin band: dozens of events
    config = tmp_path / "busy.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    head = text[: text.index("[[rules]]")]
    config.write_text(
        head + '[[rules]]\nid = "hkd-300b"\nsymbol = "1810.HK"\nthreshold = 300_000_000_000\n'
        'currency = "HKD"\nhysteresis = 0.002\nlabel = "HK$300 billion"\n\n'
        '[[sinks]]\nid = "console"\ntype = "console"\n',
        encoding="utf-8",
    )
    settings, _ = load_settings(config)
    store = _replayed_store(tmp_path, str(five_year_tape), "--config", str(config))
    chart = plot_report(settings, store, tmp_path / "busy.png")
    assert _events(chart) > 40
    drawn = assert_readable_labels(chart)
    assert drawn >= 0.8 * _events(chart)
    numbers = {t.get_text() for ax in chart.figure.axes for t in ax.texts}
    assert numbers <= {str(n) for n in range(1, _events(chart) + 1)}
    key = [t.get_text() for t in chart.figure.texts]
    assert any(line.strip().startswith("2  ▼ below 2022-") for line in key)


def _pixels_near(png: Path, rgb: tuple[int, int, int], tol: int = 8) -> int:
    from matplotlib import image

    pixels = (image.imread(str(png))[:, :, :3] * 255).round()
    diff = abs(pixels - rgb).max(axis=2)
    return int((diff <= tol).sum())


def _over_white(colour: str, alpha: float) -> tuple[int, int, int]:
    from matplotlib.colors import to_rgb

    r, g, b = (round(255 * (1 - alpha) + 255 * alpha * c) for c in to_rgb(colour))
    return r, g, b


def test_band_and_hkd_ribbon_are_visible_and_axis_reads_in_days(tmp_path: Path) -> None:
    out = tmp_path / "replay.png"
    assert run_cli("replay", "--plot", str(out)).returncode == 0
    # the band (1 % under HK$1T and CN¥1T) and the HKD ribbon behind the CNY line: real pixels
    assert _pixels_near(out, _over_white(BAND_COLOUR, 0.45)) > 1500
    assert _pixels_near(out, _over_white(QUOTE_COLOUR, 0.35)) > 3000
    settings, _ = load_settings(DEFAULT_CONFIG)
    chart = plot_replay(settings, _replayed_store(tmp_path), tmp_path / "again.png")
    fig = chart.figure
    fig.canvas.draw()
    bottom = chart.figure.axes[len(chart.panels) - 1]
    ticks = [t.get_text() for t in bottom.get_xticklabels() if t.get_text()]
    assert "2025-Mar" not in " ".join(ticks) and bottom.xaxis.get_offset_text().get_text() == ""
    assert "22 Jan" in ticks and "01 Feb" in ticks
    assert "2025-01-20 to 2025-03-10" in bottom.get_xlabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "hysteresis band 1.0% below the line" in legend and "HKD value (right axis)" in legend


def test_rank_rule_chart_draws_the_cutoff_steps(tmp_path: Path) -> None:
    # the bundled tape plus a SYNTHETIC top-100 cutoff column (no real snapshot of Feb 2025
    # exists): US$140 bn rising by US$0.3 bn a row, with a weekly wobble
    bundled = (REPO / "monitor" / "data" / "xiaomi_2025-01-20_2025-03-10.csv").read_text()
    head, *rows = bundled.strip().splitlines()
    cutoffs = [
        140_000_000_000 + (i % 7) * 1_500_000_000 + i * 300_000_000 for i in range(len(rows))
    ]
    tape = tmp_path / "ranked.csv"
    tape.write_text(
        "\n".join(
            [f"{head},top100_cutoff_usd"] + [f"{r},{c}" for r, c in zip(rows, cutoffs, strict=True)]
        )
        + "\n"
    )
    settings, _ = load_settings(DEFAULT_CONFIG)
    chart = plot_replay(settings, _replayed_store(tmp_path, str(tape)), tmp_path / "rank.png")
    assert [p.rule_id for p in chart.panels] == ["hkd-1t", "cny-1t", "global-top100"]
    rank = chart.panels[2]
    assert rank.rank and rank.currency == "USD" and rank.thresholds == [float(c) for c in cutoffs]
    assert rank.quote_values is not None  # the HKD ribbon on the right axis
    assert assert_readable_labels(chart) == _events(chart)
    legend = [t.get_text() for t in chart.figure.legends[0].get_texts()]
    assert "milestone line / top-N cutoff" in legend
    assert chart.notes == []  # every rule evaluated: no "not evaluated" footnote


def test_one_observation_keeps_a_one_day_axis_with_its_line(tmp_path: Path) -> None:
    bundled = (REPO / "monitor" / "data" / "xiaomi_2025-01-20_2025-03-10.csv").read_text()
    tape = tmp_path / "one.csv"
    tape.write_text("\n".join(bundled.splitlines()[:2]) + "\n")
    settings, _ = load_settings(DEFAULT_CONFIG)
    chart = plot_replay(settings, _replayed_store(tmp_path, str(tape)), tmp_path / "one.png")
    ax = chart.figure.axes[0]
    low, high = ax.get_xlim()
    assert high - low <= 2  # days, not matplotlib's default four years around a lone point
    assert ax.get_ylim()[0] < 1e12 < ax.get_ylim()[1]  # the HK$1T line is in view
    bottom = chart.figure.axes[len(chart.panels) - 1]
    assert bottom.get_xlabel().startswith("2025-01-20, exchange time")
    assert assert_readable_labels(chart) == _events(chart) == 2
