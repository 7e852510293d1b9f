"""``store copy``: a SQLite state moved into PostgreSQL keeps every row and every delivery
status (nothing sent before is sent again); a non-empty target is refused, exit 2."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from e2e.daemon_support import write_config

from monitor.cli import main
from monitor.service import Engine
from monitor.settings import load_settings
from monitor.sources.tape import TapeReader
from monitor.store import Store
from monitor.store.copy import TABLES
from monitor.store.postgres import PgStore


def _sqlite_state(tmp_path: Path) -> Path:
    config = write_config(
        tmp_path / "mcap.toml", state_dir=tmp_path, webhook_url="http://127.0.0.1:9/hook"
    )
    settings, _ = load_settings(config)
    db = tmp_path / "state.db"
    store = Store.open(db)
    assert settings.source.path is not None
    Engine(settings, store, record_observations=True).process(
        TapeReader(settings.source.path), time.time()
    )
    first = store.outbox_list()[0]
    with store.transaction():
        store.mark_delivered(first.id, time.time())
    store.close()
    return db


def _counts(store: Store) -> dict[str, int]:
    return {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_copy_keeps_every_row_and_every_delivery_status(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _sqlite_state(tmp_path)
    assert main(["store", "copy", "--from", f"sqlite:///{db}", "--to", pg_url]) == 0
    source, target = Store.open(db), PgStore.connect(pg_url)
    try:
        assert _counts(target) == _counts(source)
        assert _counts(source)["events"] > 0 and _counts(source)["outbox"] > 0
        status = {(r.message_id, r.sink_id): r.status for r in source.outbox_list()}
        assert {(r.message_id, r.sink_id): r.status for r in target.outbox_list()} == status
        assert "delivered" in status.values()
        assert target.rule_states() == source.rule_states()
        assert target.last_times() == source.last_times()
        # a new event after the copy gets a new id, never one of the copied ones
        with target.transaction():
            assert target.enqueue("after-copy", "hook", "crossed_above", {"id": "x"}, 1.0)
    finally:
        source.close()
        target.close()
    assert "counts verified" in capsys.readouterr().out
    # copying again into the now full database is refused, and changes nothing
    assert main(["store", "copy", "--from", f"sqlite:///{db}", "--to", pg_url]) == 2
    assert "already holds a state" in capsys.readouterr().err


def test_replayed_blocks_copied_into_postgresql_read_as_their_rows(
    pg_url: str, tmp_path: Path
) -> None:
    """A recorded replay's blocks (``store.blocks``) move with ``store copy``, and the
    PostgreSQL store reads them as the SQLite one does."""
    from integration.test_replayed_blocks import (
        blank_fx,
        config,
        counts,
        newest,
        plain,
        record,
        spec,
    )
    from unit.test_tape_blocks import write as write_tape

    cfg = config(1, "0.01", 3)
    tape = blank_fx(write_tape(tmp_path / "tape.csv", 3982, spec(1500), 3), 40)
    source = record(cfg, tape, tmp_path / "blocks.db", True)
    assert source.path is not None
    table, blocks = counts(source)
    assert table > 0 and blocks > 0
    assert main(["store", "copy", "--from", f"sqlite:///{source.path}", "--to", pg_url]) == 0
    target = PgStore.connect(pg_url)
    try:
        assert counts(target) == (table, blocks)
        want = source.observations()
        assert plain(target.observations()) == plain(want)
        assert newest(target) == newest(source)
        assert target.observation_sources() == source.observation_sources()
        assert target.last_times() == source.last_times()
        for row in want[::97]:
            moment = datetime.fromisoformat(row["time"])
            assert target.last_price_before(row["symbol"], moment) == source.last_price_before(
                row["symbol"], moment
            )
        cut = datetime.fromisoformat(want[800]["time"])
        with target.transaction():
            pruned = target.prune_observations(cut)
        with source.transaction():
            assert source.prune_observations(cut) == pruned > 0
        assert plain(target.observations()) == plain(source.observations())
    finally:
        source.close()
        target.close()
