"""``config validate`` rejects everything ``run`` would (issue 11, part 4).

``load_settings`` is what ``config validate``, ``run`` and a SIGHUP reload all call, so a
value it rejects can no longer pass validation and fail later.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from monitor.errors import ConfigError
from monitor.settings import load_settings

BASE = """\
[[symbols]]
symbol = "1810.HK"
shares = 10_000_000_000
{symbol}
[[rules]]
id = "r"
symbol = "1810.HK"
currency = "HKD"
threshold = {threshold}
{tables}
"""

# name: (extra [[symbols]] keys, threshold, extra tables, text the error must contain)
CASES = {
    "timezone on Mars": ('timezone = "Mars/Olympus"', "1e12", "", "unknown timezone"),
    "threshold 1e999999999": ("", '"1e999999999"', "", "threshold"),
    "poll_interval 1e12": ("", "1e12", "[daemon]\npoll_interval = 1e12", "poll_interval"),
    "health.listen nonsense": ("", "1e12", '[health]\nlisten = "nonsense"', "HOST:PORT"),
    "negative max_jump": ("max_jump = -0.1", "1e12", "", "max_jump"),
    "negative fx.tolerance": ("", "1e12", "[fx]\ntolerance = -0.01", "tolerance"),
    "refresh_hours 0": ("", "1e12", "[ranking]\nrefresh_hours = 0", "refresh_hours"),
    "negative cutoff_usd": ("", "1e12", "[ranking]\ncutoff_usd = -5", "cutoff_usd"),
    "http slack": (
        "",
        "1e12",
        '[[sinks]]\nid = "s"\ntype = "slack"\nurl = "http://hooks.slack.com/services/A/B/C"',
        "must start with https://",
    ),
    "user:pass in URL": (
        "",
        "1e12",
        '[[sinks]]\nid = "w"\ntype = "webhook"\nurl = "https://user:pass@example.com/hook"',
        "user name or password",
    ),
    "webhook secret without whsec_": (
        "",
        "1e12",
        '[[sinks]]\nid = "w"\ntype = "webhook"\nurl = "https://example.com/hook"\n'
        'secret = "c2VjcmV0"',
        "whsec_",
    ),
}


def write(tmp_path: Path, symbol: str = "", threshold: str = "1e12", tables: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(BASE.format(symbol=symbol, threshold=threshold, tables=tables))
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_validation_rejects_what_run_would(tmp_path: Path, name: str) -> None:
    symbol, threshold, tables, text = CASES[name]
    path = write(tmp_path, symbol, threshold, tables)
    with pytest.raises(ConfigError, match=text) as caught:
        load_settings(path)
    assert caught.value.exit_code == 2
    assert "c.toml:" in caught.value.where  # names the line


def test_the_good_base_config_is_accepted(tmp_path: Path) -> None:
    settings, _ = load_settings(write(tmp_path))
    assert settings.rules[0].threshold == 10**12


def test_http_to_a_loopback_receiver_stays_allowed(tmp_path: Path) -> None:
    tables = '[[sinks]]\nid = "s"\ntype = "slack"\nurl = "http://127.0.0.1:8080/hook"'
    settings, _ = load_settings(write(tmp_path, tables=tables))
    assert settings.sinks[0].type == "slack"


def test_a_rule_error_points_at_the_offending_key(tmp_path: Path) -> None:
    path = write(tmp_path, threshold="-5")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "threshold" in text)
    assert caught.value.where == f"{path}:{line}:1"


def test_a_sink_url_error_points_at_the_url_line(tmp_path: Path) -> None:
    symbol, threshold, tables, _ = CASES["http slack"]
    path = write(tmp_path, symbol, threshold, tables)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "url =" in text)
    assert caught.value.where == f"{path}:{line}:1"
    assert "hooks.slack.com" not in caught.value.one_line()  # the URL is a secret


def test_a_binary_config_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe" * 20)
    out = run_cli("config", "validate", "--config", str(path))
    assert out.returncode == 2, out
    assert "unexpected" not in out.stderr and "c.toml" in out.stderr


@pytest.mark.parametrize("name", ["MCAP_SINKS", "MCAP_SYMBOLS", "MCAP_RULES"])
def test_bad_json_in_the_environment_exits_2(tmp_path: Path, name: str) -> None:
    out = run_cli("config", "validate", "--config", str(write(tmp_path)), env={name: "[{bad"})
    assert out.returncode == 2, out
    assert out.stderr.startswith(f"Error: {name} is not valid JSON"), out.stderr
