"""Delay summaries, case-mix-adjusted hospital comparison, landmark analysis, and the care-pathway analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.results import InputValidationError, NotEnoughData
from oncopipe.delivery.disclosure import control
from oncopipe.landing.lifetables import build_life_table
from oncopipe.methods.delays import delay_summary, hospital_comparison, landmark_delay_survival
from oncopipe.studies import kinds
from support.survival_simulation import simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(12_000, build_life_table(), seed=7, n_hospitals=25)


def test_summary_by_hand():
    frame = pd.DataFrame({"site": ["lung"] * 6, "hospital_id": ["A"] * 6,
                          "delay_days": [10, 20, 30, 40, 50, np.nan]})
    out = delay_summary(frame, ("site", "hospital_id")).iloc[0]
    assert (out["n_cases"], out["n_treated"], out["n_within_30"]) == (6, 5, 3)
    assert out["median_days"] == 30 and out["q1_days"] == 20 and out["q3_days"] == 40   # type-7 quantiles
    assert out["p10_days"] == pytest.approx(14.0) and out["share_within_30"] == pytest.approx(0.6)


def test_fast_track_hospitals_found(cohort):
    comp = hospital_comparison(cohort.delays)
    found = set(comp.loc[comp["fast_track_candidate"], "hospital_id"])
    assert found == set(cohort.truth["fast_track_hospitals"])
    fast = comp[comp["hospital_id"].isin(found)]
    # planted: 20 days shorter than ordinary hospitals; the average hospital includes the fast ones.
    assert (fast["adjusted_difference_days"] < -10).all() and (fast["adjusted_ratio"] < 1).all()
    assert comp["p_holm"].between(0, 1).all() and (comp["p_holm"] >= comp["p_value"]).all()


def test_hospital_comparison_adjusts_for_case_mix():
    # Hospital B treats only stage IV, whose delays are longer everywhere: unadjusted B looks slow,
    # adjusted B is like A.
    rng = np.random.default_rng(0)
    n = 4000
    hosp = rng.choice(["A", "B"], n)
    stage = np.where(hosp == "B", "IV", rng.choice(["I", "IV"], n))
    delay = np.round(rng.gamma(6, (20 + 20 * (stage == "IV")) / 6))
    frame = pd.DataFrame({"hospital_id": hosp, "site": "lung", "stage": stage, "sex": "male",
                          "age_at_diagnosis": 65, "deprivation_quintile": 3, "delay_days": delay})
    comp = hospital_comparison(frame).set_index("hospital_id")
    assert comp.loc["B", "ratio_lower"] < 1 < comp.loc["B", "ratio_upper"]
    assert not comp["significantly_faster"].any()


def test_landmark_excludes_early_deaths_and_recovers_no_effect(cohort):
    cases = cohort.cases.merge(cohort.delays[["case_id", "delay_days"]], on="case_id")
    table, counts = landmark_delay_survival(cases, landmark_days=90)
    assert counts["n_landmark"] == int((cases["follow_up_days"] >= 90).sum())
    assert table["n"].sum() == counts["n_landmark"]
    within = table.set_index("group").loc["treated_within_30"]
    # The simulation plants no effect of delay on survival.
    assert within["hr_lower"] < 1 < within["hr_upper"]


def test_landmark_with_no_case_in_the_reference_group_names_it(cohort):
    """Hazard ratios are against the cases treated between day 31 and the landmark; when there is none (every case
    treated early, or not by the landmark), the analysis says so instead of failing on a missing row (it raised a
    bare KeyError, which the study did not turn into "not enough data")."""
    cases = cohort.cases.merge(cohort.delays[["case_id", "delay_days"]], on="case_id")
    cases.loc[cases["delay_days"] > 30, "delay_days"] = np.nan
    with pytest.raises(ValueError, match="no case alive at the 90-day landmark was treated between day 31 and 90"):
        landmark_delay_survival(cases, landmark_days=90)
    delays = cohort.delays.copy()
    delays.loc[delays["delay_days"] > 30, "delay_days"] = np.nan
    with pytest.raises(NotEnoughData, match="study cpd: .*landmark analysis not estimable: no case alive"):
        kinds.run("care_pathway_delays", {"care_pathway_delays": delays, "poor_prognosis_cases": cohort.cases}, {},
                  study_id="cpd")


def test_care_pathway_analysis_tables_and_disclosure(cohort):
    result = kinds.run("care_pathway_delays", {"care_pathway_delays": cohort.delays,
                                                  "poor_prognosis_cases": cohort.cases}, {}, study_id="cpd")
    names = [t.name for t in result.tables]
    assert names == ["delay_by_site", "delay_by_site_hospital", "delay_by_hospital", "hospital_comparison",
                     "delay_survival_landmark"]
    controlled = control(result)
    for fig in result.figures:
        drawn = fig.draw({n: controlled.result.table(n).frame for n in fig.tables})
        assert drawn.axes
    for t in result.tables:
        assert "case_id" not in t.frame.columns and "person_id" not in t.frame.columns


def test_care_pathway_bad_input(cohort):
    inputs = {"care_pathway_delays": cohort.delays, "poor_prognosis_cases": cohort.cases}
    with pytest.raises(NotEnoughData, match="study cpd: .*no cases"):
        kinds.run("care_pathway_delays", {**inputs, "care_pathway_delays": cohort.delays.iloc[:0]}, {},
                     study_id="cpd")
    with pytest.raises(NotEnoughData, match="fewer than 10"):
        kinds.run("care_pathway_delays", {**inputs, "care_pathway_delays": cohort.delays.iloc[:5]}, {},
                     study_id="cpd")
    with pytest.raises(InputValidationError, match="lacks column"):
        kinds.run("care_pathway_delays", {**inputs, "care_pathway_delays": cohort.delays.drop(columns="stage")},
                     {}, study_id="cpd")
    bad = cohort.delays.copy()
    bad.loc[bad.index[:3], "sex"] = None
    with pytest.raises(InputValidationError, match="3 case.*missing sex"):
        kinds.run("care_pathway_delays", {**inputs, "care_pathway_delays": bad}, {}, study_id="cpd")


def test_cases_without_a_diagnosing_hospital_are_kept_apart_not_refused(cohort):
    """Registry cases diagnosed just before the extraction have no hospital stay yet (seen at 100,000 people)."""
    delays = cohort.delays.copy()
    delays.loc[delays.index[:12], "hospital_id"] = None
    result = kinds.run("care_pathway_delays", {"care_pathway_delays": delays,
                                                  "poor_prognosis_cases": cohort.cases}, {}, study_id="cpd")
    by_hospital = result.table("delay_by_hospital").frame.set_index("hospital_id")
    assert by_hospital.loc["unknown", "n_cases"] == 12
    assert by_hospital["n_cases"].sum() == len(delays)
    assert "unknown" not in set(result.table("hospital_comparison").frame["hospital_id"])
    assert result.table("delay_by_site").frame["n_cases"].sum() == len(delays)
    control(result)  # margins still add up: disclosure control accepts the result


def test_hospital_comparison_equals_statsmodels_hc1_ols_and_holm(cohort):
    # The hand-written OLS, HC1 covariance and Holm step-down, against statsmodels on the simulated national
    # cohort (8,920 treated cases, 25 hospitals, 43 columns): equal to 1e-12. With HC0 (no n/(n-k)) it fails
    # (relative difference 2e-2, tried).
    from oncopipe.methods.delays import _hospital_design
    from statsmodels.regression.linear_model import OLS
    from statsmodels.stats.multitest import multipletests

    comp = hospital_comparison(cohort.delays)
    treated = cohort.delays[cohort.delays["delay_days"].notna()]
    hospitals, h_mat, x = _hospital_design(treated)
    assert hospitals == list(comp["hospital_id"])
    contrast = np.zeros((len(hospitals), x.shape[1]))
    contrast[:, : len(hospitals)] = np.eye(len(hospitals)) - h_mat.mean(axis=0)[None, :]
    for label, y, transform in (("ratio", np.log1p(treated["delay_days"].to_numpy(float)), np.exp),
                                ("difference_days", treated["delay_days"].to_numpy(float), lambda v: v)):
        fit = OLS(y, x).fit(cov_type="HC1")
        test = fit.t_test(contrast)  # normal reference: use_t is False with a robust covariance
        est, se = np.ravel(test.effect), np.ravel(test.sd)
        low, high = np.asarray(test.conf_int(alpha=0.05)).T
        for column, expected in ((f"adjusted_{label}", est), (f"{label}_lower", low), (f"{label}_upper", high)):
            np.testing.assert_allclose(np.log(comp[column]) if label == "ratio" else comp[column],
                                       np.log(transform(expected)) if label == "ratio" else expected,
                                       rtol=1e-12, atol=1e-12, err_msg=column)
        assert se.min() > 0
        if label == "ratio":
            np.testing.assert_allclose(comp["p_value"], np.ravel(test.pvalue), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(comp["p_holm"], multipletests(np.ravel(test.pvalue), method="holm")[1],
                                       rtol=1e-12, atol=1e-12)
        else:
            levels = fit.params[: len(hospitals)]
            np.testing.assert_allclose(comp["difference_vs_median_days"], levels - np.median(levels),
                                       rtol=1e-12, atol=1e-12)
