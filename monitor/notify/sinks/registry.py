"""Builds the configured sinks, resolving their secrets once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO
from urllib.parse import SplitResult, urlsplit

from monitor.errors import ConfigError
from monitor.notify.secrets import Redactor, resolve_secret, secret_fragments
from monitor.notify.sinks.apprise_sink import AppriseSink
from monitor.notify.sinks.base import HttpSink
from monitor.notify.sinks.console import ConsoleSink
from monitor.notify.sinks.dingtalk import DingTalkSink
from monitor.notify.sinks.discord import DiscordSink
from monitor.notify.sinks.feishu import FeishuSink
from monitor.notify.sinks.slack import SlackSink
from monitor.notify.sinks.teams import TeamsSink
from monitor.notify.sinks.webhook import WebhookSink
from monitor.notify.sinks.wecom import WeComSink
from monitor.ports import Sink
from monitor.settings import Settings, SinkConfig

HTTP_SINKS: dict[str, type[HttpSink]] = {
    "slack": SlackSink,
    "webhook": WebhookSink,
    "feishu": FeishuSink,
    "dingtalk": DingTalkSink,
    "wecom": WeComSink,
    "discord": DiscordSink,
    "teams": TeamsSink,
}


def build_sink(
    config: SinkConfig,
    redactor: Redactor,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> Sink:
    """One sink; its secret fragments are added to ``redactor`` before anything can log them."""
    if config.type == "console":
        return ConsoleSink(config, out)
    url = resolve_secret(config, "url", environ)
    secret = resolve_secret(config, "secret", environ)
    headers = [v.get_secret_value() for v in config.headers.values()]
    redactor.add(secret_fragments(url, [secret or "", *headers], config.type))
    if not url:
        raise ConfigError(
            f"{config.type} sink has no URL",
            f"sink {config.id!r}",
            "set url, url_env (an environment variable) or url_credential "
            "(a file in $CREDENTIALS_DIRECTORY)",
        )
    if not url.lower().startswith(("https://", "http://")) and config.type != "apprise":
        raise ConfigError(
            f"{config.type} sink URL must start with https://",
            f"sink {config.id!r}",
            "copy the webhook URL exactly as the platform shows it",
        )
    if config.type != "apprise":
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError as exc:
            raise ConfigError(
                f"{config.type} sink URL is malformed ({exc})", f"sink {config.id!r}", "fix it"
            ) from None
        if not parts.hostname:
            raise ConfigError(
                f"{config.type} sink URL has no host", f"sink {config.id!r}", "fix it"
            )
        _check_url_parts(config, parts)
    if config.type == "apprise":
        return AppriseSink(config, url, redactor)
    return HTTP_SINKS[config.type](config, url, secret, redactor)


# plain http only to a loopback receiver (a local relay, the tests), as the settings say for
# a URL in the config: this check covers URLs that come from url_env / url_credential
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _check_url_parts(config: SinkConfig, parts: SplitResult) -> None:
    where = f"sink {config.id!r}"
    if parts.username or parts.password:
        raise ConfigError(
            f"{config.type} sink URL carries a user name or password (user:pass@host)",
            where,
            "remove it from the URL: send credentials as a header (headers = { Authorization "
            '= "..." }) and keep the URL itself out of the config with url_env or '
            "url_credential",
        )
    if parts.scheme.lower() != "https" and parts.hostname not in LOOPBACK:
        raise ConfigError(
            f"{config.type} sink URL must start with https://",
            where,
            "copy the webhook URL exactly as the platform shows it",
        )


def build_sinks(
    settings: Settings,
    redactor: Redactor,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> dict[str, Sink]:
    """Every configured sink by id (``ConfigError`` for a missing or unreadable secret)."""
    return {s.id: build_sink(s, redactor, environ=environ, out=out) for s in settings.sinks}
