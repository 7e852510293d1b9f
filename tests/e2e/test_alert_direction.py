"""Alerts show their direction and their price source, as a user sees them in each chat app.

``replay --notify`` of a tape crossing HK$1 trillion six times (3 up, 3 down) into Slack,
Discord, Teams and Feishu receivers on 127.0.0.1: the title starts with ▲ (up) or ▼ (down) in
both languages; the colour follows the message language (zh: red = up, en: green = up) unless
the sink's ``colours`` key says otherwise; every alert names its price source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import FIXTURE_DATA, REPO, run_cli
from delivery_setup import CROSSING_PRICES, sink_toml, write_config, write_tape
from fakes import Receiver, Reply

TITLES = {
    "en": {
        "▲": "▲ Xiaomi (1810.HK) crossed above HK$1 trillion",
        "▼": "▼ Xiaomi (1810.HK) crossed below HK$1 trillion",
    },
    "zh": {
        "▲": "▲ 小米集团 (1810.HK) 市值突破 1 万亿港元",
        "▼": "▼ 小米集团 (1810.HK) 市值跌破 1 万亿港元",
    },
}
SOURCE_FACT = {
    "en": ("Price source", "tape (recorded data)"),
    "zh": ("行情来源", "录制数据（tape）"),
}


def replay_into(tmp_path: Path, sinks: str) -> None:
    tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
    config = write_config(tmp_path / "c.toml", sinks)
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg-state")}
    done = run_cli(
        "replay", str(tape), "--notify", "--state-db", str(tmp_path / "s.db"),
        "--config", str(config), env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def up_down(titles: list[str], language: str) -> list[str]:
    """The arrow of each title, checking the exact text after the replay marker."""
    marker = "【回放】" if language == "zh" else "[REPLAY] "
    arrows = []
    for title in titles:
        assert title.startswith(marker), title
        arrow = title[len(marker)]
        assert title[len(marker) :] == TITLES[language][arrow]
        arrows.append(arrow)
    assert sorted(arrows) == ["▲"] * 3 + ["▼"] * 3
    return arrows


def test_slack_and_discord_colour_by_language_and_name_the_source(tmp_path: Path) -> None:
    with (
        Receiver([Reply(200, "ok")], path="/services/T1/B2/tok") as slack,
        Receiver([Reply(200, "{}")], path="/api/webhooks/1/tok") as discord,
    ):
        sinks = sink_toml("sl", "slack", url=slack.url, language="en")
        sinks += sink_toml("dc", "discord", url=discord.url, language="zh")
        replay_into(tmp_path, sinks)
        slack_bodies = [r.json() for r in slack.requests]
        discord_embeds = [r.json()["embeds"][0] for r in discord.requests]
    # Slack, English: green bar up, red bar down; the facts (with the source) beside the bar
    titles = [b["blocks"][0]["text"]["text"] for b in slack_bodies]
    bars = {"▲": "#2EB67D", "▼": "#E01E5A"}  # green, red
    for arrow, body in zip(up_down(titles, "en"), slack_bodies, strict=True):
        (attachment,) = body["attachments"]
        assert attachment["color"] == bars[arrow]
        fields = [f["text"] for f in attachment["blocks"][0]["fields"]]
        assert "*Price source*\ntape (recorded data)" in fields
    # Discord, Chinese: red up, green down
    embed_colours = {"▲": 0xE01E5A, "▼": 0x2EB67D}
    titles = [e["title"] for e in discord_embeds]
    for arrow, embed in zip(up_down(titles, "zh"), discord_embeds, strict=True):
        assert embed["color"] == embed_colours[arrow]
        facts = [(f["name"], f["value"]) for f in embed["fields"]]
        assert SOURCE_FACT["zh"] in facts


def test_the_colours_key_overrides_the_language(tmp_path: Path) -> None:
    feishu_ok = Reply(200, json.dumps({"code": 0, "msg": "success"}))
    with Receiver([Reply(202)]) as teams, Receiver([feishu_ok], path="/fs") as feishu:
        sinks = sink_toml("tm", "teams", url=teams.url, language="en", colours="red_up")
        sinks += sink_toml("fs", "feishu", url=feishu.url, language="zh", colours="green_up")
        replay_into(tmp_path, sinks)
        cards = [r.json()["attachments"][0]["content"] for r in teams.requests]
        feishu_cards = [r.json()["card"] for r in feishu.requests]
    # Teams in English but red_up: the headline is red ("Attention") up, green ("Good") down
    headlines: list[dict[str, Any]] = [c["body"][0] for c in cards]
    accents = {"▲": "Attention", "▼": "Good"}
    for arrow, headline in zip(
        up_down([h["text"] for h in headlines], "en"), headlines, strict=True
    ):
        assert headline["color"] == accents[arrow]
    for card in cards:
        (facts,) = [b["facts"] for b in card["body"] if b["type"] == "FactSet"]
        assert {"title": "Price source", "value": "tape (recorded data)"} in facts
    # Feishu in Chinese but green_up: green header up, red down
    templates = {"▲": "green", "▼": "red"}
    titles = [c["header"]["title"]["content"] for c in feishu_cards]
    for arrow, card in zip(up_down(titles, "zh"), feishu_cards, strict=True):
        assert card["header"]["template"] == templates[arrow]


def test_an_unknown_colours_value_is_a_config_error_listing_the_valid_ones(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "c.toml", sink_toml("c", "console", colours="purple"))
    done = run_cli("config", "validate", "--config", str(config), cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "sinks[0].colours: Input should be 'language', 'red_up' or 'green_up'" in done.stderr
    assert "Traceback" not in done.stderr


def test_replay_and_backtest_json_stay_without_a_source_key(tmp_path: Path) -> None:
    """Recorded prices: the command names the source, the JSON stays as it was (and equal)."""
    config = REPO / "config" / "mcap-monitor.toml"
    prices = FIXTURE_DATA / "1810.HK_daily_2020-2025_yahoo.csv"
    ecb = FIXTURE_DATA / "ecb_eurofxref-hist_to_2025-05-09.csv"
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg-state")}
    done = run_cli(
        "backtest", "1810.HK", "--prices", str(prices), "--fx-history", str(ecb),
        "--config", str(config), "--from", "2025-01-20", "--to", "2025-03-10", "--json",
        env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["events"]
    assert events and not any("source" in e for e in events)
    replayed = run_cli("replay", "--json", env=env, cwd=tmp_path, timeout=120)
    assert replayed.returncode == 0, replayed.stderr
    lines = replayed.stdout.splitlines()
    assert lines and not any("source" in json.loads(line) for line in lines)  # as it always was
