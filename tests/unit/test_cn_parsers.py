"""The Tencent and Sina parsers on every recorded payload, field by field.

Facts come from the payloads' SOURCES.md (copied in tests/fixtures/cn_quotes/README.md): Yahoo's
open and prior close, the Eastmoney caps, total cap / price = total shares.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.core.quote import Quote
from monitor.errors import SourceError
from monitor.sources.sina import parse_sina
from monitor.sources.tencent import parse_tencent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cn_quotes"
HKT = ZoneInfo("Asia/Hong_Kong")
D = Decimal


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def hkt(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=HKT)


def only(parsed: dict[str, Quote | SourceError], name: str) -> Quote:
    assert list(parsed) == [name]
    quote = parsed[name]
    assert isinstance(quote, Quote), quote
    return quote


def yahoo_day(day: str) -> dict[str, Decimal]:
    """Yahoo's daily bar of 1810.HK (float32 prices, rounded to the 3 decimals quotes have)."""
    with (FIXTURES / "yahoo_1810.HK_daily_excerpt.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["Date"].startswith(day):
                return {k: round(D(row[k]), 3) for k in ("Open", "High", "Low", "Close")}
    raise AssertionError(f"no Yahoo row for {day}")


def js_literal_fields(body: str) -> dict[str, str]:
    return dict(re.findall(r"\b(f\d+): '?([^',\n]+)'?,", body))


# -- Tencent ------------------------------------------------------------------------------
TENCENT = [
    # file, key, symbol, last, prev close, open, high, low, time, total, listed, cap, delayed
    (
        "tencent_r_hk01810_2026-08-03.txt", "r_hk01810", "1810.HK", "27.380", "28.780", "28.740",
        "28.760", "27.240", "2026-08-03 10:00:40", 25_842_088_167, 21_398_472_034,
        "707556370000", False,
    ),
    (
        "tencent_hk01810_2026-06-12.txt", "hk01810", "1810.HK", "26.200", "25.840", "26.060",
        "26.500", "25.960", "2026-06-12 16:08:29", 25_840_699_294, 21_387_120_484,
        "677026320000", True,
    ),
    (
        "tencent_hk00700_2026-08-07.txt", "hk00700", "0700.HK", "478.800", "479.200", "479.000",
        "483.200", "475.400", "2026-08-07 16:08:23", 9_082_721_689, 9_082_721_689,
        "4348807140000", True,
    ),
    (
        "LOWCONF_tencent_r_hk09660_2025-04-29_newline-in-time.txt", "r_hk09660", "9660.HK",
        "6.340", "5.690", "5.800", "6.450", "5.710", "2025-04-29 14:14:52", 13_200_293_682,
        11_075_904_412, "83689860000", False,
    ),
    # the 66-field layout: no share counts, one cap for every class -> no total cap
    (
        "tencent_hk01810_2020-09-15.txt", "hk01810", "1810.HK", "22.700", "23.550", "22.500",
        "22.850", "22.350", "2020-09-15 11:17:03", None, None, None, True,
    ),
    # pre-open: open 0.000 means no open yet
    (
        "tencent_r_hk01082_2020-12-16_preopen.txt", "r_hk01082", "1082.HK", "1.300", "1.300",
        None, "1.300", "1.300", "2020-12-16 09:20:17", None, None, None, False,
    ),
]  # fmt: skip


@pytest.mark.parametrize("row", TENCENT, ids=[r[0] for r in TENCENT])
def test_tencent_maps_every_field_of_each_recorded_payload(row: tuple[object, ...]) -> None:
    name, key, symbol, last, prev, open_, high, low, when, total, listed, cap, delayed = row
    q = only(parse_tencent(text(str(name))), str(key))
    assert (q.symbol, q.source, q.currency, q.exchange_tz) == (
        symbol, "tencent", "HKD", "Asia/Hong_Kong",
    )  # fmt: skip
    assert q.price == D(str(last))
    assert q.previous_close == D(str(prev))
    assert q.open == (D(str(open_)) if open_ else None)
    assert (q.day_high, q.day_low) == (D(str(high)), D(str(low)))
    assert q.time == hkt(str(when))
    assert (q.total_shares, q.listed_shares) == (total, listed)
    assert q.market_cap == (D(str(cap)) if cap else None)
    assert q.delayed is delayed


def test_tencent_total_cap_over_price_is_the_total_share_count_not_the_listed_one() -> None:
    # Xiaomi: field 69 counts Class A + B, field 70 the HK-listed Class B (easyquotation swaps them)
    for name, key in (
        ("tencent_hk01810_2026-06-12.txt", "hk01810"),
        ("tencent_r_hk01810_2026-08-03.txt", "r_hk01810"),
    ):
        q = only(parse_tencent(text(name)), key)
        assert q.market_cap is not None and q.total_shares and q.listed_shares
        implied = q.market_cap / q.price
        assert abs(implied - q.total_shares) < 1000
        assert q.listed_shares < q.total_shares * D("0.85")


def test_tencent_share_count_agrees_with_eastmoney_total_cap_exactly() -> None:
    q = only(parse_tencent(text("tencent_hk01810_2026-06-12.txt")), "hk01810")
    em = js_literal_fields(text("TRIMMED_eastmoney_push2_01810_2026-06-12.jsliteral.txt"))
    assert q.total_shares is not None
    assert q.price * q.total_shares == D(em["f116"])  # 677,026,321,502.8 HKD
    scaled = {k: D(em[k]) / 1000 for k in ("f43", "f44", "f45", "f46", "f60")}  # 10^f59
    assert em["f59"] == "3"
    assert (q.price, q.day_high, q.day_low, q.open, q.previous_close) == (
        scaled["f43"], scaled["f44"], scaled["f45"], scaled["f46"], scaled["f60"],
    )  # fmt: skip

    tencent = only(parse_tencent(text("tencent_hk00700_2026-08-07.txt")), "hk00700")
    data = json.loads(text("eastmoney_push2_00700_2026-08-07.json"))["data"]
    assert tencent.total_shares is not None
    assert tencent.price * tencent.total_shares == D(str(data["f116"]))
    assert tencent.previous_close == D(data["f60"]) / 1000
    assert tencent.open == D(data["f46"]) / 1000


@pytest.mark.parametrize(
    ("name", "key", "day", "prior"),
    [
        ("tencent_hk01810_2020-09-15.txt", "hk01810", "2020-09-15", "2020-09-14"),
        ("sina_rt_hk01810_2021-07-12.txt", "rt_hk01810", "2021-07-12", "2021-07-09"),
        ("sina_rt_hk01810_2024-10-15.txt", "rt_hk01810", "2024-10-15", "2024-10-14"),
        (
            "LOWCONF_sina_rt_hk01810_2021-06-04_reflowed-comment.txt",
            "rt_hk01810",
            "2021-06-04",
            "2021-06-03",
        ),
    ],
)
def test_open_and_previous_close_are_yahoos(name: str, key: str, day: str, prior: str) -> None:
    raw = text(name)
    if "reflowed" in name:  # SOURCES.md: drop the "\n# " joins to get the payload back
        raw = raw.replace("\n# ", "").removeprefix("# ")
    parsed = parse_tencent(raw) if name.startswith("tencent") else parse_sina(raw)
    q = only(parsed, key)
    bar, before = yahoo_day(day), yahoo_day(prior)
    assert q.open == bar["Open"]
    assert q.previous_close == before["Close"]
    assert q.day_high == bar["High"]
    assert q.day_low is not None and q.day_low >= bar["Low"]
    assert q.day_low <= q.price <= q.day_high


# -- Sina ---------------------------------------------------------------------------------
SINA = [
    # file, symbol, open, prev close, high, low, last, time
    ("sina_rt_hk01810_2021-07-12.txt", "1810.HK", "27.000", "26.700", "27.100", "26.250",
     "26.650", "2021-07-12 15:55:57"),
    ("sina_rt_hk01810_2024-10-15.txt", "1810.HK", "23.600", "23.600", "24.050", "23.400",
     "23.850", "2024-10-15 10:41:57"),
    ("sina_rt_hk00700_2024-10-15.txt", "0700.HK", "433.800", "436.000", "433.800", "425.200",
     "426.400", "2024-10-15 10:41:57"),
    ("sina_rt_hk00700_2026-08-28.txt", "0700.HK", "444.000", "447.800", "459.800", "443.400",
     "455.800", "2026-08-28 14:04:43"),
]  # fmt: skip


@pytest.mark.parametrize("row", SINA, ids=[r[0] for r in SINA])
def test_sina_maps_every_field_of_each_recorded_payload(row: tuple[str, ...]) -> None:
    name, symbol, open_, prev, high, low, last, when = row
    q = only(parse_sina(text(name)), "rt_hk" + f"{int(symbol[:-3]):05d}")
    assert (q.symbol, q.source, q.currency, q.delayed) == (symbol, "sina", "HKD", False)
    assert q.open == D(open_)
    assert q.previous_close == D(prev)
    assert (q.day_high, q.day_low, q.price) == (D(high), D(low), D(last))
    assert q.time == hkt(when)
    assert (q.market_cap, q.total_shares, q.listed_shares) == (None, None, None)


def test_sina_two_lines_of_one_answer_give_two_quotes() -> None:
    answer = text("sina_rt_hk01810_2024-10-15.txt") + ";\n" + text("sina_rt_hk00700_2024-10-15.txt")
    parsed = parse_sina(answer + ";\n")
    assert {k: (v.symbol, v.price) for k, v in parsed.items() if isinstance(v, Quote)} == {
        "rt_hk01810": ("1810.HK", D("23.850")),
        "rt_hk00700": ("0700.HK", D("426.400")),
    }


def test_sina_full_width_comma_in_the_name_is_rejected_not_read_one_field_off() -> None:
    raw = text("LOWCONF_sina_rt_hk01810_2026-03-17_edited-name.txt")
    err = parse_sina(raw)["rt_hk01810"]
    assert isinstance(err, SourceError)
    assert err.kind == "bad_data" and "shifted" in str(err)
    # with the comma Sina really sends, every field is where the map says
    q = only(parse_sina(raw.replace("，", ",")), "rt_hk01810")
    assert (q.open, q.previous_close, q.day_high, q.day_low, q.price) == (
        D("35.400"), D("35.200"), D("36.620"), D("35.220"), D("35.360"),
    )  # fmt: skip
    assert q.time == hkt("2026-03-17 16:08:16")


# -- error paths --------------------------------------------------------------------------
def kind_of(result: Quote | SourceError) -> str:
    assert isinstance(result, SourceError), result
    return result.kind


def test_handwritten_empty_and_none_match_answers_are_not_found() -> None:
    assert kind_of(parse_tencent(text("HANDWRITTEN_tencent_hk01810_empty.txt"))["hk01810"]) == (
        "not_found"
    )
    none = parse_tencent(text("HANDWRITTEN_tencent_pv_none_match.txt"))
    assert kind_of(none["pv_none_match"]) == "not_found"
    assert kind_of(parse_sina('var hq_str_rt_hk99999="";\n')["rt_hk99999"]) == "not_found"


REAL_T = "tencent_r_hk01810_2026-08-03.txt"
REAL_S = "sina_rt_hk01810_2021-07-12.txt"


def tencent_with(index: int, value: str) -> str:
    head, body = text(REAL_T).split('"', 1)
    fields = body.rstrip('";').split("~")
    fields[index] = value
    return head + '"' + "~".join(fields) + '";'


def sina_with(index: int, value: str) -> str:
    head, body = text(REAL_S).split('"', 1)
    fields = body.rstrip('";').split(",")
    fields[index] = value
    return head + '"' + ",".join(fields) + '";'


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (text(REAL_T)[:200], "cut off"),
        (tencent_with(3, "0.000"), "not positive"),
        (tencent_with(3, "-27.380"), "not positive"),
        (tencent_with(3, "abc"), "not positive"),
        (tencent_with(30, "2026/02/30 10:00:40"), "quote time"),
        (tencent_with(30, ""), "quote time"),
        (tencent_with(2, "00700"), "code field"),
        (tencent_with(3, "30.000"), "outside the day's range"),
        (tencent_with(69, "21398472034.00"), "is not 21398472034 shares"),  # 69/70 swapped
        (tencent_with(75, "H$"), "currency"),
        ('v_r_hk01810="100~XIAOMI~01810~27.380";', "fields"),
    ],
    ids=[
        "truncated",
        "zero",
        "negative",
        "junk",
        "bad-date",
        "no-time",
        "code",
        "range",
        "swap",
        "currency",
        "short",
    ],
)
def test_tencent_bad_payloads_are_bad_data(payload: str, needle: str) -> None:
    result = parse_tencent(payload)["r_hk01810"]
    assert kind_of(result) == "bad_data"
    assert needle in str(result)
    assert isinstance(result, SourceError) and result.source == "tencent"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (text(REAL_S)[:120], "cut off"),
        (sina_with(6, "0.000"), "not positive"),
        (sina_with(6, "-1"), "not positive"),
        (sina_with(17, "15:55:57"), "shifted"),
        (sina_with(18, "25:61:00"), "quote time"),
        (sina_with(6, "40.000"), "outside the day's range"),
        ('var hq_str_rt_hk01810="XIAOMI-W,x,27.000";', "fields"),
    ],
    ids=["truncated", "zero", "negative", "date", "time", "range", "short"],
)
def test_sina_bad_payloads_are_bad_data(payload: str, needle: str) -> None:
    result = parse_sina(payload)["rt_hk01810"]
    assert kind_of(result) == "bad_data"
    assert needle in str(result)
