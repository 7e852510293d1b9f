"""SQLite state (stdlib ``sqlite3``, WAL): rule states, observations, events and the outbox.

The schema is versioned with ``PRAGMA user_version`` and migrated forward on open. Writers
group everything that belongs to one evaluated batch in one ``transaction()``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from monitor.core.events import Event, payload_text
from monitor.core.rules import RuleState
from monitor.errors import ConfigError, StoreError
from monitor.store.blocks import RecordedRows, UnreadableBlock, decode, head_of
from monitor.store.outbox import OutboxQueries
from monitor.store.schema import MIGRATIONS, WATERMARK
from monitor.store.values import create_private, no_tables, readable_decimal, readable_time

# each symbol's newest block of replayed rows: (symbol, block_id)
_NEWEST_BLOCKS = (
    "SELECT s.symbol, s.block_id FROM observation_block_symbols s JOIN (SELECT symbol, "
    "MAX(last_time) AS t FROM observation_block_symbols GROUP BY symbol) m "
    "ON s.symbol = m.symbol AND s.last_time = m.t"
)


def _retry_busy(step: Callable[[], object], deadline: float = 30.0) -> None:
    """Run ``step``, retrying while another process holds the lock it needs."""
    end = time.monotonic() + deadline
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > end:
                raise
            time.sleep(0.05)


def utc_iso(moment: datetime) -> str:
    """Sortable text form of an aware time: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class LastReading:
    """A rule's most recent value and threshold (for ``status``); ``None``: unreadable."""

    time: datetime
    value: Decimal | None
    threshold: Decimal | None


