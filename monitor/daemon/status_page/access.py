"""Who may see the page and /api/*: anyone on a loopback listen; elsewhere, the token.

The token comes from ``[health] token`` (or ``MCAP_HEALTH__TOKEN``), else from the file
``token_credential`` in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``). A browser
opens ``/?token=...`` once: the answer sets an HttpOnly cookie (an HMAC of the token, never
the token) and redirects to ``/`` so the token leaves the address bar; scripts send
``Authorization: Bearer ...``. Off loopback with no token configured, the page and API
answer 403 with a hint (never open)."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Literal
from urllib.parse import parse_qs

from monitor.notify.secrets import read_credential
from monitor.settings import HealthConfig

COOKIE = "mcap_status_token"

Verdict = Literal["ok", "unauthorized", "no_token"]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; 0.0.0.0 and every other address are not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def resolve_token(config: HealthConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The configured token (config or env first, then the credential file), or None."""
    if config.token is not None and config.token.get_secret_value().strip():
        return config.token.get_secret_value().strip()
    name = config.token_credential
    if not name:
        return None
    env = os.environ if environ is None else environ
    hint = "run under systemd with LoadCredential= or set [health] token"
    return read_credential(name, "health.token_credential", env, hint)


@dataclass(frozen=True)
class Access:
    """The rule for one listen address."""

    open: bool  # a loopback listen: no token needed
    token: str | None

    @classmethod
    def for_listen(cls, host: str, token: str | None) -> Access:
        return cls(is_loopback(host), token)

    def check(self, authorization: str | None, cookie: str | None, query: str) -> Verdict:
        """Whether a request to the page or /api/* may be answered."""
        if self.open:
            return "ok"
        if self.token is None:
            return "no_token"
        offered = [query_token(query)]
        if authorization and authorization.lower().startswith("bearer "):
            offered.append(authorization[7:].strip())
        good = [self.matches(o) for o in offered if o]
        session = cookie_token(cookie)
        if session:
            good.append(hmac.compare_digest(self.cookie_value().encode(), session.encode()))
        return "ok" if any(good) else "unauthorized"

    def matches(self, offered: str) -> bool:
        """``offered`` is the token (compared in constant time)."""
        return self.token is not None and hmac.compare_digest(self.token.encode(), offered.encode())

    def cookie_value(self) -> str:
        """What the browser keeps: derived from the token, so no answer ever carries it."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"mcap-monitor status page", "sha256").hexdigest()


def query_token(query: str) -> str | None:
    values = parse_qs(query).get("token")
    return values[0] if values else None


def cookie_token(header: str | None) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None
