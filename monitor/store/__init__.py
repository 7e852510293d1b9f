"""The SQLite state store: schema and migrations, rule state, observations, events, outbox."""

from monitor.store.outbox import OutboxRow
from monitor.store.schema import MIGRATIONS
from monitor.store.sqlite import Store

__all__ = ["MIGRATIONS", "OutboxRow", "Store"]
