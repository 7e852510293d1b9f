"""Benchmark the status page: ``/`` and ``/api/status`` with 10 symbols and a year of
every-minute observations, and whether serving them delays a poll.

Data: SYNTHETIC (a seeded random walk per symbol, NOT market data): 10 symbols, 250 weekdays
of HKEX minutes (330 a day), written straight into a state db; 2 rules per symbol (HKD and
CNY), the last day through the engine so rule states and events are real.

1. Latency over real HTTP on 127.0.0.1 (one client, keep-alive off): the first request (it
   reads the chart window), then 300 requests of each route with the cache warm, then 100
   of each right after a poll (each one refreshes the cache incrementally). Target: p99 of
   every row < 50 ms.
2. Polls with and without page load, paired in one run: a poll is one engine batch (10
   observations) on the daemon's connection, one a second; "loaded" has another process
   fetching ``/`` and ``/api/status`` every 50 ms each (the page's own thread rebuilds after
   each poll). Blocks alternate ABAB. Reported: medians and the ratio loaded / idle.
3. Polls while the page builds from cold (the first request after a start or a reload).

Usage: python bench/status_page.py
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.core.money import FxRate  # noqa: E402 - after the path set-up above
from monitor.core.valuation import Observation  # noqa: E402
from monitor.daemon.health import HealthServer, HealthState  # noqa: E402
from monitor.daemon.metrics import Metrics  # noqa: E402
from monitor.daemon.status_page.access import Access  # noqa: E402
from monitor.daemon.status_page.api import StatusProvider  # noqa: E402
from monitor.ports import PollResult  # noqa: E402
from monitor.service import Engine  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.store import Store  # noqa: E402

HK = ZoneInfo("Asia/Hong_Kong")
SYMBOLS = [f"{1000 + i}.HK" for i in range(10)]
SHARES = 10_000_000_000
DAYS = 250
MINUTES = 330  # 09:30-12:00 and 13:00-16:00, one row a minute
CNY, USD = Decimal("0.93"), Decimal("0.128")


def settings() -> Settings:
    rules = []
    for s in SYMBOLS:
        rules += [
            {"id": f"{s}-hkd", "symbol": s, "threshold": 10**12, "currency": "HKD"},
            {"id": f"{s}-cny", "symbol": s, "threshold": 9 * 10**11, "currency": "CNY"},
        ]
    return Settings(
        symbols=[{"symbol": s, "shares": SHARES} for s in SYMBOLS],
        rules=rules,
        source={"kind": "tape", "path": "unused.csv"},
        daemon={"poll_interval": 60, "jitter": 0},
    )


def minutes(day: datetime) -> list[datetime]:
    morning = [day.replace(hour=9, minute=30) + timedelta(minutes=i) for i in range(150)]
    return morning + [day.replace(hour=13) + timedelta(minutes=i) for i in range(180)]


def fx(moment: datetime) -> tuple[FxRate, ...]:
    as_of = moment.replace(hour=0, minute=0).astimezone(ZoneInfo("UTC"))
    return (FxRate("HKD", "CNY", CNY, "ECB", as_of), FxRate("HKD", "USD", USD, "ECB", as_of))


def build(db: Path, cfg: Settings) -> tuple[Store, datetime]:
    """A year of rows per symbol; the last day through the engine (states, events)."""
    rng = random.Random(15)
    days: list[datetime] = []
    day = datetime(2025, 1, 2, tzinfo=HK)
    while len(days) < DAYS:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    store = Store.open(db)
    price = {s: 95.0 + rng.random() * 10 for s in SYMBOLS}
    last_day: list[Observation] = []
    for n, d in enumerate(days):
        rows = []
        for t in minutes(d):
            iso = t.astimezone(ZoneInfo("UTC")).isoformat()
            inputs = json.dumps(
                {
                    "fx": [
                        {"pair": f"{r.base}/{r.quote}", "rate": str(r.rate), "source": "ECB",
                         "as_of": r.as_of.isoformat()}
                        for r in fx(t)
                    ],
                    "cutoffs_usd": {},
                }
            )  # fmt: skip
            for s in SYMBOLS:
                price[s] *= 1 + rng.gauss(0, 0.0012)
                p = Decimal(f"{price[s]:.2f}")
                if n == len(days) - 1:
                    last_day.append(Observation(t, s, p, "HKD", p, None, fx(t)))
                    continue
                cap = p * SHARES
                rows.append((s, iso, t.isoformat(), str(p), "HKD", str(p), SHARES, "config",
                             str(cap), inputs, "bench"))  # fmt: skip
        if rows:
            with store.transaction():
                store.add_observations(rows)
    Engine(cfg, store).process(last_day, time.time())
    return store, days[-1]


PERIOD = 1.0  # seconds between polls (the daemon's default is 60)
BLOCK = 20
CLIENT = """
import sys, threading, time, requests
def fetch(path):
    while True:
        requests.get(sys.argv[1] + path, timeout=30)
        time.sleep(0.05)
