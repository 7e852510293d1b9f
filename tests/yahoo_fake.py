"""A fake Yahoo Finance: a ``curl_cffi`` session that serves payloads instead of the internet.

yfinance accepts any ``curl_cffi.requests.Session`` subclass, so overriding ``request()`` is
the single seam: no patching. Routes match the URL *path* (a regex, full match); each route
serves its replies in order and repeats the last one. Every request is recorded, so tests and
benchmarks can count them. Reusable for ``Ticker.history()`` in backtests::

    fake = FakeYahooSession()
    fake.route(r"/v8/finance/chart/1810\\.HK", Reply.json(chart_body(...)))
    yf.Ticker("1810.HK", session=fake).history(period="5d")
    assert fake.count("/v8/finance/chart/") == 1

Defaults mimic Yahoo's cookie dance (``fc.yahoo.com`` -> 404, ``getcrumb`` -> a crumb,
consent page without a form) so yfinance proceeds to the data request. Unrouted paths get a
404 and are listed in ``unrouted``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from curl_cffi import requests as curl_requests
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import DNSError, Timeout
from curl_cffi.requests.models import Response

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
CHART = "/v8/finance/chart/"
# the three requests of ``Ticker(sym).get_info()`` (yfinance 1.x), each sent with the crumb
QUOTE_SUMMARY = "/v10/finance/quoteSummary/"
V7_QUOTE = "/v7/finance/quote"
TIMESERIES = "/ws/fundamentals-timeseries/v1/finance/timeseries/"
FAKE_CRUMB = "FAKEcrumb123"  # synthetic


@dataclass(frozen=True)
class Reply:
    """One canned HTTP answer (or a network failure when ``error`` is set)."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json;charset=utf-8"),)
    error: type[Exception] | None = None
    error_message: str = ""

    @classmethod
    def json(cls, data: object, status: int = 200) -> Reply:
        return cls(status, json.dumps(data).encode())

    @classmethod
    def text(cls, text: str, status: int = 200) -> Reply:
        return cls(status, text.encode(), (("content-type", "text/plain"),))

    @classmethod
    def file(cls, name: str, status: int | None = None) -> Reply:
        """A fixture file; ``nyf2_*`` wrappers are unwrapped to their status and body."""
        path = FIXTURES / name
        raw = path.read_bytes()
        if name.startswith("nyf2_"):
            wrapper = json.loads(raw)
            resp = wrapper["response"]
            return cls.json(resp["bodyJson"], status or int(resp["status"]))
        return cls(status or 200, raw)

    @classmethod
    def rate_limited(cls) -> Reply:
        # Yahoo's 429 body is plain text "Too Many Requests" (yfinance checks for it)
        return cls.text("Too Many Requests", 429)

    @classmethod
    def network_down(
        cls, message: str = "Could not resolve host: query2.finance.yahoo.com"
    ) -> Reply:
        return cls(error=DNSError, error_message=message)

    @classmethod
    def timeout(cls) -> Reply:
        return cls(error=Timeout, error_message="Operation timed out after 10000 milliseconds")

    @classmethod
    def refused(cls) -> Reply:
        return cls(error=CurlConnectionError, error_message="Failed to connect: refused")


Handler = Callable[["Seen"], Reply]


@dataclass(frozen=True)
class Seen:
    """A request the fake received."""

    method: str
    url: str
    path: str
    params: dict[str, str]


@dataclass
class _Route:
    pattern: re.Pattern[str]
    replies: list[Reply | Handler]
    served: int = 0

    def next(self, seen: Seen) -> Reply:
        item = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return item if isinstance(item, Reply) else item(seen)


@dataclass
class _State:
    routes: list[_Route] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    unrouted: list[Seen] = field(default_factory=list)
    down: bool = False
    # v7 quote replies per symbol: the endpoint's path carries no symbol (``?symbols=``)
    v7: dict[str, _Route] = field(default_factory=dict)


