"""FX maths: direct, inverse and crossed conversions, in Decimal, with sources kept."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from monitor.core.money import FxRate, Money, NoRateError, check_currency, convert, to_decimal

AS_OF = datetime(2025, 2, 7, 15, 0, tzinfo=UTC)
# ECB reference rates of 2025-02-07 (units per 1 EUR), from tests/fixtures/data/SOURCES.md
EUR_USD = FxRate("EUR", "USD", Decimal("1.0377"), "ECB", AS_OF)
EUR_CNY = FxRate("EUR", "CNY", Decimal("7.5634"), "ECB", AS_OF)
EUR_HKD = FxRate("EUR", "HKD", Decimal("8.0828"), "ECB", AS_OF)


def test_direct_rate_multiplies_and_keeps_the_rate_used() -> None:
    rate = FxRate("HKD", "CNY", Decimal("0.9357"), "yahoo", AS_OF)
    out = convert(Money(Decimal("1000"), "HKD"), "CNY", [rate])
    assert out.money == Money(Decimal("935.7000"), "CNY")
    assert out.rates == (rate,)


def test_inverse_rate_divides() -> None:
    rate = FxRate("USD", "HKD", Decimal("7.8"), "yahoo", AS_OF)
    out = convert(Money(Decimal("78"), "HKD"), "USD", [rate])
    assert out.money.amount == Decimal("10")
    assert out.rates[0].base == "HKD" and out.rates[0].source == "yahoo"


def test_cross_through_eur_matches_the_published_derived_rate() -> None:
    out = convert(Money(Decimal(1), "HKD"), "CNY", [EUR_USD, EUR_CNY, EUR_HKD])
    # SOURCES.md: 1 HKD = 0.935740 CNY on 2025-02-07 (derived)
    assert out.money.amount.quantize(Decimal("0.000001")) == Decimal("0.935740")
    assert [r.pair for r in out.rates] == ["HKD/EUR", "EUR/CNY"]
    usd = convert(Money(Decimal(1), "USD"), "HKD", [EUR_USD, EUR_CNY, EUR_HKD])
    assert usd.money.amount.quantize(Decimal("0.00001")) == Decimal("7.78915")


def test_same_currency_needs_no_rate() -> None:
    out = convert(Money(Decimal(5), "HKD"), "HKD", [])
    assert out.money.amount == 5 and out.rates == ()


def test_missing_rate_raises_instead_of_guessing() -> None:
    with pytest.raises(NoRateError, match="HKD to JPY"):
        convert(Money(Decimal(1), "HKD"), "JPY", [EUR_CNY])


@pytest.mark.parametrize("code", ["RMB", "HKG", "hkd", "US", ""])
def test_unknown_currency_codes_are_rejected(code: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        check_currency(code)


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity", "abc", ""])
def test_non_finite_or_garbage_numbers_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        to_decimal(text)


def test_numbers_parse_exactly_from_text_with_underscores_and_exponents() -> None:
    assert to_decimal("1_000_000_000_000") == to_decimal("1e12") == Decimal(10) ** 12
    assert to_decimal(0.1) == Decimal("0.1")


def test_checked_rates_refuse_non_positive_values() -> None:
    with pytest.raises(ValueError, match="positive"):
        FxRate.checked("HKD", "CNY", Decimal(0), "yahoo", AS_OF)
    with pytest.raises(ValueError, match="positive"):
        FxRate.checked("HKD", "CNY", Decimal("NaN"), "yahoo", AS_OF)
