"""What the Tencent and Sina adapters share: one GET per batch of codes, and each symbol's
answer picked out of the parsed reply (``BatchQuoteSource``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import requests

from monitor.core.quote import Quote
from monitor.errors import SourceError
from monitor.sources import cn_text


class CnBatchQuotes:
    """A GBK text endpoint answering many codes in one request; subclasses say how to ask
    (``prefix``, ``list_path``, ``referer``) and how to read the reply (``parse``)."""

    name = ""
    prefix = ""  # "r_hk" (Tencent), "rt_hk" (Sina): the real-time variants
    list_path = ""  # "q=" (Tencent), "list=" (Sina)
    referer = ""  # a Referer the endpoint insists on (Sina)
    hint = ""
    default_batch = 1
    default_base_url = ""

    def __init__(
        self,
        session: requests.Session,
        base_url: str | None = None,
        *,
        timeout: float = 5.0,
        batch: int | None = None,
    ) -> None:
        batch = self.default_batch if batch is None else batch
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.session = session
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = timeout
        self.batch = batch
        self.requests = 0

    def parse(self, text: str) -> dict[str, Quote | SourceError]:
        raise NotImplementedError

    def unknown(self, parsed: Mapping[str, Quote | SourceError]) -> bool:
        """Whether the reply says outright that it does not know the codes asked for."""
        return False

    def error(self, kind: str, what: str) -> SourceError:
        return cn_text.failure(self.name, kind, what, self.base_url, self.hint)

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote | SourceError]:
        """The latest real-time quote of every symbol, or the error that stands for it."""
        out: dict[str, Quote | SourceError] = {}
        wanted: list[tuple[str, str]] = []
        for symbol in dict.fromkeys(symbols):
            code = cn_text.hk_code(symbol)
            if code is None:
                what = f"{self.name} serves Hong Kong symbols only, not {symbol}"
                out[symbol] = cn_text.failure(self.name, "not_found", what, symbol, self.hint)
            else:
                wanted.append((symbol, self.prefix + code))
        for part in cn_text.chunks(wanted, self.batch):
            url = f"{self.base_url}/{self.list_path}" + ",".join(name for _, name in part)
            self.requests += 1
            text = cn_text.fetch_batch(
                self.session,
                url,
                source=self.name,
                timeout=self.timeout,
                where=self.base_url,
                headers={"Referer": self.referer} if self.referer else None,
            )
            parsed = self.parse(text) if isinstance(text, str) else {}
            for symbol, name in part:
                out[symbol] = self._pick(symbol, name, text, parsed, now)
        return out

    def _pick(
        self,
        symbol: str,
        name: str,
        text: str | SourceError,
        parsed: dict[str, Quote | SourceError],
        now: datetime,
    ) -> Quote | SourceError:
        if isinstance(text, SourceError):
            return text
        if not parsed:
            return self.error("bad_data", f"{self.name} answer holds no quotes: {text[:60]!r}")
        found = parsed.get(name)
        if found is None or (isinstance(found, SourceError) and found.kind == "not_found"):
            unknown = found is not None or self.unknown(parsed)
            what = "does not know" if unknown else "answered without"
            return self.error("not_found", f"{self.name} {what} {symbol} ({name})")
        if isinstance(found, Quote) and found.symbol != symbol:
            found = replace(found, symbol=symbol)
        return cn_text.check_time(found, now, name, self.hint)
