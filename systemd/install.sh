#!/bin/sh
# Install mcap-monitor as a systemd service on Debian/Ubuntu: run as root from the top of a
# checkout, e.g. `sudo MCAP_CREDENTIALS=/root/mcap-secrets systemd/install.sh`.
# The lines between the markers are the README's "Install step by step", verbatim
# (tests/unit/test_systemd_unit.py compares them); tests/system/ runs this script under a real
# systemd.
set -eu
cd "$(dirname "$0")/.."
# --- install steps (README.md, "Install step by step") ---
# What pip installs (this checkout, a wheel or a package name) and how (e.g. offline:
# MCAP_PIP_OPTIONS="--no-index --find-links ./wheels"); the config to install; a directory of
# secrets, one file per secret, named as the config refers to it (url_credential = "slack-url").
MCAP_PACKAGE=${MCAP_PACKAGE:-.}
MCAP_PIP_OPTIONS=${MCAP_PIP_OPTIONS:-}
MCAP_CONFIG=${MCAP_CONFIG:-config/mcap-monitor.toml}
MCAP_CREDENTIALS=${MCAP_CREDENTIALS:-}

# 1. A virtual environment of the system Python (the unit's sandbox cannot reach one under
#    /root or /home), the package in it, and the README the unit's Documentation= points at.
/usr/bin/python3 -m venv /opt/mcap-monitor/venv
/opt/mcap-monitor/venv/bin/pip install --quiet $MCAP_PIP_OPTIONS "$MCAP_PACKAGE"
install -m 0644 README.md /opt/mcap-monitor/README.md

# 2. Secrets: root-only files that systemd hands to the service with LoadCredential=, one line
#    per secret in a drop-in; the service reads them from $CREDENTIALS_DIRECTORY.
install -d -m 0700 /etc/mcap-monitor/credentials
install -d -m 0755 /etc/systemd/system/mcap-monitor.service.d
echo '[Service]' > /etc/systemd/system/mcap-monitor.service.d/credentials.conf
if [ -n "$MCAP_CREDENTIALS" ]; then
  for secret in "$MCAP_CREDENTIALS"/*; do
    name=$(basename "$secret")
    install -m 0600 "$secret" "/etc/mcap-monitor/credentials/$name"
    echo "LoadCredential=$name:/etc/mcap-monitor/credentials/$name" \
      >> /etc/systemd/system/mcap-monitor.service.d/credentials.conf
  done
fi

# 3. The configuration, checked with those secrets before the service sees it (leave
#    daemon.state_dir unset: StateDirectory= gives the service /var/lib/mcap-monitor).
install -d -m 0755 /etc/mcap-monitor
install -m 0644 "$MCAP_CONFIG" /etc/mcap-monitor/mcap-monitor.toml
CREDENTIALS_DIRECTORY=/etc/mcap-monitor/credentials \
  /opt/mcap-monitor/venv/bin/mcap-monitor --config /etc/mcap-monitor/mcap-monitor.toml config validate

# 4. The unit; start it now and at every boot. `systemctl start` returns once the daemon has
#    sent READY=1 (config valid, database open, scheduler running).
install -m 0644 systemd/mcap-monitor.service /etc/systemd/system/mcap-monitor.service
systemctl daemon-reload
systemctl enable --now mcap-monitor.service
systemctl status --no-pager --lines=0 mcap-monitor.service
# --- end of install steps ---
