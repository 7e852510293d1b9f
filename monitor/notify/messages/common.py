"""What the English and Chinese texts share: fixed-point figures and the FX line."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from monitor.core.events import Event
from monitor.core.money import FxRate


def fixed(value: Decimal, places: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):.{places}f}"


def round_unit(amount: Decimal, unit: Decimal) -> str | None:
    scaled = amount / unit
    return f"{scaled:.0f}" if scaled == scaled.to_integral_value() else None


def fx_for(event: Event) -> list[FxRate]:
    direct = [r for r in event.fx if r.base == event.price_currency and r.quote == event.currency]
    if direct or event.currency == event.price_currency:
        return direct
    return list(event.fx)


def fx_text(rate: FxRate, zh_names: dict[str, tuple[str, str]] | None = None) -> str:
    """``1 HKD = 0.9386 CNY, ecb 2025-02-10``; in Chinese with ``zh_names``."""
    day = rate.as_of.date().isoformat()
    value = fixed(rate.rate, 4)
    if zh_names is not None:
        base = zh_names.get(rate.base, (rate.base, rate.base))[0]
        quote = zh_names.get(rate.quote, (rate.quote, rate.quote))[0]
        return f"1 {base} = {value} {quote}，{rate.source} {day}"
    return f"1 {rate.base} = {value} {rate.quote}, {rate.source} {day}"
