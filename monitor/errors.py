"""The error hierarchy: every error says what failed, where, and what to do next."""

from __future__ import annotations

from collections.abc import Callable


class MonitorError(Exception):
    """Base of every error mcap-monitor raises on purpose.

    ``what`` is the failure, ``where`` the input it concerns (file:line:column, key, URL
    with secrets removed), ``hint`` what the user can do about it.
    """

    exit_code = 1

    def __init__(self, what: str, where: str = "", hint: str = "") -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Render as ``<what> (<where>): <hint>``, leaving out empty parts."""
        text = self.what
        if self.where:
            text += f" ({self.where})"
        if self.hint:
            text += f": {self.hint}"
        return text


class ConfigError(MonitorError):
    """Raised when the configuration file, environment or a secret is invalid."""

    exit_code = 2


class InputError(MonitorError):
    """Raised when an input file (a CSV tape, a price history) is malformed."""

    exit_code = 2


class SourceError(MonitorError):
    """Raised when a data source (Yahoo, ECB, ranking) fails or returns unusable data.

    ``kind`` is a stable label for metrics: ``network``, ``rate_limited``, ``not_found``,
    ``bad_data``, ``stale``.
    """

    def __init__(
        self, what: str, where: str = "", hint: str = "", *, source: str = "", kind: str = "error"
    ) -> None:
        self.source = source
        self.kind = kind
        super().__init__(what, where, hint)


def bad_data(subject: str, where: str, hint: str, *, source: str) -> Callable[[str], SourceError]:
    """A builder of ``SourceError(kind="bad_data")`` about one input.

    ``bad_data("unusable ECB reference rates", where, hint, source="ecb")("no rates")`` is the
    error ``unusable ECB reference rates: no rates (<where>): <hint>``.
    """

    def build(what: str) -> SourceError:
        return SourceError(f"{subject}: {what}", where, hint, source=source, kind="bad_data")

    return build


class DeliveryError(MonitorError):
    """Raised when a sink fails to deliver; ``permanent`` failures are not retried."""

    def __init__(
        self,
        what: str,
        where: str = "",
        hint: str = "",
        *,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(what, where, hint)


class StoreError(MonitorError):
    """Raised when the SQLite state database cannot be opened, migrated or written."""
