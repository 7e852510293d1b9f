"""Cross-checks of the configuration that report every problem at once, not the first.

Each check returns its problems as one-line messages; ``raise_all`` raises them as one
``ValueError``, one problem a line, which ``config validate`` lists one by one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence


def duplicates(values: Iterable[str], what: str) -> list[str]:
    """One problem per value that occurs more than once."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        problem = f"duplicate {what} {value!r}: each must be unique"
        if value in seen and problem not in out:
            out.append(problem)
        seen.add(value)
    return out


def unknown_references(
    symbols: Sequence[str],
    rules: Sequence[tuple[str, str]],
    sink_filters: Sequence[tuple[str, Sequence[str]]],
) -> list[str]:
    """Rules naming an unwatched symbol and sinks filtering on an unknown rule.

    ``rules`` are ``(rule id, symbol)``; ``sink_filters`` are ``(sink id, rule ids)``.
    """
    known = set(symbols)
    out = [
        f"rule {rid!r} refers to unknown symbol {symbol!r}; "
        f"known symbols: {', '.join(sorted(known))}"
        for rid, symbol in rules
        if symbol not in known
    ]
    rule_ids = {rid for rid, _ in rules}
    out += [
        f"sink {sid!r} filters on unknown rule {rid!r}"
        for sid, filters in sink_filters
        for rid in filters
        if rid not in rule_ids
    ]
    return out


def raise_all(problems: Sequence[str]) -> None:
    """Raise every problem at once (one a line), if there is any."""
    if problems:
        raise ValueError("\n".join(problems))


_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")


def valid_listen_host(host: str) -> bool:
    """An IP literal that parses (``999.1.1.1`` does not), or a syntactically valid host name."""
    if re.fullmatch(r"[0-9.]+", host) or ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True
    return bool(_HOSTNAME.match(host))
