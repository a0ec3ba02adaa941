"""The output checker read as an attacker would: fixed leaks it must find, exports it must pass, publication it
must stop, and property tests over random results and successive runs.

The attacker of the property tests is independent of both the masking code and the checker: it knows the true
tables (it generated them), reads only the published files, and tries to recover every masked count by linear
programming over the margins, by difference with the other run, and by searching every byte written for the
hidden value stated next to its cell.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oncopipe.contracts.results import ResultTable, StudyResult
from oncopipe.delivery import disclosure
from oncopipe.delivery.disclosure import MASK_MARKER, MASK_SUFFIX, control, rule_text
from oncopipe.delivery.export_store import publish_export, verify_export
from oncopipe.delivery.output_check import (
    DIFFERENCING_AT_RISK,
    DIFFERENCING_CUMULATIVE,
    DIFFERENCING_EXPORT,
    DIFFERENCING_RUNS,
    DIFFERENCING_TABLE,
    FREQUENCY_THRESHOLD,
    MAGNITUDE_SMALL_N,
    REGRESSION_SMALL_N,
    STATED_BOUND,
    SURVIVAL_SMALL_RISK,
    UNREADABLE_OUTPUT,
    OutputCheckFailed,
    check_export,
)
from oncopipe.methods.survival import km_tables
from scipy.optimize import linprog
from support.masked_csv import marked

STUDY = {"id": "oc_study", "title": "Output check", "recipients": ["pi@example.org"],
         "approval": {"reference": "CESREES-2024-042"}}
PROVENANCE = {"code_version": "0123abc", "row_counts": {"cases": 5000}}
T = "Total"


def write_export(folder, tables: dict[str, pd.DataFrame], meta: dict[str, dict] | None = None,
                 files: dict[str, str] | None = None):
    """A hand-made export folder: CSV tables, a manifest naming their metadata, extra text files."""
    (folder / "tables").mkdir(parents=True)
    metas = []
    for name, frame in tables.items():
        frame = frame.copy()
        for col in [c for c in frame.columns if (frame[c].astype(str) == MASK_MARKER).any()]:
            # written as an export writes a masked cell: empty, with its flag column true
            hidden = frame[col].astype(str) == MASK_MARKER
            frame[col] = frame[col].where(~hidden, "")
            frame[col + MASK_SUFFIX] = hidden.map({True: "true", False: "false"})
        frame.to_csv(folder / "tables" / f"{name}.csv", index=False)
        metas.append({"name": name, "count_columns": [], "statistic_columns": {}, "group_columns": [],
                      "total_value": None, "at_risk_column": None, **(meta or {}).get(name, {})})
    (folder / "manifest.json").write_text(json.dumps({"tables": metas, "figures": []}))
    for rel, text in (files or {}).items():
        (folder / rel).write_text(text)
    return folder


def rules(report) -> set[str]:
    return {f.rule for f in report.findings}


# --- fixed regression cases --------------------------------------------------------------------------------


def test_disclosure_record_never_states_the_hidden_value_or_a_bound():
    """Today's leak: disclosure.json said ``"detail": "n_risk = 9 < 10"`` for every dropped curve row."""
    curve = pd.DataFrame({"time": [1.0, 2.0, 3.0, 4.0], "n_risk": [40, 25, 9, 7], "n_event": [15, 16, 2, 1],
                          "survival": [.6, .3, .2, .1]})
    share = pd.DataFrame({"site": ["a", "b"], "n": [5, 50], "pct": [.1, .9]})
    ages = pd.DataFrame({"site": ["a", "b"], "denominator": [9, 50], "mean_age": [60.0, 61.0]})
    result = StudyResult("s", "t", {}, [
        ResultTable("km", curve, "", count_columns=("n_risk", "n_event"), statistic_columns={"survival": "n_risk"},
                    at_risk_column="n_risk"),
        ResultTable("share", share, "", count_columns=("n",), statistic_columns={"pct": "n"}),
        ResultTable("ages", ages, "", statistic_columns={"mean_age": "denominator"})])
    records = control(result, history=[{k: v + 3 for k, v in control(result).published_cells.items()}]
                      ).report.to_records()
    assert {r["rule"] for r in records} >= {"at_risk_below_10", "small_count", "small_denominator"}
    for record in records:
        assert record["detail"].startswith(rule_text(record["rule"], 10))
        assert not re.search(r"=\s*\d|<\s*10|difference \d", record["detail"]), record


