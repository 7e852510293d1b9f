"""``mcap-monitor check`` as a user runs it, with every source pointing at a closed port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (ROOT / "config" / "mcap-monitor.toml").read_text(encoding="utf-8")


def offline_config(tmp_path: Path) -> Path:
    dead = f"http://127.0.0.1:{free_port()}"
    text = CONFIG + (
        '\n[source]\nquotes = ["yahoo"]\n'  # Yahoo alone, as before the real-time sources
        f'yahoo_base_url = "{dead}"\ncache_dir = "{tmp_path / "yf"}"\n'
        f'\n[fx]\necb_base_url = "{dead}"\n'
        f'\n[ranking]\nbase_url = "{dead}"\n'
    )
    path = tmp_path / "offline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def check(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "check", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    return proc, time.monotonic() - started


@pytest.mark.timeout(90)
def test_offline_check_exits_1_within_30_s_with_a_one_line_reason(tmp_path: Path) -> None:
    proc, elapsed = check(tmp_path, "--config", str(offline_config(tmp_path)))
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 30
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no network: could not reach Yahoo Finance" in lines[0]
    assert "1810.HK" in lines[0]


@pytest.mark.timeout(90)
def test_offline_check_json_reports_the_failure(tmp_path: Path) -> None:
    proc, _ = check(tmp_path, "--config", str(offline_config(tmp_path)), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert doc["failures"][0]["kind"] == "network"


@pytest.mark.timeout(90)
def test_config_error_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG + '\n[fx]\nprimary = "bloomberg"\n', encoding="utf-8")
    proc, _ = check(tmp_path, "--config", str(bad))
    assert proc.returncode == 2
    assert "fx.primary" in proc.stderr


@pytest.mark.timeout(90)
def test_offline_check_prints_its_reason_once(tmp_path: Path) -> None:
    """The table on stdout, the reason once on stderr: a terminal shows it one time."""
    proc, _ = check(tmp_path, "--config", str(offline_config(tmp_path)))
    assert proc.returncode == 1
    reason = "no network: could not reach Yahoo Finance"
    assert reason not in proc.stdout
    assert proc.stdout == ""  # no symbol could be read: no table, not even a blank line
    assert (proc.stdout + proc.stderr).count(reason) == 1
    assert proc.stderr.startswith("Error: yahoo 1810.HK: no network: could not reach Yahoo")


@pytest.mark.timeout(90)
def test_offline_check_json_keeps_one_error_line_for_scripts(tmp_path: Path) -> None:
    proc, _ = check(tmp_path, "--config", str(offline_config(tmp_path)), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["failures"][0]["message"].startswith("no network: could not reach Yahoo")
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: yahoo 1810.HK: no network: could not reach Yahoo")