class Store(OutboxQueries):
    """The state database. ``path=None`` keeps everything in memory (fresh state)."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self.conn = conn
        self.path = path
        self._depth = 0
        self.unreadable_rules: set[str] = set()
        """Rules whose stored state could not be read (seen as absent: re-baselined)."""
        self.unreadable_events = 0
        """Stored events whose payload could not be read (left out of ``events()``)."""
        self.unreadable_blocks = 0
        """Stored blocks of replayed rows that did not decode (left out of the reads)."""

    @classmethod
    def open(cls, path: Path | None) -> Store:
        """Open (creating and migrating as needed) the database at ``path``.

        A new database file is created 0600 and a new directory 0700, whatever the umask.
        Several processes may open one new database at once: migrations run under the write
        lock and re-check the schema version there, so each runs exactly once.
        """
        target = ":memory:" if path is None else str(path)
        try:
            if path is not None:
                create_private(path)
            conn = sqlite3.connect(
                target, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA foreign_keys = ON")
            if path is not None:
                # a new database's pages (no effect on an existing one): 16 KiB, as a replay
                # stores chunks of some 100 KB (a 1M-row replay ran some 5 % faster than at 4)
                conn.execute("PRAGMA page_size = 16384")
                _retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
                conn.execute("PRAGMA synchronous = NORMAL")
            store = cls(conn, path)
            store._migrate()
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open state database: {exc}",
                str(target),
                "check the path is writable and not used by an incompatible version",
            ) from None
        except OSError as exc:
            raise StoreError(
                f"cannot create state database: {exc.strerror}",
                str(target),
                "choose a writable --state-db path",
            ) from None
        return store

    @classmethod
    def open_read_only(cls, path: Path, *, daemon_db: Path | None = None) -> Store:
        """Open an existing database for reading: nothing is created, migrated or written.

        A missing file is a ``ConfigError`` naming ``daemon_db``, the daemon's database.
        """
        if not path.is_file():
            if daemon_db is None or daemon_db == path:
                hint = "the daemon creates it on its first run; or pass --state-db FILE"
                raise ConfigError(f"no state database at {path}", "", hint)
            raise ConfigError(
                f"no state database at {path}; the daemon's is at {daemon_db}",
                "",
                "check --state-db",
            )
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot read state database: {exc}", str(path), "check the --state-db path"
            ) from None
        if version == 0 and no_tables(conn, path):
            conn.close()
            raise ConfigError(
                f"no state database yet at {path} (being created?)",
                "",
                "run again in a moment; if no mcap-monitor process is creating it, it is "
                "not an mcap-monitor state database: check --state-db",
            )
        if version == 0:
            conn.close()
            raise ConfigError(
                "not an mcap-monitor state database (empty or another program's file)",
                str(path),
                "check --state-db",
            )
        if version != len(MIGRATIONS):
            conn.close()
            raise StoreError(
                f"state database schema v{version}; this program reads v{len(MIGRATIONS)}",
                str(path),
                "the daemon migrates it on start; or upgrade mcap-monitor",
            )
        return cls(conn, path)

    @property
    def where(self) -> str:
        """Where the state is, as the ``state db:`` lines show it."""
        return str(self.path)

    def leader(self) -> dict[str, object] | None:
        """Which instance leads (a shared PostgreSQL store); ``None``: one instance, no roles."""
        return None

    def advance_identities(self) -> None:
        """After rows were inserted with their ids (``store copy``): SQLite needs nothing."""

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        version = self._version()
        if version == len(MIGRATIONS):
            return
        with self.transaction():  # BEGIN IMMEDIATE: one process migrates, the others wait
            version = self._version()
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")

    def _version(self) -> int:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"state database schema v{version} is newer than this program (v{len(MIGRATIONS)})",
                str(self.path),
                "upgrade mcap-monitor or use another --state-db",
            )
        return version

    def _begin(self) -> None:
        """Open the outermost transaction (a backend adds its own checks here)."""
        self.conn.execute("BEGIN IMMEDIATE")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested use joins the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    # -- meta -----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- rule state -----------------------------------------------------------------------
    def rule_states(self) -> dict[str, RuleState]:
        """Every rule's state machine state; an unreadable row counts as absent and its rule
        is named in ``unreadable_rules``."""
        out: dict[str, RuleState] = {}
        for row in self.conn.execute(
            "SELECT rule_id, position, since, streak, touched_day FROM rule_state"
        ):
            since = readable_time(row[2])
            try:
                touched = date.fromisoformat(row[4]) if row[4] else None
                streak = int(row[3])
            except (TypeError, ValueError):
                since = None
            if since is None or row[1] not in ("above", "below"):
                self.unreadable_rules.add(row[0])
                continue
            out[row[0]] = RuleState(row[0], row[1], since, streak, touched)
        return out

    def last_readings(self) -> dict[str, LastReading]:
        """Every rule's last evaluated value and threshold (``None`` where unreadable)."""
        out: dict[str, LastReading] = {}
        for row in self.conn.execute(
            "SELECT rule_id, last_time, last_value, last_threshold FROM rule_state"
        ):
            moment = readable_time(row[1])
            if moment is None:
                self.unreadable_rules.add(row[0])
                continue
            out[row[0]] = LastReading(moment, readable_decimal(row[2]), readable_decimal(row[3]))
        return out

    def put_rule_states(self, rows: Iterable[tuple[RuleState, LastReading]]) -> None:
        """Upsert rule states together with their last reading."""
        self.conn.executemany(
            "INSERT INTO rule_state VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule_id) DO "
            "UPDATE SET position = excluded.position, since = excluded.since, "
            "last_time = excluded.last_time, last_value = excluded.last_value, "
            "last_threshold = excluded.last_threshold, streak = excluded.streak, "
            "touched_day = excluded.touched_day",
            [
                (
                    s.rule_id,
                    s.position,
                    s.since.isoformat(),
                    last.time.isoformat(),
                    str(last.value),
                    str(last.threshold),
                    s.streak,
                    s.touched_day.isoformat() if s.touched_day else None,
                )
                for s, last in rows
            ],
        )

    # -- observations ---------------------------------------------------------------------
    def last_times(self) -> dict[str, datetime]:
        """The newest evaluated time per symbol: the resume point, which pruning keeps."""
        out: dict[str, datetime] = {}
        rows = self.conn.execute(
            "SELECT substr(key, ?), value FROM meta WHERE key LIKE ? "
            # each symbol's newest row through the (symbol, time) index: a skip-scan, not a
            # scan of every row (a long replay asks this once per batch)
            "UNION ALL SELECT sym, (SELECT MAX(time) FROM observations WHERE symbol = sym) "
            "FROM (WITH RECURSIVE s(sym) AS (SELECT MIN(symbol) FROM observations "
            "UNION ALL SELECT (SELECT MIN(symbol) FROM observations WHERE symbol > s.sym) "
            "FROM s WHERE s.sym IS NOT NULL) SELECT sym FROM s WHERE sym IS NOT NULL) AS heads "
            "UNION ALL SELECT symbol, MAX(last_time) FROM observation_block_symbols "
            "GROUP BY symbol",
            (len(WATERMARK) + 1, WATERMARK + "%"),
        )
        for symbol, text in rows:
            try:
                moment = datetime.fromisoformat(text)
            except (TypeError, ValueError):
                continue  # unreadable: the other source of the two still counts
            if moment.tzinfo is None:
                continue
            if symbol not in out or moment > out[symbol]:
                out[symbol] = moment
        return out

    def set_watermarks(self, times: dict[str, datetime]) -> None:
        """Advance each symbol's resume point (never moves one backwards)."""
        current = self.last_times()
        for symbol, moment in times.items():
            old = current.get(symbol)
            if old is None or moment > old:
                self.set_meta(WATERMARK + symbol, utc_iso(moment))

    def add_observations(self, rows: list[tuple[object, ...]]) -> None:
        """Insert rows shaped as ``(symbol, time, local_time, price, currency, day_high,
        shares, shares_source, market_cap, inputs_json, source)``."""
        self.conn.executemany(
            "INSERT INTO observations (symbol, time, local_time, price, currency, day_high, "
            "shares, shares_source, market_cap, inputs, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def add_observation_blocks(self, blocks: Iterable[RecordedRows]) -> None:
        """Store a recorded replay's rows a tape chunk at a time (``store.blocks``): one
        database row per chunk, and one per symbol in it."""
        for block in blocks:
            row = self.conn.execute("SELECT MAX(id) FROM observations").fetchone()
            after = int(row[0]) if row and row[0] is not None else 0
            made = self.conn.execute(
                "INSERT INTO observation_blocks (after_id, first_time, last_time, rows, source, "
                "head, data) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    after,
                    utc_iso(block.first_time),
                    utc_iso(block.last_time),
                    block.rows,
                    block.source,
                    head_of(block),
                    block.packed(),
                ),
            ).fetchone()
            self.conn.executemany(
                "INSERT INTO observation_block_symbols (block_id, symbol, first_time, last_time, "
                "rows, shares_source) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        int(made[0]),
                        symbol,
                        utc_iso(span.first_time),
                        utc_iso(span.last_time),
                        span.rows,
                        ",".join(dict.fromkeys(source for _, _, source in span.shares)),
                    )
                    for symbol, span in block.symbols.items()
                ],
            )

    def _blocks(
        self, sql: str, params: tuple[object, ...]
    ) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """The rows of the blocks ``sql`` selects (``id, after_id, head, data``), each with
        its block's id and ``after_id``; a block that does not decode is counted and skipped."""
        for block_id, after, head, data in self.conn.execute(sql, params).fetchall():
            try:
                rows = list(decode(str(head), bytes(data)))
            except (UnreadableBlock, ArithmeticError, ValueError, KeyError, IndexError):
                self.unreadable_blocks += 1
                continue
            for row in rows:
                yield int(block_id), int(after), row

    def latest_observations(self) -> dict[str, dict[str, Any]]:
        """The newest observation per symbol, as a dict of its columns."""
        cur = self.conn.execute(
            "SELECT o.* FROM observations o JOIN (SELECT symbol, MAX(id) AS id FROM observations "
            "GROUP BY symbol) m ON o.id = m.id"
        )
        names = [d[0] for d in cur.description]
        out = {row[1]: dict(zip(names, row, strict=True)) for row in cur}
        newest = self.conn.execute(_NEWEST_BLOCKS).fetchall()
        wanted: dict[int, set[str]] = {}
        for symbol, block_id in newest:
            wanted.setdefault(int(block_id), set()).add(symbol)
        for block_id, symbols in wanted.items():
            found: dict[str, tuple[int, dict[str, Any]]] = {}
            for _, after, row in self._blocks(
                "SELECT id, after_id, head, data FROM observation_blocks WHERE id = ?", (block_id,)
            ):
                if row["symbol"] in symbols:
                    found[row["symbol"]] = (after, row)
            for symbol, (after, row) in found.items():
                table = out.get(symbol)
                if table is None or (row["time"], after) >= (table["time"], table["id"]):
                    out[symbol] = {"id": None, **row}
        return out

    def last_prices(self) -> dict[str, Decimal]:
        """Each symbol's newest stored price (readable and positive ones only): the spike
        check's reference across runs."""
        out: dict[str, Decimal] = {}
        for symbol, row in self.latest_observations().items():
            price = readable_decimal(row.get("price"))
            if price is not None and price > 0:
                out[symbol] = price
        return out

    def observations(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Stored observations, oldest first (at one time: in the order they were stored)."""
        start = utc_iso(since) if since else ""
        cur = self.conn.execute(
            "SELECT * FROM observations WHERE time >= ? ORDER BY time, id", (start,)
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur]
        keyed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for k, (block_id, after, row) in enumerate(
            self._blocks(
                "SELECT id, after_id, head, data FROM observation_blocks WHERE last_time >= ? "
                "ORDER BY id",
                (start,),
            )
        ):
            if row["time"] >= start:
                # after table row ``after``, before the next one
                keyed.append(((row["time"], after, 1, block_id, k), {"id": None, **row}))
        if not keyed:
            return rows
        keyed += [((row["time"], row["id"], 0), row) for row in rows]
        keyed.sort(key=lambda pair: pair[0])
        return [row for _, row in keyed]

    def last_price_before(self, symbol: str, moment: datetime) -> Decimal | None:
        """The newest stored price of ``symbol`` strictly before ``moment`` (a previous close)."""
        end = utc_iso(moment)
        row = self.conn.execute(
            "SELECT price, time, id FROM observations WHERE symbol = ? AND time < ? "
            "ORDER BY time DESC, id DESC LIMIT 1",
            (symbol, end),
        ).fetchone()
        best: tuple[tuple[str, int], str] | None = None
        if row is not None:
            best = ((str(row[1]), int(row[2])), str(row[0]))
        for _, after, found in self._blocks(
            "SELECT b.id, b.after_id, b.head, b.data FROM observation_blocks b "
            "JOIN observation_block_symbols s ON s.block_id = b.id "
            "WHERE s.symbol = ? AND s.first_time < ? ORDER BY s.first_time DESC LIMIT 1",
            (symbol, end),
        ):
            if found["symbol"] == symbol and found["time"] < end:
                key = (found["time"], after)
                if best is None or key >= best[0]:
                    best = (key, found["price"])
        return None if best is None else Decimal(best[1])

    def _table_sources(self) -> tuple[str, str]:
        row = self.conn.execute(
            "SELECT GROUP_CONCAT(DISTINCT source), GROUP_CONCAT(DISTINCT shares_source) "
            "FROM observations"
        ).fetchone()
        return (row[0] or "", row[1] or "")

    def observation_sources(self) -> tuple[str, str]:
        """The distinct price and share-count sources of the stored observations, as text."""
        prices, shares = self._table_sources()
        more = self.conn.execute(
            "SELECT source, '' FROM observation_blocks UNION "
            "SELECT '', shares_source FROM observation_block_symbols"
        ).fetchall()
        price_names = dict.fromkeys(n for n in prices.split(",") if n)
        share_names = dict.fromkeys(n for n in shares.split(",") if n)
        for price, share in sorted(more):
            price_names.update(dict.fromkeys(n for n in str(price).split(",") if n))
            share_names.update(dict.fromkeys(n for n in str(share).split(",") if n))
        return (",".join(price_names), ",".join(share_names))

    def prune_observations(self, before: datetime) -> int:
        """Delete observations older than ``before``; return how many went. A block of
        replayed rows goes whole, once its newest row is older than ``before``."""
        # the newest observation of each symbol stays, however old: status shows it
        end = utc_iso(before)
        cur = self.conn.execute(
            "DELETE FROM observations WHERE time < ? "
            "AND id NOT IN (SELECT MAX(id) FROM observations GROUP BY symbol)",
            (end,),
        )
        gone = cur.rowcount
        old = self.conn.execute(
            "SELECT id, rows FROM observation_blocks WHERE last_time < ? AND id NOT IN "
            f"(SELECT block_id FROM ({_NEWEST_BLOCKS}) AS newest)",
            (end,),
        ).fetchall()
        if old:
            ids = [(int(i),) for i, _ in old]
            self.conn.executemany("DELETE FROM observation_block_symbols WHERE block_id = ?", ids)
            self.conn.executemany("DELETE FROM observation_blocks WHERE id = ?", ids)
            gone += sum(int(n) for _, n in old)
        return gone

    # -- events ---------------------------------------------------------------------------
    def add_events(self, events: Iterable[Event]) -> None:
        self.conn.executemany(
            "INSERT INTO events (id, time, symbol, rule_id, kind, payload) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (  # one row at a time: a long replay's events are never all encoded at once
                (e.id, utc_iso(e.time), e.symbol, e.rule_id, e.kind, payload_text(e))
                for e in events
            ),
        )

    def events(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded events (as dicts), oldest first; ``limit`` keeps the newest ones."""
        sql = "SELECT payload FROM events WHERE time >= ? ORDER BY seq DESC"
        params: list[object] = [utc_iso(since) if since else ""]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = []
        self.unreadable_events = 0
        for (text,) in self.conn.execute(sql, params):
            try:
                row = json.loads(text)
            except (TypeError, ValueError):
                row = None
            if isinstance(row, dict):
                rows.append(row)
            else:
                self.unreadable_events += 1
        rows.reverse()
        return rows