def test_old_disclosure_json_is_refused_naming_file_key_and_rule(tmp_path):
    leak = {"threshold": 10, "counts_by_rule": {"at_risk_below_10": 2, "small_count": 3},
            "cells": [{"table": "km", "row": 3, "column": "n_risk", "rule": "at_risk_below_10",
                       "detail": "n_risk = 9 < 10", "labels": {"time": "4.0"}}]}
    folder = write_export(tmp_path / "run", {"km": pd.DataFrame({"time": [1], "n_risk": [40]})},
                          {"km": {"count_columns": ["n_risk"], "at_risk_column": "n_risk"}},
                          {"disclosure.json": json.dumps(leak)})
    report = check_export(folder)
    assert [(f.file, f.place.split(":")[0], f.rule) for f in report.findings] == [
        ("disclosure.json", "key cells.0.detail", STATED_BOUND)] * 2
    # the cell counts by rule are numbers of cells, not of people
    assert not any("counts_by_rule" in f.place for f in report.findings)


def test_literal_small_counts_in_tables_json_and_text(tmp_path):
    folder = write_export(
        tmp_path / "run", {"by_site": pd.DataFrame({"site": ["a", "b"], "n_patients": [12, 4]})},
        files={"manifest.json": json.dumps({"tables": [], "figures": [], "row_counts": {"inputs": {"cases": 7}}}),
               "report.md": "Among them, 3 patients died.\n\n| site | n_patients |\n|---|---|\n| b | 4 |\n",
               "report.html": "<table><tr><th>site</th><th>n_events</th></tr><tr><td>a</td><td>6</td></tr></table>"
                              "<p>No count of 1 to 9 people is shown.</p>"})
    found = {(f.file, f.place, f.rule) for f in check_export(folder).findings}
    assert ("tables/by_site.csv", "row 1, column 'n_patients'", FREQUENCY_THRESHOLD) in found
    assert ("manifest.json", "key row_counts.inputs.cases", FREQUENCY_THRESHOLD) in found
    assert ("report.md", "line 1: '3 patients'", FREQUENCY_THRESHOLD) in found
    assert ("report.md", "table 1, row 0, column 'n_patients'", FREQUENCY_THRESHOLD) in found
    assert ("report.html", "table 1, row 0, column 'n_events'", FREQUENCY_THRESHOLD) in found
    assert len(found) == 5  # the rule's own wording ("1 to 9 people") is not a count


def test_differencing_within_a_table_and_across_tables(tmp_path):
    grid = pd.DataFrame({"site": ["a", "b", T], "n": [MASK_MARKER, "40", "43"]})
    meta = {"count_columns": ["n"], "group_columns": ["site"], "total_value": T}
    report = check_export(write_export(tmp_path / "one", {"grid": grid}, {"grid": meta}))
    assert [(f.file, f.place, f.rule) for f in report.findings] == [
        ("tables/grid.csv", "row 0, column 'n'", DIFFERENCING_TABLE)] * 2  # the line and the solver agree

    # the total is printed in another table: a masked pair summing to 5 is revealed across tables
    cells = pd.DataFrame({"site": ["a", "b", "c"], "n": [MASK_MARKER, MASK_MARKER, "40"]})
    total = pd.DataFrame({"n": ["45"]})
    report = check_export(write_export(tmp_path / "two", {"cells": cells, "total": total},
                                       {"cells": {"count_columns": ["n"], "group_columns": ["site"]},
                                        "total": {"count_columns": ["n"]}}))
    assert rules(report) == {DIFFERENCING_EXPORT}
    assert report.findings[0].file == "tables/cells.csv"

    # non-negativity: a masked cell under a margin of 12 with two masked parts, one bounded by another line
    safe = pd.DataFrame({"site": ["a", "b", T], "n": [MASK_MARKER, MASK_MARKER, "30"]})
    assert check_export(write_export(tmp_path / "three", {"g": safe}, {"g": meta})).safe


