"""TencentQuotes and SinaQuotes against a real local HTTP server serving GBK answers.

The answers are the recorded payloads of tests/fixtures/cn_quotes, encoded to GBK as the
vendors send them; one request carries many codes, and every failure stays per symbol.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from fakes import Received, Receiver, Reply, free_port

from monitor.core.quote import Quote
from monitor.errors import SourceError
from monitor.sources.sina import REFERER, SinaQuotes
from monitor.sources.tencent import TencentQuotes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cn_quotes"
HKT = ZoneInfo("Asia/Hong_Kong")
D = Decimal


def payload(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# what the fake vendors know; 0700's Tencent line is the recorded q=hk one, renamed to r_hk
TENCENT_LINES = {
    "r_hk01810": payload("tencent_r_hk01810_2026-08-03.txt"),
    "r_hk00700": payload("tencent_hk00700_2026-08-07.txt").replace("v_hk00700", "v_r_hk00700"),
}
SINA_LINES = {
    "rt_hk01810": payload("sina_rt_hk01810_2024-10-15.txt"),
    "rt_hk00700": payload("sina_rt_hk00700_2024-10-15.txt"),
}
T_NOW = datetime(2026, 8, 7, 16, 10, tzinfo=HKT)  # after both recorded Tencent quotes
S_NOW = datetime(2024, 10, 15, 10, 42, tzinfo=HKT)


def codes(got: Received, prefix: str) -> list[str]:
    return got.path.removeprefix(prefix).split(",")


def vendor(lines: dict[str, str], prefix: str) -> Callable[[Received, int], Reply]:
    """Answers like the vendor: one GBK line per known code, unknown codes left out."""

    def answer(got: Received, index: int) -> Reply:
        if prefix == "/list=" and got.header("Referer") != REFERER:
            return Reply(403, "Kinsoku jyuzoku Forbidden")
        known = [lines[c] + ";\n" for c in codes(got, prefix) if c in lines]
        body = "".join(known) or 'v_pv_none_match="1";\n'
        return Reply(
            200, body.encode("gbk"), {"Content-Type": "application/javascript; charset=GBK"}
        )

    return answer


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def quote(result: Quote | SourceError) -> Quote:
    assert isinstance(result, Quote), result
    return result


def error(result: Quote | SourceError) -> SourceError:
    assert isinstance(result, SourceError), result
    return result


def test_tencent_fetches_many_symbols_in_one_gbk_request(session: requests.Session) -> None:
    with Receiver(vendor(TENCENT_LINES, "/q="), path="") as server:
        source = TencentQuotes(session, server.url, timeout=5)
        got = source.quotes(["1810.HK", "0700.HK", "9999.HK", "AAPL"], T_NOW)
        assert len(server.requests) == 1
        assert server.requests[0].path == "/q=r_hk01810,r_hk00700,r_hk09999"
    xiaomi, tencent = quote(got["1810.HK"]), quote(got["0700.HK"])
    assert (xiaomi.price, xiaomi.currency, xiaomi.source, xiaomi.delayed) == (
        D("27.380"), "HKD", "tencent", False,
    )  # fmt: skip
    assert xiaomi.time == datetime(2026, 8, 3, 10, 0, 40, tzinfo=HKT)
    assert (xiaomi.total_shares, xiaomi.listed_shares) == (25_842_088_167, 21_398_472_034)
    assert xiaomi.market_cap == D("707556370000")
    assert tencent.symbol == "0700.HK" and tencent.price == D("478.800")
    assert error(got["9999.HK"]).kind == "not_found"
    assert "9999.HK" in str(got["9999.HK"])
    assert error(got["AAPL"]).kind == "not_found"  # never sent: not a Hong Kong symbol


def test_tencent_keeps_the_callers_spelling_of_a_symbol(session: requests.Session) -> None:
    with Receiver(vendor(TENCENT_LINES, "/q="), path="") as server:
        got = TencentQuotes(session, server.url, timeout=5).quotes(["01810.HK"], T_NOW)
    assert quote(got["01810.HK"]).symbol == "01810.HK"


def test_batches_hold_at_most_the_list_limit(session: requests.Session) -> None:
    symbols = ["1810.HK", "0700.HK", "0001.HK", "0002.HK", "0003.HK"]
    with Receiver(vendor(TENCENT_LINES, "/q="), path="") as server:
        got = TencentQuotes(session, server.url, timeout=5, batch=2).quotes(symbols, T_NOW)
        sent = [codes(r, "/q=") for r in server.requests]
    assert sent == [["r_hk01810", "r_hk00700"], ["r_hk00001", "r_hk00002"], ["r_hk00003"]]
    assert quote(got["1810.HK"]).price == D("27.380")
    assert {error(got[s]).kind for s in symbols[2:]} == {"not_found"}  # pv_none_match batches


def test_sina_sends_the_referer_and_reads_every_line(session: requests.Session) -> None:
    with Receiver(vendor(SINA_LINES, "/list="), path="") as server:
        got = SinaQuotes(session, server.url, timeout=5).quotes(["1810.HK", "0700.HK"], S_NOW)
        (request,) = server.requests
    assert request.path == "/list=rt_hk01810,rt_hk00700"
    assert request.header("Referer") == "https://finance.sina.com.cn"
    xiaomi = quote(got["1810.HK"])
    assert (xiaomi.open, xiaomi.previous_close, xiaomi.price) == (
        D("23.600"), D("23.600"), D("23.850"),
    )  # fmt: skip
    assert (xiaomi.source, xiaomi.delayed) == ("sina", False)
    assert quote(got["0700.HK"]).price == D("426.400")


def test_sina_unknown_code_is_not_found(session: requests.Session) -> None:
    def answer(got: Received, index: int) -> Reply:
        return Reply(
            200, (SINA_LINES["rt_hk01810"] + ';\nvar hq_str_rt_hk99999="";\n').encode("gbk")
        )

    with Receiver(answer, path="") as server:
        got = SinaQuotes(session, server.url, timeout=5).quotes(["1810.HK", "99999.HK"], S_NOW)
    assert quote(got["1810.HK"]).price == D("23.850")
    assert error(got["99999.HK"]).kind == "not_found"


SOURCES = [
    (TencentQuotes, T_NOW, "tencent"),
    (SinaQuotes, S_NOW, "sina"),
]
TWO = ["1810.HK", "0700.HK"]


@pytest.mark.parametrize(
    ("reply", "kind", "needle"),
    [
        (Reply(500, "oops"), "network", "HTTP 500"),
        (Reply(429, "slow down"), "rate_limited", "HTTP 429"),
        (Reply(200, b"\xff\xfe garbage \x80"), "bad_data", "not GBK"),
        (Reply(200, "<html>blocked</html>"), "bad_data", "holds no quotes"),
        (Reply(200, b"x" * (1 << 20) + b"xx"), "bad_data", "exceeds"),
    ],
    ids=["http-500", "http-429", "not-gbk", "html", "oversize"],
)
@pytest.mark.parametrize(("cls", "now", "name"), SOURCES, ids=["tencent", "sina"])
def test_a_failed_answer_fails_every_symbol_of_the_batch(
    session: requests.Session, cls: type, now: datetime, name: str, reply: Reply, kind: str,
    needle: str,
) -> None:  # fmt: skip
    with Receiver([reply], path="") as server:
        got = cls(session, server.url, timeout=5).quotes(TWO, now)
    for symbol in TWO:
        err = error(got[symbol])
        assert (err.kind, err.source) == (kind, name)
        assert needle in str(err)


@pytest.mark.parametrize(("cls", "now", "name"), SOURCES, ids=["tencent", "sina"])
def test_timeout_and_refused_connection_are_network_failures(
    session: requests.Session, cls: type, now: datetime, name: str
) -> None:
    with Receiver([Reply(hang=True)], path="") as server:
        got = cls(session, server.url, timeout=0.5).quotes(TWO, now)
        assert len(server.requests) == 1
    assert {(error(got[s]).kind, error(got[s]).source) for s in TWO} == {("network", name)}
    assert "Timeout" in str(got["1810.HK"])
    refused = cls(session, f"http://127.0.0.1:{free_port()}", timeout=5).quotes(TWO, now)
    assert {error(refused[s]).kind for s in TWO} == {"network"}


def test_truncated_answer_fails_only_the_cut_symbol(session: requests.Session) -> None:
    full = TENCENT_LINES["r_hk01810"] + ";\n" + TENCENT_LINES["r_hk00700"] + ";\n"
    with Receiver([Reply(200, full[:-150].encode("gbk"))], path="") as server:
        got = TencentQuotes(session, server.url, timeout=5).quotes(TWO, T_NOW)
    assert quote(got["1810.HK"]).price == D("27.380")
    assert error(got["0700.HK"]).kind == "bad_data"
    assert "cut off" in str(got["0700.HK"])


@pytest.mark.parametrize(("cls", "now"), [(TencentQuotes, T_NOW), (SinaQuotes, S_NOW)])
def test_a_quote_time_in_the_future_is_bad_data(
    session: requests.Session, cls: type, now: datetime
) -> None:
    lines = TENCENT_LINES if cls is TencentQuotes else SINA_LINES
    prefix = "/q=" if cls is TencentQuotes else "/list="
    with Receiver(vendor(lines, prefix), path="") as server:
        # the local clock is a day behind the quote; a minute behind is tolerated skew
        early = cls(session, server.url, timeout=5).quotes(["0700.HK"], now.replace(day=1))
        skew = cls(session, server.url, timeout=5).quotes(
            ["1810.HK"], datetime(2026, 8, 3, 9, 59, 50, tzinfo=HKT) if cls is TencentQuotes
            else datetime(2024, 10, 15, 10, 41, 0, tzinfo=HKT),
        )  # fmt: skip
    assert error(early["0700.HK"]).kind == "bad_data"
    assert "future" in str(early["0700.HK"])
    assert isinstance(skew["1810.HK"], Quote)


class Trickle(BaseHTTPRequestHandler):
    """Sends a byte every 0.1 s: each read is quick, the whole answer never ends."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(300):
                self.wfile.write(b"v")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            return


