"""Secrets in sink URLs (issue 11, section 5): every part after the host is secret unless the
sink type declares it public; answers that echo a secret are masked; URLs and secrets that can
only fail later are rejected by ``config validate``."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from conftest import run_cli
from delivery_setup import sink_toml, whsec, write_config, write_tape
from fakes import FakeClock, Receiver, Reply

from monitor import bootstrap
from monitor.errors import ConfigError
from monitor.notify.backoff import Backoff
from monitor.notify.secrets import Redactor, redact_url, secret_fragments
from monitor.notify.sinks.registry import build_sink
from monitor.service import Engine
from monitor.settings import SinkConfig, load_settings
from monitor.sources.tape import TapeReader
from monitor.store import Store

T0 = 1_740_830_400.0  # 2025-03-01 12:00 UTC


@pytest.mark.parametrize(
    ("url", "kind", "shown"),
    [
        ("https://ntfy.sh/mytopic", "webhook", "https://ntfy.sh/***"),
        (
            "https://x.example/hooks/supersecretpath?team=ops",
            "webhook",
            "https://x.example/***/***?***",
        ),
        ("https://x.example/a#frag", "webhook", "https://x.example/***#***"),
        (
            "https://discord.com/api/webhooks/123/tok",
            "discord",
            "https://discord.com/api/webhooks/***/***",
        ),
        (
            "https://hooks.slack.com/services/T0/B0/abc",
            "slack",
            "https://hooks.slack.com/services/***/***/***",
        ),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=abc&extra=1",
            "dingtalk",
            "https://oapi.dingtalk.com/robot/send?access_token=***&***=***",
        ),
        # a platform's public prefix is public only for that platform
        ("https://x.example/services/abc", "webhook", "https://x.example/***/***"),
        ("pover://user@TOKENabc123", "apprise", "pover://***"),
        ("json://127.0.0.1:8080/hook/abc", "apprise", "json://127.0.0.1:8080/***/***"),
    ],
)
def test_only_the_parts_a_sink_type_declares_public_are_shown(
    url: str, kind: str, shown: str
) -> None:
    assert redact_url(url, kind) == shown


def test_an_echoed_path_or_topic_is_masked_but_words_and_sink_ids_are_not() -> None:
    redact = Redactor(secret_fragments("https://x.example/hooks/supersecretpath", [], "webhook"))
    assert redact("no route /hooks/supersecretpath") == "no route ***"
    assert redact("unknown hook SUPERSECRETPATH") == "unknown hook ***"
    topic = Redactor(secret_fragments("https://ntfy.sh/hook", [], "webhook"))
    assert (
        topic("sink 'hook': webhook said 404 for /hook") == "sink 'hook': webhook said 404 for ***"
    )


def test_an_apprise_token_is_masked_in_any_letter_case() -> None:
    url = "pover://UserKey42@TOKENabc123XYZ"
    redact = Redactor(secret_fragments(url, [], "apprise"))
    for leak in ("pover://userkey42@tokenabc123xyz", "tokenabc123xyz", "TOKENABC123XYZ"):
        assert "***" in redact(leak) and "okenabc123" not in redact(leak).lower()


def build(kind: str, url: str, secret: str | None = None) -> object:
    """Build a sink whose URL (and secret) come from the environment: the settings never see
    them, so the sink registry is the check."""
    fields: dict[str, object] = {"id": "s", "type": kind, "url_env": "U"}
    environ = {"U": url}
    if secret is not None:
        fields["secret_env"] = "S"
        environ["S"] = secret
    return build_sink(SinkConfig.model_validate(fields), Redactor(), environ=environ)


@pytest.mark.parametrize(
    ("kind", "url", "secret", "message"),
    [
        ("webhook", "https://bob:hunter22@x.example/hook", None, "carries a user name or password"),
        (
            "slack",
            "https://bob:hunter22@hooks.slack.com/services/A/B/C",
            None,
            "carries a user name or password",
        ),
        ("slack", "http://hooks.slack.com/services/A/B/C", None, "must start with https://"),
        ("discord", "http://discord.com/api/webhooks/1/t", None, "must start with https://"),
        ("webhook", "http://relay.example/hook", None, "must start with https://"),
        ("webhook", "https://x.example/hook", "MfKQ9r8GKYqrTwjUPD8I", "whsec_"),
    ],
)
def test_urls_and_secrets_that_would_fail_later_are_rejected(
    kind: str, url: str, secret: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build(kind, url, secret)
    assert "hunter22" not in caught.value.one_line()
    assert "MfKQ9r8GKYqrTwjUPD8I" not in caught.value.one_line()


def test_plain_http_is_fine_to_a_loopback_receiver() -> None:
    build("slack", "http://127.0.0.1:9/services/A/B/C")
    build("webhook", "http://localhost:9/hook", whsec())


def test_config_validate_rejects_an_http_slack_url(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml", sink_toml("sl", "slack", url="http://hooks.slack.com/services/A/B/C")
    )
    out = run_cli("config", "validate", "--config", str(config))
    assert out.returncode == 2, out
    assert "slack sink URL must start with https://" in out.stderr
    assert "services/A/B/C" not in out.stderr


def test_a_receiver_echoing_the_secret_path_is_masked_in_the_outbox(tmp_path: Path) -> None:
    path = "/hooks/supersecretpath"
    with Receiver([Reply(404, f"no such hook: {path}?x=1 (supersecretpath)")], path=path) as rx:
        config = write_config(tmp_path / "c.toml", sink_toml("h", "webhook", url=rx.url))
        settings, _ = load_settings(config)
        store = Store.open(tmp_path / "state.db")
        tape = write_tape(tmp_path / "t.csv", (35.0, 41.0))
        Engine(settings, store).process(TapeReader(tape), T0)
        with bootstrap.dispatcher(
            settings,
            store,
            requests.Session(),
            FakeClock(T0),  # type: ignore[arg-type]
            backoff=Backoff((10.0,), jitter=0.0),
            pass_timeout=None,
        ) as d:
            d.deliver_due(T0)
    (row,) = store.outbox_list()
    error = row.last_error or ""
    assert row.status == "dead" and "HTTP 404: no such hook: ***" in error
    assert "supersecretpath" not in error and f"127.0.0.1:{rx.port}/***/***" in error


def test_an_apprise_sink_never_names_its_token_in_any_case() -> None:
    pytest.importorskip("apprise")
    token = "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123"  # Pushover tokens are 30 characters
    user = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
    redact = Redactor()
    sink = build_sink(
        SinkConfig.model_validate(
            {"id": "po", "type": "apprise", "url": f"pover://{user}@{token}"}
        ),
        redact,
        environ={},
    )
    where = sink.where  # type: ignore[attr-defined]
    assert where == "sink 'po', pover://***"
    for text in (where, redact(f"pover://{user.lower()}@{token.lower()} failed: {token.lower()}")):
        assert token.lower() not in text.lower() and user.lower() not in text.lower()
