"""Benchmark ``mcap-monitor replay`` against a vectorised pandas peer on realistic tapes.

The tapes are SYNTHETIC (seeded, NOT market data) but shaped like real ones: HKEX minutes
(09:30-12:00, 13:00-16:00 HKT, weekdays), prices on the HK$0.05 tick grid from a
mean-reverting walk that keeps crossing the lines, a valid day high (the highest price of the
local day so far, so never below the price), and FX rates (HKD/CNY, HKD/USD, 8 decimals) and
a top-100 cutoff that move on EVERY row.
1. 1 symbol x 1,000,000 rows; 2. 100 symbols x 100,000 rows each (10,000,000 rows,
interleaved, some 850 MB of CSV; the pandas peer needs some 4 GB for it).
Three rules per symbol: HK$1T, CN¥1T, top 100 (hysteresis 1 %, confirm 1).
For each tape: ``mcap-monitor replay --json`` and ``bench/replay_peer.py`` (pandas) run in
the same invocation, in pairs, alternating which goes first; the peer's events are ASSERTED
equal to the replay's. Printed: median wall seconds of each, the median of the paired
ratios replay/peer, and each one's peak RSS (the child's own ``ru_maxrss`` from ``wait4``).
Tape 1 also runs ``replay --state-db`` (a fresh db each run): time ratio to no db, bytes/row.
Also: the bundled replay's wall time (start-up dominates it). ``monitor/`` is byte-compiled
and its C tape scanner built in place first, as ``pip install`` leaves them (the scanner in
use is printed: without a C compiler it is numpy's).
Targets (issue #16): tape 1 ratio <= 1.0, RSS <= 60 MB; --state-db <= 1.5x, <= 120 B/row;
tape 2 ratio <= 1.0, RSS <= 80 MB.
Usage: python bench/replay.py [--quick] [--tape 1|2] [--rows N] [--symbols N --per-symbol N]
[--runs N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "bench" / "replay_peer.py"
TICK = 0.05  # HKEX tick size for prices between HK$20 and HK$50
SHARES = 25_105_000_000
HKT = timedelta(hours=8)


def symbols(n: int) -> list[str]:
    return ["1810.HK"] if n == 1 else [f"{1000 + i}.HK" for i in range(n)]


def config(names: list[str]) -> str:
    parts = []
    for s in names:
        parts.append(f'[[symbols]]\nsymbol = "{s}"\nname = "S{s}"\nshares = {SHARES}\n')
        for rid, line in (("hkd", 'threshold = "1e12"\ncurrency = "HKD"'),
                          ("cny", 'threshold = "1e12"\ncurrency = "CNY"'),
                          ("top", "top_n = 100")):  # fmt: skip
            parts.append(f'[[rules]]\nid = "{s}-{rid}"\nsymbol = "{s}"\n{line}\n')
    parts.append('[[sinks]]\nid = "console"\ntype = "console"\n')
    return "\n".join(parts)


def peer_rules(names: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for s in names:
        common = {"symbol": s, "shares": SHARES, "keep": 0.99}
        out += [
            {"id": f"{s}-hkd", "fx": None, "threshold": 1e12, "cutoff": None, **common},
            {"id": f"{s}-cny", "fx": "fx_HKD_CNY", "threshold": 1e12, "cutoff": None, **common},
            {"id": f"{s}-top", "fx": "fx_HKD_USD", "threshold": 0.0, "cutoff": "top100_cutoff_usd",
             **common},
        ]  # fmt: skip
    return out


def trading_minutes(rows: int) -> Iterator[datetime]:
    """HKEX minutes in UTC: 01:30-04:00 and 05:00-08:00 on weekdays (330 a day)."""
    day = datetime(2025, 1, 2, tzinfo=UTC)
    made = 0
    while True:
        if day.weekday() < 5:
            for start, end in ((90, 240), (300, 480)):
                for minute in range(start, end):
                    if made == rows:
                        return
                    yield day + timedelta(minutes=minute)
                    made += 1
        day += timedelta(days=1)


def write_tape(path: Path, names: list[str], per_symbol: int, seed: int = 7) -> None:
    """Rows of every symbol at each minute; FX and cutoff shared by the symbols, moving."""
    rng = random.Random(seed)
    log_price = {s: math.log(36.0 + 10.0 * rng.random()) for s in names}
    high: dict[str, tuple[str, float]] = {}
    cny, usd, cutoff = 0.93, 0.1284, 148e9
    with path.open("w") as out:
        out.write("time,symbol,price,currency,day_high,fx_HKD_CNY,fx_HKD_USD,top100_cutoff_usd\n")
        for moment in trading_minutes(per_symbol):
            local = moment + HKT
            stamp = local.strftime("%Y-%m-%dT%H:%M:%S+08:00")
            day = stamp[:10]
            cny += 0.002 * (0.93 - cny) + rng.gauss(0, 2e-5)
            usd += 0.002 * (0.1284 - usd) + rng.gauss(0, 3e-6)
            cutoff += 0.002 * (148e9 - cutoff) + rng.gauss(0, 8e7)
            fx = f"{cny:.8f},{usd:.8f},{cutoff:.0f}"
            for s in names:
                x = log_price[s]
                x += 2e-4 * (math.log(42.0) - x) + rng.gauss(0, 0.0015)
                log_price[s] = x
                price = round(math.exp(x) / TICK) * TICK
                seen = high.get(s)
                if seen is None or seen[0] != day or price > seen[1]:
                    seen = high[s] = (day, price)
                out.write(f"{stamp},{s},{price:.2f},HKD,{seen[1]:.2f},{fx}\n")


def child(argv: list[str], out: Path) -> tuple[float, float, Path]:
    """Wall seconds and peak RSS (MB) of one child (its own rusage), and its stdout's file.

    Linux carries a parent's peak RSS into a child it spawns (``exec`` keeps the larger):
    this process stays small (it never holds a child's output), and its own peak is printed
    so that a child's figure is seen to be the child's."""
    start = time.perf_counter()
    with out.open("w") as stdout, (out.parent / "stderr").open("w") as stderr:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        err = (out.parent / "stderr").read_text()[-2000:]
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss / 1024, out


def replay_events(out: Path) -> list[str]:
    """The replay's events (one JSON object a line), as the peer prints them."""
    events = []
    with out.open() as lines:
        for line in lines:
            e = json.loads(line)
            events.append(f"{e['time']} {e['symbol']} {e['rule']} {e['kind']}")
    return sorted(events)


def own_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_tape(tmp: Path, n_symbols: int, per_symbol: int, runs: int, state_db: bool) -> bool:
    names = symbols(n_symbols)
    tape, cfg, rules = tmp / "tape.csv", tmp / "bench.toml", tmp / "rules.json"
    cfg.write_text(config(names))
    rules.write_text(json.dumps(peer_rules(names)))
    write_tape(tape, names, per_symbol)
    rows = n_symbols * per_symbol
    replay = [sys.executable, "-m", "monitor", "replay", str(tape), "--config", str(cfg)]
    peer = [sys.executable, str(PEER), str(tape), str(rules)]
    r_wall, r_rss, p_wall, p_rss, ratios = [], [], [], [], []
    d_wall, d_rss, d_ratio, d_bytes = [], [], [], []
    n_events = 0
    for i in range(runs):
        order = ["replay", "peer"] if i % 2 == 0 else ["peer", "replay"]
        got: dict[str, tuple[float, float, Path]] = {}
        for who in order:
            argv = [*replay, "--json"] if who == "replay" else peer
            got[who] = child(argv, tmp / f"{who}.out")
        events = replay_events(got["replay"][2])
        peer_events = got["peer"][2].read_text().splitlines()
        if events != peer_events:
            diff = sorted(set(events) ^ set(peer_events))[:10]
            raise SystemExit(f"the peer's events differ from the replay's: {diff}")
        n_events = len(events)
        r_wall.append(got["replay"][0])
        r_rss.append(got["replay"][1])
        p_wall.append(got["peer"][0])
        p_rss.append(got["peer"][1])
        ratios.append(got["replay"][0] / got["peer"][0])
        if state_db:
            db = tmp / f"state{i}.db"
            wall, rss, text = child([*replay, "--json", "--state-db", str(db)], tmp / "db.out")
            if replay_events(text) != events:
                raise SystemExit("replay --state-db printed other events than replay")
            d_wall.append(wall)
            d_rss.append(rss)
            d_ratio.append(wall / got["replay"][0])
            d_bytes.append(db_bytes(db) / rows)
            for p in tmp.glob(db.name + "*"):
                p.unlink()
    target_rss = 60 if n_symbols == 1 else 80
    ratio = median(ratios)
    ok = ratio <= 1.0 and max(r_rss) <= target_rss
    print(
        f"{n_symbols} symbol(s) x {per_symbol:,} rows = {rows:,} rows, moving FX and cutoff "
        f"(SYNTHETIC): {n_events} events; pandas peer's events == replay's (asserted, {runs} runs)"
    )
    print(
        f"  replay       wall median {median(r_wall):7.2f} s  ({rows / median(r_wall):>9,.0f} "
        f"rows/s)  peak RSS {max(r_rss):6.1f} MB"
    )
    print(
        f"  pandas peer  wall median {median(p_wall):7.2f} s  ({rows / median(p_wall):>9,.0f} "
        f"rows/s)  peak RSS {max(p_rss):6.1f} MB"
    )
    print(
        f"  replay/peer  median of {runs} paired ratios {ratio:.2f}x  (each: "
        f"{', '.join(f'{r:.2f}' for r in ratios)})  [targets <= 1.0, RSS <= {target_rss} MB: "
        f"{'OK' if ok else 'MISSED'}]"
    )
    if state_db:
        d_ok = median(d_ratio) <= 1.5 and median(d_bytes) <= 120
        ok = ok and d_ok
        print(
            f"  --state-db   wall median {median(d_wall):7.2f} s, {median(d_ratio):.2f}x no db "
            f"(median of paired ratios), {median(d_bytes):.0f} bytes/row, peak RSS "
            f"{max(d_rss):.1f} MB  [targets <= 1.5x, <= 120 bytes/row: "
            f"{'OK' if d_ok else 'MISSED'}]"
        )
    print(f"  (this script's own peak RSS so far: {own_peak_mb():.1f} MB, below the children's)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small tapes, 3 runs: a smoke run")
    parser.add_argument("--rows", type=int, help="rows of the 1-symbol tape (1,000,000)")
    parser.add_argument("--symbols", type=int, default=100, help="symbols of tape 2 (100)")
    parser.add_argument("--per-symbol", type=int, help="rows per symbol of tape 2 (100,000)")
    parser.add_argument("--runs", type=int, help="paired runs per tape (5)")
    parser.add_argument("--no-state-db", action="store_true", help="skip the --state-db runs")
    parser.add_argument("--tape", type=int, choices=(1, 2), help="run only tape 1 or tape 2")
    args = parser.parse_args()
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    per_symbol = args.per_symbol or (2_000 if args.quick else 100_000)
    runs = args.runs or (3 if args.quick else 5)
    # as ``pip install`` leaves a package: byte-compiled (with PYTHONDONTWRITEBYTECODE set,
    # a source checkout would otherwise compile every module again in every run)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "monitor")], check=True)
    # and with its C tape scanner, as ``pip install`` builds it where a C compiler is
    built = subprocess.run(
        [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    which = subprocess.run(
        [sys.executable, "-c", "from monitor.sources import tape_block; print(tape_block.SCANNER)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    failed = "" if built.returncode == 0 else " (the C one did not build)"
    print(f"tape scanner: {which}{failed}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        bundled = [sys.executable, "-m", "monitor", "replay"]
        walls = [child(bundled, tmp / "bundled.out")[0] for _ in range(runs)]
        print(f"bundled replay (32 rows, start-up included): wall median {median(walls):.3f} s")
        ok = True
        if args.tape in (None, 1):
            ok = bench_tape(tmp, 1, rows, runs, not args.no_state_db)
        if args.tape in (None, 2):
            ok = bench_tape(tmp, args.symbols, per_symbol, runs, False) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
