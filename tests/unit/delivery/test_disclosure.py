"""Disclosure control on hand-made results with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from disclosure_cases import trajectory_result
from oncopipe.contracts.results import ResultTable, StudyResult
from oncopipe.delivery.disclosure import (
    AT_RISK_BELOW_10,
    COMPLEMENTARY,
    CROSS_RUN_DIFFERENCE,
    MASK_MARKER,
    SMALL_COUNT,
    SMALL_DENOMINATOR,
    STATISTIC_ON_MASKED_ROW,
    DisclosureViolation,
    audit_published,
    control,
    pinned,
    recoverable,
)
from support.masked_csv import marked


def result(*tables: ResultTable) -> StudyResult:
    return StudyResult("s1", "test", {"alpha": 1}, list(tables))


def by_site(n: list[int], sites=("lung", "pancreas", "liver")) -> ResultTable:
    frame = pd.DataFrame({"site": [*sites, "Total"], "n": [*n, sum(n)]})
    frame["pct"] = frame["n"] / sum(n)
    return ResultTable("by_site", frame, "cases by site", count_columns=("n",), statistic_columns={"pct": "n"},
                       group_columns=("site",), total_value="Total")


def rules(controlled, table: str) -> dict[tuple[int, str], str]:
    return {(c.row, c.column): c.rule for c in controlled.report.masked if c.table == table}


def test_small_count_masked_with_its_complement_and_statistics():
    controlled = control(result(by_site([50, 5, 40])))
    csv = marked(controlled.csv_frame("by_site"))
    assert list(csv["n"]) == ["50", MASK_MARKER, MASK_MARKER, "95"]
    assert list(csv["pct"])[1:3] == [MASK_MARKER, MASK_MARKER]
    got = rules(controlled, "by_site")
    assert got[(1, "n")] == SMALL_COUNT
    assert got[(2, "n")] == COMPLEMENTARY  # smallest other cell of the margin: 40, not 50
    assert got[(1, "pct")] == STATISTIC_ON_MASKED_ROW


def test_zero_is_not_small_and_nothing_masked_without_small_cells():
    controlled = control(result(by_site([50, 0, 40])))
    assert [(c.row, c.column, c.rule) for c in controlled.report.masked] == [(1, "pct", SMALL_DENOMINATOR)]
    assert list(marked(controlled.csv_frame("by_site"))["n"]) == ["50", "0", "40", "90"]


def test_two_small_cells_whose_sum_is_small_need_a_third():
    """2 + 3 = 5 would be visible as total minus the rest: a small group even if neither cell is."""
    controlled = control(result(by_site([2, 3, 40, 60], sites=("a", "b", "c", "d"))))
    masked = {r for (r, col), rule in rules(controlled, "by_site").items() if col == "n"}
    assert masked == {0, 1, 2}


def test_a_total_that_is_small_is_masked_and_protected():
    controlled = control(result(by_site([0, 3, 4])))
    csv = marked(controlled.csv_frame("by_site"))
    assert list(csv["n"]) == ["0", MASK_MARKER, MASK_MARKER, MASK_MARKER]


def test_parquet_keeps_null_and_a_flag():
    frame = control(result(by_site([50, 5, 40]))).parquet_frame("by_site")
    assert frame["n"].isna().tolist() == [False, True, True, False]
    assert frame["n__masked"].tolist() == [False, True, True, False]
    assert str(frame["n"].dtype) == "Int64"


def test_statistic_on_fewer_than_ten_people():
    frame = pd.DataFrame({"group": ["a", "b"], "n_patients": [12, 40], "mean_pdc": [0.8, 0.7],
                          "n_with_pdc": [6, 40]})
    table = ResultTable("pdc", frame, "mean PDC", count_columns=("n_patients",),
                        statistic_columns={"mean_pdc": "n_with_pdc"})
    controlled = control(result(table))
    # the denominator column is itself a count of people (named n_...): 6 is masked too
    assert rules(controlled, "pdc") == {(0, "mean_pdc"): STATISTIC_ON_MASKED_ROW, (0, "n_with_pdc"): SMALL_COUNT}
    denominator_only = ResultTable("pdc", frame.rename(columns={"n_with_pdc": "observed"}), "",
                                   count_columns=("n_patients",), statistic_columns={"mean_pdc": "observed"})
    assert rules(control(result(denominator_only)), "pdc") == {(0, "mean_pdc"): SMALL_DENOMINATOR}
    assert np.isnan(controlled.result.table("pdc").frame["mean_pdc"][0])


def test_two_way_table_with_margins_blocks_every_recovery():
    cells = {("lung", "F"): 30, ("lung", "M"): 40, ("liver", "F"): 4, ("liver", "M"): 25}
    rows = []
    for site in ("lung", "liver", "Total"):
        for sex in ("F", "M", "Total"):
            n = sum(v for (s, x), v in cells.items() if site in (s, "Total") and sex in (x, "Total"))
            rows.append({"site": site, "sex": sex, "n": n})
    table = ResultTable("site_sex", pd.DataFrame(rows), "", count_columns=("n",), group_columns=("site", "sex"),
                        total_value="Total")
    controlled = control(result(table))
    csv = marked(controlled.csv_frame("site_sex"))
    shown = csv[csv.n != MASK_MARKER]
    assert not shown.n.astype(int).between(1, 9).any()
    # liver/F = 4 is protected by a 2x2 cycle (at least four masked cells, none alone in its line)
    assert (csv.n == MASK_MARKER).sum() >= 4
    assert audit_published([controlled.result.table("site_sex")], controlled.masks) == []


def test_same_count_in_another_table_is_masked_there_too():
    site = by_site([50, 5, 40])
    cohort = ResultTable("pancreas_only", pd.DataFrame({"site": ["pancreas"], "n": [5]}), "", count_columns=("n",),
                         group_columns=("site",))
    controlled = control(result(site, cohort))
    assert marked(controlled.csv_frame("pancreas_only"))["n"].tolist() == [MASK_MARKER]


def test_total_printed_in_another_table_is_a_margin():
    """by_site has no total row, but the cohort table prints the total: 95 - 50 - 40 = 5 would leak."""
    frame = pd.DataFrame({"site": ["lung", "pancreas", "liver"], "n": [50, 5, 40]})
    site = ResultTable("by_site", frame, "", count_columns=("n",), group_columns=("site",))
    total = ResultTable("cohort", pd.DataFrame({"n": [95]}), "", count_columns=("n",))
    controlled = control(result(site, total))
    shown_sites = marked(controlled.csv_frame("by_site"))["n"].tolist()
    assert shown_sites.count(MASK_MARKER) >= 2


def test_curve_rows_below_ten_at_risk_are_dropped_and_reported():
    frame = pd.DataFrame({"time": [0, 12, 24, 36], "n_at_risk": [80, 30, 11, 9], "survival": [1, .6, .3, .2]})
    table = ResultTable("km", frame, "", statistic_columns={"survival": "n_at_risk"}, at_risk_column="n_at_risk")
    controlled = control(result(table))
    assert controlled.result.table("km").frame["time"].tolist() == [0, 12, 24]
    dropped = controlled.report.dropped_rows()
    assert [(c.row, c.rule) for c in dropped] == [(3, AT_RISK_BELOW_10)]


def test_trajectory_group_under_ten_is_masked_everywhere_in_its_row():
    frame = pd.DataFrame({"group": ["high", "declining", "low", "Total"], "n": [120, 7, 60, 187],
                          "share": [120 / 187, 7 / 187, 60 / 187, 1.0]})
    table = ResultTable("groups", frame, "", count_columns=("n",), statistic_columns={"share": "n"},
                        group_columns=("group",), total_value="Total")
    csv = marked(control(result(table)).csv_frame("groups"))
    assert csv.loc[1, "n"] == MASK_MARKER and csv.loc[1, "share"] == MASK_MARKER


def test_cross_run_difference_masks_and_is_reported():
    first = control(result(by_site([50, 20, 40])))
    second = control(result(by_site([50, 23, 40])), history=[first.published_cells])
    got = rules(second, "by_site")
    assert got[(1, "n")] == CROSS_RUN_DIFFERENCE  # 23 - 20 = 3 new pancreas cases would be visible
    assert got[(3, "n")] == CROSS_RUN_DIFFERENCE  # so would the total, 113 - 110
    assert marked(second.csv_frame("by_site"))["n"].tolist()[1] == MASK_MARKER
    # a difference of 10 or more is not a small group
    third = control(result(by_site([50, 35, 40])), history=[first.published_cells])
    assert CROSS_RUN_DIFFERENCE not in {c.rule for c in third.report.masked}


@pytest.mark.parametrize("column", ["person_id", "BEN_NIR_PSA", "NIR_ANO_17", "case_id", "patient_id"])
def test_identifier_columns_are_refused(column):
    frame = pd.DataFrame({column: ["x"] * 3, "n": [10, 20, 30]})
    with pytest.raises(DisclosureViolation) as error:
        control(result(ResultTable("t", frame, "", count_columns=("n",))))
    assert error.value.column == column and error.value.rule == "patient_identifier"
    assert "table 't'" in str(error.value) and column in str(error.value)


def test_n_patients_is_not_an_identifier():
    frame = pd.DataFrame({"n_patients": [10, 20], "n_cases": [11, 12]})
    control(result(ResultTable("t", frame, "", count_columns=("n_patients", "n_cases"))))


@pytest.mark.parametrize("column", ["date_of_birth", "BEN_DCD_DTE", "death_date", "dob"])
def test_birth_and_death_dates_are_refused(column):
    frame = pd.DataFrame({column: pd.to_datetime(["2020-01-01", "2021-02-03"]), "n": [10, 20]})
    with pytest.raises(DisclosureViolation, match="date_of_birth_or_death"):
        control(result(ResultTable("t", frame, "", count_columns=("n",))))


def test_death_counts_are_allowed():
    frame = pd.DataFrame({"year": [2020, 2021], "n_deaths": [10, 20]})
    control(result(ResultTable("t", frame, "", count_columns=("n_deaths",))))


def test_id_shaped_values_are_refused_with_the_row():
    ids = [f"P{100000 + i}" for i in range(30)]
    frame = pd.DataFrame({"who": ids, "pdc": np.linspace(0, 1, 30)})
    with pytest.raises(DisclosureViolation) as error:
        control(result(ResultTable("people", frame, "")))
    assert error.value.rule == "identifier_like_values" and error.value.column == "who" and error.value.row == 0


def test_patient_level_table_is_refused():
    frame = pd.DataFrame({"age": range(40, 60), "n": [1] * 20})
    with pytest.raises(DisclosureViolation, match="patient_level"):
        control(result(ResultTable("rows", frame, "", count_columns=("n",))))


def test_month_column_is_not_an_identifier():
    frame = pd.DataFrame({"month": range(60), "mean_pdc": np.linspace(0, 1, 60), "n": [100] * 60})
    control(result(ResultTable("monthly", frame, "", count_columns=("n",), statistic_columns={"mean_pdc": "n"})))


def test_non_whole_count_names_cell():
    frame = pd.DataFrame({"site": ["a", "b"], "n": [10, 12.5]})
    with pytest.raises(DisclosureViolation) as error:
        control(result(ResultTable("t", frame, "", count_columns=("n",))))
    assert (error.value.row, error.value.column, error.value.rule) == (1, "n", "count_not_whole")


def test_metadata_naming_a_missing_column_is_refused():
    with pytest.raises(DisclosureViolation, match="column 'n_events'"):
        control(result(ResultTable("t", pd.DataFrame({"n": [10]}), "", count_columns=("n_events",))))


def test_recoverable_finds_a_bridge_between_two_cycles():
    """Every line has two unknowns, yet the bridge cell is determined (the sum rule alone would miss it)."""
    # rows r0..r3, cols c0..c3; cycle A on (r0,r1)x(c0,c1), cycle B on (r2,r3)x(c2,c3), bridge (r1,c2)?
    # Build as equations: row totals and column totals known, unknown cells listed.
    cells = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3, (2, 2): 4, (2, 3): 5, (3, 2): 6, (3, 3): 7, (1, 2): 8}
    known_base = 100
    lines = []
    for r in range(4):
        lines.append((known_base + r, [v for (i, _), v in cells.items() if i == r] + [200 + r]))
    for c in range(4):
        lines.append((known_base + 10 + c, [v for (_, j), v in cells.items() if j == c] + [300 + c]))
    assert recoverable(lines, set(cells.values())) == {8}


def test_non_negativity_pins_cells_the_equations_alone_do_not_determine():
    """x + y = 10 and x + z = 20 with z = w - 10 >= 0 squeezes nothing; with z <= 10 (z + u = 10) x is 10."""
    # variables: 0 = x, 1 = y, 2 = z, 3 = u (masked); 10, 11, 12 known totals
    value = {10: 10.0, 11: 20.0, 12: 10.0}
    lines = [(10, [0, 1]), (11, [0, 2]), (12, [2, 3])]
    assert recoverable(lines, {0, 1, 2, 3}) == set()
    assert pinned(lines, {0, 1, 2, 3}, value) == {0: 10.0, 1: 0.0, 2: 10.0, 3: 0.0}
    # A visible margin of 0 gives back every cell under it, and the cells beside them in the other direction.
    value = {10: 0.0, 11: 7.0}
    assert pinned([(10, [0, 1]), (11, [0, 2])], {0, 1, 2}, value) == {0: 0.0, 1: 0.0, 2: 7.0}
    # Loose bounds pin nothing.
    assert pinned([(10, [0, 1]), (11, [0, 2])], {0, 1, 2}, {10: 10.0, 11: 12.0}) == {}


def test_non_negativity_can_squeeze_a_masked_cell_into_a_small_count_without_pinning_it():
    """x0 + x1 = 12 with x1 <= 10 (x1 + x2 = 10) gives x0 >= 2; x0 + x3 = 15 with x3 >= 7 (x3 + x4 = 17, x4 + x5 = 10)
    gives x0 <= 8. Every visible total is 10 or more, x0 is not pinned, yet a reader knows 2 to 8 people are there:
    the output check refuses that export (found at 1,000,000 people: the delays study's export was refused), so
    disclosure control must treat it as exposed."""
    value = {10: 12.0, 11: 10.0, 12: 15.0, 13: 17.0, 14: 10.0}
    lines = [(10, [0, 1]), (11, [1, 2]), (12, [0, 3]), (13, [3, 4]), (14, [4, 5])]
    masked = {0, 1, 2, 3, 4, 5}
    assert pinned(lines, masked, value) == {}
    assert pinned(lines, masked, value, small_below=10) == {0: 2.0}
    # Wider bounds are no finding: x0 + x3 = 25 lets x0 reach 18.
    assert pinned(lines, masked, {**value, 12: 25.0}, small_below=10) == {}


def test_complementary_cells_are_not_given_back_by_zero_margins():
    """Found by the property test (hypothesis): zero columns made masked complements recoverable by LP."""
    rows = [("r0", [0, 0, 0, 10]), ("r1", [0, 0, 1, 10]), ("r2", [0, 0, 0, 10])]
    cols = ["c0", "c1", "c2", "c3"]
    records = [{"site": r, "sex": c, "n": v} for r, vals in rows for c, v in zip(cols, vals, strict=True)]
    records += [{"site": r, "sex": "Total", "n": sum(vals)} for r, vals in rows]
    records += [{"site": "Total", "sex": c, "n": sum(vals[j] for _, vals in rows)} for j, c in enumerate(cols)]
    records.append({"site": "Total", "sex": "Total", "n": 31})
    table = ResultTable("grid", pd.DataFrame(records), "counts", count_columns=("n",),
                        group_columns=("site", "sex"), total_value="Total")
    controlled = control(StudyResult("prop", "test", {}, [table]))
    frame = marked(controlled.csv_frame("grid"))
    assert audit_published(controlled.result.tables, controlled.masks) == []
    masked = frame[frame["n"] == MASK_MARKER]
    assert ("r1", "c2") in set(zip(masked["site"], masked["sex"], strict=True))


def test_audit_published_flags_what_control_would_not_publish():
    table = by_site([50, 5, 40])
    mask = pd.DataFrame({"n": [False, True, False, False], "pct": [False, True, False, False]})
    problems = audit_published([table], {"by_site": mask})
    assert any("rule complementary" in p for p in problems)
    problems = audit_published([table], {"by_site": pd.DataFrame({"n": [False] * 4, "pct": [False] * 4})})
    assert any("row 1, column 'n': rule small_count: visible count 5" in p for p in problems)


def test_hospital_codes_and_calendar_months_are_not_identifiers():
    finess = [f"{750000000 + 97 * i}" for i in range(25)]
    frame = pd.DataFrame({"finess": finess, "n": [10 + i for i in range(25)]})
    control(result(ResultTable("by_hospital", frame, "", count_columns=("n",), group_columns=("finess",))))
    months = [f"{2020 + i // 12}-{i % 12 + 1:02d}" for i in range(36)]
    frame = pd.DataFrame({"calendar_month": months, "n": [100] * 36})
    control(result(ResultTable("by_month", frame, "", count_columns=("n",))))


def test_months_are_not_a_margin_but_a_dropped_row_is_protected():
    controlled = control(trajectory_result())
    # sum over months of n_patients (270) is not the group size (100): no false margin, nothing masked there
    assert not [c for c in controlled.report.masked if c.table == "groups"]
    # month 2: 88 = 80 + (dropped 8): one of 80 / 88 must be hidden
    means = marked(controlled.csv_frame("means"))
    by_month = marked(controlled.csv_frame("by_month"))
    assert "8" not in means["n_patients"].tolist() and len(means) == 5
    assert MASK_MARKER in (means.loc[2, "n_patients"], by_month.loc[2, "n_patients"])
    assert [(c.row, c.rule) for c in controlled.report.dropped_rows()] == [(5, AT_RISK_BELOW_10)]


def test_undeclared_count_columns_are_controlled_as_counts():
    frame = pd.DataFrame({"site": ["lung"] * 3, "years": [0.0, 0.5, 1.0], "n_risk": [80, 60, 45],
                          "n_event": [0, 12, 4], "surv": [1.0, 0.8, 0.7], "n_params": [3, 3, 3]})
    table = ResultTable("curve", frame, "", statistic_columns={"surv": "n_risk"}, group_columns=("site",),
                        at_risk_column="n_risk")
    controlled = control(result(table))
    csv = marked(controlled.csv_frame("curve"))
    assert csv["n_event"].tolist() == ["0", "12", MASK_MARKER]
    assert csv["n_params"].tolist() == [3, 3, 3]  # not a count of people: left as it is
    # a curve's survival is not a ratio of the row's counts: it stays visible while n_risk is shown
    assert csv["surv"].tolist() == ["1.0", "0.8", "0.7"]
    assert any("n_event" in note for note in controlled.result.notes)
    assert controlled.result.table("curve").count_columns == ("n_event",)


def test_a_threshold_of_11_masks_a_count_of_10(oncopipe_home, monkeypatch):
    table = by_site([50, 10, 40])
    assert not [c for c in control(result(table)).report.masked if c.column == "n"]  # 10 may be shown
    monkeypatch.setenv("ONCOPIPE_DISCLOSURE_THRESHOLD", "11")  # a deployment stricter than the SNDS rule
    controlled = control(result(table))
    got = rules(controlled, "by_site")
    assert got[(1, "n")] == SMALL_COUNT and got[(2, "n")] == COMPLEMENTARY
    assert controlled.threshold == 11
    assert next(c.detail for c in controlled.report.masked if c.rule == SMALL_COUNT) == "count of 1 to 10 people"
    assert audit_published(controlled.result.tables, controlled.masks) == []
    assert any("visible count 10" in p for p in audit_published([table], {}, threshold=11))


def test_a_threshold_below_10_is_refused_naming_the_rule():
    with pytest.raises(ValueError, match="disclosure threshold 9 is below the SNDS small-cell rule"):
        control(result(by_site([50, 10, 40])), threshold=9)

