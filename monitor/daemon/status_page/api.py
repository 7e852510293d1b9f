"""``/api/status``: the page's data as JSON, built once per poll and served from memory.

The store is a read-only connection of the page's own (never the poll's); a build runs on
the page's own refresher thread after each poll, so a request never waits for the store
(except the very first one).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import structlog

from monitor import present
from monitor.core.events import event_from_dict
from monitor.daemon.health import HealthState
from monitor.daemon.status_page.access import Access, resolve_token
from monitor.daemon.status_page.chart import ChartCache, SeriesReader
from monitor.daemon.status_page.svg import chart_svg
from monitor.daemon.status_page.texts import TEXTS
from monitor.readings import UNREADABLE, StatusReader, quote_of, rule_status
from monitor.settings import Settings
from monitor.store.outbox import OutboxRow

log = structlog.get_logger("mcap.status_page")


@runtime_checkable
class PageStore(StatusReader, SeriesReader, Protocol):
    """The reads the page makes (the SQLite store has them all)."""

    def outbox_counts(self) -> dict[str, int]: ...
    def outbox_list(self, status: str | None = None) -> list[OutboxRow]: ...
    def close(self) -> None: ...


EVENTS_SHOWN = 20
DEAD_SHOWN = 10
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def red_up(settings: Settings) -> bool:
    """The up/down colour convention: a sink's ``colours`` rule, on the page's language."""
    h = settings.health
    return h.colours == "red_up" or (h.colours == "language" and h.language == "zh")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


class StatusProvider:
    """The page's JSON, rebuilt after each poll by a thread of its own; requests only read it.

    The first request builds it (and waits); later ones get the newest build at once while
    a refresher thread, running only while someone looks (``IDLE`` seconds after the last
    request), rebuilds it when a poll has run or a poll interval has passed.
    """

    IDLE = 300.0
    TICK = 0.25  # how often the refresher looks for a finished poll

    def __init__(
        self,
        open_store: Callable[[], object],
        settings: Callable[[], Settings],
        health: HealthState,
        clock: Callable[[], float],
    ) -> None:
        self._open_store = open_store  # opened on the first request, on a server thread
        self._store: PageStore | None = None
        self.settings = settings
        self.health = health
        self.clock = clock
        self.chart = ChartCache()
        self._build_lock = threading.Lock()  # one build at a time; it owns store and chart
        self._lock = threading.Lock()  # the published document
        self._key: tuple[object, ...] | None = None
        self._doc: dict[str, Any] | None = None
        self._json = b""
        self._asked = time.monotonic()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def _cache_key(
        self, settings: Settings, body: dict[str, Any], now: float
    ) -> tuple[object, ...]:
        attempts = tuple(str(v.get("last_attempt")) for v in body["symbols"].values())
        period = max(5.0, settings.daemon.poll_interval)
        return (id(settings), attempts, str(body["deliveries"]), int(now // period))

    def document(self) -> tuple[dict[str, Any], bytes]:
        """The newest status (dict and JSON bytes); built here only the first time."""
        self._asked = time.monotonic()
        with self._lock:
            doc, data = self._doc, self._json
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._refresher, name="mcap-status-page", daemon=True
                )
                self._thread.start()
        if doc is None:
            self.refresh()
            with self._lock:
                if self._doc is None:
                    raise RuntimeError("the status page could not be built (see the log)")
                doc, data = self._doc, self._json
        return doc, data

    def refresh(self) -> bool:
        """Rebuild when a poll has run since the last build; True if it did."""
        with self._build_lock:
            settings = self.settings()
            now = self.clock()
            healthy, body = self.health.snapshot(now)
            key = self._cache_key(settings, body, now)
            if key == self._key and self._doc is not None:
                return False
            try:
                doc = self._build(settings, now, healthy, body)
            except Exception as exc:  # noqa: BLE001 - keep serving the last good figures
                log.error("status_page_failed", error=f"{type(exc).__name__}: {exc}")
                if self._doc is None:
                    return False
                doc = dict(self._doc, stale_reason=f"{type(exc).__name__}: {exc}")
            data = json.dumps(doc, ensure_ascii=False).encode()
            with self._lock:
                self._key, self._doc, self._json = key, doc, data
            return True

    def _refresher(self) -> None:
        while not self._closed.wait(self.TICK):
            if time.monotonic() - self._asked > self.IDLE:
                with self._lock:
                    self._thread = None  # the next request starts another
                return
            self.refresh()

    def close(self) -> None:
        self._closed.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1)
        # a build still reading (a cold one takes seconds) must not hold up the daemon's
        # stop: its read-only connection then goes with the process
        if self._build_lock.acquire(timeout=1):
            try:
                if self._store is not None:
                    self._store.close()
                    self._store = None
            finally:
                self._build_lock.release()

    def _reader(self) -> PageStore:
        if self._store is None:
            store = self._open_store()
            if not isinstance(store, PageStore):
                raise TypeError(f"the status page cannot read a {type(store).__name__}")
            self._store = store
        return self._store

    def _build(
        self, settings: Settings, now: float, healthy: bool, body: dict[str, Any]
    ) -> dict[str, Any]:
        texts = TEXTS[settings.health.language]
        store = self._reader()
        latest = store.latest_observations()  # read once per build
        items = rule_status(settings, store, latest)
        self.chart.refresh(settings, store, latest)
        rules = []
        for item in items:
            rule = next(r for r in settings.rules if r.id == item["rule"])
            window = self.chart.windows.get(rule.id)
            item = dict(item, hysteresis=str(rule.hysteresis), text=_texts(item))
            if window is not None:
                item["chart"] = {
                    "svg": chart_svg(window, rule.id, texts),
                    "points": [
                        [p.time.isoformat(), str(p.value), str(p.threshold)]
                        for _, p in window.points()
                    ],
                    "marks": [
                        {
                            "id": e.id,
                            "time": e.time.isoformat(),
                            "kind": e.kind,
                            "value": str(e.value),
                        }
                        for e in window.events
                    ],
                }
            rules.append(item)
        symbols = []
        for sym in settings.symbols:
            h = body["symbols"].get(sym.symbol, {})
            obs = latest.get(sym.symbol)
            seen = None if obs is None else datetime.fromisoformat(str(obs["time"]))
            zh = settings.health.language == "zh" and sym.name_zh
            symbols.append(
                {
                    "symbol": sym.symbol,
                    "name": sym.name_zh if zh else sym.display_name,
                    "status": h.get("status", "unknown"),
                    "error": _clean(str(h.get("error", ""))),
                    "last_success": h.get("last_success"),
                    "observed_at": None if seen is None else seen.isoformat(),
                    "observed_local": None
                    if seen is None
                    else present.local_time(seen, sym.timezone),
                    "source": None if obs is None else str(obs.get("source") or ""),
                    "quote": quote_of(obs),
                }
            )
        sources = []
        for name, v in body["sources"].items():
            last = v.get("last_success")
            age = None if last is None else now - datetime.fromisoformat(last).timestamp()
            sources.append(
                {
                    "name": name,
                    "last_success": last,
                    "age_seconds": None if age is None else round(age, 1),
                    "last_failure": v.get("last_failure"),
                    "last_error": _clean(str(v.get("last_error", ""))),
                }
            )
        events = []
        for row in store.events(limit=EVENTS_SHOWN):
            try:
                e = event_from_dict(row)
            except (ArithmeticError, ValueError, KeyError, TypeError, AssertionError):
                continue
            events.append(
                {
                    "time": e.time.isoformat(),
                    "as_of": present.local_time(e.time, e.exchange_tz),
                    "rule": e.rule_id,
                    "symbol": e.symbol,
                    "kind": e.kind,
                    "value": str(e.value),
                    "currency": e.currency,
                    "value_text": present.money_long(e.value, e.currency),
                    "threshold_text": present.money_short(e.threshold, e.currency),
                }
            )
        dead = store.outbox_list("dead")[-DEAD_SHOWN:]
        times = [str(o["time"]) for o in latest.values()]
        return {
            "generated_at": _iso(now),
            "data_as_of": max(times) if times else None,
            "language": settings.health.language,
            "red_up": red_up(settings),
            "poll_interval": settings.daemon.poll_interval,
            "health": {
                "status": body["status"],
                "healthy": healthy,
                "problems": [_clean(p) for p in body["problems"]],
                "warnings": [_clean(w) for w in body["warnings"]],
                "in_session": body["in_session"],
                "scheduler_heartbeat": body["scheduler_heartbeat"],
                **{k: body[k] for k in ("role", "leader", "epoch") if k in body},
            },
            "symbols": symbols,
            "sources": sources,
            "rules": rules,
            "events": events,
            "outbox": dict(store.outbox_counts())
            | {
                "dead_rows": [
                    {
                        "sink": r.sink_id,
                        "kind": r.kind,
                        "attempts": r.attempts,
                        "created_at": _iso(r.created_at),
                        "error": _clean(r.last_error or ""),
                    }
                    for r in dead
                ],
            },
        }


def _clean(text: str) -> str:
    """An error for the page: any URL masked (a sink's URL is a secret)."""
    return _URL.sub("[url]", text)[:300]


def _texts(item: dict[str, object]) -> dict[str, str]:
    """The figures as people read them (HK$1.018 trillion, +1.8 %, HK$42.57)."""
    out: dict[str, str] = {}
    cur = str(item.get("currency", ""))
    for key, render in (
        ("value", lambda d: present.money_long(d, cur)),
        ("threshold", lambda d: present.money_short(d, cur)),
        ("distance", present.percent),
    ):
        raw = item.get(key)
        if raw is None:
            continue
        try:
            out[key] = UNREADABLE if raw == UNREADABLE else render(Decimal(str(raw)))
        except ArithmeticError:
            out[key] = str(raw)
    if "needs_price" in item:
        out["needs_price"] = present.price(
            Decimal(str(item["needs_price"])), str(item["price_currency"])
        )
    if "since" in item:
        out["since"] = str(item["since"])[:16].replace("T", " ")
    return out


def page_for(
    listen_host: str,
    settings: Callable[[], Settings],
    open_store: Callable[[], object],
    health: HealthState,
    clock: Callable[[], float],
) -> tuple[StatusProvider, Access]:
    """The page's data and who may read it, for ``HealthServer(status=..., access=...)``;
    ``ConfigError`` when ``token_credential`` names an unreadable credential."""
    token = resolve_token(settings().health)
    return StatusProvider(open_store, settings, health, clock), Access.for_listen(
        listen_host, token
    )
