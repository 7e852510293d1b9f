"""``store copy``: move a state (rule states, resume points, events, outbox, observations) from
one store to another, e.g. from a SQLite file to the PostgreSQL database several hosts share.

Rows keep their ids and their outbox status, so nothing delivered before is sent again and
nothing pending is lost; the copy is one transaction on the target, and the counts of every
table are compared afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.errors import ConfigError, StoreError
from monitor.store.sqlite import Store

TABLES = (
    "meta",
    "rule_state",
    "events",
    "outbox",
    "observations",
    "observation_blocks",
    "observation_block_symbols",
)
_BATCH = 5000


def _count(store: Store, table: str) -> int:
    row = store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def copy_state(
    source: Store, target: Store, *, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every table of ``source`` into the empty ``target``; the rows copied per table.

    ``ConfigError`` when the target already holds a state (it is never merged into);
    ``StoreError`` when the counts differ afterwards.
    """
    used = [t for t in TABLES if t != "meta" and _count(target, t)]
    if used:
        raise ConfigError(
            f"the target already holds a state ({', '.join(used)})",
            target.where,
            "copy into a new, empty database",
        )
    copied: dict[str, int] = {}
    with target.transaction():
        target.conn.execute("DELETE FROM meta")
        for table in TABLES:
            cur = source.conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cur.description or ()]
            insert = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            total = 0
            while rows := cur.fetchmany(_BATCH):
                target.conn.executemany(insert, [tuple(r) for r in rows])
                total += len(rows)
            copied[table] = total
            if progress is not None:
                progress(table, total)
        target.advance_identities()
    for table in TABLES:
        have, want = _count(target, table), _count(source, table)
        if have != want:
            raise StoreError(
                f"copy incomplete: {table} has {have} rows, the source {want}",
                target.where,
                "report it; the source is unchanged",
            )
    return copied
