"""What the daemon tells the outside about itself: metrics, /healthz, STATUS= and the logs
of each poll's and each delivery pass's outcome."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import structlog

from monitor import present
from monitor.core.events import Event
from monitor.core.quote_policy import DEGRADED_KINDS
from monitor.core.rules import RuleState
from monitor.core.valuation import Observation
from monitor.daemon.digest import SymbolView, Valuer
from monitor.daemon.health import HealthState
from monitor.daemon.metrics import Metrics
from monitor.ports import PollResult, SourceGauges, Store
from monitor.settings import Settings

log = structlog.get_logger("mcap.daemon")

# meta key of the last poll's degraded quotes / share counts, read by ``mcap-monitor status``
QUOTE_HEALTH_KEY = "quote_health"


class Telemetry:
    """Counts and gauges from each poll and delivery pass; the one-line status."""

    def __init__(self, metrics: Metrics, health: HealthState, delivery_store: Store) -> None:
        self.metrics = metrics
        self.health = health
        self.delivery_store = delivery_store
        self.views: dict[str, SymbolView] = {}
        self.status = ""
        self.role = ""  # "leader (epoch 3)", "follower of host:pid since ..." (shared db only)
        self._degraded: dict[str, str] = {}
        self._outbox_seen = delivery_store.outbox_counts_by_sink()
        self.outbox = delivery_store.outbox_counts()
        metrics.set_outbox(self.outbox)
        health.set_outbox(self.outbox)

    # -- polls ----------------------------------------------------------------------------
    def account_poll(
        self,
        t: float,
        symbols: Sequence[str],
        result: PollResult,
        gauges: SourceGauges,
        states: Mapping[str, RuleState],
        valuer: Valuer,
        settings: Settings,
    ) -> None:
        """Metrics, health and logs of one poll's outcome."""
        m = self.metrics
        failed = any(f.kind not in DEGRADED_KINDS for f in result.failures)
        m.polls.labels("failed" if failed else "ok").inc()
        for failure in result.failures:
            m.source_errors.labels(failure.source, failure.kind).inc()
            if failure.kind in DEGRADED_KINDS:
                if failure.kind == "disagreement":
                    m.quote_decisions.labels("disagreement").inc()
                continue  # logged where found (quote_disagreement, shares_mismatch once a day)
            log.warning(
                "source_failed",
                source=failure.source,
                subject=failure.subject,
                kind=failure.kind,
                error=failure.message,
            )
        for symbol in result.stale:
            m.stale_quotes.labels(symbol).inc()
            log.warning("quote_stale", symbol=symbol)
        for pair, why in result.blocked_pairs.items():
            log.warning("fx_blocked", pair=pair, reason=why)
        for pair, ratio in gauges.fx_disagreement.items():
            m.fx_disagreement.labels(pair).set(float(ratio))
        for symbol, ratio in gauges.shares_gap.items():
            m.shares_gap.labels(symbol).set(float(ratio))
        self.health.record_poll(t, symbols, result)
        self._account_quotes(t, result, gauges)
        latest: dict[str, Observation] = {}
        for obs in result.observations:
            latest[obs.symbol] = obs
        for symbol, obs in latest.items():
            view = valuer.view(obs, states)
            if view is None:
                continue
            self.views[symbol] = view
            m.last_success.labels(symbol).set(t)
            m.market_cap.labels(symbol, obs.currency).set(float(view.market_cap))
            for rule in view.rules:
                if rule.currency != obs.currency:
                    m.market_cap.labels(symbol, rule.currency).set(float(rule.value))
                m.threshold_distance.labels(rule.rule_id, symbol).set(float(rule.distance))
                if rule.position is not None:
                    m.rule_above.labels(rule.rule_id, symbol).set(rule.position == "above")
        self.update_status(settings)

    def _account_quotes(self, t: float, result: PollResult, gauges: SourceGauges) -> None:
        """Quote age per source, detection latency, decisions; degraded state for ``status``."""
        m = self.metrics
        for source, seconds in gauges.quote_age.items():
            m.quote_age.labels(source).set(seconds)  # every source asked, used or not
        for obs in result.observations:
            if obs.source == "tape":
                continue
            if obs.source not in gauges.quote_age:
                m.quote_age.labels(obs.source).set(max(t - obs.time.timestamp(), 0.0))
            if obs.quote_decision:
                m.quote_decisions.labels(obs.quote_decision).inc()
        degraded = {
            f.subject: f"{f.kind}: {f.message}" for f in result.failures if f.kind in DEGRADED_KINDS
        }
        if degraded != self._degraded:
            self._degraded = degraded
            when = datetime.fromtimestamp(t, UTC).isoformat()
            try:
                self.delivery_store.set_meta(
                    QUOTE_HEALTH_KEY, json.dumps({"time": when, "degraded": degraded})
                )
            except Exception as exc:  # noqa: BLE001 - status is informative; never fail a poll
                log.warning("quote_health_not_saved", error=str(exc))

    def account_events(self, enqueued_at: float, events: Sequence[Event]) -> None:
        """Detection latency: from each crossing's quote time to its enqueue (live data only;
        a tape's quote times are history)."""
        for event in events:
            if event.kind != "baseline" and event.quote_source:
                latency = max(enqueued_at - event.time.timestamp(), 0.0)
                self.metrics.detection_latency.observe(latency)

    def update_status(self, settings: Settings) -> None:
        """``STATUS=`` for systemd and the /healthz summary."""
        pending = self.outbox.get("pending", 0)
        rules = len(settings.rules)
        if len(settings.symbols) == 1:
            symbol = settings.symbols[0].symbol
            view = self.views.get(symbol)
            cap = (
                present.money_short(view.market_cap, view.observation.currency)
                if view is not None
                else "no quote yet"
            )
            head = f"{symbol} {cap}"
        else:
            head = f"{len(self.views)}/{len(settings.symbols)} symbols quoted"
        self.status = f"{head}, {rules} rule{'s' if rules != 1 else ''}, {pending} pending"
        if self.role:
            self.status = f"{self.role}; {self.status}"
        self.health.set_summary(self.status)

    def keep_symbols(self, symbols: set[str]) -> None:
        """Forget the views of symbols no longer configured."""
        self.views = {k: v for k, v in self.views.items() if k in symbols}

    # -- deliveries -----------------------------------------------------------------------
    def account_deliveries(self) -> None:
        """Per-sink delivery counters from the outbox, since the last pass."""
        now = self.delivery_store.outbox_counts_by_sink()
        sinks = {sink for sink, _ in now}
        for sink in sinks:
            delta = {
                k: now.get((sink, k), 0) - self._outbox_seen.get((sink, k), 0)
                for k in ("delivered", "dead", "attempts")
            }
            done = max(delta["delivered"], 0)
            dead = max(delta["dead"], 0)
            failed = max(delta["attempts"] - done - dead, 0)
            for outcome, n in (("delivered", done), ("dead", dead), ("failed", failed)):
                if n:
                    self.metrics.deliveries.labels(sink, outcome).inc(n)
        self._outbox_seen = now
        counts = {"pending": 0, "delivered": 0, "dead": 0}
        for (_, status), n in now.items():
            if status in counts:
                counts[status] += n
        self.outbox = counts
        self.metrics.set_outbox(counts)
        self.health.set_outbox(counts)
