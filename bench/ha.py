"""High availability on PostgreSQL: failover time and delivery rate with two instances.

Starts a throw-away PostgreSQL server (Debian's binaries, ``initdb`` in a temp dir, as the
``postgres`` user when run as root), two ``mcap-monitor run`` daemons on one database (tape
mode, the bundled tape, ``failover_after = 3``) and one local webhook receiver. Prints:
- the delivery rate: N alerts queued at once in the shared outbox, until all were answered 2xx;
- the failover time: the leader SIGKILLed K times (restarted as the follower each time), from
  the kill until the other instance holds the bumped leader epoch; median and max.
Run: ``python bench/ha.py [--events N] [--kills K]``.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from delivery import PAYLOAD, Sink

from monitor.store.postgres import PgStore

TAPE = Path(__file__).resolve().parents[1] / "monitor" / "data" / "xiaomi_2025-01-20_2025-03-10.csv"
FAILOVER_AFTER = 3.0


def start_pg(top: Path) -> tuple[str, list[str], Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise SystemExit("no /usr/lib/postgresql/*/bin/pg_ctl: apt install postgresql")
    bindir = Path(found[-1]).parent
    run: list[str] = []
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")
        shutil.chown(top, "postgres")
        run = ["runuser", "-u", "postgres", "--"]
    os.chmod(top, 0o755)
    data = top / "data"
    subprocess.run(
        [*run, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pg_ctl = [*run, str(bindir / "pg_ctl"), "-D", str(data)]
    opts = f"-c listen_addresses='' -c unix_socket_directories={top} -c fsync=off"
    subprocess.run(
        [*pg_ctl, "-w", "-o", opts, "-l", str(top / "log"), "start"],
        check=True,
        capture_output=True,
        timeout=90,
    )
    return str(top), [*pg_ctl, "-m", "immediate"], data


def config(tmp: Path, url: str, hook: str) -> Path:
    path = tmp / "mcap.toml"
    path.write_text(
        f"""
[[symbols]]
symbol = "1810.HK"
shares = 25_105_000_000

[[rules]]
id = "hkd-1t"
symbol = "1810.HK"
threshold = 1_000_000_000_000
currency = "HKD"

[[sinks]]
id = "hook"
type = "webhook"
url = "{hook}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[source]
kind = "tape"
path = "{TAPE}"

[health]
enabled = false

[daemon]
poll_interval = 0.5
dispatch_interval = 0.2
jitter = 0
state_dir = "{tmp}"

[store]
url = "{url}"
failover_after = {FAILOVER_AFTER}
""",
        encoding="utf-8",
    )
    return path


def daemon(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "STATE_DIRECTORY")}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(cfg), "run"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env=env,
    )


def leader(url: str) -> tuple[int, int]:
    """(epoch, pid of the holder) as the leader row says."""
    try:
        with psycopg.connect(url, autocommit=True) as c:
            row = c.execute("SELECT epoch, holder FROM leader").fetchone()
    except psycopg.Error:  # not created yet
        return 0, 0
    if row is None or not str(row[1]):
        return 0, 0
    return int(row[0]), int(str(row[1]).rsplit(":", 1)[-1])


def wait(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise SystemExit("timed out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="mcap-ha-bench-"))
    sock, stop, _ = start_pg(top)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        name = "ha_" + uuid.uuid4().hex[:8]
        with psycopg.connect(f"postgresql://postgres@/postgres?host={sock}", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        url = f"postgresql://postgres@/{name}?host={sock}"
        sink = Sink()
        cfg = config(top, url, sink.url)
        for i in range(2):
            p = daemon(cfg, top / f"d{i}.log")
            procs[p.pid] = p
        wait(lambda: leader(url)[1] in procs, 60)
        store = PgStore.connect(url)
        start = time.monotonic()
        with store.transaction():
            for i in range(args.events):
                store.enqueue(f"bench-{i}", "hook", "crossed_above", PAYLOAD | {"id": i}, 0.0)
        queued = time.monotonic()
        sink.wait(args.events)
        done = time.monotonic()
        store.close()
        rate = args.events / (done - queued)
        print(
            f"delivery: {args.events} alerts in {done - queued:.2f} s = {rate:.0f}/s "
            f"(queued in {queued - start:.2f} s), two instances, one delivering"
        )
        takeovers: list[float] = []
        for k in range(args.kills):
            epoch, pid = leader(url)
            victim = procs.pop(pid)
            victim.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            victim.wait(timeout=10)
            wait(lambda e=epoch: leader(url)[0] > e and leader(url)[1] in procs, 60)
            takeovers.append(time.monotonic() - killed)
            p = daemon(cfg, top / f"r{k}.log")
            procs[p.pid] = p
            time.sleep(1.0)  # the restarted instance settles as the follower
        print(
            f"failover after SIGKILL of the leader, {args.kills} runs: median "
            f"{statistics.median(takeovers):.2f} s, max {max(takeovers):.2f} s "
            f"(failover_after {FAILOVER_AFTER} s)"
        )
    finally:
        for p in procs.values():
            p.kill()
            p.wait(timeout=10)
        subprocess.run([*stop, "stop"], capture_output=True, timeout=60)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
