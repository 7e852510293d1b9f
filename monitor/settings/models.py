"""The configuration's pydantic models: every key, its type, default and cross-checks.

``Settings`` reads ``MCAP_`` environment variables over the values it is given (the file's);
``monitor.settings.loading`` finds and parses the file and turns validation errors into
``ConfigError`` naming the key and its line.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from monitor.core.events import EVENT_KINDS, EventKind
from monitor.core.money import check_currency, to_decimal
from monitor.settings import checks
from monitor.settings.store import StoreConfig


def _currency(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a currency code such as HKD")
    return check_currency(value.strip().upper())


Num = Annotated[Decimal, BeforeValidator(to_decimal)]
Currency = Annotated[str, BeforeValidator(_currency)]
# a job interval: 7 days at most (a timer of 1e12 s overflows; no job means to wait that long)
Interval = Annotated[float, Field(gt=0, le=7 * 86400)]
MAX_AMOUNT = Decimal("1e18")  # above every market cap in every currency


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r}: use an IANA name such as Asia/Hong_Kong"
        ) from None
    return value


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_sink_url(kind: str, url: str) -> None:
    """What ``run`` would reject in a sink URL, rejected when the config is read."""
    if kind == "apprise":
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"{kind} sink URL is malformed") from None
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if parts.scheme != "https" and not loopback:
        raise ValueError(f"{kind} sink URL must start with https://")
    if not parts.hostname:
        raise ValueError(f"{kind} sink URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{kind} sink URL carries a user name or password: put credentials in "
            "headers, secret, url_env or url_credential, not in the URL"
        )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SharesChange(_Model):
    """From ``since`` on, ``shares`` are counted (placements, buy-backs, splits)."""

    since: date
    shares: int = Field(gt=0)
    source: str = "config"


class SymbolConfig(_Model):
    """A watched listing and how its shares are counted."""

    symbol: str = Field(min_length=1)
    name: str = ""
    name_zh: str = ""
    currency: Currency = "HKD"
    exchange: str = "XHKG"
    timezone: str = "Asia/Hong_Kong"
    shares: int = Field(gt=0, description="total counted shares, all classes")
    shares_mode: Literal["static", "source_plus_unlisted", "yahoo_implied", "auto"] = "static"
    unlisted_shares: int = Field(default=0, ge=0)
    shares_as_of: date | None = None
    shares_source: str = "config"
    shares_history: tuple[SharesChange, ...] = ()
    ranking_symbol: str | None = None
    max_jump: Annotated[Num, Field(gt=0)] = Decimal("0.25")
    max_quote_age: int = Field(default=1800, gt=0, description="seconds")
    # warn when the configured share count is older than this, or Yahoo's implied count
    # (marketCap / price) differs from ours by more than shares_tolerance
    shares_max_age_days: int = Field(default=120, gt=0)
    shares_tolerance: Annotated[Num, Field(ge=0)] = Decimal("0.03")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @property
    def display_name(self) -> str:
        return self.name or self.symbol


class RuleConfig(_Model):
    """A currency threshold (``threshold`` + ``currency``) or a global rank (``top_n``)."""

    id: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    threshold: Num | None = None
    currency: Currency | None = None
    top_n: int | None = Field(default=None, gt=0)
    hysteresis: Num = Decimal("0.01")
    confirm: int = Field(default=1, ge=1)
    notify_on: tuple[EventKind, ...] = EVENT_KINDS
    label: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> RuleConfig:
        if self.top_n is not None:
            if self.threshold is not None or self.currency is not None:
                raise ValueError("a rule has either top_n, or threshold and currency, not both")
        elif self.threshold is None or self.currency is None:
            raise ValueError("a rule needs threshold and currency (or top_n for a rank rule)")
        elif not 0 < self.threshold <= MAX_AMOUNT:
            raise ValueError("threshold must be positive and at most 1e18")
        if not Decimal(0) <= self.hysteresis < Decimal(1):
            raise ValueError("hysteresis is a fraction in [0, 1), e.g. 0.01 for 1 %")
        return self


# what a sink can receive: rule events, the first run's summary, the daily digest
MESSAGE_KINDS: tuple[str, ...] = (*EVENT_KINDS, "summary", "digest")

SinkType = Literal[
    "console", "slack", "webhook", "feishu", "dingtalk", "wecom", "discord", "teams", "apprise"
]


class SinkConfig(_Model):
    """Where alerts go. ``url`` and ``secret`` are secrets: never printed or logged."""

    id: str = Field(min_length=1)
    type: SinkType
    url: SecretStr | None = None
    secret: SecretStr | None = None
    url_credential: str | None = None
    secret_credential: str | None = None
    # names of environment variables holding the URL / secret (kept out of the config file)
    url_env: str | None = None
    secret_env: str | None = None
    rules: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    language: Literal["en", "zh"] = "en"
    quiet_hours: str | None = None
    timezone: str = "UTC"
    urgent_kinds: tuple[str, ...] = ()
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(default=10.0, gt=0)
    digest: bool = False
    colours: Literal["language", "red_up", "green_up"] = "language"  # up/down convention

    @field_validator("kinds", "urgent_kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in value or ():
            if kind not in MESSAGE_KINDS:
                raise ValueError(
                    f"unknown event kind {kind!r}; known kinds: {', '.join(MESSAGE_KINDS)}"
                )
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_window(cls, value: str | None) -> str | None:
        window = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
        if value is not None and not re.match(window, value.strip()):
            raise ValueError(
                'quiet_hours is "HH:MM-HH:MM" in the sink\'s timezone, e.g. "23:00-07:00"'
            )
        return None if value is None else value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="after")
    def _url_and_secret(self) -> SinkConfig:
        if self.url is not None:
            _check_sink_url(self.type, self.url.get_secret_value())
        secret = self.secret.get_secret_value() if self.secret is not None else None
        if self.type == "webhook" and secret is not None and not secret.startswith("whsec_"):
            raise ValueError("secret: a webhook secret is whsec_ followed by base64 (see README)")
        return self


QUOTE_SOURCES = ("tencent", "sina", "yahoo")


class SourceConfig(_Model):
    """Live sources (``yahoo``) or a recorded tape for demos and tests."""

    kind: Literal["yahoo", "tape"] = "yahoo"
    path: Path | None = None
    speed: float = Field(default=0.0, ge=0)
    # a tape's rows pass the live spike check unless the user trusts the tape
    tape_quality_checks: bool = True
    timeout: float = Field(default=10.0, gt=0)
    # send Yahoo's traffic to another host (a proxy, a local test server)
    yahoo_base_url: str | None = None
    # yfinance's sqlite caches (time zones, cookie); default: <state dir>/yfinance
    cache_dir: Path | None = None
    max_backoff: int = Field(default=1800, gt=0, description="seconds, after HTTP 429")
    # quote sources, best first; Yahoo also gives FX and the ranking universe in any case
    quotes: tuple[str, ...] = ("tencent", "sina", "yahoo")
    tencent_base_url: str = "https://qt.gtimg.cn"
    sina_base_url: str = "https://hq.sinajs.cn"
    tencent_timeout: float | None = Field(default=None, gt=0)  # default: timeout
    sina_timeout: float | None = Field(default=None, gt=0)
    # seconds of trading time a real-time quote may be old (Yahoo: [[symbols]] max_quote_age)
    tencent_max_quote_age: int = Field(default=180, gt=0)
    sina_max_quote_age: int = Field(default=180, gt=0)
    price_tolerance: Num = Field(default=Decimal("0.005"), ge=0)
    compare_window: int = Field(default=120, gt=0, description="seconds between quote times")
    confirm_single: int = Field(default=2, ge=1)
    # the real-time total share count (Tencent) against the configured one
    shares_tolerance: Num = Field(default=Decimal("0.003"), ge=0)

    @model_validator(mode="after")
    def _tape_has_path(self) -> SourceConfig:
        if self.kind == "tape" and self.path is None:
            raise ValueError('source.kind = "tape" needs source.path')
        return self

    @field_validator("quotes")
    @classmethod
    def _known_quotes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"source.quotes is empty; valid sources: {', '.join(QUOTE_SOURCES)}")
        for name in value:
            if name not in QUOTE_SOURCES:
                raise ValueError(
                    f"unknown quote source {name!r}; valid sources: {', '.join(QUOTE_SOURCES)}"
                )
        checks.raise_all(checks.duplicates(value, "quote source"))
        return value


class FxConfig(_Model):
    primary: Literal["yahoo", "ecb"] = "yahoo"
    secondary: Literal["yahoo", "ecb", "none"] = "ecb"
    tolerance: Annotated[Num, Field(ge=0, lt=1)] = Decimal("0.01")
    max_age_days: Annotated[Num, Field(gt=0)] = Decimal(4)
    ecb_base_url: str = "https://www.ecb.europa.eu/stats/eurofxref"
    ecb_refresh: int = Field(default=3600, gt=0, description="seconds between ECB fetches")
    currencies: tuple[Currency, ...] = ("CNY", "USD")


class RankingConfig(_Model):
    enabled: bool = True
    base_url: str = "https://companiesmarketcap.com"
    refresh_hours: Annotated[Num, Field(gt=0, le=7 * 24)] = Decimal(6)
    cache_file: Path | None = None
    universe: Path | None = None
    cutoff_usd: Annotated[Num, Field(gt=0, le=MAX_AMOUNT)] | None = None
    cutoff_top_n: int = 100
    cutoff_as_of: date | None = None
    user_agent: str | None = None


class HealthConfig(_Model):
    enabled: bool = True
    listen: str = "127.0.0.1:9464"
    # the page and /api/* off loopback need it (or MCAP_HEALTH__TOKEN, or token_credential)
    token: SecretStr | None = None
    token_credential: str | None = None
    language: Literal["en", "zh"] = "en"  # the status page's text
    colours: Literal["language", "red_up", "green_up"] = "language"  # as a sink's colours

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError('listen is "HOST:PORT", e.g. "127.0.0.1:9464"')
        if not checks.valid_listen_host(host.strip("[]")):
            raise ValueError(f"{host!r} is not an IP address or host name, e.g. 127.0.0.1")
        return value.strip()


class DaemonConfig(_Model):
    """``mcap-monitor run``: job intervals in seconds, retention, proof of life."""

    poll_interval: Interval = 60
    offhours_interval: Interval = 1800
    ranking_interval: Interval = 6 * 3600
    # how often the outbox is checked for retries that came due (new rows wake it at once)
    dispatch_interval: Interval = 5
    # the poll after a close waits this long, for the closing auction and delayed quotes
    close_poll_delay: float = Field(default=1200, ge=0)
    # upper bound of the random offset of this instance's polls within the interval
    jitter: float = Field(default=5, ge=0)
    retention_days: int = Field(default=90, gt=0)
    heartbeat_url: SecretStr | None = None
    heartbeat_timeout: float = Field(default=5, gt=0)
    state_dir: Path | None = None
    delivery_max_age: int = Field(default=24 * 3600, gt=0)


class Settings(BaseSettings):
    """The whole effective configuration (file, then environment), frozen after load."""

    model_config = SettingsConfigDict(
        env_prefix="MCAP_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    symbols: tuple[SymbolConfig, ...] = Field(min_length=1)
    rules: tuple[RuleConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = (SinkConfig(id="console", type="console"),)
    source: SourceConfig = SourceConfig()
    fx: FxConfig = FxConfig()
    ranking: RankingConfig = RankingConfig()
    health: HealthConfig = HealthConfig()
    daemon: DaemonConfig = DaemonConfig()
    store: StoreConfig = StoreConfig()
    state_db: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed as init kwargs).
        return env_settings, init_settings

    @field_validator("rules")
    @classmethod
    def _unique_rule_ids(cls, rules: tuple[RuleConfig, ...]) -> tuple[RuleConfig, ...]:
        checks.raise_all(checks.duplicates([r.id for r in rules], "rule id"))
        return rules

    @field_validator("sinks")
    @classmethod
    def _unique_sink_ids(cls, sinks: tuple[SinkConfig, ...]) -> tuple[SinkConfig, ...]:
        checks.raise_all(checks.duplicates([s.id for s in sinks], "sink id"))
        return sinks

    @model_validator(mode="after")
    def _references(self) -> Settings:
        symbols = [s.symbol for s in self.symbols]
        checks.raise_all(
            checks.duplicates(symbols, "symbol")
            + checks.unknown_references(
                symbols,
                [(r.id, r.symbol) for r in self.rules],
                [(s.id, s.rules or ()) for s in self.sinks],
            )
        )
        return self

    def symbol(self, symbol: str) -> SymbolConfig:
        """The config of one watched symbol (``KeyError`` if not watched)."""
        for s in self.symbols:
            if s.symbol == symbol:
                return s
        raise KeyError(symbol)
