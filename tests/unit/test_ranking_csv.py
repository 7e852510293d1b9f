"""Parsing companiesmarketcap exports and the top-N cutoff, on the two real exports."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from monitor.errors import SourceError
from monitor.sources.ranking import parse_csv, rank_others

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"  # see its README.md
EXPORT_2025 = DATA / "companiesmarketcap_2025-04-30.csv"
EXPORT_2024 = DATA / "companiesmarketcap_2024-08-29.csv"
BN = Decimal(10) ** 9


def ranking_2025():  # type: ignore[no-untyped-def]
    companies = parse_csv(EXPORT_2025.read_text(encoding="utf-8"))
    return rank_others(companies, ["1810.HK", "XIACF"], "companiesmarketcap", None)


def test_2025_export_top100_cutoff_is_pdd_after_removing_xiaomi() -> None:
    assert ranking_2025().cutoff(100) == Decimal("148140474368")


@pytest.mark.parametrize(("value_bn", "rank"), [(160, 90), (140, 112)])
def test_2025_export_rank_of_xiaomi_at_our_value(value_bn: int, rank: int) -> None:
    assert ranking_2025().rank_of(value_bn * BN) == rank


def test_2024_export_cutoff_is_siemens_when_xiaomi_is_far_below() -> None:
    companies = parse_csv(EXPORT_2024.read_text(encoding="utf-8"))
    siemens = next(c for c in companies if c.rank == 100)
    assert siemens.name.startswith("Siemens")
    ranking = rank_others(companies, ["XIACF"], "companiesmarketcap", None)
    assert ranking.cutoff(100) == siemens.cap_usd


def test_parser_survives_bom_quoted_commas_and_zero_caps() -> None:
    text = (
        '\ufeff"Rank","Name","Symbol","marketcap","price (USD)","country"\n'
        '"1","Big, Inc.","BIG","3000","1","United States"\n'
        '"2","Nothing Ltd","ZERO","0","0","Nowhere"\n'
        '"3","Blank","BLANK","","","Nowhere"\n'
        '"4","Small","SML","1000","1","United States"\n'
        "short,row\n"
    )  # synthetic
    companies = parse_csv(text)
    assert [(c.name, c.cap_usd) for c in companies] == [
        ("Big, Inc.", Decimal(3000)),
        ("Small", Decimal(1000)),
    ]


def test_a_file_without_the_columns_is_bad_data() -> None:
    with pytest.raises(SourceError) as info:
        parse_csv("<html>blocked</html>\n")
    assert info.value.kind == "bad_data"
