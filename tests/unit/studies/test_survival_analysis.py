"""The poor_prognosis_survival analysis: tables, disclosure metadata, figures, and refusal of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from oncopipe.contracts.results import InputValidationError, NotEnoughData
from oncopipe.delivery.disclosure import control
from oncopipe.landing.lifetables import build_life_table
from oncopipe.studies import kinds
from support.survival_simulation import simulate_cohort


@pytest.fixture(scope="module")
def life_table():
    return build_life_table()


@pytest.fixture(scope="module")
def cohort(life_table):
    return simulate_cohort(5_000, life_table, seed=3, n_hospitals=10)


@pytest.fixture(scope="module")
def result(cohort, life_table):
    return kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases,
                                                    "french_life_tables": life_table}, {}, study_id="pps")


def _run(cases, life_table):
    return kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cases, "french_life_tables": life_table},
                        {}, study_id="pps")


def test_tables_and_metadata(result, cohort):
    names = {t.name for t in result.tables}
    for expected in ("km_site", "median_site", "km_curves_site", "km_site_stage", "km_curves_site_stage",
                     "km_site_sex", "km_site_age_group", "km_site_deprivation", "km_site_region", "logrank",
                     "net_survival_site", "net_survival_site_sex", "cox_hazard_ratios", "excess_hazard_ratios",
                     "ph_test", "cox_models"):
        assert expected in names, expected
    km = result.table("km_site")
    assert km.count_columns == ("n_risk",) and km.statistic_columns["surv"] == "n_risk"
    assert km.at_risk_column == "n_risk"
    assert sorted(km.frame["years"].unique()) == [1, 2, 3, 4, 5]
    # group sizes (the number at risk at 0) are published once, as n of the median tables
    sizes = result.table("median_site").frame.set_index("site")["n"]
    assert sizes.to_dict() == cohort.cases.groupby("site").size().to_dict()
    year1 = km.frame[km.frame["years"] == 1].set_index("site")["n_risk"]
    alive = cohort.cases[cohort.cases["follow_up_days"] >= 365.25].groupby("site").size()
    assert year1.to_dict() == alive.to_dict()
    curves = result.table("km_curves_site")
    assert curves.at_risk_column == "n_risk" and curves.count_columns == ("n_risk",)
    assert list(curves.frame.columns) == ["site", "years", "n_risk", "surv", "lower", "upper"]
    months = curves.frame["years"] * 12
    assert np.allclose(months, months.round(), atol=1e-2) and months.round().min() == 1  # monthly, no month 0
    # the curve at a whole year is the yearly estimate (same coordinates, same numbers)
    at1 = curves.frame[curves.frame["years"] == 1.0].set_index("site")[["n_risk", "surv"]]
    assert at1.equals(km.frame[km.frame["years"] == 1.0].set_index("site")[["n_risk", "surv"]])
    for t in result.tables:
        for col, n_col in t.statistic_columns.items():
            assert col in t.frame.columns and n_col in t.frame.columns, (t.name, col)
        assert not {"case_id", "person_id", "birth_year", "death_date"} & set(t.frame.columns)
    models = result.table("cox_models").frame
    assert models["concordance"].between(0.5, 1).all()
    assert (models["concordance_se"] > 0).all() and (models["concordance_se"] < 0.1).all()
    for test in ("lr", "wald", "score"):
        assert (models[f"{test}_chisq"] > 0).all() and models[f"{test}_p"].between(0, 1).all(), test
    net = result.table("net_survival_site_sex").frame.dropna(subset=["net_survival"])
    inside = (net["net_survival"] < 1) & (net["net_survival"] > 0)
    assert (net.loc[inside, "lower_loglog"] < net.loc[inside, "net_survival"]).all()
    assert (net.loc[inside, "net_survival"] < net.loc[inside, "upper_loglog"]).all()
    # the number at risk at a whole year is the Kaplan-Meier table's (one cell for disclosure control)
    km_sex = result.table("km_site_sex").frame.set_index(["site", "sex", "years"])["n_risk"]
    ns_sex = net.set_index(["site", "sex", "years"])["n_risk"]
    common = ns_sex.index.intersection(km_sex.index)
    assert len(common) and (ns_sex[common] == km_sex[common]).all()
    assert set(result.references) >= {"Kaplan-Meier", "Pohar-Perme net survival", "concordance"}
    zph = result.table("ph_test").frame
    assert (zph.groupby("site")["term"].last() == "GLOBAL").all()
    lr = result.table("logrank").frame
    assert ((lr["site"] == "cns") & (lr["factor"] == "stage")).sum() == 0   # one stage only: no test


def test_disclosure_control_and_figures(result):
    controlled = control(result)
    curves = controlled.result.table("km_curves_site").frame
    assert (curves["n_risk"].dropna() >= 10).all()
    for fig in result.figures:
        drawn = fig.draw({n: controlled.result.table(n).frame for n in fig.tables})
        assert drawn.axes


def test_empty_and_small_cohorts(cohort, life_table):
    with pytest.raises(NotEnoughData, match="study pps: not enough data: .*no cases"):
        _run(cohort.cases.iloc[:0], life_table)
    with pytest.raises(NotEnoughData, match="fewer than 10"):
        _run(cohort.cases.iloc[:9], life_table)


def test_site_without_deaths(cohort, life_table):
    cases = cohort.cases.copy()
    cases.loc[cases["site"] == "cns", "event"] = 0
    with pytest.raises(NotEnoughData, match="no death observed in site.*cns"):
        _run(cases, life_table)


def test_missing_covariates_and_columns(cohort, life_table):
    cases = cohort.cases.copy()
    cases.loc[cases.index[:4], "stage"] = None
    with pytest.raises(InputValidationError, match="4 case.*missing stage"):
        _run(cases, life_table)
    with pytest.raises(InputValidationError, match="lacks column.*follow_up_days"):
        _run(cohort.cases.drop(columns="follow_up_days"), life_table)
    bad = cohort.cases.assign(event=np.where(np.arange(len(cohort.cases)) == 0, 2, cohort.cases["event"]))
    with pytest.raises(InputValidationError, match="event must be 0 or 1"):
        _run(bad, life_table)
    with pytest.raises(InputValidationError, match="french_life_tables"):
        _run(cohort.cases, life_table.drop(columns=["qx", "hazard"]))
    with pytest.raises(InputValidationError,
                       match=r"parameter 'curve_grid_months' = 5: Input should be 1, 2, 3, 4, 6 or 12"):
        kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases,
                                                 "french_life_tables": life_table}, {"curve_grid_months": 5},
                     study_id="pps")
    with pytest.raises(InputValidationError, match="curve_step_days is no longer accepted"):
        kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases,
                                                 "french_life_tables": life_table}, {"curve_step_days": 1},
                     study_id="pps")
    with pytest.raises(InputValidationError, match="input french_life_tables is missing"):
        kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases}, {}, study_id="pps")


def test_level_without_deaths_is_reported_not_estimable(cohort, life_table):
    cases = cohort.cases.copy()
    stage_one = (cases["site"] == "lung") & (cases["stage"] == "I")
    cases.loc[stage_one, "event"] = 0
    result = _run(cases, life_table)
    hr = result.table("cox_hazard_ratios").frame
    lung = hr[hr["site"] == "lung"]
    # stage I is the reference: every other stage's HR against a reference without deaths is infinite
    assert lung.loc[lung["term"].str.startswith("stage="), "hazard_ratio"].isna().all()
    assert any("not estimable" in note for note in result.notes)


def test_excess_model_that_cannot_be_fitted_becomes_a_note(cohort, life_table, monkeypatch):
    """A site whose excess-hazard model does not converge is reported in the notes; the study still runs."""
    from oncopipe.methods.cox import ConvergenceError
    from oncopipe.studies.kinds import poor_prognosis_survival as module

    def fail(*args, **kwargs):
        raise ConvergenceError("excess-hazard regression did not converge")

    monkeypatch.setattr(module, "excess_hazard_regression", fail)
    result = _run(cohort.cases.sample(1500, random_state=1), life_table)
    assert any("excess-hazard model not estimable" in note for note in result.notes)
    assert result.table("cox_hazard_ratios").frame.shape[0] > 0
