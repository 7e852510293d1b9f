"""A store for replayed history: every alert it queues is marked ``"mode": "replay"``.

Used by ``replay --notify`` and by the daemon when ``source.kind = "tape"`` (both chosen in
``monitor.bootstrap``), so an alert built from recorded data is never taken for a live one:
the sinks render the mark (``notify.templates.mark_replay``) and the Standard Webhooks JSON
carries it.
"""

from __future__ import annotations

from monitor.store.sqlite import Store


class ReplayStore(Store):
    """A store whose queued alerts are marked ``"mode": "replay"`` (never taken for live);
    a PostgreSQL store is marked by setting ``replay_mark`` on it."""

    replay_mark = True
