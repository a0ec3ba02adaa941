"""Line rules in SQL: exact on every line (one bad line among 300,000 is found and named), same verdicts as
the Python definitions they replace (CIP13 check digit, regular expressions), GX's null semantics."""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from oncopipe.contracts.sources import source
from oncopipe.quality import formats, suites
from oncopipe.quality.line_rules import LineRule, predicates, rules_frame

CIPS = ["3400935955838", "3400935955839", "340093595583", "3500935955838", "34009359558A8", "3400930000001",
        "3400934310515", "3400936089082", "3400930000002", "34009359558381", " 3400935955838"]


def _detail(frame, name: str) -> dict:
    return json.loads(frame.loc[frame.metric == name, "detail"].item())


def test_one_bad_line_among_300000_is_counted_and_shown():
    src = source("ir_pha_r")
    con = duckdb.connect()
    con.execute("""create table t as
        select printf('%013d', i) as "PHA_CIP_C13", case when i = 299999 then 'L02B01' else 'L02BA01' end
               as "PHA_ATC_C07", 'X' as "PHA_ATC_L07", '30' as "PHA_UNT_NBR_DSES", 'X' as "PHA_NOM_PA"
        from range(300000) r(i)""")
    rules = [r for r in suites.raw_line_rules(src) if r.name == "PHA_ATC_C07.atc_format"]
    frame = rules_frame(con, "t", src, rules, "2024-12-31", 300_000)
    detail = _detail(frame, "PHA_ATC_C07.atc_format")
    assert (detail["breaking"], detail["judged"]) == (1, 300_000)
    assert detail["sample"] == [{"PHA_CIP_C13": "0000000299999", "PHA_ATC_C07": "L02B01"}]
    assert frame.value.item() == pytest.approx(1 / 300_000)


def test_sql_cip13_check_agrees_with_the_python_definition():
    src = source("er_pha_f")
    con = duckdb.connect()
    con.execute('create table t ("PHA_PRS_C13" varchar, "FLX_DIS_DTD" date, "FLX_TRT_DTD" date, "FLX_EMT_TYP" int, '
                '"FLX_EMT_NUM" int, "FLX_EMT_ORD" int, "ORG_CLE_NUM" varchar, "DCT_ORD_NUM" bigint, '
                '"PRS_ORD_NUM" bigint, "REM_TYP_AFF" int)')
    con.executemany("insert into t values (?, date '2024-01-01', date '2023-12-20', 1, 100, 1, 'O', ?, 1, 1)",
                    [[c, i] for i, c in enumerate(CIPS)])
    rule = next(r for r in suites.raw_line_rules(src) if r.name == "PHA_PRS_C13.cip13_format")
    _, breaks = predicates(rule, src, "2024-12-31")
    got = dict(con.execute(f'select "PHA_PRS_C13", {breaks} from t').fetchall())
    assert got == {c: not formats.is_valid_cip13(c) for c in CIPS}
    frame = rules_frame(con, "t", src, [rule], "2024-12-31", len(CIPS))
    detail = _detail(frame, rule.name)
    assert detail["breaking"] == sum(not formats.is_valid_cip13(c) for c in CIPS)
    assert [s["PHA_PRS_C13"] for s in detail["sample"]] == [c for c in CIPS if not formats.is_valid_cip13(c)][:5]


@pytest.mark.parametrize(("regex", "values"), [
    (formats.ICD10, ["C509", "C50", "c509", "C5O9", "C509XYZ", "C50.9", "Z511", "C509\n"]),
    (formats.FINESS, ["750100042", "2A0000001", "2C0000001", "75010004", "7501000421"]),
    (formats.YEAR, ["1999", "2024", "1899", "20245", "202"]),
    (formats.NIR_PSA, ["A" * 17, "A" * 16, "É" * 17, "A" * 18, "0123456789ABCDEF0", "0123456\x0089ABCDEF0",
                       "0123456789abcdef0", "0123456 89ABCDEF0"]),
])
def test_sql_format_rules_agree_with_python_full_match(regex, values):
    rule = LineRule("x.format", "critical", "", "regex", ("DGN_PAL",), 1.0, {"regex": regex})
    src = source("t_mco_b")
    _, breaks = predicates(rule, src, "2024-12-31")
    con = duckdb.connect()
    got = [row[0] for row in con.execute(f'select {breaks} from (select unnest(?) as "DGN_PAL")', [values]).fetchall()]
    assert got == [re.fullmatch(regex.strip("^$"), v) is None for v in values]


