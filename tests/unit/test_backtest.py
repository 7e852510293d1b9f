"""Backtest building blocks: bars to observations, summaries, progress. Bars here are
SYNTHETIC (made-up prices) unless a test says otherwise."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from monitor.commands.backtest_cmd import parse_since
from monitor.errors import InputError
from monitor.history import backtest
from monitor.history.tapebuild import Bar, EcbHistory
from monitor.settings import Settings

HK = ZoneInfo("Asia/Hong_Kong")
D = Decimal


def settings(**ranking: object) -> Settings:
    return Settings(
        symbols=[
            {
                "symbol": "TEST.HK", "name": "Test", "currency": "HKD", "shares": 1_000_000_000,
                "shares_history": [
                    {"since": "2025-01-01", "shares": 1_000_000_000},
                    {"since": "2025-01-08", "shares": 2_000_000_000, "source": "split 2:1"},
                ],
            }
        ],
        rules=[
            {"id": "hkd-100b", "symbol": "TEST.HK", "threshold": 100e9, "currency": "HKD",
             "label": "HK$100 bn"},
            {"id": "cny-100b", "symbol": "TEST.HK", "threshold": 100e9, "currency": "CNY"},
            {"id": "top10", "symbol": "TEST.HK", "top_n": 10},
        ],
        sinks=[],
        ranking=ranking,
    )  # fmt: skip


def ecb() -> EcbHistory:
    # SYNTHETIC rates: 1 EUR = 8 HKD = 7.2 CNY = 1.04 USD, from 2025-01-01
    rows = [
        (date(2025, 1, 1) + timedelta(days=n), {"HKD": D(8), "CNY": D("7.2"), "USD": D("1.04")})
        for n in range(0, 40)
    ]
    return EcbHistory([(d, {**r, "EUR": D(1)}) for d, r in rows])


def bar(day: int, close: str, high: str | None = None, volume: int = 1000) -> Bar:
    start = datetime(2025, 1, day, tzinfo=HK)
    c = D(close)
    return Bar(start, c, D(high) if high else c, c, c, volume)


def run(bars: list[Bar], cfg: Settings | None = None, **kw: object) -> backtest.BacktestResult:
    cfg = cfg or settings()
    sym = cfg.symbol("TEST.HK")
    holes: list[date] = []
    obs = backtest.observations(
        cfg, sym, bars, ecb(), start=date(2025, 1, 1), end=date(2025, 1, 31),
        placeholders=holes, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return backtest.run(
        cfg, obs, symbol="TEST.HK", start=date(2025, 1, 1), end=date(2025, 1, 31),
        interval="1d", sources={}, placeholders=holes, now=0.0,
    )  # fmt: skip


def test_placeholder_bars_are_skipped_and_counted() -> None:
    placeholder = Bar(datetime(2025, 1, 3, tzinfo=HK), D(95), D(95), D(95), D(95), 0)
    result = run([bar(2, "90"), placeholder, bar(6, "92")])
    assert result.placeholders == [date(2025, 1, 3)]
    assert result.to_json()["warnings"]["placeholder_bars"] == 1  # type: ignore[index]
    hkd = next(s for s in result.series if s.rule.id == "hkd-100b")
    assert [p.time.date() for p in hkd.points] == [date(2025, 1, 2), date(2025, 1, 6)]


def test_zero_volume_bar_with_a_range_is_real() -> None:
    odd = Bar(datetime(2025, 1, 3, tzinfo=HK), D(90), D(91), D(89), D(90), 0)
    result = run([odd])
    assert result.placeholders == []


def test_day_high_touch_then_close_cross_and_days_above() -> None:
    result = run([bar(2, "90"), bar(3, "95", high="101"), bar(6, "100"), bar(7, "99.5")])
    kinds = [
        (e.rule_id, e.kind, e.time.date().day) for e in result.events if e.rule_id == "hkd-100b"
    ]
    assert kinds == [
        ("hkd-100b", "baseline", 2),
        ("hkd-100b", "touched_above", 3),
        ("hkd-100b", "crossed_above", 6),
    ]
    summary = backtest.summarise(next(s for s in result.series if s.rule.id == "hkd-100b"))
    assert summary["first_touched_above"] == "2025-01-03"
    assert summary["first_crossed_above"] == "2025-01-06"
    # 99.5 is inside the 1 % band: still above
    assert (summary["days"], summary["days_above"]) == (4, 2)
    assert summary["position"] == "above"
    assert summary["distance"] == "-0.0050"


def test_share_count_changes_on_the_configured_day() -> None:
    # a 2:1 split from 2025-01-08: the price halves, the market cap does not
    result = run([bar(7, "60"), bar(8, "30")])
    hkd = next(s for s in result.series if s.rule.id == "hkd-100b")
    assert [p.value for p in hkd.points] == [D(60) * 10**9, D(30) * 2 * 10**9]


def test_shares_override_applies_to_every_day() -> None:
    result = run([bar(7, "60"), bar(8, "30")], shares=3_000_000_000)
    assert {e.shares_source for e in result.events} == {"--shares"}
    hkd = next(s for s in result.series if s.rule.id == "hkd-100b")
    assert [p.value for p in hkd.points] == [D(180) * 10**9, D(90) * 10**9]


def test_rank_rule_uses_the_configured_cutoff() -> None:
    cfg = settings(cutoff_usd="12e9", cutoff_top_n=10, cutoff_as_of="2025-01-01")
    result = run([bar(2, "90"), bar(3, "100")], cfg)
    top = [e for e in result.events if e.rule_id == "top10"]
    # HK$90 bn = 90 x 1.04 / 8 = US$11.7 bn < 12; HK$100 bn = US$13 bn
    assert [e.kind for e in top] == ["baseline", "crossed_above"]
    assert top[0].threshold_source == "config"
    assert not result.skipped


def test_rank_rule_without_cutoff_is_reported_skipped() -> None:
    result = run([bar(2, "90")])
    assert result.skipped == ["rule top10 skipped on 1 row: no top-10 cutoff"]
    top = next(s for s in result.series if s.rule.id == "top10")
    assert backtest.summarise(top)["unevaluated"] == 1


def test_daily_bars_use_the_ecb_rate_of_their_date() -> None:
    cfg = settings()
    obs = list(
        backtest.observations(
            cfg, cfg.symbol("TEST.HK"), [bar(6, "90")], ecb(),
            start=date(2025, 1, 1), end=date(2025, 1, 31),
        )
    )  # fmt: skip
    assert obs[0].time == datetime(2025, 1, 6, 16, 0, tzinfo=HK)
    assert [(r.pair, r.rate, r.as_of) for r in obs[0].fx] == [
        ("HKD/CNY", D("0.90000000"), datetime(2025, 1, 6, tzinfo=UTC)),
        ("HKD/USD", D("0.13000000"), datetime(2025, 1, 6, tzinfo=UTC)),
    ]


def test_intraday_bars_end_stamped_with_running_high_and_prior_ecb_rate() -> None:
    cfg = settings()
    start = datetime(2025, 1, 6, 9, 30, tzinfo=HK)
    bars = [
        Bar(start, D(90), D(93), D(89), D(91), 10),
        Bar(start + timedelta(hours=1), D(91), D(92), D(90), D(90), 10),
    ]
    obs = list(
        backtest.observations(
            cfg, cfg.symbol("TEST.HK"), bars, ecb(), interval="1h",
            start=date(2025, 1, 1), end=date(2025, 1, 31),
        )
    )  # fmt: skip
    assert [o.time for o in obs] == [start + timedelta(hours=1), start + timedelta(hours=2)]
    assert [o.day_high for o in obs] == [D(93), D(93)]
    # 11:30 HKT is 04:30 CET: that day's ECB rate is not out yet, so the 5th's applies
    assert {r.as_of for o in obs for r in o.fx} == {datetime(2025, 1, 5, tzinfo=UTC)}


def test_ecb_day_before_respects_the_publication_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert backtest.ecb_day_before(datetime(2025, 2, 7, 15, 0, tzinfo=berlin)) == date(2025, 2, 6)
    assert backtest.ecb_day_before(datetime(2025, 2, 7, 16, 30, tzinfo=berlin)) == date(2025, 2, 7)


def test_unknown_interval_is_refused() -> None:
    cfg = settings()
    with pytest.raises(InputError, match="use 1d, 1h or 5m"):
        list(
            backtest.observations(
                cfg, cfg.symbol("TEST.HK"), [], None, interval="1m",
                start=date(2025, 1, 1), end=date(2025, 1, 2),
            )
        )  # fmt: skip


def test_no_bars_in_range_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"no price bars for TEST\.HK"):
        run([])


def test_progress_is_quiet_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = backtest.Progress(stream)
    assert list(progress.counting([1, 2, 3], "evaluating")) == [1, 2, 3]  # type: ignore[arg-type]
    assert stream.getvalue() == ""


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_bar_on_a_terminal() -> None:
    stream = Tty()
    progress = backtest.Progress(stream)
    list(progress.counting(list(range(200)), "evaluating"))  # type: ignore[arg-type]
    text = stream.getvalue()
    assert text.startswith("\revaluating")
    assert "[##############################] 100%" in text
    assert text.endswith("\n")


def test_since_accepts_durations_and_dates() -> None:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_since("30d", now) == datetime(2025, 1, 30, tzinfo=UTC)
    assert parse_since("12h", now) == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert parse_since("2w", now) == datetime(2025, 2, 15, tzinfo=UTC)
    assert parse_since("2025-02-01", now) == datetime(2025, 2, 1, tzinfo=UTC)
    with pytest.raises(InputError, match="30d, 12h, 2w"):
        parse_since("yesterday", now)
