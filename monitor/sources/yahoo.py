"""Yahoo Finance through yfinance: one chart request per symbol, failures as typed errors.

yfinance talks through a ``curl_cffi`` session that we inject (``YahooSession`` in
production, a fake in tests). yfinance keeps process-wide state (a singleton holding the
cookie and crumb, an LRU response cache, sqlite caches); ``configure_yfinance`` makes it raise
instead of logging and returning empty frames, and never retry with sleeps.
"""

from __future__ import annotations

import math
import re
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance import cache as yf_cache
from yfinance.exceptions import (
    YFDataException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTzMissingError,
)

from monitor.core.money import to_decimal
from monitor.core.quote import Quote
from monitor.errors import SourceError, bad_data

SOURCE = "yahoo"
# Yahoo's currency instruments trade in London time (recorded EURUSD=X chart meta).
FX_TIMEZONE = "Europe/London"
# Yahoo quotes some markets in minor units; its marketCap is in the major unit
MINOR_UNITS = {"GBp": "GBP", "GBX": "GBP", "ZAc": "ZAR", "ILA": "ILS"}
_HK_CODE = re.compile(r"^0*(\d{1,5})\.HK$", re.IGNORECASE)


class YahooSession(curl_requests.Session[curl_requests.Response]):
    """The production session: caps every timeout and can send Yahoo's traffic elsewhere.

    ``base_url`` (e.g. a proxy or a local test server) replaces scheme and host of every
    ``*.yahoo.com`` URL, so "offline" can be tested against a closed local port.
    """

    def __init__(self, *, timeout: float = 10.0, base_url: str | None = None) -> None:
        super().__init__(impersonate="chrome")
        self.max_timeout = timeout
        self.base_url = base_url.rstrip("/") if base_url else None

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.base_url is not None:
            url = rewrite_host(url, self.base_url)
        timeout = kwargs.get("timeout")
        if not isinstance(timeout, int | float) or timeout > self.max_timeout:
            kwargs["timeout"] = self.max_timeout
        return super().request(method, url, *args, **kwargs)


def rewrite_host(url: str, base_url: str) -> str:
    """Replace scheme and host of a ``*.yahoo.com`` URL by those of ``base_url``."""
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith("yahoo.com"):
        return url
    base = urlsplit(base_url)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))


def configure_yfinance(cache_dir: Path | None) -> None:
    """Make yfinance raise its errors, not retry with sleeps, and cache under ``cache_dir``."""
    yf.config.debug.hide_exceptions = False
    yf.config.network.retries = 0
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(cache_dir))


def reset_yfinance_state() -> None:
    """Forget yfinance's process-wide cookie, crumb and cached responses (tests, start-up)."""
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()
    type(YfData)._instances.pop(YfData, None)
    yf_cache._TzCacheManager._tz_cache = None
    yf_cache._CookieCacheManager._Cookie_cache = None


# what the chart endpoint yields: the source-neutral quote of the core
ChartQuote = Quote


def not_found_hint(symbol: str) -> str:
    """What to check when Yahoo does not know a symbol."""
    m = _HK_CODE.match(symbol)
    if m:
        suggestion = f"{int(m.group(1)):04d}.HK"
        if suggestion.upper() != symbol.upper():
            return (
                f"Hong Kong codes have 4 digits on Yahoo, e.g. {symbol} -> {suggestion}; "
                "fix [[symbols]] symbol"
            )
        return (
            "Hong Kong codes have 4 digits on Yahoo (e.g. 00981.HK or 981.HK -> 0981.HK); "
            "check the code on finance.yahoo.com and fix [[symbols]] symbol"
        )
    return "check the symbol on finance.yahoo.com and fix [[symbols]] symbol"


def not_found(symbol: str, detail: str) -> SourceError:
    """Yahoo does not know ``symbol``; ``detail`` tells how that showed (``HTTP 404``, ...)."""
    return SourceError(
        f"symbol {symbol} not found on Yahoo ({detail})",
        symbol,
        not_found_hint(symbol),
        source=SOURCE,
        kind="not_found",
    )


def classify(exc: BaseException, symbol: str) -> SourceError:
    """Turn a yfinance / curl_cffi failure into a ``SourceError`` with a stable kind."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, YFRateLimitError):
        return SourceError(
            "rate limited by Yahoo Finance (HTTP 429)",
            symbol,
            "backing off; lower the poll frequency if this repeats",
            source=SOURCE,
            kind="rate_limited",
        )
    if isinstance(exc, YFPricesMissingError | YFTzMissingError):
        return not_found(symbol, str(exc))
    if isinstance(exc, curl_requests.exceptions.HTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 404:
            return not_found(symbol, "HTTP 404")
        return SourceError(
            f"Yahoo Finance answered with an HTTP error: {exc}",
            symbol,
            "retrying next poll",
            source=SOURCE,
            kind="network",
        )
    if isinstance(exc, OSError | YFDataException):
        # curl_cffi's RequestException (DNS, refused, timeout) is an OSError
        return SourceError(
            f"no network: could not reach Yahoo Finance ({_short(exc)})",
            symbol,
            "check the internet connection or proxy",
            source=SOURCE,
            kind="network",
        )
    return SourceError(
        f"unusable Yahoo chart data ({type(exc).__name__}: {exc})",
        symbol,
        "retrying next poll; report it if it persists",
        source=SOURCE,
        kind="bad_data",
    )


def _short(exc: BaseException) -> str:
    """curl's own reason without its boilerplate, e.g. ``Could not resolve host: ...``."""
    text = str(exc)
    m = re.search(r"curl: \(\d+\) (.*?)(?: \(|\. See |$)", text)
    return f"{type(exc).__name__}: {m.group(1) if m else text}"


