"""Kaplan-Meier, medians and log-rank against R ``survival`` output on the veterans data shipped with
scikit-survival (``sksurv.datasets.load_veterans_lung_cancer`` = R's ``veteran``, 137 patients).

Sources of the reference numbers (R survival output printed in public documents):

- [LEE] Jooyoung Lee, "Exercise: Veteran Data" (R Markdown github_document, 2023-03-15): ``fit0.km$surv``,
  ``$std.err``, ``$lower``, ``$upper`` for ``survfit(Surv(time, status) ~ 1, veteran, subset = trt == 1)``
  (and trt == 2) with R's default ``conf.type = "log"``, printed to 8 digits; ``survdiff(... ~ factor(trt))``
  (O-E)^2/V = 0.00823 and ``1 - pchisq(0.00823, 1) = 0.9277156``.
- [MED] ``print(survfit(Surv(time, status) ~ trt, data = veteran))`` as printed in several public tutorials
  (e.g. the Spanish GLM/survival course "15-GLMTSuperv" and the "Survival analysis in R" note quoting
  ``trt=1 69 64 103.0 59 132`` / ``trt=2 68 64 52.5 44 95``) and ``survfit(Surv(time, status) ~ 1)``:
  ``137 128 80 52 105``.
- [CELL] ``survdiff(Surv(time, status) ~ celltype, veteran)``: "Chisq= 25.4 on 3 degrees of freedom";
  only 3 digits are printed there, so the 4-group statistic is also cross-checked to 1e-10 against an
  independent implementation (statsmodels ``survdiff``).
- log-log limits: R's survfit_confint formula; cross-checked against scikit-survival's
  ``kaplan_meier_estimator(conf_type="log-log")`` (an independent implementation) to 1e-10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods.survival import (
    age_group,
    kaplan_meier,
    km_tables,
    logrank_table,
    logrank_test,
    quantile_survival,
    survival_at,
)
from sksurv.datasets import load_veterans_lung_cancer
from sksurv.nonparametric import kaplan_meier_estimator
from statsmodels.duration.survfunc import survdiff


@pytest.fixture(scope="module")
def veteran() -> pd.DataFrame:
    x, y = load_veterans_lung_cancer()
    return pd.DataFrame({"time": y["Survival_in_days"], "status": y["Status"].astype(int),
                         "trt": np.where(x["Treatment"] == "standard", 1, 2), "celltype": x["Celltype"].astype(str)})


# [LEE] first 8 distinct times of trt == 1 (3, 4, 7, 8, 10, 11, 12, 13): surv, std.err, lower, upper (log).
LEE_TRT1_SURV = [0.98550725, 0.97101449, 0.95652174, 0.92753623, 0.89855072, 0.88405797, 0.85507246, 0.84057971]
LEE_TRT1_SE = [0.01459893, 0.02079951, 0.02566635, 0.03364887, 0.04045094, 0.04359689, 0.04956207, 0.05242734]
LEE_TRT1_LOWER = [0.957708167, 0.932225845, 0.909594044, 0.868338214, 0.830062311, 0.811654129, 0.775917611,
                  0.758494913]
LEE_TRT1_UPPER = [1.0, 1.0, 1.0, 0.9907700, 0.9726901, 0.9629206, 0.9423023, 0.9315478]
# [LEE] last values of trt == 2 (times 587, 991): lower 0.009531672, 0.002651890; upper 0.1404700, 0.1262226.
LEE_TRT2_TAIL = {"surv": [0.03659118, 0.01829559], "se": [0.68633248, 0.98541984],
                 "lower": [0.009531672, 0.002651890], "upper": [0.1404700, 0.1262226]}


def test_km_matches_r_log_interval(veteran):
    part = veteran[veteran["trt"] == 1]
    km = kaplan_meier(part["time"], part["status"], conf_type="log")
    assert km.time[:8].tolist() == [3, 4, 7, 8, 10, 11, 12, 13]
    np.testing.assert_allclose(km.surv[:8], LEE_TRT1_SURV, atol=1e-8)
    np.testing.assert_allclose(km.std_err[:8], LEE_TRT1_SE, atol=1e-8)
    np.testing.assert_allclose(km.lower[:8], LEE_TRT1_LOWER, atol=1e-8)
    np.testing.assert_allclose(km.upper[:8], LEE_TRT1_UPPER, atol=1e-7)
    part2 = veteran[veteran["trt"] == 2]
    km2 = kaplan_meier(part2["time"], part2["status"], conf_type="log")
    idx = np.searchsorted(km2.time, [587, 991])
    np.testing.assert_allclose(km2.surv[idx], LEE_TRT2_TAIL["surv"], atol=1e-8)
    np.testing.assert_allclose(km2.std_err[idx], LEE_TRT2_TAIL["se"], atol=1e-8)
    np.testing.assert_allclose(km2.lower[idx], LEE_TRT2_TAIL["lower"], atol=1e-9)
    np.testing.assert_allclose(km2.upper[idx], LEE_TRT2_TAIL["upper"], atol=1e-7)
    # The curve reaches 0 at 999: R gives NaN (NA) limits there.
    assert km2.surv[-1] == 0 and np.isnan(km2.lower[-1]) and np.isnan(km2.upper[-1])


def test_km_survival_at_fixed_times_matches_r_summary(veteran):
    part = veteran[veteran["trt"] == 1]
    km = kaplan_meier(part["time"], part["status"], conf_type="log")
    at = survival_at(km, [100, 200, 365])
    # [LEE] summary rows: time 100 n.risk 34 surv 0.5020; time 200 n.risk 12 surv 0.1947; 365 -> value at 314.
    np.testing.assert_allclose(at["surv"], [0.50198084, 0.19472456, 0.07080893], atol=1e-8)
    assert at["n_risk"].tolist() == [34, 12, 4]


def test_medians_match_r_print(veteran):
    expected = {1: (103.0, 59.0, 132.0), 2: (52.5, 44.0, 95.0)}
    for trt, ref in expected.items():
        part = veteran[veteran["trt"] == trt]
        km = kaplan_meier(part["time"], part["status"], conf_type="log")
        assert quantile_survival(km) == pytest.approx(ref, abs=1e-9)
    km = kaplan_meier(veteran["time"], veteran["status"], conf_type="log")
    assert quantile_survival(km) == pytest.approx((80.0, 52.0, 105.0), abs=1e-9)
    assert (km.n, km.events) == (137, 128)


def test_log_log_limits_match_scikit_survival(veteran):
    km = kaplan_meier(veteran["time"], veteran["status"], conf_type="log-log")
    t, s, ci = kaplan_meier_estimator(veteran["status"].astype(bool), veteran["time"], conf_type="log-log")
    np.testing.assert_allclose(km.surv, s, atol=1e-12)
    inside = (s > 0) & (s < 1)
    np.testing.assert_allclose(km.lower[inside], ci[0][inside], atol=1e-10)
    np.testing.assert_allclose(km.upper[inside], ci[1][inside], atol=1e-10)
    med, lo, hi = quantile_survival(km)
    assert med == 80.0
    # The log-log band crosses 0.5 at the first time it is <= 0.5 (same rule as R quantile.survfit).
    assert lo == km.time[np.flatnonzero(km.lower <= 0.5)[0]]
    assert hi == km.time[np.flatnonzero(km.upper <= 0.5)[0]]


def test_median_midpoint_and_not_reached():
    km = kaplan_meier([1, 2, 4, 5], [0, 1, 1, 0], conf_type="log")  # 1, 2/3, 1/3: first time <= 0.5
    assert quantile_survival(km)[0] == 4.0
    # S is exactly 0.5 from t=2 until it drops at t=4: R reports the midpoint 3.
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 1], conf_type="log")
    assert quantile_survival(km)[0] == pytest.approx(3.0)
    km = kaplan_meier([2, 2, 3, 5], [1, 0, 0, 1], conf_type="log")  # 0.75 then 0.5 at 5 with nothing after
    assert quantile_survival(km)[0] == 5.0
    km = kaplan_meier([1, 2, 3, 4, 5], [1, 0, 0, 0, 0])
    assert np.isnan(quantile_survival(km)[0])


def test_ties_deaths_before_censoring():
    km = kaplan_meier([1, 1, 1, 2], [1, 0, 0, 1], conf_type="log")
    assert km.n_risk.tolist() == [4, 1]
    assert km.surv.tolist() == pytest.approx([0.75, 0.0])


def test_logrank_two_groups_matches_r(veteran):
    res = logrank_test(veteran["time"], veteran["status"], veteran["trt"])
    assert res.df == 1
    assert res.chisq == pytest.approx(0.00823, abs=5e-6)   # [LEE] printed to 3 significant digits
    assert res.p_value == pytest.approx(0.9277156, abs=5e-4)
    assert res.table["observed"].tolist() == [64, 64]
    np.testing.assert_allclose(res.table["expected"], [64.5, 63.5], atol=0.05)


def test_logrank_k_groups_matches_r_and_statsmodels(veteran):
    res = logrank_test(veteran["time"], veteran["status"], veteran["celltype"])
    assert res.df == 3
    assert res.chisq == pytest.approx(25.4, abs=0.05)      # [CELL]
    stat, p = survdiff(veteran["time"].to_numpy(), veteran["status"].to_numpy(), veteran["celltype"].to_numpy())
    assert res.chisq == pytest.approx(stat, abs=1e-10)
    assert res.p_value == pytest.approx(p, abs=1e-12)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        kaplan_meier([], [])
    with pytest.raises(ValueError, match=">= 0"):
        kaplan_meier([-1, 2], [1, 1])
    with pytest.raises(ValueError, match="0/1"):
        kaplan_meier([1, 2], [2, 1])
    with pytest.raises(ValueError, match="two groups"):
        logrank_test([1, 2], [1, 1], ["a", "a"])


def test_km_tables_by_group(veteran):
    cases = veteran.rename(columns={"time": "follow_up_days", "status": "event"}).assign(site="lung")
    out = km_tables(cases, ["site", "celltype"], years=[0, 1], max_years=1)
    est = out["estimates"]
    assert set(est.columns) >= {"site", "celltype", "years", "n_risk", "n_event", "surv", "lower", "upper"}
    year0 = est[est["years"] == 0]
    assert year0["n_risk"].sum() == 137 and (year0["surv"] == 1).all()
    assert out["medians"]["n"].sum() == 137
    steps = out["curves"].groupby("celltype")["n_risk"].diff().dropna()
    assert (steps <= 0).all()
    lr = logrank_table(cases, "site", ["celltype"])
    assert lr.loc[0, "chisq"] == pytest.approx(25.4, abs=0.05)


def test_age_groups():
    assert age_group(pd.Series([49.9, 50, 64.99, 65, 74, 75, 98])).tolist() == [
        "<50", "50-64", "50-64", "65-74", "65-74", "75+", "75+"]


def test_gbsg2_logrank_and_medians_match_r():
    """GBSG2 (``sksurv.datasets.load_gbsg2`` = TH.data::GBSG2, 686 women).

    Reference: an R exercise script on GBSG2 printing ``survdiff(Surv(time, cens) ~ horTh, data = GBSG2)``
    (N 440/246, Observed 205/94, Expected 180/119, (O-E)^2/V 8.56) and the median times 1528 (no) and
    2018 (yes) days.
    """
    from sksurv.datasets import load_gbsg2

    x, y = load_gbsg2()
    time, event, group = y["time"], y["cens"].astype(int), x["horTh"].astype(str)
    res = logrank_test(time, event, group)
    assert res.chisq == pytest.approx(8.56, abs=5e-3)
    assert res.table["n"].tolist() == [440, 246] and res.table["observed"].tolist() == [205, 94]
    np.testing.assert_allclose(res.table["expected"], [180, 119], atol=0.5)
    for level, median in (("no", 1528.0), ("yes", 2018.0)):
        km = kaplan_meier(time[group == level], event[group == level], conf_type="log")
        assert quantile_survival(km)[0] == median
