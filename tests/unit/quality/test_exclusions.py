"""The exclusion rules: one definition (dbt var line_exclusions) that the raw gate and staging apply alike."""

from __future__ import annotations

import json

import duckdb
import jinja2
import pandas as pd
import pytest
import yaml
from oncopipe.contracts.settings import DBT_PROJECT_DIR
from oncopipe.contracts.sources import source
from oncopipe.quality import exclusions, suites
from oncopipe.quality.line_rules import rules_frame

EXTRACTION = "2024-07-01"


def _staging_predicate(source_name: str) -> str:
    """The where-clause of macro exclude_implausible_lines, rendered with the project's vars (as dbt does)."""
    project_vars = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    macros = jinja2.Environment(extensions=["jinja2.ext.do"]).from_string(
        (DBT_PROJECT_DIR / "macros" / "exclusions.sql").read_text())
    module = macros.make_module({"var": lambda name, default=None: project_vars.get(name, default)})
    return str(module.exclude_implausible_lines(source_name))


@pytest.fixture
def lines() -> duckdb.DuckDBPyConnection:
    """Dispensing lines, some of them implausible (after the extraction date; too many boxes; both; unreadable).

    One table holds the columns of a claim line (ER_PRS_F) and of its drug line (ER_PHA_F): each source's rules read
    only its own columns, and the nine keys are those of both.
    """
    con = duckdb.connect()
    con.execute(f"""create table t as select i as "DCT_ORD_NUM", 1 as "PRS_ORD_NUM", 'O' as "ORG_CLE_NUM",
                    date '2024-06-01' as "FLX_DIS_DTD", date '2024-05-20' as "FLX_TRT_DTD", 1 as "FLX_EMT_TYP",
                    100 as "FLX_EMT_NUM", 1 as "FLX_EMT_ORD", 1 as "REM_TYP_AFF", date '{EXTRACTION}' as extraction,
                    case when i % 97 = 0 then date '2090-03-14' when i % 89 = 0 then null
                         else date '2024-05-01' end as "EXE_SOI_DTD",
                    case when i % 101 = 0 then 1000 when i % 103 = 0 then -30 when i = 13 then 12
                         when i % 107 = 0 then null else 1 end as "PHA_ACT_QSN"
                    from range(20000) r(i)""")
    return con


@pytest.mark.parametrize("source_name", ["er_prs_f", "er_pha_f"])
def test_the_gate_counts_exactly_the_lines_staging_leaves_out(lines, source_name):
    rules = [r for e in exclusions.exclusions(source_name) for r in e.line_rules()]
    frame = rules_frame(lines, "t", source(source_name), rules, EXTRACTION, 20_000)
    counted = {row.metric: json.loads(row.detail)["breaking"] for row in frame.itertuples()}
    kept = lines.execute(f"select count(*) from t where {_staging_predicate(source_name)}").fetchone()[0]
    by_rule = {e.name: lines.execute(f"select count(*) from t where {e.gate_predicate(EXTRACTION)}").fetchone()[0]
               for e in exclusions.exclusions(source_name)}
    assert by_rule and by_rule == {name: counted[name] for name in by_rule}
    # A null (unreadable) value keeps the line, as the gate ignores it.
    assert kept == 20_000 - sum(by_rule.values())


def test_a_line_both_tables_rules_break_is_left_out_once(lines):
    """Staging keeps a dispensing when its claim line and its drug line both pass (the join drops the other)."""
    by_source = {name: exclusions.exclusions(name) for name in ("er_prs_f", "er_pha_f")}
    assert [e.name for e in by_source["er_prs_f"]] == ["EXE_SOI_DTD.not_after_extraction"]
    assert [e.name for e in by_source["er_pha_f"]] == ["PHA_ACT_QSN.plausible_boxes"]
    kept = lines.execute(f"select count(*) from t where {_staging_predicate('er_prs_f')} "
                         f"and {_staging_predicate('er_pha_f')}").fetchone()[0]
    breaking = [lines.execute(f"select count(*) from t where {e.gate_predicate(EXTRACTION)}").fetchone()[0]
                for rules in by_source.values() for e in rules]
    union = lines.execute("select count(*) from t where " + " or ".join(
        f"coalesce({e.gate_predicate(EXTRACTION)}, false)" for rules in by_source.values() for e in rules)
    ).fetchone()[0]
    assert breaking[0] == len(range(0, 20000, 97)) and breaking[1] > 0
    assert kept == 20_000 - union and 0 < union < sum(breaking)