def _decimal_or_none(value: object) -> Decimal | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return to_decimal(value)
    except ValueError:
        return None


def _time(value: object) -> datetime | None:
    """A unix time (int) or a pandas Timestamp (yfinance formats meta) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    to_py = getattr(value, "to_pydatetime", None)
    if callable(to_py):
        moment = to_py()
        if isinstance(moment, datetime) and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    return None


def quote_from_meta(symbol: str, meta: dict[str, Any]) -> ChartQuote:
    """Build a ``ChartQuote`` from chart metadata, or raise ``SourceError(kind="bad_data")``."""
    bad = bad_data(
        "Yahoo quote rejected", symbol, "the quote is skipped for this poll", source=SOURCE
    )
    price = _decimal_or_none(meta.get("regularMarketPrice"))
    if price is None:
        raise bad("regularMarketPrice is missing or NaN")
    if price <= 0:
        raise bad(f"non-positive price {price}")
    when = _time(meta.get("regularMarketTime"))
    if when is None:
        raise bad("regularMarketTime is missing")
    currency = meta.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise bad(f"currency is {currency!r}")
    tz = meta.get("exchangeTimezoneName")
    high = _decimal_or_none(meta.get("regularMarketDayHigh"))
    if high is not None and high < price:
        high = None  # a day high below the last price is inconsistent; ignore it
    start = end = None
    period = meta.get("currentTradingPeriod")
    if isinstance(period, dict) and isinstance(period.get("regular"), dict):
        start = _time(period["regular"].get("start"))
        end = _time(period["regular"].get("end"))
    return ChartQuote(
        symbol=symbol,
        price=price,
        currency=currency.upper(),
        time=when,
        exchange_tz=tz if isinstance(tz, str) else "UTC",
        day_high=high,
        exchange=str(meta.get("exchangeName") or ""),
        session_start=start,
        session_end=end,
    )


_META_KEYS = (
    "currency",
    "symbol",
    "exchangeName",
    "exchangeTimezoneName",
    "regularMarketPrice",
    "regularMarketTime",
    "regularMarketDayHigh",
    "currentTradingPeriod",
    "instrumentType",
)


class YahooChart:
    """Reads the chart metadata of one symbol per call, through an injected session.

    A fresh ``Ticker`` is made per call: yfinance caches quotes per object.
    """

    def __init__(
        self,
        session: Any,
        *,
        timeout: float = 10.0,
        interval: str = "1d",
        timezones: dict[str, str] | None = None,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.interval = interval
        self._timezones = dict(timezones or {})

    def _prime_tz(self, symbol: str) -> None:
        # yfinance looks the exchange time zone up (one extra chart request) unless cached;
        # we know it from config, so a poll costs exactly one chart request.
        tz = self._timezones.get(symbol) or (FX_TIMEZONE if symbol.endswith("=X") else None)
        if tz is None:
            return
        cache = yf_cache.get_tz_cache()
        if cache.lookup(symbol) is None:
            cache.store(symbol, tz)

    def quote(self, symbol: str) -> ChartQuote:
        """The latest quote of ``symbol``; raises ``SourceError`` with a stable ``kind``."""
        try:
            self._prime_tz(symbol)
            with warnings.catch_warnings():
                # yfinance's own pandas deprecation noise is not ours to fix
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                ticker = yf.Ticker(symbol, session=self.session)
                ticker.history(period="1d", interval=self.interval, timeout=self.timeout)
                md = ticker.get_history_metadata()
                meta = {key: md[key] for key in _META_KEYS if key in md}
        except Exception as exc:
            raise classify(exc, symbol) from exc
        if not meta:
            raise not_found(symbol, "empty chart")
        return quote_from_meta(symbol, meta)

    def _info(self, symbol: str) -> dict[str, Any]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                info: dict[str, Any] = yf.Ticker(symbol, session=self.session).get_info()
        except Exception as exc:
            raise classify(exc, symbol) from exc
        return info

    def implied_shares(self, symbol: str) -> tuple[Decimal, Decimal, int | None]:
        """Yahoo's ``marketCap``, the price it used and ``sharesOutstanding`` (``info``; daily)."""
        info = self._info(symbol)
        cap = _decimal_or_none(info.get("marketCap"))
        price = _decimal_or_none(info.get("regularMarketPrice") or info.get("currentPrice"))
        if cap is None or price is None or cap <= 0 or price <= 0:
            raise SourceError(
                "Yahoo has no marketCap / price for the implied share count",
                symbol,
                "the cross-check is skipped today",
                source=SOURCE,
                kind="bad_data",
            )
        listed = info.get("sharesOutstanding")
        return cap, price, listed if isinstance(listed, int) and listed > 0 else None

    def market_cap(self, symbol: str) -> tuple[Decimal, str]:
        """Yahoo's ``marketCap`` and its currency (major unit: GBp is reported as GBP)."""
        info = self._info(symbol)
        cap = _decimal_or_none(info.get("marketCap"))
        currency = str(info.get("currency") or "")
        if cap is None or cap <= 0 or not currency:
            raise SourceError(
                "Yahoo has no marketCap for this company", symbol, "", source=SOURCE,
                kind="bad_data",
            )  # fmt: skip
        return cap, MINOR_UNITS.get(currency, currency.upper())