def test_an_answer_trickling_past_the_deadline_is_a_network_failure(
    session: requests.Session,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        started = time.monotonic()
        got = TencentQuotes(session, url, timeout=0.5).quotes(TWO, T_NOW)
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert error(got["1810.HK"]).kind == "network"
    assert "took over 1 s" in str(got["1810.HK"])
    assert took < 20


class StandIn(requests.Session):
    """A session answering from memory, as a benchmark or test stand-in does (no ``raw``)."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self.urls: list[str] = []

    def get(self, url: str | bytes, **kwargs: object) -> requests.Response:  # type: ignore[override]
        self.urls.append(str(url))
        resp = requests.Response()
        resp.status_code = 200
        resp._content = self.body
        return resp


def test_a_session_stand_in_without_a_socket_works_and_no_symbols_cost_nothing() -> None:
    with StandIn((TENCENT_LINES["r_hk01810"] + ";\n").encode("gbk")) as fake:
        source = TencentQuotes(fake, "http://tencent.invalid/", timeout=5)
        assert source.quotes([], T_NOW) == {}
        assert fake.urls == []
        got = source.quotes(["1810.HK", "1810.HK"], T_NOW)
    assert fake.urls == ["http://tencent.invalid/q=r_hk01810"]
    assert quote(got["1810.HK"]).price == D("27.380")
