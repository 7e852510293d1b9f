"""The tape reader's shortcut for plainly written numbers gives exactly the full parse's value.

``plain_positive`` runs for every number of every tape row; when it answers, its value must
be the one ``parse_decimal`` gives (and in range), and anything it declines (signs, exponents,
blanks, non-ASCII digits, long cells) takes the full parse, so errors keep their message.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.core.money import BOUNDS, NumberError, parse_decimal, plain_positive
from monitor.sources.tape import TapeReader

LOW, HIGH = BOUNDS["price"]
cells = st.text(alphabet="0123456789.-+eE _\u0661\u00b2", max_size=70)


@settings(derandomize=True, max_examples=2000, deadline=None)
@given(cells)
@example("1.")
@example(".5")
@example(".")
@example("1" * 62)
@example("0" * 30 + "1")
@example("\u0661")
def test_plain_value_is_the_full_parse(cell: str) -> None:
    got = plain_positive(cell, LOW, HIGH)
    if got is None:
        return
    assert cell.replace(".", "", 1).isdigit() and cell.isascii() and len(cell) <= 61
    assert got == parse_decimal(cell)
    assert str(got) == str(parse_decimal(cell))
    assert LOW <= got <= HIGH


def test_non_ascii_digits_and_signs_are_declined() -> None:
    for cell in ("\u0661\u0662", "\u00b2", "+1", "-1", " 1", "1 ", "1e3", "1_000", "1..2", ""):
        assert plain_positive(cell, LOW, HIGH) is None
    try:
        parse_decimal("\u0661\u0662")
    except NumberError:
        pass
    else:  # pragma: no cover - the full parse must refuse it too
        raise AssertionError("non-ASCII digits parsed")


def test_repeated_prices_read_the_same_as_fresh(tmp_path: object) -> None:
    from pathlib import Path

    tape = Path(str(tmp_path)) / "t.csv"
    tape.write_text(
        "time,symbol,price,currency,day_high\n"
        "2025-01-02T09:30:00+08:00,1810,40.05,HKD,40.05\n"
        "2025-01-02T09:31:00+08:00,1810,40.10,HKD,40.10\n"
        "2025-01-02T09:32:00+08:00,1810,40.05,HKD,40.10\n"
    )
    rows = list(TapeReader(tape))
    assert [r.price for r in rows] == [Decimal("40.05"), Decimal("40.10"), Decimal("40.05")]
    assert [str(r.price) for r in rows] == ["40.05", "40.10", "40.05"]
    assert [r.day_high for r in rows] == [Decimal("40.05"), Decimal("40.10"), Decimal("40.10")]
