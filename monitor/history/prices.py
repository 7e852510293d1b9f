"""Price and FX history downloads for backtests: Yahoo bars through yfinance, ECB's archive.

The network is injected: a ``curl_cffi`` session (or a fake) for Yahoo, a ``requests``-like
session for the ECB; nothing is global.
"""

from __future__ import annotations

import itertools
import warnings
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from monitor.errors import SourceError
from monitor.history.tapebuild import Bar, EcbHistory, round_price


def _price(value: float) -> Decimal:
    # yfinance hands floats: round away their float32 artefacts, as tapebuild does
    return round_price(Decimal(repr(float(value))))


def fetch_yahoo_bars(symbol: str, start: date, end: date, interval: str, session: Any) -> list[Bar]:
    """Price bars from Yahoo's chart API through yfinance, on the given session.

    ``session`` is a ``curl_cffi.requests.Session`` (or a fake of one): nothing is global.
    Unadjusted prices; dividends and splits are not applied (splits change the share count).
    """
    import yfinance

    yf_interval = {"1d": "1d", "1h": "60m", "5m": "5m"}[interval]
    try:
        with warnings.catch_warnings():
            # yfinance's own pandas deprecation noise is not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            frame = yfinance.Ticker(symbol, session=session).history(
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),
                interval=yf_interval,
                auto_adjust=False,
                actions=False,
            )
    except Exception as exc:  # noqa: BLE001 - yfinance raises many types; classify them
        from monitor.sources.yahoo import classify

        err = classify(exc, symbol)
        # the daemon's hints talk about polls; a backtest is one-off
        first = err.hint + "; " if err.kind in ("not_found", "network") else ""
        raise SourceError(
            f"price history download failed: {err.what}",
            f"yahoo {symbol} {interval} {start}..{end}",
            f"{first}or pass --prices FILE.csv "
            "(Yahoo keeps 5m bars for 60 days and 1h bars for 730)",
            source="yahoo",
            kind=err.kind,
        ) from None
    bars: list[Bar] = []
    for stamp, row in frame.iterrows():
        values = [row.get(k) for k in ("Open", "High", "Low", "Close")]
        if any(v is None or v != v for v in values):  # NaN rows: no trade in the bar
            continue
        volume = row.get("Volume")
        moment = stamp.to_pydatetime()
        o, h, low, c = (_price(float(v)) for v in values)
        count = int(volume) if volume is not None and volume == volume else 0
        bars.append(Bar(moment, o, h, low, c, count))
    if not bars:
        raise SourceError(
            "Yahoo returned no price bars",
            f"yahoo {symbol} {interval} {start}..{end}",
            "check the symbol and dates, or pass --prices FILE.csv",
            source="yahoo",
            kind="not_found",
        )
    return bars


def fetch_ecb_history(session: Any, base_url: str, timeout: float = 30.0) -> EcbHistory:
    """``eurofxref-hist.zip`` from the ECB over the given ``requests.Session``."""
    url = base_url.rstrip("/") + "/eurofxref-hist.zip"
    try:
        response = session.get(url, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any transport failure is a network error
        raise SourceError(
            f"ECB history download failed: {type(exc).__name__}",
            url,
            "check the network or pass --fx-history eurofxref-hist.csv",
            source="ecb",
            kind="network",
        ) from None
    if response.status_code != 200:
        raise SourceError(
            f"ECB history download failed: HTTP {response.status_code}",
            url,
            "check [fx] ecb_base_url or pass --fx-history eurofxref-hist.csv",
            source="ecb",
            kind="network",
        )
    return EcbHistory.from_zip(response.content, url)


def detect_interval(bars: list[Bar]) -> str | None:
    """The bar size of a price history: ``1d``, ``1h`` or ``5m``; ``None`` when unclear.

    The smallest gap between consecutive bars decides: a day or more is daily (weekends and
    holidays only widen gaps), an hour is hourly, five minutes is ``5m``.
    """
    gaps = [b.start - a.start for a, b in itertools.pairwise(bars)]
    positive = [g for g in gaps if g > timedelta(0)]
    if not positive:
        return None
    smallest = min(positive)
    if smallest >= timedelta(hours=20):
        return "1d"
    if timedelta(minutes=50) <= smallest <= timedelta(minutes=70):
        return "1h"
    if timedelta(minutes=4) <= smallest <= timedelta(minutes=6):
        return "5m"
    return None
