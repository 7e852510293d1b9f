"""Build tapes from price history (Yahoo CSV) and ECB reference-rate history (CSV).

Daily bars: the close is the price, the high the day high, stamped at the exchange close;
FX is the ECB reference rate of the bar's date or the last one before it (weekends and
holidays carry the previous working day's rate).
"""

from __future__ import annotations

import bisect
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from monitor.core.money import NOT_A_NUMBER, NumberError, parse_decimal
from monitor.errors import InputError

PRICE_QUANTUM = Decimal("0.001")
FX_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar of a price history."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    @property
    def is_placeholder(self) -> bool:
        """Yahoo fills some half days with O=H=L=C and zero volume: not a real bar."""
        return self.volume == 0 and self.open == self.high == self.low == self.close


def round_price(value: Decimal) -> Decimal:
    """A downloaded price to the tick: float32 artefacts such as 39.54999923706055 are 39.55."""
    return value.quantize(PRICE_QUANTUM).normalize()


def _price(cell: str, where: str, name: str) -> Decimal:
    value: Decimal | None
    try:
        value = parse_decimal(cell)
    except NumberError as exc:
        if exc.reason == NOT_A_NUMBER:
            raise InputError(f"{name} is not a number: {cell!r}", where, "fix the file") from None
        value = None  # NaN or infinity
    if value is None or value <= 0:
        raise InputError(f"{name} must be a positive number, got {cell!r}", where, "fix the file")
    return round_price(value)


def read_yahoo_csv(path: Path) -> Iterator[Bar]:
    """Bars from a yfinance ``history()`` CSV (Date,Open,High,Low,Close,Volume,...)."""
    try:
        handle: IO[str] = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot read price history: {exc.strerror}", str(path)) from None
    with handle:
        reader = csv.DictReader(handle)
        names = set(reader.fieldnames or ())
        # yfinance names the index "Datetime" for intraday intervals
        date_col = "Datetime" if "Date" not in names and "Datetime" in names else "Date"
        need = {date_col, "Open", "High", "Low", "Close", "Volume"}
        missing = need - names
        if missing:
            raise InputError(
                f"missing columns {sorted(missing)}",
                f"{path}:1",
                "expected a Yahoo history CSV: Date,Open,High,Low,Close,Volume",
            )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                start = datetime.fromisoformat(row[date_col].strip())
            except ValueError:
                raise InputError(f"bad date {row[date_col]!r}", where, "use ISO 8601") from None
            try:
                volume = int(Decimal(row["Volume"] or "0"))
            except InvalidOperation:
                raise InputError(f"bad volume {row['Volume']!r}", where, "fix the file") from None
            yield Bar(
                start,
                _price(row["Open"], where, "Open"),
                _price(row["High"], where, "High"),
                _price(row["Low"], where, "Low"),
                _price(row["Close"], where, "Close"),
                volume,
            )


