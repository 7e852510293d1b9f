"""The shipped config files are valid and say what the README says they do."""

from __future__ import annotations

import tomllib

import pytest
from conftest import DEFAULT_CONFIG, REPO
from pydantic import ValidationError

from monitor.settings import Settings


def test_example_sinks_validate_with_the_default_config() -> None:
    data = tomllib.loads(DEFAULT_CONFIG.read_text())
    examples = tomllib.loads((REPO / "config" / "example-sinks.toml").read_text())
    data["sinks"] = examples["sinks"]
    settings = Settings(**data)
    types = {s.type for s in settings.sinks}
    assert types == {
        "console",
        "slack",
        "webhook",
        "feishu",
        "dingtalk",
        "wecom",
        "discord",
        "teams",
    }


def test_default_config_watches_xiaomi_for_the_three_milestones() -> None:
    settings = Settings(**tomllib.loads(DEFAULT_CONFIG.read_text()))
    rules = {r.id: r for r in settings.rules}
    assert rules["hkd-1t"].currency == "HKD" and rules["hkd-1t"].threshold == 10**12
    assert rules["cny-1t"].currency == "CNY" and rules["cny-1t"].threshold == 10**12
    assert rules["global-top100"].top_n == 100
    assert [s.type for s in settings.sinks] == ["console"]


def test_a_typo_in_a_sink_kind_filter_is_an_error() -> None:
    data = tomllib.loads(DEFAULT_CONFIG.read_text())
    data["sinks"] = [{"id": "c", "type": "console", "kinds": ["crossed_abov"]}]
    with pytest.raises(ValidationError, match="unknown event kind 'crossed_abov'"):
        Settings(**data)


def test_packaged_universe_is_the_repo_universe() -> None:
    from monitor.sources.ranking_feed import PACKAGED_UNIVERSE

    assert PACKAGED_UNIVERSE.read_text() == (REPO / "config" / "universe.toml").read_text()
