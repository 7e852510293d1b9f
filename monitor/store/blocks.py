"""A recorded replay's rows kept as blocks: a tape chunk's lines as written, compressed (zstd),
one database row per chunk instead of one per observation.

A chunk the fast path read whole (``sources.tape_block``) holds only plainly written rows, so
its lines, the columns' places and each symbol's share counts are all a stored observation
needs: read back, each line gives exactly the columns ``service.observation_row`` would have
stored for it (numbers and times written as ``Decimal`` and ``datetime`` write them).

The block's ``after_id`` is the newest ``observations`` id when it was written: its rows sort
after that row and before the next, as one row at a time they would have.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import zstandard

FORMAT = 1
# zstd's level 1: some 5x smaller than the lines, at some 200 MB/s (zlib's fastest: 70 MB/s)
LEVEL = 1


def pack(lines: bytes) -> bytes:
    """Lines compressed as stored (any thread: a compressor of its own each time)."""
    return zstandard.ZstdCompressor(level=LEVEL).compress(lines)


@dataclass(frozen=True)
class SymbolSpan:
    """One symbol's rows in a block."""

    first_time: datetime
    last_time: datetime
    rows: int
    # (index of its first row among the symbol's rows here, total shares, their source)
    shares: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class RecordedRows:
    """Evaluated rows of one tape chunk, to be stored: its lines (each ending in a newline,
    in tape order; ``packed`` gives them compressed, see ``pack``) and where their columns
    are."""

    packed: Callable[[], bytes]
    rows: int
    time: int  # cell indexes
    symbol: int
    price: int
    currency: int
    day_high: int | None
    fx: tuple[int, ...]
    pairs: tuple[tuple[str, str], ...]
    cutoffs: tuple[int, ...]
    tops: tuple[int, ...]
    symbols: dict[str, SymbolSpan]
    source: str = "tape"

    @property
    def first_time(self) -> datetime:
        return min(s.first_time for s in self.symbols.values())

    @property
    def last_time(self) -> datetime:
        return max(s.last_time for s in self.symbols.values())


def head_of(block: RecordedRows) -> str:
    """What the stored lines need to be read: the columns' places, the FX pairs and cutoffs,
    each symbol's share counts (JSON)."""
    head = {
        "format": FORMAT,
        "columns": {
            "time": block.time,
            "symbol": block.symbol,
            "price": block.price,
            "currency": block.currency,
            "day_high": block.day_high,
            "fx": list(block.fx),
            "cutoffs": list(block.cutoffs),
        },
        "pairs": [f"{b}/{q}" for b, q in block.pairs],
        "tops": list(block.tops),
        "shares": {s: [list(run) for run in span.shares] for s, span in block.symbols.items()},
        "source": block.source,
    }
    return json.dumps(head)


class UnreadableBlock(ValueError):
    """A stored block that does not decode (a hand edit, a newer format)."""


def decode(head_text: str, data: bytes) -> Iterator[dict[str, Any]]:
    """A block's rows as ``observations`` rows (without ``id``), in tape order."""
    try:
        body = zstandard.ZstdDecompressor().decompress(data)
        head = json.loads(head_text)
        if head.get("format") != FORMAT:
            raise UnreadableBlock(f"block format {head.get('format')!r}, not {FORMAT}")
        cols = head["columns"]
        t, sym, p, cur, h = (cols[k] for k in ("time", "symbol", "price", "currency", "day_high"))
        numbers = [*cols["fx"], *cols["cutoffs"]]
        fx = ",".join(f'{{"pair":"{pair}","rate":"%s"}}' for pair in head["pairs"])
        cut = ",".join(f'"{n}":"%s"' for n in head["tops"])
        template = f'{{"fx":[{fx}],"cutoffs_usd":{{{cut}}}}}'
        runs = {
            s: [(int(k), int(n), str(src)) for k, n, src in r] for s, r in head["shares"].items()
        }
        source = str(head["source"])
        text = body.decode("ascii")
    except (zstandard.ZstdError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnreadableBlock(str(exc)) from exc
    seen: dict[str, int] = {}
    for line in text.split("\n")[:-1]:
        cells = line.split(",")
        symbol = cells[sym]
        k = seen.get(symbol, 0)
        seen[symbol] = k + 1
        shares, shares_source = _shares_at(runs[symbol], k)
        moment = datetime.fromisoformat(cells[t])
        price = str(Decimal(cells[p]))
        high = cells[h] if h is not None else ""
        yield {
            "symbol": symbol,
            "time": moment.astimezone(UTC).isoformat(),
            "local_time": moment.isoformat(),
            "price": price,
            "currency": cells[cur],
            "day_high": str(Decimal(high)) if high else None,
            "shares": shares,
            "shares_source": shares_source,
            "market_cap": str(Decimal(price) * shares),
            "inputs": template % tuple(str(Decimal(cells[c])) for c in numbers)
            if numbers
            else template,
            "source": source,
        }


def _shares_at(runs: list[tuple[int, int, str]], k: int) -> tuple[int, str]:
    """The share count of a symbol's ``k``-th row here (runs: sorted by first row)."""
    found = runs[0]
    for run in runs:
        if run[0] > k:
            break
        found = run
    return found[1], found[2]


__all__ = ["RecordedRows", "SymbolSpan", "UnreadableBlock", "decode", "head_of", "pack"]