def test_successive_runs_and_cumulative_counts(tmp_path):
    study = tmp_path / "study"
    meta = {"count_columns": ["n"], "group_columns": ["site"], "total_value": T}
    write_export(study / "run_1", {"g": pd.DataFrame({"site": ["a", "b", T], "n": [50, 62, 112]})}, {"g": meta})
    second = write_export(study / "run_2", {"g": pd.DataFrame({"site": ["a", "b", T], "n": [50, 65, 115]})},
                          {"g": meta})
    found = [(f.file, f.place, f.rule) for f in check_export(second).findings]
    assert found == [("tables/g.csv", "row 1, column 'n'", DIFFERENCING_RUNS),
                     ("tables/g.csv", "row 2, column 'n'", DIFFERENCING_RUNS)]
    assert "run_1" in check_export(second).findings[0].reason

    cumulative = pd.DataFrame({"month": ["2025-01", "2025-02", "2025-03"], "cum_cases": [100, 112, 115]})
    report = check_export(write_export(tmp_path / "cum", {"c": cumulative}, {"c": {"count_columns": ["cum_cases"]}}))
    assert [(f.place, f.rule) for f in report.findings] == [("row 2, column 'cum_cases'", DIFFERENCING_CUMULATIVE)]


def test_a_non_number_in_a_numeric_csv_column_or_a_bad_flag_is_refused(tmp_path):
    """The old CSV wrote the string ``masked`` inside numeric columns; a program reading it got text."""
    old = pd.DataFrame({"site": ["a", "b"], "n": ["masked", "40"], "pct": ["masked", "0.5"]})
    old.to_csv(write_export(tmp_path / "old", {}) / "tables" / "g.csv", index=False)
    (tmp_path / "old" / "manifest.json").write_text(json.dumps({"tables": [
        {"name": "g", "count_columns": ["n"], "statistic_columns": {"pct": "n"}}], "figures": []}))
    found = [(f.place, f.rule) for f in check_export(tmp_path / "old").findings]
    assert ("row 0, column 'n'", UNREADABLE_OUTPUT) in found and ("row 0, column 'pct'", UNREADABLE_OUTPUT) in found
    flags = pd.DataFrame({"site": ["a", "b"], "n": ["12", "40"], "n__masked": ["true", "maybe"]})
    found = [(f.place, f.rule, f.reason) for f in check_export(write_export(tmp_path / "flags", {"g": flags}, {
        "g": {"count_columns": ["n"]}})).findings]
    assert [p for p, r, _ in found if r == UNREADABLE_OUTPUT] == ["row 1, column 'n__masked'", "row 0, column 'n'"]


def test_numbers_at_risk_falling_by_1_to_9_are_found_within_each_curve_and_across_its_tables(tmp_path):
    """The difference of two numbers at risk shown one after the other is the number of people who left."""
    curve = pd.DataFrame({"site": ["a"] * 4 + ["b"] * 3, "years": [.5, 1, 1.5, 2, .5, 1, 1.5],
                          "n_risk": [60, 50, 47, 30, 40, 40, 20], "surv": [.9, .8, .75, .5, .9, .9, .5]})
    yearly = pd.DataFrame({"site": ["a", "b"], "years": [1.0, 1.0], "n_risk": [50, 44], "surv": [.8, .9]})
    meta = {"count_columns": ["n_risk"], "statistic_columns": {"surv": "n_risk"}, "group_columns": ["site"],
            "at_risk_column": "n_risk"}
    report = check_export(write_export(tmp_path / "x", {"km_curves": curve, "km_yearly": yearly},
                                       {"km_curves": meta, "km_yearly": meta}))
    found = [(f.file, f.place, f.rule) for f in report.findings]
    # site a: 50 -> 47 within the curve; site b: the yearly 44 at 1.0 beside the curve's 40 at 1.0 and 0.5
    assert found == [("tables/km_curves.csv", "rows 1 and 2, column 'n_risk'", DIFFERENCING_AT_RISK),
                     ("tables/km_yearly.csv", "row 1 (after tables/km_curves.csv row 4), column 'n_risk'",
                      DIFFERENCING_AT_RISK),
                     ("tables/km_curves.csv", "row 5 (after tables/km_yearly.csv row 1), column 'n_risk'",
                      DIFFERENCING_AT_RISK)]
    # a drop of 0 or of 10 and more is no finding; a masked number at risk is skipped (the drop across it is read)
    curve = curve.astype(object)
    curve.loc[2, ["n_risk", "surv"]] = MASK_MARKER
    report = check_export(write_export(tmp_path / "y", {"km_curves": curve}, {"km_curves": meta}))
    assert rules(report) == set()