class FakeYahooSession(curl_requests.Session):  # type: ignore[misc]
    """Serves routed replies; records every request; can simulate the network being down."""

    def __init__(self, *, cookie_dance: bool = True) -> None:
        super().__init__()
        self.state = _State()
        if cookie_dance:
            self.route(r"/", Reply(404, b""))  # fc.yahoo.com
            self.route(r"/v1/test/getcrumb", Reply.text(FAKE_CRUMB))
            self.route(r"/consent", Reply(200, b"<html><body>consent</body></html>"))

    # -- configuration -------------------------------------------------------------------
    def route(self, path_regex: str, *replies: Reply | Handler) -> FakeYahooSession:
        """Serve ``replies`` in order (the last repeats) for paths matching ``path_regex``.

        Later routes take precedence over earlier ones for the same path.
        """
        self.state.routes.insert(0, _Route(re.compile(path_regex), list(replies)))
        return self

    def chart(self, symbol: str, *replies: Reply | Handler) -> FakeYahooSession:
        """Route the chart endpoint of one symbol."""
        return self.route(re.escape(CHART + symbol), *replies)

    def quote_summary(self, symbol: str, *replies: Reply | Handler) -> FakeYahooSession:
        """Route the quoteSummary endpoint of one symbol (the first request of ``get_info``)."""
        return self.route(re.escape(QUOTE_SUMMARY + symbol), *replies)

    def v7_quote(self, symbol: str, *replies: Reply | Handler) -> FakeYahooSession:
        """Route ``/v7/finance/quote?symbols=SYMBOL`` (the second request of ``get_info``).

        Symbols without replies get Yahoo's answer for an unknown symbol: HTTP 200 with an
        empty result (recorded ``nyf2_v7quote_NONEXIST_empty-result_2022-02-24.json``).
        """
        if not self.state.v7:
            self.route(re.escape(V7_QUOTE), self._serve_v7)
        self.state.v7[symbol] = _Route(re.compile(re.escape(symbol)), list(replies))
        return self

    def info(
        self,
        symbol: str,
        *,
        market_cap: float | None,
        price: float | None,
        shares_outstanding: int | None = None,
        currency: str = "HKD",
    ) -> FakeYahooSession:
        """Route all three requests of ``Ticker(symbol).get_info()``: SYNTHETIC ``info_bodies``."""
        summary, quote = info_bodies(
            symbol,
            market_cap=market_cap,
            price=price,
            shares_outstanding=shares_outstanding,
            currency=currency,
        )
        self.quote_summary(symbol, Reply.json(summary))
        self.v7_quote(symbol, Reply.json(quote))
        self.route(re.escape(TIMESERIES + symbol), Reply.json(timeseries_empty_body(symbol)))
        return self

    def _serve_v7(self, seen: Seen) -> Reply:
        route = self.state.v7.get(seen.params.get("symbols", ""))
        if route is None:
            return Reply.json({"quoteResponse": {"result": [], "error": None}})
        return route.next(seen)

    def set_down(self, down: bool = True) -> None:
        """Every request fails as if DNS were unreachable."""
        self.state.down = down

    # -- inspection ----------------------------------------------------------------------
    @property
    def seen(self) -> list[Seen]:
        return self.state.seen

    @property
    def unrouted(self) -> list[Seen]:
        return self.state.unrouted

    def count(self, path_prefix: str = "") -> int:
        """Requests whose path starts with ``path_prefix``."""
        return sum(1 for s in self.state.seen if s.path.startswith(path_prefix))

    def reset_counts(self) -> None:
        self.state.seen.clear()
        self.state.unrouted.clear()

    # -- the seam ------------------------------------------------------------------------
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query))
        extra = kwargs.get("params") or {}
        if isinstance(extra, dict):
            params.update({str(k): str(v) for k, v in extra.items()})
        seen = Seen(method.upper(), url, parts.path or "/", params)
        self.state.seen.append(seen)
        if self.state.down:
            raise DNSError(f"Could not resolve host: {parts.hostname}")
        for route in self.state.routes:
            if route.pattern.fullmatch(seen.path):
                reply = route.next(seen)
                break
        else:
            self.state.unrouted.append(seen)
            reply = Reply(404, b'{"error":"unrouted in FakeYahooSession"}')
        if reply.error is not None:
            raise reply.error(reply.error_message)
        if parts.hostname == "fc.yahoo.com" and not reply.error:
            # Yahoo sets its A3 consent cookie here; yfinance caches it (synthetic value)
            self.cookies.set("A3", "synthetic-cookie", domain=".yahoo.com", path="/")
            for cookie in self.cookies.jar:
                cookie.expires = 1_999_999_999  # 2033; yfinance reads larger values as ms
        return _response(url, reply)


def _response(url: str, reply: Reply) -> Response:
    resp = Response()
    resp.url = url
    resp.status_code = reply.status
    resp.ok = reply.status < 400
    resp.reason = "OK" if resp.ok else "Error"
    resp.content = reply.body
    for key, value in reply.headers:
        resp.headers[key] = value
    return resp


