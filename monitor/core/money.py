"""Money and FX maths in ``Decimal``: every amount carries its currency, every rate its source."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from monitor.core.iso4217 import ISO_4217

_CODE = re.compile(r"^[A-Z]{3}$")


def check_currency(code: str) -> str:
    """Return ``code`` if it is an ISO 4217 currency code, else raise ``ValueError``."""
    if not _CODE.match(code) or code not in ISO_4217:
        raise ValueError(
            f"unknown currency code {code!r}: use an ISO 4217 code such as HKD, CNY, USD"
        )
    return code


NOT_A_NUMBER = "not a number"
NOT_FINITE = "not a finite number"


# Sane ranges per kind of number, so a misplaced exponent (1e400) is an input error at its
# cell and not an overflow deep in the maths. Wide: every listed price, rate and share count
# on Earth sits well inside them.
BOUNDS: dict[str, tuple[Decimal, Decimal]] = {
    "price": (Decimal("1e-6"), Decimal("1e9")),
    "fx": (Decimal("1e-8"), Decimal("1e8")),
    "shares": (Decimal(1), Decimal("1e13")),
    "cutoff": (Decimal(1), Decimal("1e15")),
    "amount": (Decimal("1e-6"), Decimal("1e18")),
}


def bounds_of(name: str) -> tuple[Decimal, Decimal]:
    """The sane range of a tape column or config key by its name."""
    if name.startswith("fx_"):
        return BOUNDS["fx"]
    if name.endswith("cutoff_usd"):
        return BOUNDS["cutoff"]
    if name == "shares":
        return BOUNDS["shares"]
    if name in ("price", "day_high"):
        return BOUNDS["price"]
    return BOUNDS["amount"]


class NumberError(ValueError):
    """A value that is no finite number; ``reason`` is ``NOT_A_NUMBER`` or ``NOT_FINITE``."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"{reason}: {value!r}")
        self.value = value
        self.reason = reason


def parse_decimal(text: str, *, grouping: bool = False) -> Decimal:
    """Parse a finite number from ``text`` (blanks around it allowed), or raise ``NumberError``.

    With ``grouping``, underscores anywhere in the number are ignored (``1_000``); without
    it (tapes) only ASCII digits, sign, point and exponent: no ``1_000``, no ``١٢``.
    """
    cleaned = text.strip()
    if grouping:
        cleaned = cleaned.replace("_", "")
    elif not cleaned.isascii() or "_" in cleaned:
        raise NumberError(text, NOT_A_NUMBER)
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise NumberError(text, NOT_A_NUMBER) from None
    return _finite(number, text)


# A plain positive decimal: ASCII digits with at most one point (no sign, exponent, blanks
# or grouping), at most 61 characters (a tape's cells may have 64). ``Decimal(cell)`` is then
# exactly what ``parse_decimal`` returns, with no checks to run; anything else (``.``, ``1e5``,
# `` 1``, ``١``) returns None and takes the full parse. Plain string methods, not a regex:
# this runs for every number of every tape row.
_PLAIN_MAX = 61


def plain_positive(cell: str, low: Decimal, high: Decimal) -> Decimal | None:
    """``cell`` as a number when it is plainly written and inside ``[low, high]``, else None
    (the full parse then gives the value or the error)."""
    digits = cell.replace(".", "", 1)
    if len(cell) > _PLAIN_MAX or not digits.isdigit() or not digits.isascii():
        return None
    value = Decimal(cell)
    return value if low <= value <= high and value > 0 else None


def _finite(number: Decimal, value: object) -> Decimal:
    if not number.is_finite():
        raise NumberError(value, NOT_FINITE)
    return number


def to_decimal(value: object) -> Decimal:
    """Parse a finite number from text, int, float or Decimal, or raise ``ValueError``."""
    if isinstance(value, bool):
        raise NumberError(value, NOT_A_NUMBER)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        return parse_decimal(value, grouping=True)
    else:
        raise NumberError(value, NOT_A_NUMBER)
    return _finite(number, value)


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


class NoRateError(LookupError):
    """No rate, direct, inverse or crossed, links two currencies."""


def path_legs(
    base: str, target: str, pairs: Sequence[tuple[str, str]]
) -> tuple[tuple[int, bool], ...] | None:
    """Which rates link two currencies, as ``(index into pairs, inverted)`` legs, or None.

    Direct, then inverse, then crossed through any common currency (EUR, USD, ...) with at
    most two legs; ties are broken by the order the pairs were given in. It depends on the
    pairs and their order only, never on the rates (a tape's columns fix it for every row).
    """
    if base == target:
        return ()
    for i, (b, q) in enumerate(pairs):
        if b == base and q == target:
            return ((i, False),)
    for i, (b, q) in enumerate(pairs):
        if q == base and b == target:
            return ((i, True),)
    edges: dict[str, list[tuple[int, bool, str]]] = {}
    for i, (b, q) in enumerate(pairs):
        edges.setdefault(b, []).append((i, False, q))
        edges.setdefault(q, []).append((i, True, b))
    for i, inv, middle in edges.get(base, []):
        for j, inv2, end in edges.get(middle, []):
            if end == target:
                return ((i, inv), (j, inv2))
    return None


def rate_path(base: str, target: str, rates: Sequence[FxRate]) -> tuple[FxRate, ...]:
    """The rates (oriented ``base`` -> ``target``) linking two currencies (``path_legs``)."""
    legs = path_legs(base, target, [(r.base, r.quote) for r in rates])
    if legs is None:
        raise NoRateError(f"no FX rate to convert {base} to {target}")
    return tuple(rates[i].inverse() if inv else rates[i] for i, inv in legs)


def convert(money: Money, target: str, rates: Sequence[FxRate]) -> Conversion:
    """Convert ``money`` into ``target`` using direct, inverse or crossed rates."""
    path = rate_path(money.currency, target, rates)
    amount = money.amount
    for rate in path:
        amount *= rate.rate
    return Conversion(Money(amount, target), path)