def _survival_result(study_id: str, n: int = 400, seed: int = 3) -> StudyResult:
    """The survival study's Kaplan-Meier tables (monthly curve, yearly at-risk table, group sizes) by site."""
    rng = np.random.default_rng(seed)
    cases = pd.DataFrame({"site": rng.choice(["lung", "liver"], n, p=[.7, .3]),
                          "follow_up_days": np.minimum(rng.exponential(500, n), 1826).round() + 1,
                          "event": rng.random(n) < .8})
    cases.loc[cases.follow_up_days >= 1826, "event"] = False
    res = km_tables(cases, ["site"], years=[1, 2, 3], curve_step_days=365.25 / 12, max_years=3)
    stats = {"surv": "n_risk", "lower": "n_risk", "upper": "n_risk"}
    cols = ["site", "years", "n_risk", "surv", "lower", "upper"]

    def km(frame: pd.DataFrame, name: str) -> ResultTable:
        frame = frame.loc[(frame.years > 0) & (frame.n_risk > 0), cols].astype({"years": float})
        return ResultTable(name, frame.reset_index(drop=True), "", count_columns=("n_risk",), statistic_columns=stats,
                           group_columns=("site",), at_risk_column="n_risk", start_count=("median_site", "n"))

    medians = res["medians"][["site", "n", "events", "median_years"]]
    return StudyResult(study_id, "t", {}, [
        km(res["curves"], "km_curves_site"), km(res["estimates"], "km_site"),
        ResultTable("median_site", medians, "", count_columns=("n", "events"),
                    statistic_columns={"median_years": "n"}, group_columns=("site",))])


def test_survival_curves_are_coarsened_so_no_number_at_risk_falls_by_1_to_9(oncopipe_home, monkeypatch):
    """Today's survival export: numbers at risk fell by 1 to 9 between rows shown (448 of 889 steps of the demo)."""
    with monkeypatch.context() as patch, pytest.raises(OutputCheckFailed) as refused:
        patch.setattr(disclosure, "_coarsen_at_risk", lambda *args: None)  # the masking of the old code
        publish_export(_survival_result("km_before"), {**STUDY, "id": "km_before"}, PROVENANCE, "run_1")
    assert {f.rule for f in refused.value.findings} == {DIFFERENCING_AT_RISK}
    assert any(f.file == "tables/km_curves_site.csv" for f in refused.value.findings)
    assert not (oncopipe_home / "exports" / "km_before" / "run_1").exists()
    result = _survival_result("km_after")
    info = publish_export(result, {**STUDY, "id": "km_after"}, PROVENANCE, "run_1")
    assert check_export(info.path).safe
    sizes = pd.read_csv(info.path / "tables" / "median_site.csv").set_index("site")["n"]
    curve, yearly = (pd.read_csv(info.path / "tables" / f"{t}.csv") for t in ("km_curves_site", "km_site"))
    for site, part in pd.concat([curve, yearly]).groupby("site"):
        shown = part.drop_duplicates("years").sort_values("years")
        steps = -np.diff([sizes[site], *shown["n_risk"]])
        assert ((steps == 0) | (steps >= 10)).all(), (site, steps)
        # the value shown at a row is the true Kaplan-Meier value at that time
        truth = result.table("km_curves_site").frame.query("site == @site").set_index("years")["surv"]
        assert np.allclose(curve.query("site == @site").set_index("years")["surv"], truth.loc[
            curve.query("site == @site")["years"]], atol=5e-5)  # the CSV rounds to 4 decimals
    assert len(curve) < len(result.table("km_curves_site").frame)


