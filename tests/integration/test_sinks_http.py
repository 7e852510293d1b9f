"""Each sink's exact request against a real local receiver that checks it as the platform
would: body shape, headers, signatures, and the platform's own success / error answers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from delivery_setup import (
    dingtalk_expected_sign,
    feishu_expected_sign,
    sink_toml,
    whsec,
    write_config,
    write_tape,
)
from fakes import Receiver, Reply
from standardwebhooks.webhooks import Webhook

from monitor import bootstrap
from monitor.clock import SystemClock
from monitor.service import Engine
from monitor.settings import Settings, load_settings
from monitor.sources.tape import TapeReader
from monitor.store import Store

ONE_CROSSING = (35.0, 41.0)


def deliver_one(tmp_path: Path, sink: str, prices: tuple[float, ...] = ONE_CROSSING) -> Store:
    """Replay a tape into a fresh db and run one dispatcher pass with the real clock."""
    settings = settings_for(tmp_path, sink)
    store = Store.open(tmp_path / "state.db")
    Engine(settings, store).process(TapeReader(write_tape(tmp_path / "t.csv", prices)), time.time())
    with (
        requests.Session() as session,
        bootstrap.dispatcher(settings, store, session, SystemClock(), pass_timeout=None) as d,
    ):
        d.deliver_due(time.time())
    return store


def settings_for(tmp_path: Path, sink: str) -> Settings:
    settings, _ = load_settings(write_config(tmp_path / "c.toml", sink))
    return settings


def only_row(store: Store) -> tuple[str, str | None]:
    (row,) = store.outbox_list()
    return row.status, row.last_error


def test_webhook_is_signed_per_standard_webhooks_with_extra_headers(tmp_path: Path) -> None:
    secret = whsec("sinks")
    with Receiver([Reply(200)]) as rx:
        sink = sink_toml(
            "hook", "webhook", url=rx.url, secret=secret, headers={"X-Team": "markets"}
        )
        store = deliver_one(tmp_path, sink)
        (got,) = rx.requests
        payload = Webhook(secret).verify(got.body, got.headers)
        assert got.header("X-Team") == "markets"
        assert (got.header("Content-Type") or "").startswith("application/json")
        assert got.header("webhook-id") == payload["data"]["id"]
        assert abs(int(got.header("webhook-timestamp") or 0) - time.time()) < 60
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["type"] == "crossed_above"
        assert payload["timestamp"] == "2025-02-04T16:00:00+08:00"
        data = payload["data"]
        for key in (
            "value",
            "currency",
            "threshold",
            "price",
            "day_high",
            "shares",
            "shares_source",
            "fx",
            "top_n",
            "rank",
            "delayed",
            "exchange_tz",
        ):
            assert key in data
        assert only_row(store) == ("delivered", None)


def test_slack_gets_block_kit_with_a_text_fallback_and_ok_is_success(tmp_path: Path) -> None:
    with Receiver([Reply(200, "ok")], path="/services/T1/B2/tok") as rx:
        store = deliver_one(tmp_path, sink_toml("slack", "slack", url=rx.url))
        body = rx.requests[0].json()
        assert body["text"].startswith("Xiaomi (1810.HK) crossed above HK$1 trillion")
        title = "▲ Xiaomi (1810.HK) crossed above HK$1 trillion"
        header = {"type": "header", "text": {"type": "plain_text", "text": title}}
        assert body["blocks"][0] == header
        assert body["blocks"][-1]["type"] == "context"
        assert only_row(store) == ("delivered", None)


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ],
)
def test_slack_permanent_errors_are_dead_at_once(tmp_path: Path, status: int, answer: str) -> None:
    with Receiver([Reply(status, answer)], path="/services/T1/B2/tok") as rx:
        store = deliver_one(tmp_path, sink_toml("slack", "slack", url=rx.url))
        state, error = only_row(store)
        assert state == "dead" and f"HTTP {status}: {answer}" in (error or "")
        assert len(rx.requests) == 1


def test_feishu_signature_in_body_and_code_checked(tmp_path: Path) -> None:
    checked: list[bool] = []

    def as_feishu(got: object, index: int) -> Reply:
        body = rx.requests[index].json()
        stamp = body["timestamp"]
        fresh = abs(int(stamp) - time.time()) < 3600
        ok = fresh and body["sign"] == feishu_expected_sign("fsecret", stamp)
        checked.append(ok)
        return Reply(200, json.dumps({"code": 0 if ok else 19021, "msg": "success", "data": {}}))

    with Receiver(as_feishu) as rx:
        sink = sink_toml("fs", "feishu", url=rx.url, secret="fsecret", language="zh")
        store = deliver_one(tmp_path, sink)
        assert checked == [True]
        card = rx.requests[0].json()["card"]
        assert rx.requests[0].json()["msg_type"] == "interactive"
        assert card["header"]["title"]["content"] == "▲ 小米集团 (1810.HK) 市值突破 1 万亿港元"
        assert "万亿港元，股价 41.00 港元" in card["elements"][0]["text"]["content"]
        assert only_row(store) == ("delivered", None)


def test_feishu_bad_signature_code_is_permanent(tmp_path: Path) -> None:
    answer = json.dumps({"code": 19021, "msg": "sign match fail"})
    with Receiver([Reply(200, answer)]) as rx:
        store = deliver_one(tmp_path, sink_toml("fs", "feishu", url=rx.url, secret="x"))
        state, error = only_row(store)
        assert state == "dead" and "Feishu error 19021: sign match fail" in (error or "")


def test_dingtalk_signature_in_query_and_errcode_checked(tmp_path: Path) -> None:
    def as_dingtalk(got: object, index: int) -> Reply:
        req = rx.requests[index]
        stamp = req.query["timestamp"][0]
        ok = (
            req.query["access_token"] == ["TOK"]
            and req.query["sign"][0] == dingtalk_expected_sign("SECd", stamp)
            and abs(int(stamp) / 1000 - time.time()) < 3600
        )
        code = 0 if ok else 310000
        return Reply(200, json.dumps({"errcode": code, "errmsg": "ok" if ok else "sign not match"}))

    with Receiver(as_dingtalk, path="/robot/send") as rx:
        sink = sink_toml("dt", "dingtalk", url=rx.url + "?access_token=TOK", secret="SECd")
        store = deliver_one(tmp_path, sink)
        body = rx.requests[0].json()
        assert body["msgtype"] == "markdown"
        assert body["markdown"]["title"] == "▲ Xiaomi (1810.HK) crossed above HK$1 trillion"
        assert only_row(store) == ("delivered", None)


def test_dingtalk_errcode_310000_is_dead_with_the_reason(tmp_path: Path) -> None:
    answer = json.dumps({"errcode": 310000, "errmsg": "keywords not in content"})
    with Receiver([Reply(200, answer)], path="/robot/send") as rx:
        store = deliver_one(tmp_path, sink_toml("dt", "dingtalk", url=rx.url + "?access_token=T"))
        state, error = only_row(store)
        assert state == "dead"
        assert "DingTalk error 310000: keywords not in content" in (error or "")
        assert "access_token=***" in (error or "")


def test_wecom_markdown_and_rate_limit_errcode_is_retried(tmp_path: Path) -> None:
    answer = json.dumps({"errcode": 45009, "errmsg": "api freq out of limit"})
    with Receiver([Reply(200, answer)], path="/cgi-bin/webhook/send") as rx:
        store = deliver_one(tmp_path, sink_toml("wc", "wecom", url=rx.url + "?key=K"))
        body = rx.requests[0].json()
        assert body["msgtype"] == "markdown"
        assert body["markdown"]["content"].startswith("### ▲ Xiaomi (1810.HK) crossed above")
        (row,) = store.outbox_list()
        assert row.status == "pending" and row.attempts == 1
        assert "WeCom error 45009" in (row.last_error or "")
        assert row.next_attempt_at - time.time() > 50  # the platform's one-minute window


def test_discord_waits_for_the_message_and_honours_429_retry_after(tmp_path: Path) -> None:
    limited = Reply(429, json.dumps({"retry_after": 12.5, "global": False}))
    with Receiver([limited, Reply(200, "{}")], path="/api/webhooks/1/tok") as rx:
        before = time.time()
        store = deliver_one(tmp_path, sink_toml("dc", "discord", url=rx.url))
        req = rx.requests[0]
        assert req.query == {"wait": ["true"]}
        embed = req.json()["embeds"][0]
        assert embed["title"] == "▲ Xiaomi (1810.HK) crossed above HK$1 trillion"
        assert req.json()["allowed_mentions"] == {"parse": []}
        (row,) = store.outbox_list()
        assert row.status == "pending"
        assert before + 12.5 <= row.next_attempt_at <= time.time() + 12.5


def test_teams_adaptive_card_and_202_is_success(tmp_path: Path) -> None:
    with Receiver([Reply(202)]) as rx:
        store = deliver_one(tmp_path, sink_toml("teams", "teams", url=rx.url))
        body = rx.requests[0].json()
        attachment = body["attachments"][0]
        assert body["type"] == "message"
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert attachment["content"]["type"] == "AdaptiveCard"
        assert only_row(store) == ("delivered", None)


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    with (
        Receiver([Reply(200)]) as target,
        Receiver([Reply(302, "", {"Location": target.url})]) as rx,
    ):
        store = deliver_one(tmp_path, sink_toml("hook", "webhook", url=rx.url))
        state, error = only_row(store)
        assert state == "dead" and "HTTP 302 redirect not followed" in (error or "")
        assert target.requests == []


def test_console_sink_prints_a_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = deliver_one(tmp_path, sink_toml("console", "console"))
    assert only_row(store) == ("delivered", None)
    out = capsys.readouterr().out
    assert "ALERT Xiaomi (1810.HK) crossed above HK$1 trillion: HK$1.029 trillion" in out
