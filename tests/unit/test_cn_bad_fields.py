"""A non-numeric or negative optional field is bad data, not an absent one (issue 10).

Only an empty field, or the documented "open 0 before the open", means "absent"; anything
else in the previous close, open, high or low makes the whole quote ``bad_data``. Payloads:
the recorded fixtures (tests/fixtures/cn_quotes/, see its README) with one field replaced.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from monitor.core.quote import Quote
from monitor.errors import SourceError
from monitor.sources.sina import parse_sina
from monitor.sources.tencent import parse_tencent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cn_quotes"
TENCENT = (FIXTURES / "tencent_r_hk01810_2026-08-03.txt").read_text(encoding="utf-8")
SINA = (FIXTURES / "sina_rt_hk01810_2024-10-15.txt").read_text(encoding="utf-8")


def with_field(payload: str, sep: str, index: int, value: str) -> str:
    head, body, tail = payload.split('"', 2)
    fields = body.split(sep)
    fields[index] = value
    return f'{head}"{sep.join(fields)}"{tail}'


def tencent(index: int, value: str) -> Quote | SourceError:
    return parse_tencent(with_field(TENCENT, "~", index, value))["r_hk01810"]


def sina(index: int, value: str) -> Quote | SourceError:
    return parse_sina(with_field(SINA, ",", index, value))["rt_hk01810"]


JUNK = ["abc", "-1.5", "--", "1e999999999x", "NaN"]


@pytest.mark.parametrize("value", JUNK)
@pytest.mark.parametrize("index", [4, 5, 33, 34])
def test_tencent_junk_in_an_optional_field_is_bad_data(index: int, value: str) -> None:
    got = tencent(index, value)
    assert isinstance(got, SourceError) and got.kind == "bad_data", got
    assert f"field {index}" in str(got)


@pytest.mark.parametrize("value", JUNK)
@pytest.mark.parametrize("index", [2, 3, 4, 5])
def test_sina_junk_in_an_optional_field_is_bad_data(index: int, value: str) -> None:
    got = sina(index, value)
    assert isinstance(got, SourceError) and got.kind == "bad_data", got
    assert f"field {index}" in str(got)


def test_an_empty_field_or_an_open_of_zero_is_absent() -> None:
    for got in (tencent(4, ""), sina(3, "")):
        assert isinstance(got, Quote) and got.previous_close is None
    for got in (tencent(5, "0.000"), sina(2, "0.000")):
        assert isinstance(got, Quote) and got.open is None  # no open yet (pre-open)
    untouched = tencent(5, "28.740")
    assert isinstance(untouched, Quote) and untouched.open == Decimal("28.740")


def test_a_zero_previous_close_is_bad_data() -> None:
    for got in (tencent(4, "0.000"), sina(3, "0.000")):
        assert isinstance(got, SourceError) and got.kind == "bad_data", got
