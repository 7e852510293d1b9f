"""Money and FX maths in ``Decimal``: every amount carries its currency, every rate its source."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

_CODE = re.compile(r"^[A-Z]{3}$")

# ISO 4217 active codes (plus a few that appear in reference data), used to reject typos such
# as "RMB" or "HKG" early; see https://www.iso.org/iso-4217-currency-codes.html
ISO_4217 = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HRK",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SLL",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWL",
    ]
)

# Symbols used when formatting amounts for people.
CURRENCY_SYMBOLS = {"HKD": "HK$", "CNY": "CN¥", "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def check_currency(code: str) -> str:
    """Return ``code`` if it is an ISO 4217 currency code, else raise ``ValueError``."""
    if not _CODE.match(code) or code not in ISO_4217:
        raise ValueError(
            f"unknown currency code {code!r}: use an ISO 4217 code such as HKD, CNY, USD"
        )
    return code


def to_decimal(value: object) -> Decimal:
    """Parse a finite number from text, int, float or Decimal, or raise ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, str):
            number = Decimal(value.strip().replace("_", ""))
        else:
            raise ValueError(f"not a number: {value!r}")
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


class Money(NamedTuple):
    """An amount in one currency."""

    amount: Decimal
    currency: str


class FxRate(NamedTuple):
    """``1 base = rate quote``, with where the rate came from and when it was valid."""

    base: str
    quote: str
    rate: Decimal
    source: str
    as_of: datetime

    @classmethod
    def checked(cls, base: str, quote: str, rate: Decimal, source: str, as_of: datetime) -> FxRate:
        """An ``FxRate`` built from untrusted input: positive, finite, known currencies."""
        check_currency(base)
        check_currency(quote)
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"FX rate {base}/{quote} must be a positive number, got {rate}")
        return cls(base, quote, rate, source, as_of)

    def inverse(self) -> FxRate:
        """The same rate seen from the other side."""
        return FxRate(self.quote, self.base, 1 / self.rate, self.source, self.as_of)

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"


class Conversion(NamedTuple):
    """A converted amount and the rates (in the direction used) that produced it."""

    money: Money
    rates: tuple[FxRate, ...]

    @property
    def effective_rate(self) -> Decimal:
        """The single rate from the source currency to the target currency."""
        out = Decimal(1)
        for rate in self.rates:
            out *= rate.rate
        return out


class NoRateError(LookupError):
    """No rate, direct, inverse or crossed, links two currencies."""


def rate_path(base: str, target: str, rates: Sequence[FxRate]) -> tuple[FxRate, ...]:
    """The rates (oriented ``base`` -> ``target``) linking two currencies.

    Direct, then inverse, then crossed through any common currency (EUR, USD, ...) with at
    most two legs; ties are broken by the order the rates were given in.
    """
    if base == target:
        return ()
    for rate in rates:
        if rate.base == base and rate.quote == target:
            return (rate,)
    for rate in rates:
        if rate.quote == base and rate.base == target:
            return (rate.inverse(),)
    edges: dict[str, list[FxRate]] = {}
    for rate in rates:
        edges.setdefault(rate.base, []).append(rate)
        edges.setdefault(rate.quote, []).append(rate.inverse())
    for first in edges.get(base, []):
        for second in edges.get(first.quote, []):
            if second.quote == target:
                return (first, second)
    raise NoRateError(f"no FX rate to convert {base} to {target}")


def convert(money: Money, target: str, rates: Sequence[FxRate]) -> Conversion:
    """Convert ``money`` into ``target`` using direct, inverse or crossed rates."""
    path = rate_path(money.currency, target, rates)
    amount = money.amount
    for rate in path:
        amount *= rate.rate
    return Conversion(Money(amount, target), path)