class EcbHistory:
    """ECB euro reference rates by date (units of currency per 1 EUR)."""

    def __init__(self, rows: Sequence[tuple[date, dict[str, Decimal]]]) -> None:
        self._rows = sorted(rows, key=lambda r: r[0])
        self._dates = [r[0] for r in self._rows]

    @classmethod
    def from_csv(cls, path: Path) -> EcbHistory:
        """Parse ``eurofxref-hist.csv`` (``N/A`` for discontinued currencies)."""
        try:
            handle = path.open(encoding="utf-8", newline="")
        except OSError as exc:
            raise InputError(f"cannot read FX history: {exc.strerror}", str(path)) from None
        with handle:
            return cls.from_stream(handle, str(path))

    @classmethod
    def from_stream(cls, handle: Iterable[str], where: str) -> EcbHistory:
        """Parse the ``eurofxref-hist.csv`` text; ``where`` names it in errors."""
        rows: list[tuple[date, dict[str, Decimal]]] = []
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if not header or header[0] != "Date":
            raise InputError("not an ECB history CSV", f"{where}:1", "expected Date,USD,...")
        for row in reader:
            if not row:
                continue
            try:
                day = date.fromisoformat(row[0].strip())
            except ValueError:
                raise InputError(
                    f"bad date {row[0]!r}", f"{where}:{reader.line_num}", "fix the file"
                ) from None
            rates: dict[str, Decimal] = {}
            for code, cell in zip(header[1:], row[1:], strict=False):
                cell = cell.strip()
                if code and cell and cell != "N/A":
                    try:
                        rates[code] = Decimal(cell)
                    except InvalidOperation:
                        raise InputError(
                            f"bad rate {cell!r} for {code}",
                            f"{where}:{reader.line_num}",
                            "fix the file",
                        ) from None
            rates["EUR"] = Decimal(1)
            rows.append((day, rates))
        return cls(rows)

    @classmethod
    def from_zip(cls, data: bytes, where: str) -> EcbHistory:
        """Parse ``eurofxref-hist.zip`` as the ECB serves it (one CSV inside)."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
                if not names:
                    raise InputError("no CSV inside the ECB archive", where, "check the URL")
                text = archive.read(names[0]).decode("utf-8-sig")
        except zipfile.BadZipFile:
            raise InputError("not a zip archive", where, "check the ECB history URL") from None
        return cls.from_stream(io.StringIO(text, newline=""), where)

    @property
    def span(self) -> tuple[date, date] | None:
        """First and last publication dates, if any."""
        return (self._dates[0], self._dates[-1]) if self._dates else None

    def on_or_before(self, day: date) -> tuple[date, dict[str, Decimal]] | None:
        """The reference rates in force on ``day`` (the last publication on or before it)."""
        i = bisect.bisect_right(self._dates, day)
        return None if i == 0 else self._rows[i - 1]

    def cross(self, day: date, base: str, quote: str) -> tuple[date, Decimal] | None:
        """1 ``base`` = rate ``quote`` on ``day``, crossed through EUR."""
        found = self.on_or_before(day)
        if found is None:
            return None
        published, rates = found
        if base not in rates or quote not in rates:
            return None
        return published, (rates[quote] / rates[base]).quantize(FX_QUANTUM)


@dataclass
class TapeBuild:
    """What a build wrote and what it skipped."""

    rows: int = 0
    placeholders: list[date] | None = None
    stale_fx: list[date] | None = None


@dataclass(frozen=True, slots=True)
class DailyRow:
    """One daily bar ready to value: close as price, high as day high, FX as of its date.

    ``fx`` holds ``(quote, rate)`` for each requested quote (``None`` when the ECB history
    has no rate); ``published`` is the ECB date of the last rate found.
    """

    day: date
    stamp: datetime
    close: Decimal
    high: Decimal
    fx: tuple[tuple[str, Decimal | None], ...]
    published: date | None


def bar_day(bar: Bar, zone: ZoneInfo) -> date:
    """The exchange-local trading day of a bar."""
    return bar.start.astimezone(zone).date() if bar.start.tzinfo else bar.start.date()


def daily_rows(
    bars: Iterable[Bar],
    ecb: EcbHistory | None,
    *,
    currency: str,
    fx_quotes: Sequence[str] = ("CNY", "USD"),
    timezone: str = "Asia/Hong_Kong",
    close: time = time(16, 0),
    start: date | None = None,
    end: date | None = None,
    placeholders: list[date] | None = None,
    max_age_days: float | None = None,
    stale: list[date] | None = None,
) -> Iterator[DailyRow]:
    """Daily bars in ``[start, end]`` stamped at the exchange close, placeholders left out.

    Skipped placeholder days are appended to ``placeholders`` when a list is given. A rate
    published more than ``max_age_days`` before a bar's day is not used (``None``, as if
    missing); such days are appended to ``stale``.
    """
    zone = ZoneInfo(timezone)
    quotes = [q for q in fx_quotes if q != currency] if ecb is not None else []
    for bar in bars:
        day = bar_day(bar, zone)
        if (start and day < start) or (end and day > end):
            continue
        if bar.is_placeholder:
            if placeholders is not None:
                placeholders.append(day)
            continue
        published: date | None = None
        fx: list[tuple[str, Decimal | None]] = []
        for quote in quotes:
            assert ecb is not None
            found = ecb.cross(day, currency, quote)
            if found is None:
                fx.append((quote, None))
                continue
            if max_age_days is not None and (day - found[0]).days > max_age_days:
                fx.append((quote, None))
                if stale is not None and (not stale or stale[-1] != day):
                    stale.append(day)
                continue
            published, rate = found
            fx.append((quote, rate))
        yield DailyRow(
            day, datetime.combine(day, close, zone), bar.close, bar.high, tuple(fx), published
        )


def build_daily_tape(
    bars: Iterator[Bar],
    ecb: EcbHistory | None,
    out: IO[str],
    *,
    symbol: str,
    currency: str,
    shares: int | None,
    fx_quotes: Sequence[str] = ("CNY", "USD"),
    timezone: str = "Asia/Hong_Kong",
    close: time = time(16, 0),
    start: date | None = None,
    end: date | None = None,
    max_age_days: float | None = None,
) -> TapeBuild:
    """Write one tape row per daily bar (close as price, high as day high).

    FX rates older than ``max_age_days`` are left empty; their days are in ``stale_fx``.
    """
    fx_cols = [f"fx_{currency}_{q}" for q in fx_quotes if q != currency] if ecb else []
    header = ["time", "symbol", "price", "currency", "day_high"]
    if shares is not None:
        header.append("shares")
    header += fx_cols
    if fx_cols:
        header += ["fx_source", "fx_as_of"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    result = TapeBuild(placeholders=[], stale_fx=[])
    rows = daily_rows(
        bars,
        ecb,
        currency=currency,
        fx_quotes=fx_quotes,
        timezone=timezone,
        close=close,
        start=start,
        end=end,
        placeholders=result.placeholders,
        max_age_days=max_age_days,
        stale=result.stale_fx,
    )
    for item in rows:
        row: list[str] = [item.stamp.isoformat(), symbol, str(item.close), currency, str(item.high)]
        if shares is not None:
            row.append(str(shares))
        if fx_cols:
            row += ["" if rate is None else str(rate) for _, rate in item.fx]
            row += ["ECB", item.published.isoformat()] if item.published else ["", ""]
        writer.writerow(row)
        result.rows += 1
    return result
