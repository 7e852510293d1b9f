"""A daemon listening off loopback: the status page and /api/status need the token (here
from a systemd credential), the probes do not, and no answer carries a secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from e2e.daemon_support import SECRET, running, webhook_receiver, write_config
from fakes import Receiver, wait_until

TOKEN = "e2e-status-token-5b2d7c19"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = webhook_receiver()
    yield hook
    hook.close()


def test_off_loopback_the_page_needs_the_token_and_nothing_secret_is_served(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
    )
    text = config.read_text(encoding="utf-8")
    off = 'listen = "0.0.0.0:0"\ntoken_credential = "status-token"'
    config.write_text(text.replace('listen = "127.0.0.1:0"', off), encoding="utf-8")
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "status-token").write_text(TOKEN + "\n", encoding="utf-8")
    prelude = f"import os\nos.environ['CREDENTIALS_DIRECTORY'] = {str(creds)!r}"
    with running(config, tmp_path / "daemon.log", None, prelude=prelude) as daemon:
        url = daemon.health_url().replace("0.0.0.0", "127.0.0.1")
        assert wait_until(lambda: daemon.logged("tape_exhausted"), 60), daemon.log_path.read_text()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        replies = []
        for path in ("/", "/api/status"):
            bare = requests.get(url + path, timeout=10)
            assert bare.status_code == 401, path
            good = requests.get(url + path, headers=auth, timeout=10)
            assert good.status_code == 200, path
            replies += [bare, good]
        doc = replies[-1].json()
        assert {r["rule"] for r in doc["rules"]} == {"hkd-1t", "cny-1t"}
        for path in ("/healthz", "/metrics"):
            probe = requests.get(url + path, timeout=10)
            assert probe.status_code == 200, path
            replies.append(probe)
        replies.append(requests.get(f"{url}/?token={TOKEN}", allow_redirects=False, timeout=10))
        assert replies[-1].status_code == 303
    for reply in replies:
        seen = reply.text + "".join(f"{k}: {v}\n" for k, v in reply.headers.items())
        for secret in (receiver.url, SECRET, SECRET.removeprefix("whsec_"), TOKEN):
            assert secret not in seen, reply.request.path_url.replace(TOKEN, "<token>")
