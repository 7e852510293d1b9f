"""Prometheus metrics (``prometheus-client``) in a registry of their own, one per daemon."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
)
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every metric the daemon exports; a fresh registry keeps tests and reloads independent."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        r = self.registry
        self.market_cap = Gauge(
            "mcap_market_cap",
            "Market capitalisation at the last accepted quote, per symbol and currency",
            ["symbol", "currency"],
            registry=r,
        )
        self.threshold_distance = Gauge(
            "mcap_threshold_distance_ratio",
            "value / threshold - 1 for each rule at the last reading (negative: below the line)",
            ["rule", "symbol"],
            registry=r,
        )
        self.rule_above = Gauge(
            "mcap_rule_above",
            "Rule state: 1 above the line, 0 below",
            ["rule", "symbol"],
            registry=r,
        )
        self.poll_duration = Histogram(
            "mcap_poll_duration_seconds",
            "Duration of one poll cycle (fetch, evaluate, persist, enqueue)",
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.polls = Counter(
            "mcap_polls", "Poll cycles that fetched quotes, by outcome", ["outcome"], registry=r
        )
        self.source_errors = Counter(
            "mcap_source_errors",
            "Source failures by source and kind",
            ["source", "kind"],
            registry=r,
        )
        self.stale_quotes = Counter(
            "mcap_stale_quotes", "Quotes rejected as stale, per symbol", ["symbol"], registry=r
        )
        self.fx_disagreement = Gauge(
            "mcap_fx_disagreement_ratio",
            "Relative difference between the primary and secondary FX source, per pair",
            ["pair"],
            registry=r,
        )
        self.shares_gap = Gauge(
            "mcap_shares_gap_ratio",
            "Relative difference between the configured share count and a source's total "
            "(Tencent real-time when it reports one, else Yahoo's implied count), per symbol",
            ["symbol"],
            registry=r,
        )
        self.quote_age = Gauge(
            "mcap_quote_age_seconds",
            "Age of the last evaluated quote at the poll, per source (Yahoo's HK quotes: ~900)",
            ["source"],
            registry=r,
        )
        self.detection_latency = Histogram(
            "mcap_detection_latency_seconds",
            "Quote time to the end of the poll that evaluated it (events are enqueued by then)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.quote_decisions = Counter(
            "mcap_quote_decisions",
            "Quote policy decisions per symbol and poll: confirmed, single, disagreement",
            ["decision"],
            registry=r,
        )
        self.events = Counter("mcap_events", "Rule events emitted, by kind", ["kind"], registry=r)
        self.deliveries = Counter(
            "mcap_deliveries",
            "Delivery outcomes by sink: delivered, failed (will retry), dead",
            ["sink", "outcome"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "mcap_outbox_depth", "Outbox rows by status", ["status"], registry=r
        )
        self.last_success = Gauge(
            "mcap_last_poll_success_timestamp_seconds",
            "When each symbol last got an accepted quote (unix time)",
            ["symbol"],
            registry=r,
        )
        self.heartbeat = Gauge(
            "mcap_scheduler_heartbeat_timestamp_seconds",
            "The scheduler's last heartbeat (unix time)",
            registry=r,
        )
        self.job_failures = Counter(
            "mcap_job_failures", "Scheduled jobs that raised, by job", ["job"], registry=r
        )
        self.leader = Gauge(
            "mcap_leader", "1 while this instance leads (polls and evaluates), else 0", registry=r
        )
        self.leader_changes = Counter(
            "mcap_leader_changes",
            "Times this instance became the leader or stopped being it",
            registry=r,
        )
        self.heartbeat_pings = Counter(
            "mcap_heartbeat_url_pings", "heartbeat_url pings by outcome", ["outcome"], registry=r
        )

    def set_outbox(self, counts: Mapping[str, int]) -> None:
        for status in ("pending", "delivered", "dead"):
            self.outbox_depth.labels(status).set(counts.get(status, 0))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
