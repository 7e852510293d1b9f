"""Sink secrets: where they come from (config, environment, systemd credentials) and how they
are kept out of logs and error messages."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, urlsplit

from pydantic import SecretStr

from monitor.errors import ConfigError
from monitor.settings import SinkConfig

MASK = "***"
_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")

# Every part of a sink URL after the host is secret unless the sink type declares it public:
# the fixed path prefix of the platform's webhook URLs and the names (never the values) of
# its query parameters. A generic webhook or an apprise URL has no public part.
PUBLIC_PARTS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "slack": (("services",), frozenset()),
    "discord": (("api", "webhooks"), frozenset({"wait", "thread_id"})),
    "feishu": (("open-apis", "bot", "v2", "hook"), frozenset()),
    "dingtalk": (("robot", "send"), frozenset({"access_token", "timestamp", "sign"})),
    "wecom": (("cgi-bin", "webhook", "send"), frozenset({"key"})),
    "teams": (("workflows",), frozenset({"api-version", "sp", "sv", "sig"})),
}
# a short fragment is only masked as a whole token, so it cannot eat part of a word
_ANYWHERE = 12
_SEGMENT = 8


def _public_parts(
    sink_type: str | None, segments: list[str]
) -> tuple[tuple[str, ...], frozenset[str]]:
    if sink_type is not None:
        return PUBLIC_PARTS.get(sink_type, ((), frozenset()))
    # no type given: the platform whose public prefix the path starts with, if any
    for prefix, keys in PUBLIC_PARTS.values():
        if tuple(segments[: len(prefix)]) == prefix:
            return prefix, keys
    return (), frozenset()


def _host_is_token(parts: SplitResult) -> bool:
    """An apprise URL's "host" is often a token (``pover://user@TOKEN``, lowercased by every
    URL parser on the way): anything not http(s) whose host is not a dotted name or an IP."""
    if parts.scheme.lower() in ("http", "https"):
        return False
    host = parts.hostname or ""
    return "." not in host and ":" not in host and host != "localhost"


def _split_path(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def redact_url(url: str, sink_type: str | None = None) -> str:
    """``https://hooks.slack.com/services/***/***/***``, ``...send?access_token=***``.

    Keeps the scheme, host and port, plus the parts ``sink_type`` declares public; masks user
    info, every other path segment, every query value and the fragment. A URL that is not
    http(s) (apprise) keeps only its scheme: its "host" is often a token.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    scheme = parts.scheme.lower()
    if not scheme or not host:
        return MASK
    if _host_is_token(parts):
        return f"{scheme}://{MASK}"
    segments = _split_path(parts.path)
    prefix, keys = _public_parts(sink_type, segments)
    shown = [
        seg if index < len(prefix) and seg == prefix[index] else MASK
        for index, seg in enumerate(segments)
    ]
    out = f"{scheme}://{host}{port}" + "".join("/" + seg for seg in shown)
    if parts.path.endswith("/") and segments:
        out += "/"
    if parts.query:
        names = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
        query = "&".join(f"{k if k in keys else MASK}={MASK}" for k in names)
        out += "?" + (query if keys and names else MASK)
    if parts.fragment:
        out += "#" + MASK
    return out


def secret_fragments(
    url: str | None, others: Iterable[str] = (), sink_type: str | None = None
) -> set[str]:
    """Every piece of a URL or secret that must never be printed: the URL, its user info,
    path, query and their non-public parts (``sink_type`` says which are public)."""
    found: set[str] = set()
    values = [v for v in others if v]
    if url:
        values.append(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is not None:
            segments = _split_path(parts.path)
            prefix, _ = _public_parts(sink_type, segments)
            secret_segments = [
                seg
                for index, seg in enumerate(segments)
                if not (index < len(prefix) and seg == prefix[index])
            ]
            if secret_segments:
                found.add(parts.path)
                # a short segment alone ("hook") would mask sink ids and words; it is
                # masked wherever it appears as part of the path
                found.update(seg for seg in secret_segments if len(seg) >= _SEGMENT)
            for piece in (parts.query, parts.fragment, parts.username, parts.password):
                if piece:
                    found.add(piece)
            for _, value in parse_qsl(parts.query, keep_blank_values=True):
                found.add(value)
            if _host_is_token(parts):
                found.add(parts.netloc)
                found.add(parts.netloc.rpartition("@")[2])
    found.update(values)
    # very short fragments would mask ordinary words; they carry no secret worth hiding
    return {f for f in found if len(f) >= 4}


def _alternative(fragment: str) -> str:
    body = re.escape(fragment)
    if len(fragment) >= _ANYWHERE:
        return body
    # a short fragment must not be the inside of a longer word ("hook" in "webhook")
    before = r"(?<![\w-])" if re.match(r"[\w-]", fragment[0]) else ""
    after = r"(?![\w-])" if re.match(r"[\w-]", fragment[-1]) else ""
    return before + body + after


class Redactor:
    """Replaces known secret fragments in any text (errors, log values, receivers' answers)
    with ``***``, in any letter case (parsers lowercase hosts)."""

    def __init__(self, fragments: Iterable[str] = ()) -> None:
        self._fragments: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(fragments)

    def add(self, fragments: Iterable[str]) -> None:
        self._fragments |= {f for f in fragments if f}
        if not self._fragments:
            return
        # longest first, so a full URL is masked before its parts
        alternatives = [_alternative(f) for f in sorted(self._fragments, key=len, reverse=True)]
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE)

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def read_credential(
    name: str,
    where: str,
    environ: Mapping[str, str],
    unset_hint: str = "run under systemd with LoadCredential= or set CREDENTIALS_DIRECTORY",
) -> str:
    """The file ``name`` in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``), stripped;
    a ``ConfigError`` naming ``where`` when the name, the directory or the file is wrong."""
    if not _CREDENTIAL_NAME.match(name):
        raise ConfigError(
            f"invalid credential name {name!r}", where, "use a plain file name, no slashes"
        )
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(
            f"credential {name!r} requested but $CREDENTIALS_DIRECTORY is not set",
            where,
            unset_hint,
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
        return read_credential(credential, f"sink {sink.id!r}", env)
    return None
