"""Market cap counts every share class; the default config must not undercount Xiaomi."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from conftest import DEFAULT_CONFIG

from monitor.core.shares import shares_on
from monitor.core.valuation import Observation, SharesCount, valuate
from monitor.settings import load_settings

T = datetime(2025, 2, 7, 8, 0, tzinfo=UTC)


def test_cap_at_the_intraday_high_of_2025_02_07_is_1_0808_trillion() -> None:
    obs = Observation(T, "1810.HK", Decimal("43.05"), "HKD")
    val = valuate(obs, SharesCount(25_105_000_000, "press"), date(2025, 2, 7))
    assert val.market_cap.currency == "HKD"
    assert val.market_cap.amount == Decimal("1080770250000.00")
    assert round(val.market_cap.amount / Decimal(10) ** 12, 4) == Decimal("1.0808")


def test_a_row_share_count_overrides_the_configured_one() -> None:
    obs = Observation(T, "1810.HK", Decimal(40), "HKD", shares=SharesCount(100, "tape"))
    val = valuate(obs, SharesCount(25_105_000_000, "config"), date(2025, 2, 7))
    assert val.market_cap.amount == 4000 and val.shares.source == "tape"


def test_default_config_counts_class_a_and_class_b_shares() -> None:
    settings, _ = load_settings(DEFAULT_CONFIG)
    xiaomi = settings.symbol("1810.HK")
    # Tencent real-time 2026-08-03: Class A 4,443,616,133 + Class B 21,398,472,034
    assert xiaomi.shares == 4_443_616_133 + 21_398_472_034
    # the HKEX monthly return of Feb 2026 (Class A 4,511,553,144 + Class B 21,539,047,934)
    # stays in force from 2026-02-28 until then
    assert shares_on(xiaomi, date(2026, 6, 1)).total == 4_511_553_144 + 21_539_047_934
    feb_2025 = shares_on(xiaomi, date(2025, 2, 7))
    assert feb_2025.total == 25_105_000_000
    cap = Decimal("43.05") * feb_2025.total
    # Yahoo's Class-B-only count would say ~HK$0.89 trillion: a bug
    assert cap > Decimal("1.08e12")


def test_share_history_switches_on_the_placement_day() -> None:
    settings, _ = load_settings(DEFAULT_CONFIG)
    xiaomi = settings.symbol("1810.HK")
    assert shares_on(xiaomi, date(2025, 3, 24)).total == 25_105_000_000
    assert shares_on(xiaomi, date(2025, 3, 25)).total == 25_905_000_000
    assert shares_on(xiaomi, date(2026, 3, 1)).total == 26_050_601_078
    # before the oldest known count, the oldest is used
    assert shares_on(xiaomi, date(2020, 1, 2)).total == 25_105_000_000


def test_packaged_default_config_is_the_repo_default() -> None:
    from monitor.settings import PACKAGED_CONFIG

    assert PACKAGED_CONFIG.read_text() == DEFAULT_CONFIG.read_text()
