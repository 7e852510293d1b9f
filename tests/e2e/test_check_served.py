"""``mcap-monitor check`` against local servers standing in for Yahoo, the ECB and the ranking.

Chart prices are SYNTHETIC; the ECB file and the ranking export are the recorded ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the shared fake
from yahoo_fake import chart_body

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (ROOT / "config" / "mcap-monitor.toml").read_text(encoding="utf-8")
ECB_XML = (ROOT / "tests" / "fixtures" / "ecb" / "ecb_eurofxref-daily_2025-05-09.xml").read_bytes()
EXPORT = (ROOT / "tests" / "fixtures" / "data" / "companiesmarketcap_2025-04-30.csv").read_bytes()


@pytest.mark.timeout(90)
def test_check_prints_caps_rates_cutoff_and_distances(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    now = int(time.time())
    session = (now - 3600, now + 3600)
    hk = chart_body("1810.HK", price=36.0, day_high=36.5, time=now - 60, regular=session)
    london = "Europe/London"
    fx = {
        "HKDCNY": chart_body("HKDCNY=X", price=0.9309, time=now, currency="CNY", tz=london),
        "HKDUSD": chart_body("HKDUSD=X", price=0.12857, time=now, currency="USD", tz=london),
    }
    httpserver.expect_request("/v1/test/getcrumb").respond_with_data("FAKEcrumb123")
    httpserver.expect_request("/v8/finance/chart/1810.HK").respond_with_json(hk)
    for pair, body in fx.items():
        httpserver.expect_request(f"/v8/finance/chart/{pair}=X").respond_with_json(body)
    httpserver.expect_request("/ecb/eurofxref-daily.xml").respond_with_data(ECB_XML)
    httpserver.expect_request("/cmc/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")
    httpserver.expect_request("/cmc/", query_string="download=csv").respond_with_data(EXPORT)
    httpserver.expect_request("/").respond_with_data("", status=404)  # fc.yahoo.com
    base = httpserver.url_for("/").rstrip("/")
    config = tmp_path / "served.toml"
    config.write_text(
        CONFIG
        + '\n[source]\nquotes = ["yahoo"]\n'  # Yahoo alone, as before the real-time sources
        + f'yahoo_base_url = "{base}"\ncache_dir = "{tmp_path / "yf"}"\n'
        + f'\n[fx]\necb_base_url = "{base}/ecb"\n\n[ranking]\nbase_url = "{base}/cmc"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    run = [sys.executable, "-m", "monitor", "check", "--config", str(config)]
    proc = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=60, env=env)
    doc = json.loads(proc.stdout)
    (sym,) = doc["symbols"]
    assert sym["price"] == "36.0" and sym["shares"] == 25_842_088_167  # the default config's count
    assert set(sym["market_cap"]) == {"HKD", "CNY", "USD"}
    rules = {r["rule"]: r for r in sym["rules"]}
    assert rules["hkd-1t"]["state"] == "below" and "needs HK$" in rules["hkd-1t"]["text"]
    assert rules["global-top100"]["threshold"] == "148140474368"
    table = subprocess.run(run, capture_output=True, text=True, timeout=60, env=env)
    assert "needs HK$38.70 for HK$1T" in table.stdout
    assert "top-100 cutoff" in table.stdout
    assert proc.returncode == table.returncode == 0, table.stderr
    assert "share count as of 2026-08-03" in table.stdout or sym["warnings"] == []


@pytest.mark.timeout(90)
def test_a_failed_source_is_reported_once_beside_the_table(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Quotes and FX answer, the ranking does not: the table on stdout, the reason once on
    stderr (a terminal shows both streams: nothing twice), exit 1."""
    now = int(time.time())
    session = (now - 3600, now + 3600)
    hk = chart_body("1810.HK", price=36.0, day_high=36.5, time=now - 60, regular=session)
    london = "Europe/London"
    fx = {
        "HKDCNY": chart_body("HKDCNY=X", price=0.9309, time=now, currency="CNY", tz=london),
        "HKDUSD": chart_body("HKDUSD=X", price=0.12857, time=now, currency="USD", tz=london),
    }
    httpserver.expect_request("/v1/test/getcrumb").respond_with_data("FAKEcrumb123")
    httpserver.expect_request("/v8/finance/chart/1810.HK").respond_with_json(hk)
    for pair, body in fx.items():
        httpserver.expect_request(f"/v8/finance/chart/{pair}=X").respond_with_json(body)
    httpserver.expect_request("/ecb/eurofxref-daily.xml").respond_with_data(ECB_XML)
    httpserver.expect_request("/cmc/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")
    httpserver.expect_request("/cmc/", query_string="download=csv").respond_with_data(
        "busy", status=503
    )
    httpserver.expect_request("/").respond_with_data("", status=404)  # fc.yahoo.com
    base = httpserver.url_for("/").rstrip("/")
    config = tmp_path / "served.toml"
    config.write_text(
        CONFIG
        + '\n[source]\nquotes = ["yahoo"]\n'
        + f'yahoo_base_url = "{base}"\ncache_dir = "{tmp_path / "yf"}"\n'
        + f'\n[fx]\necb_base_url = "{base}/ecb"\n\n[ranking]\nbase_url = "{base}/cmc"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    run = [sys.executable, "-m", "monitor", "check", "--config", str(config)]
    table = subprocess.run(run, capture_output=True, text=True, timeout=60, env=env)
    assert table.returncode == 1, table.stderr
    assert table.stdout.startswith("Xiaomi (1810.HK)\n")
    assert "needs HK$38.70 for HK$1T" in table.stdout
    errors = [line for line in table.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, table.stderr
    reason = errors[0].removeprefix("Error: ")
    assert (table.stdout + table.stderr).count(reason) == 1
    assert "failed:" not in table.stdout
    as_json = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["ok"] is False
    assert as_json.stderr.strip().splitlines() == errors  # the same one line, for scripts