def test_statistics_on_fewer_than_10_people(tmp_path):
    stats = pd.DataFrame({"site": ["a", "b"], "n": ["40", MASK_MARKER], "median_delay": ["12.5", "30"],
                          "pct_treated": ["0.5", ""]})
    km = pd.DataFrame({"time": ["1", "2"], "n_risk": ["30", "0"], "survival": ["0.9", "0.5"]})
    model = pd.DataFrame({"term": ["age"], "coef": ["0.3"], "df_resid": ["6"]})
    report = check_export(write_export(tmp_path / "run", {"stats": stats, "km": km, "model": model},
                                       {"stats": {"count_columns": ["n"]},
                                        "km": {"count_columns": ["n_risk"], "at_risk_column": "n_risk",
                                               "statistic_columns": {"survival": "n_risk"}}}))
    found = {(f.file, f.place, f.rule) for f in report.findings}
    assert found == {("tables/stats.csv", "row 1, column 'median_delay'", MAGNITUDE_SMALL_N),
                     ("tables/km.csv", "row 1, column 'n_risk'", SURVIVAL_SMALL_RISK),
                     ("tables/km.csv", "row 1, column 'survival'", SURVIVAL_SMALL_RISK),
                     ("tables/model.csv", "row 0, column 'df_resid'", REGRESSION_SMALL_N)}
    # a blank (not reached) next to a masked count is not a finding; the masked one is
    assert not any("pct_treated" in f.place for f in report.findings)


