"""Kaplan-Meier, log-rank and Cox against R survival 3.5-3, on R's own data sets and on generated cases.

The numbers are in ``tests/reference/survival_reference.json``, made by ``tests/reference/survival_reference.R``
from the data files beside it (``lung``, ``veteran``, ``ovarian`` and a generated set with heavy ties and a
group in which everyone dies). Every quantity is compared to 1e-6 (absolute for survival probabilities, relative
for coefficients, variances and test statistics).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods.cox import concordance, cox_zph, fit_cox
from oncopipe.methods.survival import kaplan_meier, logrank_test, survival_at

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
TOL = 1e-6


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((REFERENCE / "survival_reference.json").read_text())


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.csv")


def _nan(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


KM_CASES = {"lung_log_log": ("lung", None, "log-log"), "lung_log": ("lung", None, "log"),
            "veteran_log_log": ("veteran", None, "log-log"), "generated_log_log": ("generated", None, "log-log"),
            "all_die_log_log": ("generated", "all_die", "log-log")}


@pytest.mark.parametrize("case", list(KM_CASES))
def test_kaplan_meier_matches_survfit(ref, case):
    name, group, conf_type = KM_CASES[case]
    data = _data(name)
    if group is not None:
        data = data[data["group"] == group]
    km = kaplan_meier(data["time"], data["status"], conf_type=conf_type)
    expect = ref["km"][case]
    np.testing.assert_array_equal(km.time, expect["time"])
    np.testing.assert_array_equal(km.n_risk, expect["n_risk"])
    np.testing.assert_array_equal(km.n_event, expect["n_event"])
    np.testing.assert_allclose(km.surv, expect["surv"], rtol=0, atol=TOL)
    finite = np.isfinite(_nan(expect["std_err"]))
    np.testing.assert_allclose(km.std_err[finite], _nan(expect["std_err"])[finite], rtol=TOL)
    for col in ("lower", "upper"):
        np.testing.assert_allclose(getattr(km, col), _nan(expect[col]), rtol=0, atol=TOL, equal_nan=True)


def test_survival_after_the_last_death_of_a_group_that_all_died_is_zero(ref):
    """R gives 0 after the curve reached 0 with a death; it used to be NaN here (no 5-year figure at all)."""
    data = _data("generated")
    data = data[data["group"] == "all_die"]
    expect = ref["km_at"]["all_die"]
    at = survival_at(kaplan_meier(data["time"], data["status"]), expect["times"])
    np.testing.assert_allclose(at["surv"], expect["surv"], rtol=0, atol=TOL)
    assert at["n_risk"].tolist() == expect["n_risk"]
    # a curve that ends on a censoring is still unknown after its last time
    open_end = survival_at(kaplan_meier([1, 2, 3], [1, 0, 0]), [5])
    assert np.isnan(open_end.loc[0, "surv"])


def test_survival_at_fixed_times_matches_summary(ref):
    data = _data("lung")
    expect = ref["km_at"]["lung"]
    at = survival_at(kaplan_meier(data["time"], data["status"]), expect["times"])
    np.testing.assert_allclose(at["surv"], expect["surv"], rtol=0, atol=TOL)
    assert at["n_risk"].tolist() == expect["n_risk"]


LOGRANK_CASES = {"lung_sex": ("lung", "time", "status", "sex"),
                 "veteran_celltype": ("veteran", "time", "status", "celltype"),
                 "ovarian_rx": ("ovarian", "futime", "fustat", "rx"),
                 "generated_group": ("generated", "time", "status", "group")}


@pytest.mark.parametrize("case", list(LOGRANK_CASES))
def test_logrank_matches_survdiff(ref, case):
    name, time, status, group = LOGRANK_CASES[case]
    data = _data(name)
    res = logrank_test(data[time], data[status], data[group])
    expect = ref["logrank"][case]
    assert res.chisq == pytest.approx(expect["chisq"][0], rel=TOL)
    # survdiff orders groups as factor levels: sorted, as here
    np.testing.assert_allclose(res.table["observed"], expect["observed"], rtol=TOL)
    np.testing.assert_allclose(res.table["expected"], expect["expected"], rtol=TOL)


COX_CASES = [f"{d}_{t}" for d in ("lung", "veteran", "ovarian", "generated") for t in ("efron", "breslow")]


@pytest.mark.parametrize("case", COX_CASES)
def test_cox_matches_coxph(ref, case):
    name, ties = case.rsplit("_", 1)
    expect = ref["cox"][case]
    data = pd.read_csv(REFERENCE / f"cox_design_{name}.csv")
    design = data[expect["columns"]]
    fit = fit_cox(design, data["time"], data["status"], ties=ties)
    np.testing.assert_allclose(fit.coef, expect["coef"], rtol=TOL)
    np.testing.assert_allclose(fit.se, expect["se"], rtol=TOL)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], expect["loglik"], rtol=1e-9)
    tests = fit.global_tests().set_index("test")
    for test, key in (("likelihood_ratio", "lr"), ("wald", "wald"), ("score", "score")):
        chisq, df, p = expect[key]
        assert tests.loc[test, "chisq"] == pytest.approx(chisq, rel=TOL), test
        assert tests.loc[test, "df"] == df
        assert tests.loc[test, "p_value"] == pytest.approx(p, rel=1e-5), test
    conc = concordance(data["time"].to_numpy(), data["status"].to_numpy(), fit.linear_predictor)
    assert conc["concordance"] == pytest.approx(expect["concordance"][0], rel=TOL)
    assert conc["std_err"] == pytest.approx(expect["concordance"][1], rel=TOL)
    assert conc["std_err"] ** 2 == pytest.approx(expect["concordance_var"][0], rel=TOL)
    assert [conc["concordant"], conc["discordant"], conc["tied_risk"]] == expect["concordance_count"][:3]
    zph = cox_zph(fit)
    np.testing.assert_allclose(zph["chisq"], expect["zph_chisq"], rtol=TOL)
    np.testing.assert_array_equal(zph["df"], expect["zph_df"])
