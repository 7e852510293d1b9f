"""Sina's real-time HK quotes: ``hq.sinajs.cn/list=rt_hk01810,rt_hk00700``, GBK, ``,``-separated.

Field map (0-based, verified on recorded payloads, see tests/fixtures/cn_quotes/README.md):
0 English name, 1 Chinese name, 2 open, 3 previous close, 4 day high, 5 day low, 6 last,
9 bid, 10 ask, 17 date ``YYYY/MM/DD``, 18 time (HKT). No currency (HKD), no market cap, no
share counts. Sina refuses requests without a ``Referer`` of its finance site.
"""

from __future__ import annotations

import re

from monitor.core.quote import Quote
from monitor.errors import SourceError
from monitor.sources import cn_text
from monitor.sources.cn_batch import CnBatchQuotes

SOURCE = "sina"
REFERER = "https://finance.sina.com.cn"
# easyquotation (shidenggui/easyquotation, easyquotation/sina.py @ 4314ece7): max_num = 800
BATCH = 800
MIN_FIELDS = 19  # through the time; the full rt_hk line has 25
_HINT = "retrying next poll; check the symbol or source.sina_base_url"
_ENTRY = re.compile(r'var\s+hq_str_(\w+)\s*=\s*"([^"]*)(")?')
_DATE = re.compile(r"^\d{4}/\d{2}/\d{2}$")


def parse_sina(text: str) -> dict[str, Quote | SourceError]:
    """Every ``var hq_str_<name>="...";`` of an answer, keyed by ``<name>`` (``rt_hk01810``)."""
    return cn_text.parse_entries(
        text,
        _ENTRY,
        source=SOURCE,
        label="hq_str_",
        hint=_HINT,
        empty=lambda name, body: not body.strip(),
        quote=lambda name, body, where: _quote(name, body.split(","), where),
    )


def _error(kind: str, what: str, where: str) -> SourceError:
    return cn_text.failure(SOURCE, kind, what, where, _HINT)


def _quote(name: str, f: list[str], where: str) -> Quote | SourceError:
    def bad(what: str) -> SourceError:
        return _error("bad_data", f"unusable sina quote {name}: {what}", where)

    code = name[-5:]
    if not (name[:-5].endswith("hk") and code.isdigit()):
        return bad("not a Hong Kong code")
    if len(f) < MIN_FIELDS:
        return bad(f"{len(f)} fields, expected at least {MIN_FIELDS}")
    # a comma inside the name shifts every field; the date is where it must be, or nothing is
    if not _DATE.match(f[17].strip()):
        return bad(f"field 17 {f[17]!r} is not a date YYYY/MM/DD (fields shifted?)")
    when = cn_text.hk_time(f"{f[17]} {f[18]}")
    if when is None:
        return bad(f"quote time {f[17]} {f[18]!r} is not a real time")
    price = cn_text.number(f[6])
    if price is None or price <= 0:
        return bad(f"last price {f[6]!r} is not positive")
    try:
        low = cn_text.optional_positive(f[5], "day low (field 5)")
        high = cn_text.optional_positive(f[4], "day high (field 4)")
        previous = cn_text.optional_positive(f[3], "previous close (field 3)")
        opened = cn_text.optional_positive(f[2], "open (field 2)", zero_absent=True)
    except ValueError as exc:
        return bad(str(exc))
    problem = cn_text.range_problem(price, low, high)
    if problem:
        return bad(problem)
    return Quote(
        symbol=cn_text.yahoo_symbol(code),
        price=price,
        currency="HKD",
        time=when,
        exchange_tz=cn_text.HK_TZ,
        day_high=high,
        exchange=cn_text.HK_EXCHANGE,
        source=SOURCE,
        previous_close=previous,
        open=opened,
        day_low=low,
        delayed=not name.startswith("rt_"),
    )


class SinaQuotes(CnBatchQuotes):
    """``BatchQuoteSource`` over ``hq.sinajs.cn``: one GET per ``batch`` codes."""

    name = SOURCE
    prefix = "rt_hk"
    list_path = "list="
    referer = REFERER
    hint = _HINT
    default_batch = BATCH
    default_base_url = "https://hq.sinajs.cn"

    def parse(self, text: str) -> dict[str, Quote | SourceError]:
        return parse_sina(text)
