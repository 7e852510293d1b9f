"""The schema, versioned with ``PRAGMA user_version`` and migrated forward on open."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE rule_state (
        rule_id TEXT PRIMARY KEY,
        position TEXT NOT NULL CHECK (position IN ('above', 'below')),
        since TEXT NOT NULL,
        last_time TEXT NOT NULL,
        last_value TEXT NOT NULL,
        last_threshold TEXT NOT NULL,
        streak INTEGER NOT NULL DEFAULT 0,
        touched_day TEXT
    );
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL,
        time TEXT NOT NULL,
        local_time TEXT NOT NULL,
        price TEXT NOT NULL,
        currency TEXT NOT NULL,
        day_high TEXT,
        shares INTEGER NOT NULL,
        shares_source TEXT NOT NULL,
        market_cap TEXT NOT NULL,
        inputs TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE INDEX observations_symbol_time ON observations (symbol, time);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        time TEXT NOT NULL,
        symbol TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_time ON events (time);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        sink_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        delivered_at REAL,
        last_error TEXT,
        UNIQUE (message_id, sink_id)
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
    """,
    # 2: outbox retry window restarts when a dead delivery is re-queued by hand
    """
    ALTER TABLE outbox ADD COLUMN retry_from REAL;
    CREATE INDEX outbox_sink ON outbox (sink_id, status, id);
    """,
    # 3: the resume watermark per symbol, kept apart from observations (which are pruned)
    """
    INSERT OR IGNORE INTO meta (key, value)
        SELECT 'watermark:' || symbol, MAX(time) FROM observations GROUP BY symbol;
    """,
    # 4: a recorded replay's rows as blocks of tape lines (``store.blocks``), with each
    # symbol's span in them
    """
    CREATE TABLE observation_blocks (
        id INTEGER PRIMARY KEY,
        after_id INTEGER NOT NULL,
        first_time TEXT NOT NULL,
        last_time TEXT NOT NULL,
        rows INTEGER NOT NULL,
        source TEXT NOT NULL,
        head TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX observation_blocks_last_time ON observation_blocks (last_time);
    CREATE TABLE observation_block_symbols (
        block_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        first_time TEXT NOT NULL,
        last_time TEXT NOT NULL,
        rows INTEGER NOT NULL,
        shares_source TEXT NOT NULL,
        PRIMARY KEY (symbol, block_id)
    );
    """,
)

WATERMARK = "watermark:"
"""Prefix of the ``meta`` keys holding each symbol's newest evaluated time (UTC ISO text)."""
