"""Pure parts of alert delivery: signing, templates, redaction, quiet hours, backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

import pytest
import standardwebhooks
from delivery_setup import dingtalk_expected_sign, feishu_expected_sign
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.core.events import Event, event_from_dict, event_to_dict
from monitor.core.money import FxRate
from monitor.errors import ConfigError
from monitor.notify.backoff import DEFAULT_SCHEDULE, Backoff
from monitor.notify.http import parse_retry_after
from monitor.notify.messages.zh import zh_money, zh_number
from monitor.notify.quiet import QuietHours
from monitor.notify.secrets import Redactor, redact_url, resolve_secret, secret_fragments
from monitor.notify.sinks.dingtalk import dingtalk_sign
from monitor.notify.sinks.feishu import feishu_sign
from monitor.notify.sinks.slack import MAX_BLOCKS, slack_payload
from monitor.notify.sinks.webhook import secret_key, sign
from monitor.notify.sinks.wecom import wecom_markdown
from monitor.notify.templates import make_event_message, make_summary_message
from monitor.service import summary_payload
from monitor.settings import SinkConfig

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def xiaomi_event(kind: str = "crossed_above", **over: object) -> Event:
    base: dict[str, object] = dict(
        id="evt_test",
        kind=kind,
        time=datetime(2025, 2, 10, 16, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
        symbol="1810.HK",
        name="Xiaomi",
        rule_id="cny-1t",
        value=Decimal("1029955356250.0"),
        value_at_price=Decimal("1029955356250.0"),
        currency="CNY",
        threshold=Decimal("1000000000000"),
        hysteresis=Decimal("0.01"),
        position="above",
        price=Decimal("43.75"),
        price_currency="HKD",
        day_high=Decimal("44.0"),
        shares=25_105_000_000,
        shares_source="press 2025-02-04",
        market_cap=Decimal("1098343750000"),
        fx=(FxRate("HKD", "CNY", Decimal("0.93772"), "ECB", datetime(2025, 2, 10, tzinfo=UTC)),),
        top_n=None,
        rank=None,
        exchange_tz="Asia/Hong_Kong",
        delayed=False,
    )
    base.update(over)
    return Event(**base)  # type: ignore[arg-type]


# -- Standard Webhooks ----------------------------------------------------------------------
def test_signer_reproduces_the_standard_webhooks_spec_test_vector() -> None:
    assert sign(secret_key(SPEC_SECRET), SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_signer_accepts_the_secret_without_its_prefix() -> None:
    raw = SPEC_SECRET.removeprefix("whsec_")
    assert sign(secret_key(raw), SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_an_independent_verifier_accepts_our_signature() -> None:
    now = int(datetime.now(UTC).timestamp())
    body = b'{"type":"crossed_above","data":{"x":"\xe5\xb0\x8f"}}'
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret_key(SPEC_SECRET), "evt_1", now, body),
    }
    standardwebhooks.Webhook(SPEC_SECRET).verify(body, headers)


def test_a_secret_that_is_not_base64_is_rejected() -> None:
    with pytest.raises(ValueError):
        secret_key("whsec_!")


# -- platform signatures --------------------------------------------------------------------
def test_dingtalk_sign_matches_the_documented_recipe() -> None:
    # hmac_sha256(key=secret, msg="ts\nsecret") -> base64 -> urlencode
    expected = quote_plus(dingtalk_expected_sign("SECxyz", "1700000000000"))
    assert dingtalk_sign("SECxyz", 1700000000000) == expected


def test_feishu_sign_uses_timestamp_and_secret_as_key_over_an_empty_message() -> None:
    assert feishu_sign("secret", 1700000000) == feishu_expected_sign("secret", "1700000000")


# -- templates -------------------------------------------------------------------------------
def test_english_message_names_every_input() -> None:
    message = make_event_message(xiaomi_event())
    assert message.text == (
        "Xiaomi (1810.HK) crossed above CN¥1 trillion: CN¥1.030 trillion at HK$43.75 "
        "(shares 25.105 bn, 1 HKD = 0.9377 CNY, ECB 2025-02-10)"
    )
    assert message.footer == "quote time 2025-02-10 16:00 HKT · mcap-monitor"


def test_chinese_message_uses_chinese_number_units() -> None:
    message = make_event_message(xiaomi_event(), "zh", name_zh="小米集团")
    assert message.text.startswith(
        "小米集团 (1810.HK) 市值突破 1 万亿元人民币：1.030 万亿元，股价 43.75 港元"
    )
    assert "1 港元 = 0.9377 元人民币" in message.text
    assert "251.05 亿股" in message.text
    assert message.footer.startswith("报价时间 2025-02-10 16:00 HKT")


def test_delayed_data_is_flagged_in_both_languages() -> None:
    event = xiaomi_event(delayed=True)
    assert "(delayed data)" in make_event_message(event).footer
    assert "延迟行情" in make_event_message(event, "zh").footer


def test_crossed_below_and_touched_read_naturally() -> None:
    below = make_event_message(
        xiaomi_event("crossed_below", value=Decimal("979600000000"), position="below")
    )
    assert below.text.startswith(
        "Xiaomi (1810.HK) crossed below CN¥1 trillion: CN¥979.6 bn at HK$43.75"
    )
    touched = make_event_message(xiaomi_event("touched_above"), "zh", name_zh="小米集团")
    assert touched.text.startswith("小米集团 (1810.HK) 盘中市值触及 1 万亿元人民币")
    below_zh = make_event_message(
        xiaomi_event("crossed_below", value=Decimal("979620000000"), position="below"), "zh"
    )
    assert "市值跌破 1 万亿元人民币：9796.2 亿元" in below_zh.text


def test_superseded_alert_is_marked() -> None:
    message = make_event_message(xiaomi_event(), superseded_by="crossed_below at 02:00")
    assert message.title.startswith("[superseded]")
    assert "superseded while held: later crossed_below at 02:00" in message.text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("1030000000000"), "1.030 万亿"),
        (Decimal("979620000000"), "9796.2 亿"),
        (Decimal("355000"), "35.50 万"),
        (Decimal("12.5"), "12.50"),
    ],
)
def test_chinese_units(amount: Decimal, text: str) -> None:
    assert zh_number(amount) == text


def test_round_thresholds_have_no_decimals_in_chinese() -> None:
    assert zh_money(Decimal(10) ** 12, "CNY", threshold=True) == "1 万亿元人民币"
    assert zh_money(Decimal(10) ** 12, "HKD", threshold=True) == "1 万亿港元"
    assert zh_money(Decimal(5) * 10**10, "USD", threshold=True) == "500 亿美元"


def test_summary_lists_every_baseline() -> None:
    events = [xiaomi_event("baseline", id=f"evt_{i}", position="below") for i in range(3)]
    message = make_summary_message(summary_payload(events))
    assert len(message.lines) == 3
    assert message.lines[0].startswith("Xiaomi (1810.HK) is below CN¥1 trillion")


def test_event_dict_round_trip_keeps_the_message_identical() -> None:
    event = xiaomi_event()
    again = event_from_dict(event_to_dict(event))
    assert make_event_message(again) == make_event_message(event)


# -- platform limits --------------------------------------------------------------------------
def test_slack_message_respects_block_and_text_limits() -> None:
    events = [xiaomi_event("baseline", id=f"evt_{i}", position="below") for i in range(80)]
    message = make_summary_message(summary_payload(events))
    payload = slack_payload(message)
    assert len(payload["blocks"]) <= MAX_BLOCKS
    texts = [b.get("text", {}).get("text", "") for b in payload["blocks"]]
    assert any(t.startswith("…and ") and t.endswith(" more") for t in texts)
    for block in payload["blocks"]:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= 3000
    assert payload["text"]


def test_wecom_markdown_stays_under_4096_bytes() -> None:
    events = [xiaomi_event("baseline", id=f"evt_{i}", position="below") for i in range(80)]
    message = make_summary_message(summary_payload(events), "zh")
    content = wecom_markdown(message)
    assert len(content.encode("utf-8")) <= 4096
    assert content.endswith("…")


# -- secrets -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.slack.com/services/T0001/B0002/XXXXyyyyZZZZ",
            "https://hooks.slack.com/services/***/***/***",
        ),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=abc123def456",
            "https://oapi.dingtalk.com/robot/send?access_token=***",
        ),
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***",
        ),
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/0f1e2d3c-aaaa-bbbb",
            "https://open.feishu.cn/open-apis/bot/v2/hook/***",
        ),
        ("https://user:pw@example.com:8443/x", "https://example.com:8443/***"),
    ],
)
def test_redacted_urls_keep_the_host_and_hide_tokens(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redactor_masks_every_fragment_of_a_secret_url() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc123def456"
    redact = Redactor(secret_fragments(url, ["SECsigning"]))
    text = f"failed {url} and /robot/send?access_token=abc123def456 and abc123def456 SECsigning"
    out = redact(text)
    assert "abc123def456" not in out and "SECsigning" not in out


def test_secrets_come_from_env_or_credentials_directory(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    (tmp_path / "slack-url").write_text("https://hooks.slack.com/services/A/B/C\n")
    cfg = SinkConfig(id="s", type="slack", url_credential="slack-url", secret_env="MY_SECRET")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "MY_SECRET": "s3cr3t"}
    assert resolve_secret(cfg, "url", env) == "https://hooks.slack.com/services/A/B/C"
    assert resolve_secret(cfg, "secret", env) == "s3cr3t"
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY"):
        resolve_secret(cfg, "url", {})
    with pytest.raises(ConfigError, match="MY_SECRET"):
        resolve_secret(cfg, "secret", {})
    bad = SinkConfig(id="s", type="slack", url_credential="../etc/passwd")
    with pytest.raises(ConfigError, match="invalid credential name"):
        resolve_secret(bad, "url", env)


# -- quiet hours, backoff, Retry-After -------------------------------------------------------
def test_quiet_hours_wrap_midnight_in_the_sink_timezone() -> None:
    quiet = QuietHours.parse("23:00-07:00", "Europe/London")
    assert quiet is not None
    london = ZoneInfo("Europe/London")
    inside = datetime(2025, 7, 1, 23, 30, tzinfo=london).timestamp()
    until = quiet.held_until(inside)
    assert until == datetime(2025, 7, 2, 7, 0, tzinfo=london).timestamp()
    early = datetime(2025, 7, 2, 6, 59, tzinfo=london).timestamp()
    assert quiet.held_until(early) == until
    assert quiet.held_until(datetime(2025, 7, 2, 7, 0, tzinfo=london).timestamp()) is None
    assert quiet.held_until(datetime(2025, 7, 2, 12, 0, tzinfo=london).timestamp()) is None


def test_bad_quiet_hours_fail_at_start_up() -> None:
    with pytest.raises(ValidationError, match="quiet_hours"):
        SinkConfig(id="s", type="console", quiet_hours="11pm-7am")
    with pytest.raises(ValidationError, match="timezone"):
        SinkConfig(id="s", type="console", timezone="Mars/Base")


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=10**6))
def test_backoff_follows_the_schedule_within_the_jitter(failures: int, seed: int) -> None:
    backoff = Backoff()
    base = DEFAULT_SCHEDULE[min(failures, len(DEFAULT_SCHEDULE)) - 1]
    delay = backoff.delay(failures, random.Random(seed))
    assert base * 0.8 <= delay <= base * 1.2


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("7", 0.0) == 7.0
    now = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after("Wed, 01 Jan 2025 00:01:00 GMT", now) == 60.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_daily_digest_renders_in_both_languages() -> None:
    from monitor.notify.templates import make_digest_message, message_for_row

    payload = {
        "id": "dig_1",
        "kind": "digest",
        "day": "2025-02-10",
        "text": "Xiaomi (1810.HK) closed at HK$43.75 (+3.1 %)",
        "symbols": [
            {
                "symbol": "1810.HK",
                "price": "43.75",
                "currency": "HKD",
                "market_cap": "1098343750000",
                "change": "0.031",
                "rules": [
                    {
                        "rule": "cny-1t",
                        "label": "CN¥1 trillion",
                        "position": "above",
                        "distance": "0.03",
                    }
                ],
            }
        ],
    }
    en = make_digest_message(payload)
    assert en.title == "mcap-monitor daily digest 2025-02-10"
    assert en.lines == ("Xiaomi (1810.HK) closed at HK$43.75 (+3.1 %)",)
    zh = message_for_row("digest", payload, "zh", names_zh={"1810.HK": "小米集团"})
    assert zh.lines == (
        "小米集团 (1810.HK) 收盘 43.75 港元（+3.1%），市值 1.098 万亿港元；"
        "CN¥1 trillion：高于门槛 3.0%",
    )
    assert zh.data["id"] == "dig_1"
