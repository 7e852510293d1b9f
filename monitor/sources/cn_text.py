"""What the Tencent and Sina quote adapters share: symbol codes, bounded GBK reads, batching.

Both vendors answer one GET for a comma-separated list of codes with GBK-encoded JavaScript
assignments (``v_r_hk01810="...";`` / ``var hq_str_rt_hk01810="...";``). Any failure of a
request stands for every symbol of its batch; nothing here raises out of ``fetch_batch``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from zoneinfo import ZoneInfo

import requests
import urllib3

from monitor.core.quote import Quote
from monitor.errors import SourceError

HKT = ZoneInfo("Asia/Hong_Kong")
HK_TZ = "Asia/Hong_Kong"
HK_EXCHANGE = "HKG"  # the name Yahoo gives the exchange, so quotes compare by it
MAX_BODY = 1 << 20  # a 60-code Tencent answer is ~27 KB, an 800-code Sina one ~200 KB
# a quote time this far past the local clock is a bad clock or bad data, not a quote
FUTURE_SKEW = timedelta(minutes=2)
_HK_SYMBOL = re.compile(r"^0*(\d{1,5})\.HK$", re.IGNORECASE)
_STAMP = re.compile(r"^(\d{4})/(\d{2})/(\d{2})\s+(\d{2}):(\d{2}):(\d{2})$")

T = TypeVar("T")


def hk_code(symbol: str) -> str | None:
    """The vendors' five-digit code of a Yahoo-style HK symbol (``1810.HK`` -> ``01810``)."""
    match = _HK_SYMBOL.match(symbol.strip())
    return f"{int(match.group(1)):05d}" if match else None


def yahoo_symbol(code: str) -> str:
    """The Yahoo-style symbol of a vendor code (``01810`` -> ``1810.HK``)."""
    return f"{int(code):04d}.HK"


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def number(text: str) -> Decimal | None:
    """A finite decimal from a payload field, or None when it is not one."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def positive(text: str) -> Decimal | None:
    """A payload field as a positive decimal; None for empty, zero (vendors' "none") or junk."""
    value = number(text)
    return value if value is not None and value > 0 else None


def optional_positive(text: str, what: str, *, zero_absent: bool = False) -> Decimal | None:
    """A field that may be absent: ``None`` for an empty field (or a 0 where the vendor means
    "none yet", ``zero_absent``: the open before the open); anything else that is not a
    positive number raises ``ValueError`` naming ``what`` (the quote is ``bad_data``)."""
    if not text.strip():
        return None
    value = number(text)
    if value == 0 and zero_absent:
        return None
    if value is None or value <= 0:
        raise ValueError(f"{what} {text.strip()[:40]!r} is not a positive number")
    return value


def hk_time(date_time: str) -> datetime | None:
    """``YYYY/MM/DD HH:MM:SS`` in Hong Kong time, or None when it is not a real time."""
    match = _STAMP.match(date_time.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=HKT)
    except ValueError:
        return None


def range_problem(price: Decimal, low: Decimal | None, high: Decimal | None) -> str | None:
    """Why ``price`` cannot be the last price of a day with that low and high (a shifted field)."""
    if low is not None and high is not None:
        if low > high:
            return f"day low {low} above day high {high}"
        if not low <= price <= high:
            return f"last price {price} outside the day's range {low}..{high}"
    return None


def failure(source: str, kind: str, what: str, where: str, hint: str) -> SourceError:
    """A ``SourceError`` of ``source`` with a metrics ``kind``."""
    return SourceError(what, where, hint, source=source, kind=kind)


def check_time(
    result: Quote | SourceError, now: datetime, where: str, hint: str
) -> Quote | SourceError:
    """``result``, or a ``bad_data`` error when its quote time lies in the future."""
    if isinstance(result, Quote) and result.time > now + FUTURE_SKEW:
        return failure(
            result.source,
            "bad_data",
            f"{result.source} quote of {result.symbol} is dated in the future "
            f"({result.time.isoformat()} while the clock says {now.isoformat()})",
            where,
            hint,
        )
    return result


def fetch_batch(
    session: requests.Session,
    url: str,
    *,
    source: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    where: str,
) -> str | SourceError:
    """GET ``url`` and decode the GBK body (at most ``MAX_BODY`` bytes), or the error."""
    hint = f"retrying next poll; check the network or source.{source}_base_url"
    # requests' timeout bounds each read; a server trickling bytes is bounded here
    deadline = time.monotonic() + 2 * timeout
    try:
        resp = session.get(url, timeout=timeout, headers=headers, stream=True)
        try:
            if resp.status_code != 200:
                kind = "rate_limited" if resp.status_code == 429 else "network"
                what = f"{source} answered HTTP {resp.status_code}"
                return failure(source, kind, what, where, hint)
            body = bytearray()
            for piece in _pieces(resp):
                body += piece
                if len(body) > MAX_BODY:
                    what = f"{source} answer exceeds {MAX_BODY} bytes"
                    return failure(source, "bad_data", what, where, hint)
                if time.monotonic() > deadline:
                    what = f"{source} answer took over {2 * timeout:g} s"
                    return failure(source, "network", what, where, hint)
        finally:
            if resp.raw is not None:  # None in a session stand-in that set ``_content``
                resp.close()
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        return failure(
            source, "network", f"no answer from {source} ({type(exc).__name__})", where, hint
        )
    try:
        return bytes(body).decode("gbk")
    except UnicodeDecodeError as exc:
        return failure(
            source, "bad_data", f"{source} answer is not GBK text (byte {exc.start})", where, hint
        )


def _pieces(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives (``iter_content`` would wait for whole 64 KiB chunks)."""
    if resp.raw is None:  # a stand-in response holding its body already
        yield resp.content
        return
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:  # not a urllib3 response
        yield from resp.iter_content(chunk_size=65536)
        return
    while piece := read1(65536, decode_content=True):
        yield piece


def parse_entries(
    text: str,
    entry: re.Pattern[str],
    *,
    source: str,
    label: str,
    hint: str,
    empty: Callable[[str, str], bool],
    quote: Callable[[str, str, str], Quote | SourceError],
) -> dict[str, Quote | SourceError]:
    """Every ``<label><name>="..."`` entry of a vendor answer, keyed by ``<name>``: cut off
    (no closing quote) is ``bad_data``, ``empty(name, body)`` is ``not_found``, else
    ``quote(name, body, where)``."""
    out: dict[str, Quote | SourceError] = {}
    for match in entry.finditer(text):
        name, body, closed = match.group(1), match.group(2), match.group(3)
        where = f"{source} {label}{name}"
        if closed is None:
            what = f"{source} answer cut off inside {label}{name}"
            out[name] = failure(source, "bad_data", what, where, hint)
        elif empty(name, body):
            what = f"{source} knows no quote for {name}"
            out[name] = failure(source, "not_found", what, where, hint)
        else:
            out[name] = quote(name, body, where)
    return out
