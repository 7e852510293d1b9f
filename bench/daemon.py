"""Benchmark of ``mcap-monitor run`` in tape mode: CPU per poll cycle, memory, start-up time.

    python bench/daemon.py [--cycles 10000] [--wide-cycles 200]

Poll cycles run in-process through ``Daemon.poll`` (calendar, source, engine, SQLite
transaction, metrics, health; no network, no delivery). Targets: < 5 ms CPU per cycle for
1 symbol, < 100 ms for 500, RSS growth < 5 MB over 10,000 cycles, READY within 3 s.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import bootstrap  # noqa: E402
from monitor.clock import SystemClock  # noqa: E402
from monitor.daemon.logs import configure_logging  # noqa: E402
from monitor.ports import DeliveryStats  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.sources.tape_source import TapeSource  # noqa: E402
from monitor.store import Store  # noqa: E402

SHARES = 25_105_000_000
WARMUP = 1000


class NoDelivery:
    def deliver_due(self, now: float) -> DeliveryStats:
        return DeliveryStats()

    def close(self) -> None:
        return None


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def symbols(n: int) -> list[str]:
    return [f"{i:04d}.HK" for i in range(1, n + 1)]


def write_tape(path: Path, names: list[str], rows: int, seed: int = 7) -> None:
    """A random walk around HK$40 (cap ~HK$1T) on the HKEX tick grid, one row a minute."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 20, 1, 30, tzinfo=UTC)
    price = dict.fromkeys(names, 40.0)
    with path.open("w", encoding="utf-8") as out:
        out.write("time,symbol,price,currency,day_high\n")
        for i in range(rows):
            stamp = (start + timedelta(minutes=i)).isoformat()
            for name in names:
                p = min(80.0, max(20.0, price[name] * (1 + rng.gauss(0, 0.005))))
                price[name] = p
                # HKEX tick size between HK$20 and HK$100 is 0.05: prices repeat, as in life
                last, high = round(p * 20) / 20, round(p * 1.005 * 20) / 20
                out.write(f"{stamp},{name},{last:.2f},HKD,{high:.2f}\n")


def settings_for(names: list[str], tape: Path, state: Path) -> Settings:
    return Settings(
        symbols=[{"symbol": s, "shares": SHARES} for s in names],
        rules=[
            {"id": f"r{i}", "symbol": s, "threshold": 10**12, "currency": "HKD"}
            for i, s in enumerate(names)
        ],
        sinks=[],
        source={"kind": "tape", "path": str(tape)},
        health={"enabled": False},
        daemon={"state_dir": str(state)},
    )


def bench_cycles(
    n_symbols: int, cycles: int, work: Path, warmup: int = WARMUP
) -> tuple[float, float, float]:
    """(CPU ms per cycle, RSS MB after warm-up, RSS MB at the end)."""
    names = symbols(n_symbols)
    tape = work / f"tape-{n_symbols}.csv"
    write_tape(tape, names, cycles + warmup)
    settings = settings_for(names, tape, work)
    db = work / f"bench-{n_symbols}.db"
    store, store2 = Store.open(db), Store.open(db)
    daemon = bootstrap.build_daemon(
        settings,
        store,
        store2,
        clock=SystemClock(),
        session=requests.Session(),
        source=TapeSource(tape),
        dispatcher=NoDelivery(),
    )
    for _ in range(warmup):  # warm-up: imports, SQLite page cache, first-run summary
        daemon.poll()
    rss_start = rss_mb()
    cpu0 = time.process_time()
    for _ in range(cycles):
        daemon.poll()
    cpu = time.process_time() - cpu0
    rss_end = rss_mb()
    daemon.stop()
    return cpu / cycles * 1000, rss_start, rss_end


def time_to_ready(work: Path) -> float:
    """Seconds from spawning ``mcap-monitor run`` (tape mode) to READY=1 on NOTIFY_SOCKET."""
    tape = ROOT / "monitor" / "data" / "xiaomi_2025-01-20_2025-03-10.csv"
    config = work / "ready.toml"
    config.write_text(
        f"""
[[symbols]]
symbol = "1810.HK"
shares = {SHARES}
[[rules]]
id = "hkd-1t"
symbol = "1810.HK"
threshold = 1_000_000_000_000
currency = "HKD"
[source]
kind = "tape"
path = "{tape}"
[health]
listen = "127.0.0.1:0"
[daemon]
state_dir = "{work / "ready-state"}"
""",
        encoding="utf-8",
    )
    name = f"mcap-bench-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(30)
    env = dict(os.environ, NOTIFY_SOCKET="@" + name)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            data = sock.recv(65536).decode()
            if "READY=1" in data.split("\n"):
                return time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10_000, help="cycles with 1 symbol")
    parser.add_argument("--wide-cycles", type=int, default=200, help="cycles with 500 symbols")
    args = parser.parse_args()
    configure_logging("warning")  # as in production: per-poll lines are debug
    ok = True
    with tempfile.TemporaryDirectory(prefix="mcap-bench-") as tmp:
        work = Path(tmp)
        ready = time_to_ready(work)
        print(f"start-up to READY=1:           {ready * 1000:8.0f} ms   (target < 3000 ms)")
        ok &= ready < 3
        one, rss0, rss1 = bench_cycles(1, args.cycles, work)
        print(f"1 symbol, {args.cycles} cycles:      {one:8.3f} ms CPU per cycle (target < 5)")
        print(f"  RSS after start-up:          {rss0:8.1f} MB")
        print(
            f"  RSS after {args.cycles} cycles:     {rss1:8.1f} MB   growth {rss1 - rss0:+.1f} MB"
        )
        ok &= one < 5 and rss1 - rss0 < 5
        wide, _, _ = bench_cycles(500, args.wide_cycles, work, warmup=20)
        print(
            f"500 symbols, {args.wide_cycles} cycles:     {wide:8.3f} ms CPU per cycle "
            "(target < 100)"
        )
        ok &= wide < 100
    print("all targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