def test_every_exclusion_rule_is_a_ceiling_and_an_excluded_warning():
    for e in exclusions.exclusions():
        rules = {r.name: r for r in suites.raw_line_rules(source(e.source))}
        assert 0 < e.ceiling < 0.05 and e.basis and e.column in e.breaks
        critical, warning = rules[e.name], rules[e.name + exclusions.EXCLUDED_SUFFIX]
        assert (critical.severity, critical.max_share) == ("critical", e.ceiling)
        assert (warning.severity, warning.max_share, warning.consequence) == ("warning", 0.0, "exclude")
    for name in ("er_prs_f", "er_pha_f"):
        names = [r.name for r in suites.raw_line_rules(source(name))]
        assert len(names) == len(set(names))


def test_ledger_rows_name_rule_column_count_and_sample_keys(lines):
    rules = [r for e in exclusions.exclusions("er_prs_f") for r in e.line_rules()]
    frame = rules_frame(lines, "t", source("er_prs_f"), rules, EXTRACTION, 20_000)
    rows = {r["rule"]: r for r in exclusions.ledger_rows("er_prs_f", frame, "excluded")}
    dated = rows["EXE_SOI_DTD.not_after_extraction"]
    assert (dated["column"], dated["lines"]) == ("EXE_SOI_DTD", len(range(0, 20000, 97)))
    # 207 of 20,000 lines (1%) is above the 0.5% ceiling: the ledger says the extraction was quarantined.
    assert dated["consequence"] == "quarantined (over the ceiling)"
    assert len(dated["sample"]) == exclusions.SAMPLE_KEYS and {"DCT_ORD_NUM", "EXE_SOI_DTD"} <= set(dated["sample"][0])
    under = pd.DataFrame([{"metric": "PHA_ACT_QSN.plausible_boxes", "subject": "PHA_ACT_QSN", "value": 2 / 20_000,
                           "detail": json.dumps({"breaking": 2, "judged": 20_000, "lines": 20_000, "sample": []})}])
    assert exclusions.ledger_rows("er_pha_f", under, "excluded")[0]["consequence"] == "excluded"


def test_the_ledger_is_written_to_the_history_and_read_by_the_quality_view(tmp_path):
    from oncopipe.orchestration.operator_views import read_excluded_lines
    from oncopipe.quality import history
    from oncopipe.quality.outcomes import GateReport

    report = GateReport(run_id="raw-1", stage="raw", extraction=EXTRACTION, started_at="t0", finished_at="t1")
    row = {"source": "er_pha_f", "rule": "EXE_SOI_DTD.not_after_extraction", "column": "EXE_SOI_DTD", "lines": 3,
           "judged": 1948, "share": 3 / 1948, "ceiling": 0.005, "consequence": "excluded",
           "sample": [{"DCT_ORD_NUM": 80187, "EXE_SOI_DTD": "2090-03-14"}]}
    history.record_exclusions(report, tmp_path, [row])
    history.record_exclusions(report, tmp_path, [row])  # re-recording a run replaces its rows
    (stored,) = history.exclusions(tmp_path, EXTRACTION)
    assert (stored["rule"], stored["column_name"], stored["lines"], stored["consequence"]) == (
        row["rule"], "EXE_SOI_DTD", 3, "excluded")
    assert json.loads(stored["sample_keys"]) == row["sample"]
    columns, rows = read_excluded_lines(history.history_path(tmp_path))
    assert len(rows) == 1 and dict(zip(columns, rows[0], strict=True))["lines"] == 3