def chart_body(
    symbol: str,
    *,
    price: float | None,
    time: int,
    day_high: float | None = None,
    currency: str = "HKD",
    tz: str = "Asia/Hong_Kong",
    exchange: str = "HKG",
    instrument: str = "EQUITY",
    regular: tuple[int, int] | None = None,
    bars: Iterable[tuple[int, float | None]] = (),
) -> dict[str, Any]:
    """A SYNTHETIC chart response (range=1d, interval=1d) with the given numbers.

    The shape copies the raw recorded body ``openbb_chart_EURUSD=X_range1d_2024-11-14.body.json``
    key for key; every number passed in is made up by the test that passes it.
    """
    gmtoffset = {"Asia/Hong_Kong": 28800, "Europe/London": 0}.get(tz, 0)
    tzname = {"Asia/Hong_Kong": "HKT", "Europe/London": "GMT"}.get(tz, "UTC")
    if regular is None:
        regular = (time - 3600, time + 3600)
    bar_list = list(bars) or [(time, price)]
    meta: dict[str, Any] = {
        "currency": currency,
        "symbol": symbol,
        "exchangeName": exchange,
        "fullExchangeName": exchange,
        "instrumentType": instrument,
        "firstTradeDate": 1278898200,
        "regularMarketTime": time,
        "hasPrePostMarketData": False,
        "gmtoffset": gmtoffset,
        "timezone": tzname,
        "exchangeTimezoneName": tz,
        "regularMarketPrice": price,
        "fiftyTwoWeekHigh": None,
        "fiftyTwoWeekLow": None,
        "regularMarketDayHigh": day_high,
        "regularMarketDayLow": price,
        "regularMarketVolume": 0,
        "longName": f"SYNTHETIC {symbol}",
        "shortName": f"SYNTHETIC {symbol}",
        "chartPreviousClose": price,
        "priceHint": 3,
        "currentTradingPeriod": {
            part: {"timezone": tzname, "start": s, "end": e, "gmtoffset": gmtoffset}
            for part, (s, e) in (
                ("pre", (regular[0], regular[0])),
                ("regular", regular),
                ("post", (regular[1], regular[1])),
            )
        },
        "dataGranularity": "1d",
        "range": "1d",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    closes = [p for _, p in bar_list]
    return {
        "chart": {
            "result": [
                {
                    "meta": meta,
                    "timestamp": [t for t, _ in bar_list],
                    "indicators": {
                        "quote": [
                            {
                                "low": closes,
                                "high": closes,
                                "volume": [0 for _ in closes],
                                "close": closes,
                                "open": closes,
                            }
                        ],
                        "adjclose": [{"adjclose": closes}],
                    },
                }
            ],
            "error": None,
        }
    }


def not_found_body() -> bytes:
    """The recorded unknown-symbol body (HTTP 404) from a production log."""
    return (FIXTURES / "LOG_bsemonitor_chart_404_INVALID.BO_c2025-08.json").read_bytes()


def isolate_yfinance(cache_dir: Path) -> None:
    """Point yfinance's sqlite caches at ``cache_dir`` and forget its process-wide state.

    Call from a fixture before every test that touches yfinance.
    """
    from monitor.sources.yahoo import configure_yfinance, reset_yfinance_state

    reset_yfinance_state()
    configure_yfinance(cache_dir)


def info_bodies(
    symbol: str,
    *,
    market_cap: float | None,
    price: float | None,
    shares_outstanding: int | None = None,
    currency: str = "HKD",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """SYNTHETIC quoteSummary and v7 quote bodies (``formatted=false``) for ``get_info``.

    The v7 quote copies the keys of the recorded HK quote ``yfjava_v7quote_1299.HK_2026-09-30``
    that matter here (``marketCap``, ``sharesOutstanding``, ``regularMarketPrice``, currency,
    exchange); the quoteSummary shape (``{"quoteSummary": {"result": [{module: {...}}]}}``)
    follows what yfinance parses, no recorded body being available. Every number is made up
    by the test that passes it. ``None`` leaves a key out, as Yahoo does for missing data.
    """
    known = {
        "marketCap": market_cap,
        "sharesOutstanding": shares_outstanding,
        "impliedSharesOutstanding": shares_outstanding,
    }
    stats = {k: v for k, v in known.items() if k != "marketCap" and v is not None}
    detail: dict[str, Any] = {"currency": currency, "maxAge": 1}
    if market_cap is not None:
        detail["marketCap"] = market_cap
    financial: dict[str, Any] = {"financialCurrency": "CNY", "maxAge": 86400}
    if price is not None:
        financial["currentPrice"] = price
    summary = {
        "quoteSummary": {
            "result": [
                {
                    "financialData": financial,
                    "quoteType": {
                        "exchange": "HKG",
                        "quoteType": "EQUITY",
                        "symbol": symbol,
                        "shortName": f"SYNTHETIC {symbol}",
                        "timeZoneFullName": "Asia/Hong_Kong",
                    },
                    "defaultKeyStatistics": {"maxAge": 1, **stats},
                    "assetProfile": {"country": "China", "maxAge": 86400},
                    "summaryDetail": detail,
                }
            ],
            "error": None,
        }
    }
    row: dict[str, Any] = {
        "language": "en-US",
        "region": "US",
        "quoteType": "EQUITY",
        "currency": currency,
        "fullExchangeName": "HKSE",
        "exchange": "HKG",
        "exchangeTimezoneName": "Asia/Hong_Kong",
        "market": "hk_market",
        "shortName": f"SYNTHETIC {symbol}",
        "symbol": symbol,
        **{k: v for k, v in known.items() if v is not None},
    }
    if price is not None:
        row["regularMarketPrice"] = price
    return summary, {"quoteResponse": {"result": [row], "error": None}}


def timeseries_empty_body(symbol: str) -> dict[str, Any]:
    """A timeseries answer without data points (``get_info`` asks for ``trailingPegRatio``).

    Shape of the recorded ``openbb_fundamentals-timeseries_AAPL_trailingPegRatio`` body,
    without its values.
    """
    meta = {"symbol": [symbol], "type": ["trailingPegRatio"]}
    return {"timeseries": {"result": [{"meta": meta}], "error": None}}
