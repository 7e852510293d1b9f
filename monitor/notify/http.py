"""The HTTP side shared by every webhook sink: one POST, no redirects, failures classified.

Transient failures (timeouts, refused connections, 5xx, 408, 429) are retried; any other 4xx and
platform body errors known to be permanent are not. A receiver is not trusted: at most
``MAX_BODY`` bytes of its answer are read, within the request's timeout, and its ``Retry-After``
is believed only when it is a sane number of seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3

from monitor.errors import DeliveryError
from monitor.notify.backoff import server_wait
from monitor.notify.secrets import Redactor

USER_AGENT = "mcap-monitor (+https://github.com/mcap-monitor)"
MAX_REASON = 200
# At most this much of an answer is read; the rest is never downloaded (the connection is
# dropped), so a receiver answering with 300 MB costs no memory.
MAX_BODY = 64 * 1024
_CHUNK = 16 * 1024
# the shortest wait a request gets when a deadline caps it (a lane's one attempt per pass)
MIN_TIMEOUT = 1.0
_deadline = threading.local()


@contextmanager
def request_deadline(stop_at: float | None) -> Iterator[None]:
    """Within, every ``post`` of this thread waits at most until ``stop_at`` (a
    ``time.monotonic()`` value, e.g. ``outbox flush --wait``'s end), and at least
    ``MIN_TIMEOUT``; ``None``: each sink's own timeout."""
    _deadline.at = stop_at
    try:
        yield
    finally:
        _deadline.at = None


def capped_timeout(timeout: float) -> float:
    """``timeout``, shortened to the time left before this thread's ``request_deadline``."""
    stop_at: float | None = getattr(_deadline, "at", None)
    if stop_at is None:
        return timeout
    return max(MIN_TIMEOUT, min(timeout, stop_at - time.monotonic()))


@dataclass(frozen=True)
class HttpRequest:
    """A prepared POST; ``body`` is the exact bytes that are sent (and signed)."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpAnswer:
    """What the receiver said."""

    status: int
    text: str
    headers: dict[str, str]
    truncated: bool = False  # the body was longer than ``MAX_BODY`` (or came too slowly)

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def json_body(payload: object) -> bytes:
    """Compact UTF-8 JSON, the exact bytes that are posted."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date);
    ``None`` when absent or not believable (NaN, negative, huge, garbage)."""
    if not value:
        return None
    value = value.strip()
    try:
        return server_wait(float(value))
    except (ValueError, OverflowError):
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return server_wait(max(0.0, moment.timestamp() - now))
    except (OverflowError, OSError, ValueError):
        return None


def short(text: str) -> str:
    """A receiver's answer trimmed for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def post(
    session: requests.Session,
    request: HttpRequest,
    *,
    timeout: float,
    where: str,
    redact: Redactor,
) -> HttpAnswer:
    """POST once; raise a transient ``DeliveryError`` for network failures. The caller judges
    the status (``classify_status``) and the body."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
    }
    headers.update(request.headers)
    timeout = capped_timeout(timeout)
    # the whole answer, body included, is bounded by ``timeout`` from here
    deadline = time.monotonic() + timeout
    try:
        response = session.post(
            request.url,
            data=request.body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            verify=True,
            stream=True,
        )
    except requests.Timeout:
        raise DeliveryError(
            f"no answer within {timeout:g} s", where, "retrying; check the receiver is up"
        ) from None
    except requests.ConnectionError as exc:
        raise DeliveryError(
            f"connection failed: {redact(_root_cause(exc))}",
            where,
            "retrying; check the URL and the network",
        ) from None
    except requests.RequestException as exc:
        raise DeliveryError(
            f"request failed: {type(exc).__name__}: {redact(str(exc))}",
            where,
            "check the sink's URL",
            permanent=isinstance(exc, requests.exceptions.InvalidURL | ValueError),
        ) from None
    with response:
        text, truncated = _read_bounded(response, deadline)
        return HttpAnswer(response.status_code, text, dict(response.headers), truncated)


def _read_bounded(response: requests.Response, deadline: float) -> tuple[str, bool]:
    """At most ``MAX_BODY`` bytes of the answer, read until ``deadline`` (monotonic; a slow
    drip is cut off, not waited for); whether anything was left unread."""
    chunks: list[bytes] = []
    size = 0
    truncated = False
    try:
        while True:
            # read1: whatever has arrived (a drip never blocks us past the deadline);
            # undecoded, so a compressed answer cannot expand in memory
            chunk = response.raw.read1(_CHUNK, decode_content=False)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_BODY or time.monotonic() > deadline:
                truncated = True
                break
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        truncated = True  # the receiver dropped or stalled mid-answer: judge what came
    raw = b"".join(chunks)[:MAX_BODY]
    encoding = response.encoding or "utf-8"
    try:
        text = raw.decode(encoding, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    return text, truncated


def _root_cause(exc: BaseException) -> str:
    # requests nests urllib3 errors; the innermost reason ("Connection refused") is the useful
    # part, and the outer text repeats the request path (which may hold a token).
    inner: BaseException = exc
    seen = 0
    while seen < 8:
        nxt = getattr(inner, "reason", None) or inner.__cause__ or inner.__context__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
        seen += 1
    text = str(inner)
    if "Connection refused" in text or isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    return f"{type(inner).__name__}: {text}"


def classify_status(
    answer: HttpAnswer,
    *,
    where: str,
    redact: Redactor,
    now: float,
    retry_after: float | None = None,
) -> None:
    """Raise for anything but a 2xx: 3xx and 4xx (except 408/429) are permanent.

    ``now`` (unix seconds, from the dispatcher's clock) dates a ``Retry-After`` HTTP-date."""
    status = answer.status
    if 200 <= status < 300:
        return
    body = redact(short(answer.text))
    header = parse_retry_after(answer.headers.get("Retry-After"), now)
    if header is not None:
        retry_after = header if retry_after is None else max(header, retry_after)
    if 300 <= status < 400:
        raise DeliveryError(
            f"HTTP {status} redirect not followed",
            where,
            "webhooks are never redirected: configure the final URL",
            permanent=True,
        )
    if status in (408, 429):
        raise DeliveryError(
            f"HTTP {status}{' rate limited' if status == 429 else ' request timeout'}"
            + (f": {body}" if body else ""),
            where,
            "retrying later",
            retry_after=retry_after,
        )
    if 400 <= status < 500:
        raise DeliveryError(
            f"HTTP {status}" + (f": {body}" if body else ""),
            where,
            "the receiver rejected the message; fix the sink's URL or settings, then run "
            "`mcap-monitor outbox retry`",
            permanent=True,
        )
    raise DeliveryError(
        f"HTTP {status}" + (f": {body}" if body else ""),
        where,
        "retrying later",
        retry_after=retry_after,
    )
