"""The engine's quiet-band fast path never changes what the rules do (property test)."""

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
# SYNTHETIC prices around the lines: HK$1T / 25.105 bn shares = HK$39.83
# (CN¥1T at 0.9357 is HK$42.57; the top-100 cutoffs are HK$43.43 and HK$45.91): many draws
# land right at a line or at the bottom of a hysteresis band
LINES = [3983, 3943, 3963, 4257, 4214, 4343, 4300, 4591, 4545]
prices = st.one_of(
    st.integers(min_value=3700, max_value=4700),
    st.builds(lambda line, d: line + d, st.sampled_from(LINES), st.integers(-3, 3)),
).map(lambda c: Decimal(c) / 100)
rows = st.lists(
    st.tuples(
        prices,
        st.integers(min_value=0, max_value=150),  # day high above the price, in cents
        st.sampled_from([Decimal("0.9357"), Decimal("0.9357"), Decimal("0.9410")]),
        st.sampled_from([Decimal("148e9"), Decimal("148e9"), Decimal("140e9")]),
        st.integers(min_value=1, max_value=600),  # minutes since the previous row
    ),
    min_size=1,
    max_size=80,
)


def settings_for(confirm: int, hysteresis: str) -> Settings:
    common = {"symbol": "1810.HK", "confirm": confirm, "hysteresis": hysteresis}
    return Settings(
        symbols=[{"symbol": "1810.HK", "shares": 25_105_000_000}],
        rules=[
            {"id": "hkd", "threshold": "1e12", "currency": "HKD", **common},
            {"id": "cny", "threshold": "1e12", "currency": "CNY", **common},
            {"id": "top", "top_n": 100, **common},
        ],
    )


def observations(spec: list[tuple[Decimal, int, Decimal, Decimal, int]]) -> list[Observation]:
    out = []
    moment = T0
    for price, cents, cny, cutoff, minutes in spec:
        moment += timedelta(minutes=minutes)
        fx = (
            FxRate("HKD", "CNY", cny, "synthetic", moment),
            FxRate("HKD", "USD", Decimal("0.1284"), "synthetic", moment),
        )
        ranking = Ranking("synthetic", None, (), ((100, cutoff),))
        high = price + Decimal(cents) / 100
        out.append(Observation(moment, "1810.HK", price, "HKD", high, None, fx, ranking))
    return out


def run(config: Settings, obs: list[Observation], fast: bool) -> tuple[list[str], object]:
    store = Store.open(None)
    try:
        engine = Engine(config, store, fast_path=fast)
        events = engine.process(obs, 0.0).events
        return [f"{e.time} {e.rule_id} {e.kind} {e.value}" for e in events], dict(engine.states)
    finally:
        store.close()


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(min_value=1, max_value=3), st.sampled_from(["0", "0.01", "0.05"]))
def test_fast_path_gives_the_same_events_and_states_as_full_evaluation(
    spec: list[tuple[Decimal, int, Decimal, Decimal, int]], confirm: int, hysteresis: str
) -> None:
    config = settings_for(confirm, hysteresis)
    obs = observations(spec)
    assert run(config, obs, fast=True) == run(config, obs, fast=False)


def test_a_quiet_stretch_is_skipped_but_still_recorded(tmp_path: object) -> None:
    config = settings_for(1, "0.01")
    spec = [(Decimal("39.00"), 10, Decimal("0.9357"), Decimal("148e9"), 1)] * 50
    store = Store.open(None)
    try:
        engine = Engine(config, store, fast_path=True)
        result = engine.process(observations(spec), 0.0)
        assert result.observations == 50
        assert [e.kind for e in result.events] == ["baseline"] * 3
        assert engine._contexts["1810.HK"].band is not None
        assert len(store.observations()) == 50
    finally:
        store.close()


SAME = (Decimal("0.9357"), Decimal("148e9"), 1)


@given(
    st.sampled_from(["0", "0.01", "0.05"]),
    st.sampled_from(LINES),
    st.integers(min_value=-2, max_value=2),
    st.integers(min_value=0, max_value=60),
)
def test_fast_path_agrees_a_cent_either_side_of_every_line(
    hysteresis: str, line: int, cents: int, high: int
) -> None:
    # from well above every line and well below, step next to a line with unchanged inputs
    config = settings_for(1, hysteresis)
    for start in (Decimal("46.50"), Decimal("38.00")):
        price = Decimal(line + cents) / 100
        spec = [(start, 0, *SAME), (start, 0, *SAME), (price, high, *SAME), (price, 0, *SAME)]
        obs = observations(spec)
        assert run(config, obs, fast=True) == run(config, obs, fast=False)