def test_figures_need_a_checked_data_sidecar(tmp_path):
    folder = write_export(tmp_path / "run", {"km": pd.DataFrame({"time": [1], "n_risk": [40]})})
    (folder / "figures").mkdir()
    (folder / "figures" / "km.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "figures" / "km.svg").write_text('<svg><title>at risk: 4</title></svg>')
    report = check_export(folder)
    assert {(f.file, f.rule) for f in report.findings} == {
        ("figures/km.png", UNREADABLE_OUTPUT), ("figures/km.svg", UNREADABLE_OUTPUT),
        ("figures/km.svg.txt", STATED_BOUND)}


# --- publication -------------------------------------------------------------------------------------------


def _cumulative_result(study_id: str = "oc_study") -> StudyResult:
    frame = pd.DataFrame({"month": ["2025-01", "2025-02"], "cum_cases": [100, 104]})
    return StudyResult(study_id, "t", {}, [ResultTable("cumulative", frame, "", count_columns=("cum_cases",))])


def test_publish_refuses_what_the_checker_finds_and_writes_nothing(oncopipe_home):
    exports = oncopipe_home / "exports"
    with pytest.raises(OutputCheckFailed) as error:
        publish_export(_cumulative_result(), STUDY, PROVENANCE, "run_1")
    assert "tables/cumulative.csv: row 1, column 'cum_cases': rule differencing_cumulative" in str(error.value)
    assert not [p for p in (exports / "oc_study").iterdir() if p.is_dir()]  # no run folder, no build folder
    with sqlite3.connect(exports / "_audit" / "audit.sqlite3") as con:
        kinds = [k for (k,) in con.execute("select kind from events")]
    assert kinds == ["refused"]


def test_published_exports_pass_the_checker_and_verify_runs_it(oncopipe_home):
    frame = pd.DataFrame({"site": ["a", "b", "c", T], "n": [3, 40, 52, 95]})
    result = StudyResult("oc_study", "t", {}, [ResultTable("g", frame, "", count_columns=("n",),
                                                           group_columns=("site",), total_value=T)])
    info = publish_export(result, STUDY, PROVENANCE, "run_1")
    assert check_export(info.path).safe and verify_export(info.path) == []
    (info.path / "notes.txt").write_text("site a: n = 3\n")
    assert any("notes.txt: line 1: 'n = 3': rule stated_bound" in p for p in verify_export(info.path))


# --- property tests: an attacker over random results and successive runs -----------------------------------

_examples = itertools.count()
cell_counts = st.one_of(st.integers(0, 0), st.integers(1, 9), st.integers(10, 80))


@st.composite
def successive_grids(draw):
    n_rows, n_cols = draw(st.integers(2, 4)), draw(st.integers(2, 3))
    first = np.array([[draw(cell_counts) for _ in range(n_cols)] for _ in range(n_rows)])
    growth = np.array([[draw(st.integers(0, 12)) for _ in range(n_cols)] for _ in range(n_rows)])
    return first, first + growth


def _long(grid: np.ndarray) -> pd.DataFrame:
    rows = [f"r{i}" for i in range(grid.shape[0])] + [T]
    cols = [f"c{j}" for j in range(grid.shape[1])] + [T]
    full = np.zeros((len(rows), len(cols)), dtype=int)
    full[:-1, :-1], full[:-1, -1], full[-1, :-1], full[-1, -1] = grid, grid.sum(1), grid.sum(0), grid.sum()
    return pd.DataFrame([{"site": r, "sex": c, "n": int(full[i, j])} for i, r in enumerate(rows)
                         for j, c in enumerate(cols)])


def _result(grid: np.ndarray, study_id: str) -> StudyResult:
    return StudyResult(study_id, "t", {}, [ResultTable("grid", _long(grid), "", count_columns=("n",),
                                                         group_columns=("site", "sex"), total_value=T)])


def _attack(truth: pd.DataFrame, folder) -> list[str]:
    """Every way this attacker recovers a masked count of 1..9 from the files of ``folder``."""
    shown = marked(folder / "tables" / "grid.csv")
    cells = list(zip(truth.site, truth.sex, strict=True))
    seen = dict(zip(zip(shown.site, shown.sex, strict=True), shown.n, strict=True))
    unknown = [c for c in cells if seen[c] == MASK_MARKER]
    index = {c: i for i, c in enumerate(unknown)}
    rows_, cols_ = sorted({s for s, _ in cells} - {T}), sorted({x for _, x in cells} - {T})
    lines = [((r, T), [(r, c) for c in cols_]) for r in [*rows_, T]]
    lines += [((T, c), [(r, c) for r in rows_]) for c in [*cols_, T]]
    a, b = [], []
    for total, parts in lines:
        row, rhs = np.zeros(len(unknown)), 0.0
        for cell, sign in [(total, 1.0), *((p, -1.0) for p in parts)]:
            if cell in index:
                row[index[cell]] += sign
            else:
                rhs -= sign * float(seen[cell])
        a.append(row)
        b.append(rhs)
    leaks = []
    value = dict(zip(cells, truth.n, strict=True))
    for cell in unknown:
        bounds = []
        for sense in (1.0, -1.0):
            cost = np.zeros(len(unknown))
            cost[index[cell]] = sense
            res = linprog(cost, A_eq=np.array(a), b_eq=np.array(b), bounds=(0, None), method="highs")
            # infeasible cannot happen (the truth is a solution); unbounded above means nothing is learnt
            bounds.append(sense * res.fun if res.status == 0 else (0.0 if sense > 0 else np.inf))
        if 1 <= value[cell] <= 9 and (bounds[0] >= 1 - 1e-6 and bounds[1] <= 9 + 1e-6):
            leaks.append(f"{cell} bounded in [{bounds[0]:g}, {bounds[1]:g}]")
    everything = "\n".join(p.read_text(errors="replace") for p in folder.rglob("*")
                           if p.is_file() and p.suffix in (".json", ".html", ".md", ".csv"))
    records = json.loads((folder / "disclosure.json").read_text())["cells"]
    for cell in unknown:
        v = value[cell]
        if not 1 <= v <= 9:
            continue
        if re.search(rf"\bn\w*\s*(?:=|:)\s*{v}(?![\d.])|difference {v}(?!\d)", everything):
            leaks.append(f"{cell} value stated in a file")
        row = cells.index(cell)
        for record in records:  # the record of this very cell, read for its value
            if record["row"] == row and re.search(rf"(?<![\w\[.]){v}(?![\d\].])",
                                                  record["detail"].replace(rule_text(record["rule"], 10), "")):
                leaks.append(f"{cell} value in its disclosure record: {record['detail']!r}")
    return leaks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(successive_grids())
def test_attacker_recovers_no_masked_count_from_two_successive_runs(oncopipe_home, grids):
    first, second = grids
    study_id = f"oc_{next(_examples)}"  # one study per example: its two runs are the only history
    study = {**STUDY, "id": study_id, "export": {"formats": ["csv", "parquet"], "figures": [], "report": "html"}}
    runs = []
    for k, grid in enumerate((first, second), start=1):
        try:
            runs.append((_long(grid), publish_export(_result(grid, study_id), study, PROVENANCE, f"run_{k}")))
        except OutputCheckFailed as error:  # refused: nothing of it reached the researcher, and that is safe
            assert not (oncopipe_home / "exports" / study_id / f"run_{k}").exists(), error
    for truth, info in runs:
        assert _attack(truth, info.path) == []
        assert check_export(info.path).safe
    if len(runs) == 2:
        (t1, i1), (t2, i2) = runs
        a = marked(i1.path / "tables" / "grid.csv")
        b = marked(i2.path / "tables" / "grid.csv")
        for x, y in zip(a.n, b.n, strict=True):
            if MASK_MARKER not in (x, y):
                assert not 1 <= abs(int(x) - int(y)) <= 9


def test_masked_cells_stay_usable_and_not_reached_differs_from_masked(oncopipe_home):
    frame = pd.DataFrame({"site": ["a", "b", "c", T], "n": [4, 40, 52, 96],
                          "median_months": [11.0, 14.5, float("nan"), 13.0]})
    result = StudyResult("oc_study", "t", {}, [ResultTable("medians", frame, "", count_columns=("n",),
                                                           statistic_columns={"median_months": "n"},
                                                           group_columns=("site",), total_value=T)])
    info = publish_export(result, STUDY, PROVENANCE, "run_1")
    csv = pd.read_csv(info.path / "tables" / "medians.csv", dtype=str, keep_default_na=False)
    # as in Parquet: the masked cell empty, its flag column true; not reached: empty with the flag false
    assert csv.loc[0, "n"] == "" and csv.loc[0, "n__masked"] == "true"
    assert csv.loc[0, "median_months"] == "" and csv.loc[0, "median_months__masked"] == "true"
    assert csv.loc[2, "median_months"] == "" and csv.loc[2, "median_months__masked"] == "false"
    assert csv.loc[2, "n__masked"] == "false" and csv.loc[2, "n"] == "52"
    # every numeric CSV column holds numbers only: a program reads it as numbers, flags as booleans
    typed = pd.read_csv(info.path / "tables" / "medians.csv")
    assert pd.api.types.is_numeric_dtype(typed["n"]) and pd.api.types.is_numeric_dtype(typed["median_months"])
    assert typed["n__masked"].dtype == bool and typed["n"].isna().tolist() == typed["n__masked"].tolist()
    parquet = pd.read_parquet(info.path / "tables" / "medians.parquet")
    assert pd.isna(parquet.loc[0, "n"]) and bool(parquet.loc[0, "n__masked"])
    assert pd.isna(parquet.loc[2, "median_months"]) and not bool(parquet.loc[2, "median_months__masked"])
    html = (info.path / "report.html").read_text()
    assert '<td class="masked">masked</td>' in html and '<td class="na">—</td>' in html
    assert check_export(info.path).safe


@st.composite
def curves(draw):
    """A Kaplan-Meier-like curve: people at risk falling by events and censoring, down to a few."""
    at_risk, rows = draw(st.integers(12, 60)), []
    steps = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=20))
    for time, (events, censored) in enumerate(steps, start=1):
        events = min(events, at_risk)
        censored = min(censored, at_risk - events)
        rows.append({"time": float(time), "n_risk": at_risk, "n_event": events, "n_censor": censored})
        at_risk -= events + censored
        if at_risk == 0:
            break
    frame = pd.DataFrame(rows)
    frame["survival"] = (1 - frame.n_event / frame.n_risk).cumprod()
    return frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(curves())
