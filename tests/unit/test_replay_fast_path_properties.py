"""The quiet band survives moving FX rates and cutoffs without changing any rule's outcome.

Random SYNTHETIC tapes hover around the lines of five rules in four currencies (direct,
inverse-free direct, crossed through USD, a top-N cutoff) while every FX rate and the cutoff
move on every row, by steps both inside and beyond the band's tolerance: the engine with its
fast path must emit exactly the events, and end in exactly the states, of full evaluation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.money import FxRate
from monitor.core.valuation import Observation, Ranking
from monitor.service import Engine
from monitor.settings import Settings
from monitor.store import Store

T0 = datetime(2025, 2, 3, 1, 30, tzinfo=UTC)
SHARES = 25_105_000_000
# SYNTHETIC starting inputs: HK$1T is HK$39.83 a share; CN¥1T at 0.9357 is HK$42.57;
# US$130bn at 0.1284 is HK$40.33; EUR 125bn via USD at 1.04 is HK$40.33; the top-100
# cutoff of US$148bn is HK$45.91
START_CENTS = [3982, 3983, 4256, 4257, 4032, 4033, 4590, 4591, 3943, 4214, 4545]

steps = st.tuples(
    st.sampled_from([0, 0, 1, -1, 1, -1, 2, -2, 5, -5]),  # price, cents: hovering
    st.sampled_from([0, 0, 1, 2, 3, 20]),  # day high above the price, cents
    st.sampled_from([-90, -45, -40, -30, 0, 30, 40, 45, 90]),  # HKD/CNY, 1e-5 (1e-3 relative)
    st.integers(min_value=-15, max_value=15),  # HKD/USD, 1e-6 (~ +-1.2e-4 relative)
    st.integers(min_value=-100, max_value=100),  # EUR/USD, 1e-5
    st.sampled_from([-300, -140, -120, 0, 120, 140, 300]),  # cutoff, US$1e6 (2e-3 relative)
    st.integers(min_value=1, max_value=400),  # minutes since the previous row
)


def config(confirm: int, hysteresis: str) -> Settings:
    common = {"symbol": "1810.HK", "confirm": confirm, "hysteresis": hysteresis}
    return Settings(
        symbols=[{"symbol": "1810.HK", "shares": SHARES}],
        rules=[
            {"id": "hkd", "threshold": "1e12", "currency": "HKD", **common},
            {"id": "cny", "threshold": "1e12", "currency": "CNY", **common},
            {"id": "usd", "threshold": "130e9", "currency": "USD", **common},
            {"id": "eur", "threshold": "125e9", "currency": "EUR", **common},
            {"id": "top", "top_n": 100, **common},
        ],
    )


def tape(start: int, spec: list[tuple[int, int, int, int, int, int, int]]) -> list[Observation]:
    out = []
    moment = T0
    cents, cny, usd, eur, cut = start, 93570, 128400, 104000, 148000
    for d_price, high, d_cny, d_usd, d_eur, d_cut, minutes in spec:
        moment += timedelta(minutes=minutes)
        cents = max(100, cents + d_price)
        cny, usd, eur, cut = cny + d_cny, usd + d_usd, eur + d_eur, cut + d_cut
        fx = (
            FxRate("HKD", "CNY", Decimal(cny) / 100_000, "synthetic", moment),
            FxRate("HKD", "USD", Decimal(usd) / 1_000_000, "synthetic", moment),
            FxRate("EUR", "USD", Decimal(eur) / 100_000, "synthetic", moment),
        )
        ranking = Ranking("synthetic", None, (), ((100, Decimal(cut) * 1_000_000),))
        price = Decimal(cents) / 100
        out.append(
            Observation(moment, "1810.HK", price, "HKD", price + Decimal(high) / 100, None, fx,
                        ranking)
        )  # fmt: skip
    return out


def run(cfg: Settings, obs: list[Observation], fast: bool) -> tuple[list[str], object, int]:
    store = Store.open(None)
    try:
        engine = Engine(cfg, store, fast_path=fast)
        result = engine.process(obs, 0.0)
        events = [f"{e.time} {e.rule_id} {e.kind} {e.value} {e.threshold}" for e in result.events]
        return events, dict(engine.states), result.observations
    finally:
        store.close()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.sampled_from(START_CENTS),
    st.lists(steps, min_size=1, max_size=120),
    st.integers(min_value=1, max_value=3),
    st.sampled_from(["0", "0.01", "0.05"]),
)
def test_fast_path_equals_full_evaluation_with_fx_and_cutoff_moving_every_row(
    start: int, spec: list[tuple[int, int, int, int, int, int, int]], confirm: int, hyst: str
) -> None:
    cfg = config(confirm, hyst)
    obs = tape(start, spec)
    assert run(cfg, obs, fast=True) == run(cfg, obs, fast=False)


def test_the_band_holds_while_rates_and_cutoff_move_a_little() -> None:
    # far from every line, rates and cutoff creeping: one evaluation, then the band admits
    cfg = config(1, "0.01")
    spec = [(0, 0, 1, 1, 1, 1, 1)] * 40
    obs = tape(3500, spec)
    store = Store.open(None)
    try:
        engine = Engine(cfg, store, fast_path=True)
        result = engine.process(obs[:1], 0.0)
        band = engine._contexts["1810.HK"].band
        assert band is not None and result.observations == 1
        assert all(band.admits(o, SHARES) for o in obs[1:])
        # a rate moved beyond the tolerance is no longer admitted
        far = obs[1]._replace(fx=(obs[1].fx[0]._replace(rate=Decimal("0.95")), *obs[1].fx[1:]))
        assert not band.admits(far, SHARES)
    finally:
        store.close()


corner = st.sampled_from([0, 1, 2])  # a rate or cutoff at the bottom, middle or top of its range


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.sampled_from(START_CENTS),
    st.sampled_from(["0", "0.01", "0.05"]),
    st.tuples(corner, corner, corner, corner),
    st.sampled_from(["lo", "hi"]),
    st.integers(min_value=1, max_value=10_000),  # how far inside the price bound, 1e-8
    st.booleans(),  # day high at its bound too
)
def test_every_row_the_band_admits_is_quiet_even_at_its_corners(
    start: int,
    hyst: str,
    corners: tuple[int, int, int, int],
    edge: str,
    inside: int,
    high_at_edge: bool,
) -> None:
    # the band from one evaluated row, then a row at its very edges: full evaluation of that
    # row must emit nothing and leave every state as it was
    cfg = config(1, hyst)
    first = tape(start, [(0, 0, 0, 0, 0, 0, 1)])[0]
    store = Store.open(None)
    try:
        engine = Engine(cfg, store, fast_path=True)
        engine.process([first], 0.0)
        band = engine._contexts["1810.HK"].band
        if band is None:
            return
        tick = Decimal(inside) / 100_000_000
        price = band.hi - tick if edge == "hi" and band.hi is not None else band.lo + tick
        high = price
        if high_at_edge and band.high_hi is not None:
            high = max(price, band.high_hi - tick)
        fx = tuple(
            r._replace(rate=(lo, r.rate, hi)[c])
            for r, (_b, _q, lo, hi), c in zip(first.fx, band.fx, corners[:3], strict=True)
        )
        assert first.ranking is not None
        ((n, lo, hi),) = band.cutoffs
        cut = (lo, first.ranking.cutoffs_usd[0][1], hi)[corners[3]]
        row = first._replace(
            time=first.time + timedelta(minutes=1), price=price, day_high=high, fx=fx,
            ranking=first.ranking._replace(cutoffs_usd=((n, cut),)),
        )  # fmt: skip
        if not band.admits(row, SHARES):
            return
        before = dict(engine.states)
        full = Engine(cfg, store, fast_path=False)
        full.states = dict(before)
        result = full.process([row], 0.0)
        assert result.events == []
        assert full.states == before
    finally:
        store.close()
