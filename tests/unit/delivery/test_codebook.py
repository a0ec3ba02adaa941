"""The codebook of an export and the rounding of its CSV numbers (issue #19)."""

from __future__ import annotations

import pandas as pd
from oncopipe.contracts.results import ResultTable, StudyResult
from oncopipe.delivery import codebook
from oncopipe.delivery.disclosure import MASK_MARKER, MASK_SUFFIX, control
from oncopipe.delivery.export_store import publish_export, verify_export


def _result() -> StudyResult:
    frame = pd.DataFrame({"site": ["lung", "liver", "pancreas", "all"], "n": [120, 45, 6, 171],
                          "surv": [0.612345678901, 0.5, 0.41, 0.58], "hazard_ratio": [1.23456789, 2.0, 3.1, 1.0],
                          "p_value": [0.000012345, 0.2, 0.5, float("nan")], "median_days": [123.456, 80.04, 9.9, 100.0],
                          "years": [1 / 12, 2 / 12, 3 / 12, 1 / 3]})
    table = ResultTable("by_site", frame, "Survival by site.", count_columns=("n",),
                        statistic_columns={"surv": "n", "hazard_ratio": "n", "p_value": "n", "median_days": "n"},
                        group_columns=("site",), total_value="all")
    return StudyResult("cb", "poor_prognosis_survival", {}, [table])


def test_every_column_has_label_unit_type_precision_and_mask_and_missing_rules():
    book = codebook.frame(control(_result())).set_index("column")
    flags = [f"{c}{MASK_SUFFIX}" for c in ("n", "surv", "hazard_ratio", "p_value", "median_days")]
    assert list(book.index) == ["site", "n", "surv", "hazard_ratio", "p_value", "median_days", "years", *flags]
    assert (book.loc[flags, "type"] == "boolean (true / false)").all() and book.loc["n__masked", "label"] == \
        "People: masked"
    assert book.loc["surv", "label"] == "Survival probability" and book.loc["surv", "unit"] == "proportion"
    assert book.loc["n", "type"] == "integer" and book.loc["n", "role"] == "count of people"
    assert book.loc["surv", "precision"] == "4 decimals" and book.loc["hazard_ratio", "precision"] == "3 decimals"
    assert book.loc["median_days", "precision"] == "1 decimals" and book.loc["median_days", "unit"] == "days"
    assert book.loc["p_value", "precision"] == "3 significant digits"
    assert book.loc["site", "masked_as"] == "never masked"
    assert book.loc["n", "masked_as"] == (f"CSV: empty cell with n{MASK_SUFFIX} = true; Parquet: null with "
                                          f"n{MASK_SUFFIX} = true; report: '{MASK_MARKER}'")
    assert book.loc["p_value", "missing_as"] == (f"CSV: empty cell with p_value{MASK_SUFFIX} = false; Parquet: null "
                                                 f"with p_value{MASK_SUFFIX} = false")
    assert book.loc["site", "missing_as"] == "CSV: empty cell; Parquet: null"
    assert book.notna().all().all() and (book["label"] != "").all()


def test_csv_numbers_are_rounded_as_the_codebook_states_and_masks_are_left_alone():
    controlled = control(_result())
    csv = codebook.csv_frame(controlled, "by_site").set_index("site")
    assert csv.loc["lung", "surv"] == "0.6123" and csv.loc["lung", "hazard_ratio"] == "1.235"
    assert csv.loc["lung", "p_value"] == "1.23e-05" and csv.loc["lung", "median_days"] == "123.5"
    assert csv.loc["pancreas", "n"] == "" and csv.loc["pancreas", "surv"] == ""  # masked: empty, flagged
    assert csv.loc["pancreas", "n__masked"] == "true" and csv.loc["pancreas", "surv__masked"] == "true"
    assert csv.loc["all", "p_value"] == "" and csv.loc["all", "p_value__masked"] == "false"  # missing, not masked
    assert float(csv.loc["lung", "years"]) == 1 / 12  # a coordinate: exact


def test_the_export_holds_the_codebook_and_rounded_csv(oncopipe_home):
    info = publish_export(_result(), {"id": "cb", "title": "Codebook", "approval": {"reference": "CESREES-T-1"}},
                          {"code_version": "test"}, "manual__2026-01-01T00:00:00+00:00")
    assert "codebook.csv" in info.files
    book = pd.read_csv(info.path / "codebook.csv")
    assert set(book["table"]) == {"by_site"} and len(book) == 7 + 5  # 7 columns, 5 mask flags
    text = (info.path / "tables" / "by_site.csv").read_text()
    assert "0.612345678901" not in text and "0.6123" in text
    html = (info.path / "report.html").read_text()
    assert 'id="codebook"' in html and "Survival probability" in html and 'href="codebook.csv"' in html
    assert verify_export(info.path) == []