def test_attacker_learns_no_small_number_at_risk_from_a_curve_export(oncopipe_home, curve):
    study_id = f"km_{next(_examples)}"
    result = StudyResult(study_id, "t", {}, [ResultTable(
        "km", curve, "", count_columns=("n_risk", "n_event", "n_censor"), statistic_columns={"survival": "n_risk"},
        at_risk_column="n_risk")])
    info = publish_export(result, {**STUDY, "id": study_id}, PROVENANCE, "run_1")
    shown = marked(info.path / "tables" / "km.csv")
    small = set(curve.loc[curve.n_risk < 10, "time"].astype(float))
    assert not small & set(shown.time.astype(float))  # every step under 10 at risk is gone
    for col in ("n_risk", "n_event", "n_censor"):
        assert not shown[col].isin([str(v) for v in range(1, 10)]).any()
    # the attacker subtracts consecutive numbers at risk shown: the people who left in between are 0 or >= 10
    at_risk = [int(v) for v in shown.sort_values("time", key=lambda t: t.astype(float))["n_risk"] if v != MASK_MARKER]
    assert not [a - b for a, b in itertools.pairwise(at_risk) if 1 <= a - b <= 9]
    # and every row shown keeps the curve's true value at its time
    truth = curve.set_index("time")["survival"]
    for row in shown.itertuples():
        if row.survival != MASK_MARKER:
            assert abs(float(row.survival) - truth[float(row.time)]) <= 5e-5  # the CSV rounds to 4 decimals
    for path in info.path.rglob("*"):
        if path.suffix in (".json", ".html", ".md"):
            text = path.read_text()
            assert not re.search(r"n_\w+\s*=\s*\d|\d\s*<\s*10\b", text), path.name
    assert check_export(info.path).safe


