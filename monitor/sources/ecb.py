"""ECB euro reference rates (``eurofxref-daily.xml``) over ``requests``, fetched at most hourly.

The ECB publishes around 16:00 CET on TARGET working days; the daily file always holds the
latest published day, so weekends and holidays simply carry the last value (its ``as_of``
tells how old it is and the FX policy decides whether it is still usable).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import requests

from monitor.core.money import FxRate, to_decimal
from monitor.errors import SourceError, bad_data

SOURCE = "ecb"
DAILY_FILE = "eurofxref-daily.xml"
_NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
# publication time of the reference rates; used as the rates' as-of time
PUBLISHED_AT = time(16, 0, tzinfo=ZoneInfo("Europe/Berlin"))


@dataclass(frozen=True, slots=True)
class EcbRates:
    """Units of each currency per 1 EUR on one ECB business day."""

    day: date
    per_eur: dict[str, Decimal]

    @property
    def as_of(self) -> datetime:
        return datetime.combine(self.day, PUBLISHED_AT)

    def cross(self, base: str, quote: str) -> FxRate:
        """``1 base = rate quote`` via the euro: (EUR/quote) / (EUR/base)."""
        per_eur = dict(self.per_eur, EUR=Decimal(1))
        missing = [c for c in (base, quote) if c not in per_eur]
        if missing:
            raise SourceError(
                f"the ECB publishes no rate for {', '.join(missing)}",
                f"{base}/{quote}",
                'use fx.secondary = "none" or a currency the ECB covers',
                source=SOURCE,
                kind="bad_data",
            )
        # the reference rates have 5 significant digits; 10 decimals of their ratio are plenty
        rate = (per_eur[quote] / per_eur[base]).quantize(CROSS_QUANTUM)
        return FxRate(base, quote, rate, SOURCE, self.as_of)


CROSS_QUANTUM = Decimal("1e-10")


def parse_daily(xml_text: str | bytes) -> EcbRates:
    """Parse ``eurofxref-daily.xml``; raise ``SourceError(kind="bad_data")`` when it is not."""
    bad = bad_data("unusable ECB reference rates", DAILY_FILE, "retrying later", source=SOURCE)
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise bad(f"not XML ({exc})") from None
    day_cube = next((c for c in root.iter(f"{_NS}Cube") if "time" in c.attrib), None)
    if day_cube is None:
        raise bad("no <Cube time=...>")
    try:
        day = date.fromisoformat(day_cube.attrib["time"])
    except ValueError:
        raise bad(f"bad date {day_cube.attrib['time']!r}") from None
    rates: dict[str, Decimal] = {}
    for cube in day_cube:
        code, text = cube.attrib.get("currency"), cube.attrib.get("rate")
        if code is None or text is None:
            continue
        try:
            value = to_decimal(text)
        except ValueError:
            continue  # one bad entry does not spoil the others
        if value > 0:
            rates[code] = value
    if not rates:
        raise bad("no rates")
    return EcbRates(day, rates)


class EcbSource:
    """Fetches the daily file with an injected ``requests.Session``; caches it for ``refresh``."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        timeout: float = 10.0,
        refresh: timedelta = timedelta(hours=1),
    ) -> None:
        self.session = session
        self.url = base_url.rstrip("/") + "/" + DAILY_FILE
        self.timeout = timeout
        self.refresh = refresh
        self._cached: EcbRates | None = None
        self._fetched_at: datetime | None = None
        self.requests = 0

    def rates(self, now: datetime) -> EcbRates:
        """The latest reference rates; at most one request per ``refresh``."""
        if (
            self._cached is not None
            and self._fetched_at is not None
            and now - self._fetched_at < self.refresh
        ):
            return self._cached
        self.requests += 1
        try:
            resp = self.session.get(self.url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SourceError(
                f"no network: could not reach the ECB ({type(exc).__name__})",
                self.url,
                "check the internet connection or fx.ecb_base_url",
                source=SOURCE,
                kind="network",
            ) from exc
        if resp.status_code != 200:
            raise SourceError(
                f"the ECB answered HTTP {resp.status_code}",
                self.url,
                "retrying later",
                source=SOURCE,
                kind="network",
            )
        parsed = parse_daily(resp.content)
        self._cached, self._fetched_at = parsed, now
        return parsed

    def rate(self, base: str, quote: str, now: datetime) -> FxRate:
        """``1 base = rate quote`` crossed through the euro."""
        return self.rates(now).cross(base, quote)
