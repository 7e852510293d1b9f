"""The FX cross-check policy: which rate is used, and when currency rules stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from monitor.core.fx_policy import decide
from monitor.core.money import FxRate
from monitor.errors import SourceError

NOW = datetime(2025, 5, 12, 3, 0, tzinfo=UTC)
ECB_AS_OF = datetime(2025, 5, 9, 14, 0, tzinfo=UTC)
# ECB 2025-05-09 (tests/fixtures/ecb): CNY per HKD = 8.1470 / 8.7519
ECB_RATE = Decimal("8.1470") / Decimal("8.7519")


def yahoo(rate: Decimal, at: datetime = NOW) -> FxRate:
    return FxRate("HKD", "CNY", rate, "yahoo", at)


def ecb(rate: Decimal = ECB_RATE) -> FxRate:
    return FxRate("HKD", "CNY", rate, "ecb", ECB_AS_OF)


def down(source: str, kind: str = "network") -> SourceError:
    return SourceError("down", source=source, kind=kind)


def test_agreeing_sources_use_the_primary_and_say_it_was_checked() -> None:
    d = decide(yahoo(ECB_RATE * Decimal("1.002")), ecb(), None, NOW, pair="HKD/CNY")
    assert d.kind == "agreed"
    assert d.rate is not None and d.rate.rate == ECB_RATE * Decimal("1.002")
    assert "checked against ecb" in d.rate.source


def test_five_percent_disagreement_uses_the_rate_closer_to_the_last_accepted() -> None:
    last = ecb(ECB_RATE * Decimal("0.999"))
    d = decide(yahoo(ECB_RATE * Decimal("1.05")), ecb(), last, NOW, pair="HKD/CNY")
    assert d.kind == "disagreed"
    assert d.rate is not None and d.rate.rate == ECB_RATE
    assert d.rate.source.startswith("ecb (yahoo disagreed by 5.00 %")
    assert any("disagree" in w for w in d.warnings)


def test_disagreement_without_history_trusts_the_ecb_reference() -> None:
    d = decide(yahoo(ECB_RATE * Decimal("0.95")), ecb(), None, NOW, pair="HKD/CNY")
    assert d.rate is not None and d.rate.rate == ECB_RATE


def test_primary_returning_garbage_falls_back_to_the_secondary() -> None:
    d = decide(down("yahoo", "bad_data"), ecb(), None, NOW, pair="HKD/CNY")
    assert d.kind == "fallback"
    assert d.rate is not None and d.rate.rate == ECB_RATE
    assert "primary failed: yahoo: bad_data" in d.rate.source


def test_secondary_down_uses_the_primary_unchecked() -> None:
    d = decide(yahoo(ECB_RATE), down("ecb"), None, NOW, pair="HKD/CNY")
    assert d.rate is not None and d.rate.rate == ECB_RATE
    assert "unchecked" in d.rate.source


def test_both_down_carries_the_last_rate_while_young_enough() -> None:
    last = yahoo(ECB_RATE, NOW - timedelta(days=3))
    d = decide(down("yahoo"), down("ecb"), last, NOW, pair="HKD/CNY")
    assert d.kind == "carried"
    assert d.rate is not None and d.rate.as_of == last.as_of
    assert "last accepted" in d.rate.source


def test_both_down_past_max_age_blocks_the_pair() -> None:
    last = yahoo(ECB_RATE, NOW - timedelta(days=4, minutes=1))
    d = decide(down("yahoo"), down("ecb"), last, NOW, pair="HKD/CNY")
    assert d.kind == "blocked"
    assert d.rate is None
    assert "no fresh FX rate" in d.blocked


def test_a_rate_older_than_max_age_counts_as_failed() -> None:
    old = FxRate("HKD", "CNY", ECB_RATE, "ecb", NOW - timedelta(days=5))
    d = decide(yahoo(ECB_RATE), old, None, NOW, pair="HKD/CNY")
    assert d.kind == "fallback"
    assert "ecb: stale" in (d.rate.source if d.rate else "")
