"""Sink secrets: where they come from (config, environment, systemd credentials) and how they
are kept out of logs and error messages."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

from monitor.errors import ConfigError
from monitor.settings import SinkConfig

MASK = "***"
# A path segment that reads like a word ("services", "open-apis", "v2") is kept; anything
# else (ids, tokens) is masked.
_WORDISH = re.compile(r"^(?:[a-z][a-z_-]{0,15}|v\d{1,2})$")
_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/***/***/***``, ``...send?access_token=***``.

    Keeps the scheme, host, port and word-like path segments; masks user info, other path
    segments, every query value and the fragment.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    segments = [s if _WORDISH.match(s) or not s else MASK for s in parts.path.split("/")]
    out = f"{parts.scheme}://{host}{port}{'/'.join(segments)}"
    if parts.query:
        keys = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
        out += "?" + "&".join(f"{k}={MASK}" for k in keys) if keys else "?" + MASK
    return out


def secret_fragments(url: str | None, others: Iterable[str] = ()) -> set[str]:
    """Every piece of a URL or secret that must never be printed (url, path, tokens, values)."""
    found: set[str] = set()
    values = [v for v in others if v]
    if url:
        values.append(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is not None:
            if any(seg and not _WORDISH.match(seg) for seg in parts.path.split("/")):
                found.add(parts.path)
            if parts.query:
                found.add(parts.query)
            for seg in parts.path.split("/"):
                if seg and not _WORDISH.match(seg):
                    found.add(seg)
            for _, value in parse_qsl(parts.query, keep_blank_values=True):
                found.add(value)
            if parts.password:
                found.add(parts.password)
            if parts.username:
                found.add(parts.username)
    found.update(values)
    # very short fragments would mask ordinary words; they carry no secret worth hiding
    return {f for f in found if len(f) >= 4}


class Redactor:
    """Replaces known secret fragments in any text (errors, log values) with ``***``."""

    def __init__(self, fragments: Iterable[str] = ()) -> None:
        self._fragments: list[str] = []
        self.add(fragments)

    def add(self, fragments: Iterable[str]) -> None:
        merged = set(self._fragments) | set(fragments)
        # longest first, so a full URL is masked before its parts
        self._fragments = sorted(merged, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for fragment in self._fragments:
            if fragment in text:
                text = text.replace(fragment, MASK)
        return text


def _read_credential(sink: SinkConfig, name: str, environ: Mapping[str, str]) -> str:
    where = f"sink {sink.id!r}"
    if not _CREDENTIAL_NAME.match(name):
        raise ConfigError(
            f"invalid credential name {name!r}", where, "use a plain file name, no slashes"
        )
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(
            f"credential {name!r} requested but $CREDENTIALS_DIRECTORY is not set",
            where,
            "run under systemd with LoadCredential= or set CREDENTIALS_DIRECTORY",
        )
    path = Path(directory) / name
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read credential {name!r}: {exc.strerror}",
            f"{where}, {path}",
            "check LoadCredential= in the unit file",
        ) from None
    if not value:
        raise ConfigError(f"credential {name!r} is empty", f"{where}, {path}", "fill it in")
    return value


def resolve_secret(
    sink: SinkConfig, field: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """The sink's ``url`` or ``secret``: from the config, else ``<field>_env``, else
    ``<field>_credential`` (a file in ``$CREDENTIALS_DIRECTORY``)."""
    env = os.environ if environ is None else environ
    value: SecretStr | None = getattr(sink, field)
    if value is not None and value.get_secret_value():
        return value.get_secret_value().strip()
    env_name: str | None = getattr(sink, f"{field}_env")
    if env_name:
        found = env.get(env_name, "").strip()
        if not found:
            raise ConfigError(
                f"environment variable {env_name} for the sink's {field} is not set or empty",
                f"sink {sink.id!r}",
                f"export {env_name} or set {field} / {field}_credential instead",
            )
        return found
    credential: str | None = getattr(sink, f"{field}_credential")
    if credential:
        return _read_credential(sink, credential, env)
    return None
