"""Configs, tapes and secrets for the delivery tests; the platforms' own signature recipes;
and the Standard Webhooks check of what a receiver got.

The receivers themselves are in ``fakes.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from fakes import Received
from standardwebhooks.webhooks import Webhook

SYMBOL = """
[[symbols]]
symbol = "1810.HK"
name = "Xiaomi"
name_zh = "小米集团"
currency = "HKD"
timezone = "Asia/Hong_Kong"
shares = 25_105_000_000

[[rules]]
id = "hkd-1t"
symbol = "1810.HK"
threshold = 1_000_000_000_000
currency = "HKD"
notify_on = ["crossed_above", "crossed_below"]
"""

TAPE_HEADER = "time,symbol,price,currency,day_high,shares\n"


def write_tape(path: Path, prices: Sequence[float]) -> Path:
    """One row per day from 2025-02-03; 1e12 HKD is crossed at a price of ~39.83."""
    rows = [TAPE_HEADER]
    for day, price in enumerate(prices):
        rows.append(
            f"2025-02-{day + 3:02d}T16:00:00+08:00,1810.HK,{price},HKD,{price},25105000000\n"
        )
    path.write_text("".join(rows), encoding="utf-8")
    return path


# prices alternate around the HK$1 trillion line: baseline below, then 6 crossings
CROSSING_PRICES = (35.0, 41.0, 38.0, 42.0, 37.0, 43.0, 36.0)
CROSSINGS = 6


def write_config(path: Path, sinks: str, extra: str = "") -> Path:
    path.write_text(SYMBOL + extra + sinks, encoding="utf-8")
    return path


def sink_toml(sink_id: str, kind: str, **fields: object) -> str:
    lines = ["[[sinks]]", f'id = "{sink_id}"', f'type = "{kind}"']
    for key, value in fields.items():
        if isinstance(value, dict):
            pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {pairs} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def whsec(seed: str = "test") -> str:
    """A Standard Webhooks secret, derived from ``seed``."""
    return "whsec_" + base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def verify_signatures(secret: str, requests: Iterable[Received]) -> None:
    """Every request verifies with the ``standardwebhooks`` library (else it raises)."""
    hook = Webhook(secret)
    for got in requests:
        hook.verify(got.body, got.headers)


# -- the platforms' recipes (no library implements them) ------------------------------------
def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    """As DingTalk computes it (base64 of HMAC-SHA256(secret, "ts\\nsecret"))."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_expected_sign(secret: str, timestamp: str) -> str:
    """As Feishu computes it (base64 of HMAC-SHA256 keyed "ts\\nsecret" over nothing)."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
