"""The global top-N cutoff: companiesmarketcap.com CSV, a configured universe, or a static value.

Our own company usually appears in the list (companiesmarketcap lists Xiaomi as XIACF), so its
entry is removed first: the cutoff for top N is the N-th largest *other* company.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
import urllib.robotparser
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import requests

from monitor import __version__
from monitor.core.money import to_decimal
from monitor.core.valuation import Ranking
from monitor.errors import ConfigError, SourceError, bad_data

SOURCE = "companiesmarketcap"
CSV_PATH = "/?download=csv"
USER_AGENT = (
    f"mcap-monitor/{__version__} (market-cap milestone monitor; fetches the CSV export at most "
    "every 6 h)"
)
_bad = bad_data(
    "unusable companiesmarketcap export",
    SOURCE,
    "falling back to the universe or the static cutoff",
    source=SOURCE,
)


@dataclass(frozen=True, slots=True)
class Company:
    """One row of a market-cap list."""

    rank: int
    name: str
    symbol: str
    cap_usd: Decimal
    country: str = ""


def parse_csv(text: str) -> list[Company]:
    """Parse a companiesmarketcap export defensively: BOM, quoted commas, blank or zero caps.

    Rows without a positive market cap are dropped; a file without the expected columns
    raises ``SourceError(kind="bad_data")``.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise _bad("empty file") from None
    try:
        i_name, i_sym = header.index("name"), header.index("symbol")
        i_cap = header.index("marketcap")
    except ValueError:
        raise _bad(f"missing columns name/symbol/marketcap in header {header}") from None
    i_rank = header.index("rank") if "rank" in header else None
    i_country = header.index("country") if "country" in header else None
    out: list[Company] = []
    for row in reader:
        if len(row) <= max(i_name, i_sym, i_cap):
            continue
        try:
            cap = to_decimal(row[i_cap])
        except ValueError:
            continue
        if cap <= 0:
            continue
        rank = 0
        if i_rank is not None and row[i_rank].strip().isdigit():
            rank = int(row[i_rank])
        country = row[i_country].strip() if i_country is not None and len(row) > i_country else ""
        out.append(Company(rank, row[i_name].strip(), row[i_sym].strip(), cap, country))
    if not out:
        raise _bad("no rows with a positive market cap")
    return out


def rank_others(
    companies: Iterable[Company], own_symbols: Iterable[str], source: str, as_of: datetime | None
) -> Ranking:
    """A ``Ranking`` of every company except our own (matched by symbol, case-insensitive)."""
    own = {s.upper() for s in own_symbols if s}
    caps = sorted((c.cap_usd for c in companies if c.symbol.upper() not in own), reverse=True)
    return Ranking(source=source, as_of=as_of, others_usd=tuple(caps))


def static_ranking(cutoff_usd: Decimal, top_n: int, as_of: date | None) -> Ranking:
    """The last resort: one configured cutoff and the date it was valid."""
    when = datetime.combine(as_of, time(), UTC) if as_of is not None else None
    label = f"config cutoff (as of {as_of.isoformat()})" if as_of else "config cutoff"
    return Ranking(source=label, as_of=when, cutoffs_usd=((top_n, cutoff_usd),))


class CompaniesMarketCap:
    """Fetches the CSV export at most every ``refresh``, caches it on disk, honours robots.txt."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        cache_file: Path | None = None,
        refresh: timedelta = timedelta(hours=6),
        timeout: float = 10.0,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.cache_file = cache_file
        self.refresh = refresh
        self.timeout = timeout
        self.user_agent = user_agent
        self._companies: list[Company] | None = None
        self._fetched_at: datetime | None = None
        self._robots: urllib.robotparser.RobotFileParser | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        return self.base_url + CSV_PATH

    def _get(self, url: str) -> requests.Response:
        self.requests += 1
        try:
            return self.session.get(
                url, timeout=self.timeout, headers={"User-Agent": self.user_agent}
            )
        except requests.RequestException as exc:
            raise SourceError(
                f"no network: could not reach companiesmarketcap.com ({type(exc).__name__})",
                url,
                "check the internet connection or ranking.base_url",
                source=SOURCE,
                kind="network",
            ) from exc

    def _allowed(self) -> bool:
        if self._robots is None:
            robots = urllib.robotparser.RobotFileParser()
            resp = self._get(self.base_url + "/robots.txt")
            if resp.status_code == 200:
                robots.parse(resp.text.splitlines())
            else:
                robots.parse([])  # no robots.txt: everything allowed
            self._robots = robots
        return self._robots.can_fetch(self.user_agent, self.url)

    def _load_cache(self) -> None:
        if self._companies is not None or self.cache_file is None:
            return
        meta = self.cache_file.with_suffix(".json")
        try:
            fetched = datetime.fromisoformat(json.loads(meta.read_text())["fetched_at"])
            companies = parse_csv(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, SourceError):
            return
        self._companies, self._fetched_at = companies, fetched

    def _store_cache(self, text: str, now: datetime) -> None:
        if self.cache_file is None:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        self.cache_file.write_text(text, encoding="utf-8")
        self.cache_file.with_suffix(".json").write_text(
            json.dumps({"fetched_at": now.isoformat(), "url": self.url})
        )

    def companies(self, now: datetime) -> tuple[list[Company], datetime]:
        """The list and when it was fetched; fetches only when older than ``refresh``."""
        self._load_cache()
        if (
            self._companies is not None
            and self._fetched_at is not None
            and now - self._fetched_at < self.refresh
        ):
            return self._companies, self._fetched_at
        try:
            if not self._allowed():
                raise SourceError(
                    "robots.txt of companiesmarketcap.com disallows the CSV export",
                    self.url,
                    "set ranking.enabled = false or use ranking.universe",
                    source=SOURCE,
                    kind="not_found",
                )
            resp = self._get(self.url)
            if resp.status_code != 200:
                raise SourceError(
                    f"companiesmarketcap.com answered HTTP {resp.status_code}",
                    self.url,
                    "retrying in the next ranking refresh",
                    source=SOURCE,
                    kind="network",
                )
            text = resp.content.decode("utf-8-sig", errors="replace")
            companies = parse_csv(text)
        except SourceError:
            if self._companies is not None:
                return self._companies, self._fetched_at or now  # keep the older list
            raise
        self._store_cache(text, now)
        self._companies, self._fetched_at = companies, now
        return companies, now

    def ranking(self, own_symbols: Iterable[str], now: datetime) -> Ranking:
        companies, fetched = self.companies(now)
        return rank_others(companies, own_symbols, SOURCE, fetched)


@dataclass(frozen=True, slots=True)
class UniverseEntry:
    """One company of the configured universe and the Yahoo symbol used to value it."""

    name: str
    yahoo: str
    note: str = ""


def load_universe(path: Path) -> list[UniverseEntry]:
    """Read ``config/universe.toml`` (``[[company]]`` tables with ``name`` and ``yahoo``)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the ranking universe: {exc}", str(path)) from None
    out: list[UniverseEntry] = []
    for i, item in enumerate(data.get("company", [])):
        if not isinstance(item, dict) or not item.get("yahoo") or not item.get("name"):
            raise ConfigError(
                "each [[company]] needs name and yahoo", f"{path}: company[{i}]", "fix the entry"
            )
        out.append(UniverseEntry(str(item["name"]), str(item["yahoo"]), str(item.get("note", ""))))
    return out


# (yahoo symbol) -> market cap in USD, or raises SourceError
CapLookup = Callable[[str], Decimal]
