"""The marts gate: a failing candidate is dropped and the published version stays byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from gates_marts import mart_tables, settings_for, write_warehouse
from oncopipe.quality import GateFailed
from oncopipe.quality.history import results, runs
from oncopipe.warehouse import versions
from oncopipe.warehouse.versions import gate_candidate


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".candidates" not in p.parts}


@pytest.fixture()
def published(tmp_path):
    settings = settings_for(tmp_path / "home")
    write_warehouse(settings.warehouse, mart_tables())
    version = versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    return settings, version


def _set(table: pa.Table, column: str, index: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[index] = value
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))


def _break(kind: str) -> dict[str, pa.Table]:
    tables = mart_tables(40)
    if kind == "pdc_above_one":
        tables["endocrine_adherence_monthly"] = _set(tables["endocrine_adherence_monthly"], "pdc", 3, 1.4)
    elif kind == "negative_delay":
        tables["care_pathway_delays"] = _set(tables["care_pathway_delays"], "delay_days", 1, -5)
    elif kind == "censored_and_dead":
        cases = tables["poor_prognosis_cases"]
        alive = cases["event"].to_pylist().index(0)
        tables["poor_prognosis_cases"] = _set(cases, "death_date", alive, cases["diagnosis_date"][alive].as_py())
    elif kind == "case_counted_twice":
        cases = tables["poor_prognosis_cases"]
        tables["poor_prognosis_cases"] = _set(cases, "site", 6, cases["site"][0].as_py())
        tables["poor_prognosis_cases"] = _set(tables["poor_prognosis_cases"], "person_id", 6,
                                              cases["person_id"][0].as_py())
    elif kind == "duplicate_key":
        tables["breast_cancer_endocrine_cohort"] = _set(tables["breast_cancer_endocrine_cohort"], "person_id", 1,
                                                        "P00000")
    elif kind == "event_not_binary":
        tables["poor_prognosis_cases"] = _set(tables["poor_prognosis_cases"], "event", 2, 2)
    elif kind == "cohort_collapse":
        tables = mart_tables(12)
    elif kind == "event_rate_jump":
        tables = mart_tables(40, deaths_every=1)
    elif kind == "unknown_sex":  # BEN_SEX_COD 0/9 ("unknown" in the contract) is decoded to a null sex
        tables["poor_prognosis_cases"] = _set(tables["poor_prognosis_cases"], "sex", 4, None)
    return tables


CASES = {
    "pdc_above_one": ("endocrine_adherence_monthly", "pdc.unit_interval"),
    "negative_delay": ("care_pathway_delays", "delay_days.non_negative"),
    "censored_and_dead": ("poor_prognosis_cases", "censored_not_dead"),
    "case_counted_twice": ("poor_prognosis_cases", "person_site_unique"),
    "duplicate_key": ("breast_cancer_endocrine_cohort", "key_unique"),
    "event_not_binary": ("poor_prognosis_cases", "event.binary"),
    "cohort_collapse": ("marts", "cohort_size_vs_published"),
    "event_rate_jump": ("marts", "event_rate_vs_published"),
    "unknown_sex": ("poor_prognosis_cases", "sex.required_by_studies"),
}


def test_a_null_the_studies_refuse_is_refused_naming_them(published):
    settings, _ = published
    write_warehouse(settings.warehouse, _break("unknown_sex"))
    with pytest.raises(GateFailed) as caught:
        versions.publish_candidate(extraction_date="2024-04-01", settings=settings)
    assert "analysis kind(s) care_pathway_delays, poor_prognosis_survival refuse a row without it" in str(caught.value)


@pytest.mark.parametrize("kind", list(CASES))
def test_failing_candidate_is_dropped_and_published_version_untouched(published, kind):
    settings, version = published
    before = tree_hashes(settings.published)
    write_warehouse(settings.warehouse, _break(kind))
    with pytest.raises(GateFailed) as caught:
        versions.publish_candidate(extraction_date="2024-04-01", settings=settings)
    subject, expectation = CASES[kind]
    assert (subject, expectation) in caught.value.report.failed_names("critical"), caught.value.report.summary()
    assert expectation in str(caught.value)
    assert tree_hashes(settings.published) == before
    assert versions.current_version(settings) == version
    assert not any((settings.published / ".candidates").iterdir())


def test_clean_candidate_passes_and_history_records_it(published):
    settings, _ = published
    write_warehouse(settings.warehouse, mart_tables(42))
    report = gate_candidate(settings)
    assert report.passed, report.summary()
    assert {o.suite for o in report.outcomes} >= {"marts.comparisons", "marts.endocrine_adherence_monthly"}
    last = runs(settings.quality, "marts")[0]
    assert last["run_id"] == report.run_id and last["passed"] == 1
    rows = results(settings.quality, report.run_id)
    assert len(rows) == len(report.outcomes)
    assert {r["severity"] for r in rows} <= {"critical", "warning"}
    assert (settings.quality / "data_docs" / "index.html").exists()
    # The published version was compared: event rates were measured against it.
    assert any(o.expectation == "event_rate_vs_published" for o in report.outcomes)
    assert pc.sum(mart_tables(42)["poor_prognosis_cases"]["event"]).as_py() > 0
