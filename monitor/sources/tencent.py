"""Tencent's real-time HK quotes: ``qt.gtimg.cn/q=r_hk01810,r_hk00700``, GBK, ``~``-separated.

Field map (0-based, verified on recorded payloads, see tests/fixtures/cn_quotes/README.md):
3 last, 4 previous close, 5 open (0 before the open), 30 quote time (HKT), 33/34 day high/low,
44 HK-listed cap and 45 total cap (1e8 HKD), 69 total shares (every class), 70 HK-listed
shares, 75 currency. Fields 66-77 are missing in the older 66-field layout. ``q=hk...`` (no
``r_``) is the 15-minute delayed variant; we ask for ``r_hk`` and mark ``hk`` answers delayed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from monitor.core.quote import Quote
from monitor.errors import SourceError
from monitor.sources import cn_text
from monitor.sources.cn_batch import CnBatchQuotes

SOURCE = "tencent"
# easyquotation (shidenggui/easyquotation, easyquotation/tencent.py @ edc56033): max_num = 60
BATCH = 60
_HINT = "retrying next poll; check the symbol or source.tencent_base_url"
_ENTRY = re.compile(r'v_(\w+)="([^"]*)(")?')
_YI = Decimal(10) ** 8
MIN_FIELDS = 46  # up to the total cap; the 2020 layout has 66, the 2025-26 one 78
# total cap / price and the share count agree to rounding (1e4 HKD); more is a layout shift
_SHARES_SLACK = Decimal("0.001")


def parse_tencent(text: str) -> dict[str, Quote | SourceError]:
    """Every ``v_<name>="...";`` of an answer, keyed by ``<name>`` (``r_hk01810``).

    ``pv_none_match`` (every code unknown) maps to a ``not_found`` error under its own name.
    """
    return cn_text.parse_entries(
        text,
        _ENTRY,
        source=SOURCE,
        label="v_",
        hint=_HINT,
        empty=lambda name, body: name == "pv_none_match" or not body,
        quote=lambda name, body, where: _quote(name, body.split("~"), where),
    )


def _error(kind: str, what: str, where: str) -> SourceError:
    return cn_text.failure(SOURCE, kind, what, where, _HINT)


def _quote(name: str, f: list[str], where: str) -> Quote | SourceError:
    def bad(what: str) -> SourceError:
        return _error("bad_data", f"unusable tencent quote {name}: {what}", where)

    if len(f) < MIN_FIELDS:
        return bad(f"{len(f)} fields, expected at least {MIN_FIELDS}")
    code = f[2].strip()
    if not name.endswith("hk" + code) or not code.isdigit():
        return bad(f"code field {code!r} does not match the request")
    price = cn_text.number(f[3])
    if price is None or price <= 0:
        return bad(f"last price {f[3]!r} is not positive")
    when = cn_text.hk_time(f[30])
    if when is None:
        return bad(f"quote time {f[30]!r} is not YYYY/MM/DD HH:MM:SS")
    try:
        low = cn_text.optional_positive(f[34], "day low (field 34)")
        high = cn_text.optional_positive(f[33], "day high (field 33)")
        previous = cn_text.optional_positive(f[4], "previous close (field 4)")
        opened = cn_text.optional_positive(f[5], "open (field 5)", zero_absent=True)
    except ValueError as exc:
        return bad(str(exc))
    problem = cn_text.range_problem(price, low, high)
    if problem:
        return bad(problem)
    total, listed = _shares(f, 69), _shares(f, 70)
    for index, shares in ((45, total), (44, listed)):
        cap = cn_text.positive(f[index])
        if shares and cap and abs(cap * _YI / price - shares) > shares * _SHARES_SLACK:
            return bad(f"field {index} cap {cap}e8 / price {price} is not {shares} shares")
    # the 66-field layout reports one cap for every class (44 = 45) and no share counts, so
    # nothing shows whether it counts unlisted classes: no total cap from it
    cap = cn_text.positive(f[45]) if total is not None else None
    currency = f[75].strip().upper() if len(f) > 75 else ""
    if currency and not (len(currency) == 3 and currency.isalpha()):
        return bad(f"currency {currency!r} is not an ISO code")
    return Quote(
        symbol=cn_text.yahoo_symbol(code),
        price=price,
        currency=currency or "HKD",
        time=when,
        exchange_tz=cn_text.HK_TZ,
        day_high=high,
        exchange=cn_text.HK_EXCHANGE,
        source=SOURCE,
        previous_close=previous,
        open=opened,
        day_low=low,
        market_cap=cap * _YI if cap is not None else None,
        total_shares=total,
        listed_shares=listed,
        delayed=not name.startswith("r_"),
    )


def _shares(f: list[str], index: int) -> int | None:
    value = cn_text.positive(f[index]) if len(f) > index else None
    return int(value) if value is not None and value == value.to_integral_value() else None


class TencentQuotes(CnBatchQuotes):
    """``BatchQuoteSource`` over ``qt.gtimg.cn``: one GET per ``batch`` codes."""

    name = SOURCE
    prefix = "r_hk"
    list_path = "q="
    hint = _HINT
    default_batch = BATCH
    default_base_url = "https://qt.gtimg.cn"

    def parse(self, text: str) -> dict[str, Quote | SourceError]:
        return parse_tencent(text)

    def unknown(self, parsed: Mapping[str, Quote | SourceError]) -> bool:
        return "pv_none_match" in parsed
