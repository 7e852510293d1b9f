"""The optional apprise sink against a real local receiver (apprise's ``json://`` target).

Apprise judges a ``json://`` target by HTTP status only: a 2xx is delivered, anything else a
failure that the sink reports as a (retryable) ``DeliveryError``, with the URL's secrets masked.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from fakes import FakeClock, Receiver, Reply, free_port
from structlog.testing import capture_logs

from monitor import bootstrap
from monitor.errors import ConfigError, DeliveryError
from monitor.notify.secrets import Redactor
from monitor.notify.sinks.registry import build_sink
from monitor.notify.templates import make_test_message
from monitor.settings import Settings, SinkConfig
from monitor.store import Store

pytest.importorskip("apprise")

pytestmark = pytest.mark.timeout(120)

USER = "hookuser"
PASSWORD = "Pa55w0rdXyz"
TOKEN = "tok3nAbCdEf9"
SECRETS = (USER, PASSWORD, TOKEN)
T0 = datetime(2025, 2, 10, 8, 5, tzinfo=UTC)


def apprise_url(port: int) -> str:
    # user, password and the path token authenticate the request: all secrets
    return f"json://{USER}:{PASSWORD}@127.0.0.1:{port}/hook/{TOKEN}"


def sink_config(url: str, **fields: object) -> SinkConfig:
    return SinkConfig.model_validate({"id": "other", "type": "apprise", "url": url, **fields})


@pytest.fixture
def apprise_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of apprise's own logger, debug included."""
    caplog.set_level(logging.DEBUG, logger="apprise")
    yield caplog


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


def test_delivered_when_the_target_answers_200(apprise_logs: pytest.LogCaptureFixture) -> None:
    with Receiver([Reply(200, "ok")]) as rx:
        sink = build_sink(sink_config(apprise_url(rx.port)), Redactor())
        with requests.Session() as session:
            note = sink.deliver(make_test_message("other", "tst_1", T0, "en"), session, 0.0)
        (got,) = rx.wait_for(lambda r: len(r) >= 1)
    assert note == "apprise ok"
    assert got.path == f"/hook/{TOKEN}"
    body = got.json()
    assert body["title"] == "[TEST] mcap-monitor test alert"
    assert "Delivery to sink 'other' works." in body["message"]
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert got.header("Authorization") == f"Basic {auth}"
    assert_no_secret(apprise_logs.text)


@pytest.mark.parametrize("status", [500, 404])
def test_an_error_status_is_a_delivery_error_with_the_secrets_masked(
    apprise_logs: pytest.LogCaptureFixture, status: int
) -> None:
    with Receiver([Reply(status, "boom")]) as rx:
        sink = build_sink(sink_config(apprise_url(rx.port)), Redactor())
        with requests.Session() as session, pytest.raises(DeliveryError) as caught:
            sink.deliver(make_test_message("other", "tst_2", T0, "en"), session, 0.0)
        rx.wait_for(lambda r: len(r) >= 1)
    err = caught.value
    assert not err.permanent  # apprise does not say why: retry
    assert "apprise" in str(err)
    assert "127.0.0.1" in err.one_line()
    assert_no_secret(str(err), err.one_line(), repr(err), apprise_logs.text)


def test_a_refused_connection_is_a_delivery_error_with_the_secrets_masked(
    apprise_logs: pytest.LogCaptureFixture,
) -> None:
    sink = build_sink(sink_config(apprise_url(free_port())), Redactor())
    with requests.Session() as session, pytest.raises(DeliveryError) as caught:
        sink.deliver(make_test_message("other", "tst_3", T0, "en"), session, 0.0)
    assert_no_secret(caught.value.one_line(), apprise_logs.text)


def test_a_url_apprise_does_not_know_is_a_config_error_without_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        build_sink(sink_config(f"nosuchservice://{USER}:{PASSWORD}@host/{TOKEN}"), Redactor())
    assert_no_secret(caught.value.one_line())


def test_through_the_outbox_500_then_200_delivers_once_and_never_stores_a_secret(
    tmp_path: Path, apprise_logs: pytest.LogCaptureFixture
) -> None:
    with Receiver([Reply(500, "down"), Reply(200, "ok")]) as rx:
        settings = Settings(
            symbols=[{"symbol": "1810.HK", "shares": 25_105_000_000}],
            sinks=[{"id": "other", "type": "apprise", "url": apprise_url(rx.port)}],
            health={"enabled": False},
        )
        store = Store.open(tmp_path / "state.db")
        # a digest row, rendered for apprise like every other kind
        payload = {
            "id": "dig_1",
            "kind": "digest",
            "day": "2025-02-10",
            "text": "1810.HK closed at HK$1.029T, +5.1 %; above HK$1T",
            "symbols": [],
        }
        with store.transaction():
            store.enqueue("dig_1", "other", "digest", payload, T0.timestamp())

        with (
            capture_logs() as logs,
            bootstrap.dispatcher(
                settings, store, requests.Session(), FakeClock(T0), pass_timeout=None
            ) as dispatcher,
        ):
            first = dispatcher.deliver_due(T0.timestamp())
            assert (first.failed, first.pending) == (1, 1)
            (row,) = store.outbox_list()
            assert "apprise" in (row.last_error or "")
            assert_no_secret(row.last_error or "")
            second = dispatcher.deliver_due(T0.timestamp(), force=True)
            assert (second.delivered, second.pending) == (1, 0)
        got = rx.wait_for(lambda r: len(r) >= 2)
        store.close()
    assert [r.json()["title"] for r in got] == ["mcap-monitor daily digest 2025-02-10"] * 2
    assert "+5.1 %" in got[-1].json()["message"]
    assert_no_secret(repr(logs), apprise_logs.text)
