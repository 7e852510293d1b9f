"""Delivery benchmark: 1,000 events through the outbox to a signed webhook on 127.0.0.1.

Prints deliveries/s for a burst of 1,000 enqueued at once, and p50 / p99 latency from enqueue
(commit) to the receiver's 2xx for 1,000 events enqueued one by one at a steady rate, with the
dispatcher's background lanes woken on each enqueue (as the daemon runs it).
Target: p99 < 50 ms. Run: ``python bench/delivery.py [--events N] [--rate PER_S]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import structlog

from monitor import bootstrap
from monitor.clock import SystemClock
from monitor.settings import load_settings
from monitor.store import Store

CONFIG = """
[[symbols]]
symbol = "1810.HK"
shares = 25_105_000_000

[[sinks]]
id = "hook"
type = "webhook"
url = "{url}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""

PAYLOAD: dict[str, object] = {
    "kind": "crossed_above",
    "time": "2025-02-06T16:00:00+08:00",
    "symbol": "1810.HK",
    "name": "Xiaomi",
    "rule": "hkd-1t",
    "value": "1018007750000",
    "value_at_price": "1018007750000",
    "currency": "HKD",
    "threshold": "1000000000000",
    "threshold_source": "config",
    "hysteresis": "0.01",
    "position": "above",
    "price": "40.55",
    "price_currency": "HKD",
    "day_high": "40.8",
    "shares": 25105000000,
    "shares_source": "tape",
    "market_cap": "1018007750000",
    "fx": [],
    "top_n": None,
    "rank": None,
    "exchange_tz": "Asia/Hong_Kong",
    "delayed": False,
}


class Sink:
    """A receiver that records when it answered 2xx for each webhook-id."""

    def __init__(self) -> None:
        self.answered: dict[str, float] = {}
        self.cond = threading.Condition()
        bench = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.wfile.flush()
                now = time.time()
                with bench.cond:
                    bench.answered.setdefault(self.headers["webhook-id"], now)
                    bench.cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 300.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.answered) >= count, timeout):
                raise SystemExit(f"only {len(self.answered)} of {count} delivered in {timeout} s")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="paced enqueues per second")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "c.toml"
        config.write_text(CONFIG.format(url=sink.url), encoding="utf-8")
        settings, _ = load_settings(config)
        store = Store.open(Path(tmp) / "state.db")
        session = requests.Session()
        dispatcher = bootstrap.dispatcher(settings, store, session, SystemClock())
        dispatcher.start()
        try:
            n = args.events
            # burst: everything enqueued in one transaction, then drained
            start = time.time()
            with store.transaction():
                for i in range(n):
                    store.enqueue(
                        f"burst_{i}", "hook", "crossed_above", PAYLOAD | {"id": f"burst_{i}"}, start
                    )
            dispatcher.wake()
            sink.wait(n)
            burst_rate = n / (max(sink.answered.values()) - start)

            # paced: one event per transaction, like a tick, with the lanes woken each time
            enqueued: dict[str, float] = {}
            gap = 1.0 / args.rate
            next_at = time.monotonic()
            for i in range(n):
                key = f"paced_{i}"
                enqueued[key] = now = time.time()
                with store.transaction():
                    store.enqueue(key, "hook", "crossed_above", PAYLOAD | {"id": key}, now)
                dispatcher.wake()
                next_at += gap
                time.sleep(max(0.0, next_at - time.monotonic()))
            sink.wait(2 * n)
        finally:
            dispatcher.close()
            store.close()
            session.close()
            sink.server.shutdown()
    latencies = [(sink.answered[k] - t) * 1000 for k, t in enqueued.items()]
    print(f"burst: {n} deliveries in {n / burst_rate:.2f} s = {burst_rate:,.0f} deliveries/s")
    p50 = statistics.median(latencies)
    print(
        f"paced at {args.rate:g}/s: enqueue->2xx latency p50 {p50:.1f} ms, "
        f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms "
        f"(target p99 < 50 ms)"
    )


if __name__ == "__main__":
    main()