def test_nulls_are_judged_only_by_not_null_and_text_dates_must_parse():
    src = source("t_mco_c")
    con = duckdb.connect()
    con.execute("""create table t as select * from (values
        ('750100042', '0000000001', 'N', '2024-01-03', '2024-01-02', '0', null, null, 2024),
        ('750100042', '0000000002', 'N', '2024-13-45', null, '0', null, null, 2024),
        ('750100042', '0000000003', 'N', null, '2025-01-01', '0', null, null, 2024))
        t("ETA_NUM", "RSA_NUM", "NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF", "NIR_RET", "ENT_DAT", "SOR_DAT",
          "PMSI_ANN")""")
    rules = suites.raw_line_rules(src)
    frame = rules_frame(con, "t", src, rules, "2024-12-31", 3, text_dates=frozenset({"EXE_SOI_DTD", "EXE_SOI_DTF"}))
    counts = {name: (d["breaking"], d["judged"]) for name in frame.metric for d in [_detail(frame, name)]}
    assert counts["EXE_SOI_DTD.not_null"] == (1, 3)
    assert counts["EXE_SOI_DTD.date_parse"] == (1, 2)  # '2024-13-45'; the null is not judged
    assert counts["EXE_SOI_DTF.date_range"] == (1, 2)  # after the extraction date
    assert counts["stay_dates_order"] == (1, 1)  # exit before entry; lines with a missing date are not judged
    assert _detail(frame, "stay_dates_order")["sample"][0]["RSA_NUM"] == "0000000001"


def test_flux_month_rule_compares_with_the_month_of_care():
    src = source("er_prs_f")
    rule = next(r for r in suites.raw_line_rules(src) if r.name == "flux_after_care")
    _, breaks = predicates(rule, src, "2024-12-31")
    con = duckdb.connect()
    rows = [("2024-03-01", "2024-03-20"), ("2024-04-01", "2024-03-20"), ("2024-02-01", "2024-03-01")]
    got = [r[0] for r in con.execute(f"""select {breaks} from (select unnest(?)::date as "FLX_DIS_DTD",
                                                                   unnest(?)::date as "EXE_SOI_DTD")""",
                                      [[f for f, _ in rows], [c for _, c in rows]]).fetchall()]
    # A flux of the month of care is fine (same month); a flux before that month is not.
    assert got == [False, False, True]
    # A care date after the extraction date is not judged here: EXE_SOI_DTD.not_after_extraction excludes it.
    judged, _ = predicates(rule, src, "2024-12-31")
    assert con.execute(f"""select {judged} from (select date '2024-05-01' as "FLX_DIS_DTD",
                                                    date '2090-03-14' as "EXE_SOI_DTD")""").fetchone() == (False,)


def test_a_date_after_the_extraction_date_has_no_tolerance():
    rules = {r.name: r for r in suites.raw_line_rules(source("er_prs_f"))}
    flux = rules["FLX_DIS_DTD.not_after_extraction"]
    assert (flux.severity, flux.mostly, flux.basis) == ("critical", 1.0, suites.BASIS_LOGIC)
    # A dispensing dated after the extraction is excluded (any line), and quarantines above its ceiling.
    rule, excluded = rules["EXE_SOI_DTD.not_after_extraction"], rules["EXE_SOI_DTD.not_after_extraction.excluded"]
    assert (rule.severity, rule.kind, rule.consequence) == ("critical", "sql", "")
    assert 0 < rule.max_share <= 0.01
    assert (excluded.severity, excluded.mostly, excluded.consequence) == ("warning", 1.0, "exclude")
    con = duckdb.connect()
    con.execute('''create table t as select i as "DCT_ORD_NUM", 1 as "PRS_ORD_NUM", 'O' as "ORG_CLE_NUM",
                   date '2024-01-01' as "FLX_DIS_DTD", date '2023-12-20' as "FLX_TRT_DTD", 1 as "FLX_EMT_TYP",
                   100 as "FLX_EMT_NUM", 1 as "FLX_EMT_ORD", 1 as "REM_TYP_AFF",
                   case when i < 3 then date '2090-01-01' else date '2024-05-01' end as "EXE_SOI_DTD"
                   from range(100000) r(i)''')
    frame = rules_frame(con, "t", source("er_prs_f"), [rule], "2024-06-30", 100_000)
    assert _detail(frame, rule.name)["breaking"] == 3