for p in ("/", "/api/status"):
    threading.Thread(target=fetch, args=(p,), daemon=True).start()
time.sleep(3600)
"""


def paced(poll: Callable[[], float], n: int) -> list[float]:
    """``n`` polls, one each ``PERIOD`` seconds (as the scheduler runs them)."""
    out = []
    for _ in range(n):
        start = time.monotonic()
        out.append(poll())
        time.sleep(max(0.0, PERIOD - (time.monotonic() - start)))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, ms: list[float]) -> None:
    print(
        f"  {name:<34} n={len(ms):<4} median {statistics.median(ms):7.2f} ms   "
        f"p99 {pct(ms, 0.99):7.2f} ms   max {max(ms):7.2f} ms"
    )


def timed_get(url: str) -> float:
    start = time.perf_counter()
    reply = requests.get(url, timeout=30, headers={"Connection": "close"})
    took = (time.perf_counter() - start) * 1000
    assert reply.status_code == 200, reply.status_code
    return took


def main() -> None:
    cfg = settings()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "state.db"
        t0 = time.perf_counter()
        store, last = build(db, cfg)
        count = store.conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        events = len(store.events())
        print(
            f"db: {count:,} observations, {events} events, {len(cfg.rules)} rules, "
            f"{db.stat().st_size / 1e6:.0f} MB (built in {time.perf_counter() - t0:.1f} s)"
        )
        health = HealthState(SYMBOLS, heartbeat_max_age=1e9)
        health.heartbeat(time.time())
        status = StatusProvider(lambda: Store.open_read_only(db), lambda: cfg, health, time.time)
        server = HealthServer(
            ("127.0.0.1", 0), health, Metrics(), time.time, status=status,
            access=Access.for_listen("127.0.0.1", None),
        )  # fmt: skip
        server.start()
        base = f"http://127.0.0.1:{server.address[1]}"
        engine = Engine(cfg, store)
        clock = [last + timedelta(days=1, hours=9, minutes=30)]

        def poll() -> float:
            clock[0] += timedelta(minutes=1)
            t = clock[0]
            batch = [
                Observation(t, s, Decimal("100.00") + Decimal(i), "HKD", None, None, fx(t))
                for i, s in enumerate(SYMBOLS)
            ]
            start = time.perf_counter()
            engine.process(batch, time.time())
            took = (time.perf_counter() - start) * 1000
            health.record_poll(time.time(), SYMBOLS, PollResult(observations=batch))
            return took

        try:
            print("1. latency over HTTP (one client)")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            row("first /api/status (builds, waits)", [timed_get(base + "/api/status")])
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
            print(f"  peak memory growth of the first build: {grown / 1024:.0f} MB")
            for path in ("/", "/api/status"):
                row(f"GET {path}", [timed_get(base + path) for _ in range(300)])
            for path in ("/", "/api/status"):
                after = []
                for _ in range(100):
                    poll()
                    after.append(timed_get(base + path))
                row(f"GET {path} right after a poll", after)
            size = len(requests.get(base + "/api/status", timeout=30).content)
            print(f"  /api/status body: {size / 1000:.0f} kB")
            rebuilds = []
            for _ in range(30):
                poll()
                start = time.perf_counter()
                assert status.refresh()
                rebuilds.append((time.perf_counter() - start) * 1000)
            row("rebuild after a poll (page thread)", rebuilds)

            print(f"2. polls every {PERIOD} s, idle vs page load (ABAB blocks of {BLOCK} polls)")
            idle: list[float] = []
            loaded: list[float] = []
            for _ in range(2):
                idle += paced(poll, BLOCK)
                # the browsers are other processes: two clients, one request each 50 ms
                clients = subprocess.Popen([sys.executable, "-c", CLIENT, base])
                try:
                    time.sleep(0.5)
                    loaded += paced(poll, BLOCK)
                finally:
                    clients.terminate()
                    clients.wait(timeout=10)
            row("poll, no page load", idle)
            row("poll, two clients loading the page", loaded)
            ratio = statistics.median(loaded) / statistics.median(idle)
            print(f"  median ratio loaded / idle: {ratio:.2f}")

            print("3. poll duration while the page builds from cold (a reload, a restart)")
            cold = StatusProvider(lambda: Store.open_read_only(db), lambda: cfg, health, time.time)
            builder = threading.Thread(target=cold.refresh)
            start = time.perf_counter()
            builder.start()
            during = []
            while builder.is_alive():
                during.append(poll())
            took = time.perf_counter() - start
            builder.join()
            cold.close()
            row("poll, during a cold build", during)
            print(f"  cold build: {took:.2f} s; median ratio during / idle: "
                  f"{statistics.median(during) / statistics.median(idle):.2f}")  # fmt: skip
        finally:
            server.close()
            store.close()


if __name__ == "__main__":
    main()