@st.composite
def grouped_curves(draw):
    """Numbers at risk of two groups over time, falling by anything from 0 to 25 between rows."""
    rows = []
    for group in ("a", "b"):
        at_risk = draw(st.integers(10, 200))
        for time in range(1, draw(st.integers(1, 12)) + 1):
            if at_risk < 10:
                break
            rows.append({"site": group, "years": time / 4, "n_risk": at_risk, "surv": 0.5})
            at_risk -= draw(st.integers(0, 25))
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(curve=grouped_curves(), rng=st.randoms(use_true_random=False))
def test_checker_finds_every_fall_of_1_to_9_at_risk_and_nothing_else(curve, rng, tmp_path_factory):
    """Property: the checker reports exactly the consecutive pairs (per group, by time) that differ by 1..9,
    whatever the row order of the file."""
    shuffled = curve.sample(frac=1, random_state=rng.randint(0, 2**31)).reset_index(drop=True)
    meta = {"count_columns": ["n_risk"], "statistic_columns": {"surv": "n_risk"}, "group_columns": ["site"],
            "at_risk_column": "n_risk"}
    # one study folder per example: sibling run folders would be read as earlier runs of the study
    report = check_export(write_export(tmp_path_factory.mktemp("km") / "run_1", {"km": shuffled}, {"km": meta}))
    expected = set()
    for _, part in shuffled.groupby("site"):
        ordered = part.sort_values("years")
        for (i, a), (j, b) in itertools.pairwise(zip(ordered.index, ordered["n_risk"], strict=True)):
            if 1 <= a - b <= 9:
                expected.add(f"rows {i} and {j}, column 'n_risk'")
    assert {f.place for f in report.findings if f.rule == DIFFERENCING_AT_RISK} == expected
    assert rules(report) <= {DIFFERENCING_AT_RISK}


def test_a_deployment_threshold_of_11_refuses_what_10_allows(tmp_path, oncopipe_home, monkeypatch):
    folder = write_export(
        tmp_path / "run", {"by_site": pd.DataFrame({"site": ["a", "b"], "n_patients": [12, 10]})},
        files={"manifest.json": json.dumps({"tables": [], "figures": []}), "report.md": "Of them, 10 patients died.\n"})
    assert check_export(folder).safe
    monkeypatch.setenv("ONCOPIPE_DISCLOSURE_THRESHOLD", "11")
    found = {(f.file, f.place, f.rule, f.reason) for f in check_export(folder).findings}
    reason = "unsafe frequency: a count of 1 to 10 people is stated"
    assert found == {("tables/by_site.csv", "row 1, column 'n_patients'", FREQUENCY_THRESHOLD, reason),
                     ("report.md", "line 1: '10 patients'", FREQUENCY_THRESHOLD, reason)}

