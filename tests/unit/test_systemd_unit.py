"""systemd/mcap-monitor.service: verified and hardened (exposure <= 2.0 offline)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "mcap-monitor.service"
INSTALL = REPO / "systemd" / "install.sh"

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_the_unit_is_a_notify_service_with_watchdog_and_dynamic_user() -> None:
    d = _directives()
    assert d["Type"] == ["notify"]
    assert d["WatchdogSec"] and d["Restart"] == ["on-failure"]
    assert d["DynamicUser"] == ["yes"]
    assert d["StateDirectory"] == ["mcap-monitor"]
    assert d["MemoryDenyWriteExecute"] == ["yes"]
    assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "/etc/mcap-monitor/" in d["ExecStart"][0]
    # journal lines tagged mcap-monitor, not "env" (ExecStart runs /usr/bin/env)
    assert d["SyslogIdentifier"] == ["mcap-monitor"]


def _between(text: str, begin: str, end: str) -> str:
    assert text.count(begin) == 1 and text.count(end) == 1, (begin, end)
    return text.split(begin, 1)[1].split(end, 1)[0]


def _install_steps() -> str:
    script = INSTALL.read_text(encoding="utf-8")
    return _between(
        script, '# --- install steps (README.md, "Install step by step") ---\n', "# --- end of"
    )


def test_the_readme_install_steps_are_the_install_script_verbatim() -> None:
    readme = REPO.joinpath("README.md").read_text(encoding="utf-8")
    shown = _between(readme, "<!-- systemd/install.sh: begin -->\n", "<!-- systemd/install.sh: end")
    assert shown.startswith("```sh\n") and shown.endswith("\n```\n"), shown[:40]
    assert shown.removeprefix("```sh\n").removesuffix("```\n") == _install_steps()


def test_the_install_script_puts_everything_where_the_unit_expects_it() -> None:
    d, steps = _directives(), _install_steps()
    (doc,) = d["Documentation"]
    assert f"install -m 0644 README.md {doc.removeprefix('file://')}" in steps
    program = d["ExecStart"][0].split()[1]  # /usr/bin/env PROGRAM run --config CONF
    assert program == "/opt/mcap-monitor/venv/bin/mcap-monitor"
    assert "/usr/bin/python3 -m venv /opt/mcap-monitor/venv" in steps
    conf = d["ExecStart"][0].split("--config ", 1)[1].split()[0]
    assert f'install -m 0644 "$MCAP_CONFIG" {conf}' in steps
    assert "install -m 0644 systemd/mcap-monitor.service /etc/systemd/system/" in steps
    assert "systemctl enable --now mcap-monitor.service" in steps


def test_the_install_script_is_valid_posix_shell() -> None:
    done = subprocess.run(["sh", "-n", str(INSTALL)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@needs_analyze
def test_systemd_analyze_verify_is_clean() -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@needs_analyze
def test_offline_security_exposure_is_at_most_2() -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0
