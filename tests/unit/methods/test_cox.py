"""Cox model, concordance and cox.zph against R ``survival`` output on the veterans data shipped with
scikit-survival, plus statsmodels PHReg as an independent implementation.

Sources of the reference numbers:

- [JP] A public R Markdown tutorial (Japanese, "Survival-Analysis.md", github_document output of R survival 3.x)
  printing ``summary(coxph(Surv(time, status) ~ trt + celltype + karno + diagtime + age + prior, veteran))``
  (Efron, the default) to 4 significant digits, ``Concordance= 0.736``, and ``print(cox.zph(cox_model))``
  with 4 decimals: trt 0.2644, celltype 15.2274 (3 df), karno 12.9352, diagtime 0.0129, age 1.8288,
  prior 2.1656, GLOBAL 34.5525 (8 df). The same coefficient table is printed in the missRanger README
  ("On the original") and other tutorials.
- [LEE] Jooyoung Lee, "Exercise: Veteran Data" (2023): ``coxph(..., method = "breslow")`` with celltype
  reference "large", 6 decimals; and ``cox.zph`` of the Breslow model ``celltype + karno``: celltype 13.9
  (3 df), karno 14.1, GLOBAL 23.3.
Each reference is compared to half a unit of its last printed digit (so to 5e-7 .. 5e-5 on coefficients,
i.e. better than 1e-4). statsmodels ``PHReg(ties="efron"/"breslow")`` is compared to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods.cox import ConvergenceError, concordance, cox_zph, design_matrix, fit_cox
from sksurv.datasets import load_veterans_lung_cancer
from sksurv.metrics import concordance_index_censored
from statsmodels.duration.hazard_regression import PHReg


@pytest.fixture(scope="module")
def veteran() -> pd.DataFrame:
    x, y = load_veterans_lung_cancer()
    return pd.DataFrame({
        "time": y["Survival_in_days"], "status": y["Status"].astype(int),
        "trt": (x["Treatment"] == "test").astype(float), "celltype": x["Celltype"].astype(str),
        "karno": x["Karnofsky_score"], "diagtime": x["Months_from_Diagnosis"], "age": x["Age_in_years"],
        "prior": np.where(x["Prior_therapy"] == "yes", 10.0, 0.0),  # R's veteran codes prior as 0/10
    })


def _design(vet: pd.DataFrame, ref: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    cat, cat_terms = design_matrix(vet, ["trt"], {"celltype": ref})
    num, num_terms = design_matrix(vet, ["karno", "diagtime", "age", "prior"])
    return pd.concat([cat, num], axis=1), {**cat_terms, **num_terms}


JP_COEF = {"trt": (2.946e-01, 2.075e-01), "celltype=smallcell": (8.616e-01, 2.753e-01),
           "celltype=adeno": (1.196e+00, 3.009e-01), "celltype=large": (4.013e-01, 2.827e-01),
           "karno": (-3.282e-02, 5.508e-03), "diagtime": (8.132e-05, 9.136e-03), "age": (-8.706e-03, 9.300e-03),
           "prior": (7.159e-03, 2.323e-02)}


def _half_digit(value: float, digits: int = 4) -> float:
    return 0.5 * 10 ** (np.floor(np.log10(abs(value))) - (digits - 1))


def test_efron_matches_r(veteran):
    design, _ = _design(veteran, "squamous")
    fit = fit_cox(design, veteran["time"], veteran["status"])
    summ = fit.summary().set_index("term")
    for term, (coef, se) in JP_COEF.items():
        assert summ.loc[term, "coef"] == pytest.approx(coef, abs=_half_digit(coef))
        assert summ.loc[term, "se"] == pytest.approx(se, abs=_half_digit(se))
    # z and p as printed: karno z -5.958, p 2.55e-09; adeno p 7.05e-05
    assert summ.loc["karno", "z"] == pytest.approx(-5.958, abs=5e-4)
    assert summ.loc["karno", "p_value"] == pytest.approx(2.55e-09, abs=5e-12)
    assert summ.loc["celltype=adeno", "p_value"] == pytest.approx(7.05e-05, abs=5e-8)
    assert fit.events == 128


def test_efron_and_breslow_match_statsmodels(veteran):
    design, _ = _design(veteran, "squamous")
    for ties in ("efron", "breslow"):
        fit = fit_cox(design, veteran["time"], veteran["status"], ties=ties)
        ref = PHReg(veteran["time"].to_numpy(), design.to_numpy(), status=veteran["status"].to_numpy(),
                    ties=ties).fit()
        np.testing.assert_allclose(fit.coef, ref.params, atol=1e-6)
        np.testing.assert_allclose(fit.se, ref.bse, atol=1e-6)
        assert fit.loglik == pytest.approx(ref.llf, abs=1e-6)


LEE_BRESLOW = {"trt": (0.289936, 0.207210), "celltype=squamous": (-0.399628, 0.282663),
               "celltype=smallcell": (0.456859, 0.266273), "celltype=adeno": (0.788672, 0.302668),
               "karno": (-0.032622, 0.005505), "diagtime": (-0.000092, 0.009125), "age": (-0.008549, 0.009304)}


def test_breslow_matches_r(veteran):
    design, _ = _design(veteran, "large")
    fit = fit_cox(design, veteran["time"], veteran["status"], ties="breslow")
    summ = fit.summary().set_index("term")
    for term, (coef, se) in LEE_BRESLOW.items():
        assert summ.loc[term, "coef"] == pytest.approx(coef, abs=5e-7)
        assert summ.loc[term, "se"] == pytest.approx(se, abs=5e-7)
    # prior coded yes/no in [LEE] (factor(prior)10): coefficient 0.072327 = 10 x ours
    assert summ.loc["prior", "coef"] * 10 == pytest.approx(0.072327, abs=5e-6)


def test_cox_zph_matches_r_efron(veteran):
    design, terms = _design(veteran, "squamous")
    fit = fit_cox(design, veteran["time"], veteran["status"])
    zph = cox_zph(fit, terms).set_index("term")
    expected = {"trt": (0.2644, 1), "celltype": (15.2274, 3), "karno": (12.9352, 1), "diagtime": (0.0129, 1),
                "age": (1.8288, 1), "prior": (2.1656, 1), "GLOBAL": (34.5525, 8)}
    for term, (chisq, df) in expected.items():
        assert zph.loc[term, "chisq"] == pytest.approx(chisq, abs=5e-5), term
        assert zph.loc[term, "df"] == df
    assert zph.loc["celltype", "p_value"] == pytest.approx(0.00163, abs=5e-6)
    assert zph.loc["GLOBAL", "p_value"] == pytest.approx(3.2e-05, abs=5e-7)
    assert zph.loc["karno", "ph_violated"] and not zph.loc["trt", "ph_violated"]


def test_cox_zph_matches_r_breslow(veteran):
    frame = veteran.assign(celltype=veteran["celltype"])
    design, terms = design_matrix(frame, ["karno"], {"celltype": "large"})
    fit = fit_cox(design, veteran["time"], veteran["status"], ties="breslow")
    zph = cox_zph(fit, terms).set_index("term")
    assert zph.loc["celltype", "chisq"] == pytest.approx(13.9, abs=0.05)
    assert zph.loc["karno", "chisq"] == pytest.approx(14.1, abs=0.05)
    assert zph.loc["GLOBAL", "chisq"] == pytest.approx(23.3, abs=0.05)
    assert zph.loc["karno", "p_value"] == pytest.approx(0.00017, abs=5e-6)


def test_concordance_matches_r_and_sksurv(veteran):
    design, _ = _design(veteran, "squamous")
    fit = fit_cox(design, veteran["time"], veteran["status"])
    c = concordance(veteran["time"].to_numpy(), veteran["status"].to_numpy(), fit.linear_predictor)
    assert c["concordance"] == pytest.approx(0.736, abs=5e-4)  # [JP]
    ref = concordance_index_censored(veteran["status"].astype(bool), veteran["time"], fit.linear_predictor)
    assert c["concordance"] == pytest.approx(ref[0], abs=1e-12)
    assert (c["concordant"], c["discordant"]) == (ref[1], ref[2])


def test_concordance_tie_rules_by_hand():
    # death at 2 vs censored at 2: comparable (censored outlived); deaths both at 3: not comparable.
    time = np.array([2, 2, 3, 3, 5])
    event = np.array([1, 0, 1, 1, 0])
    risk = np.array([3.0, 1.0, 2.0, 2.0, 2.0])
    c = concordance(time, event, risk)
    # pairs: (0,1) conc, (0,2) conc, (0,3) conc, (0,4) conc, (2,4) tied risk, (3,4) tied risk
    assert (c["concordant"], c["discordant"], c["tied_risk"]) == (4, 0, 2)
    assert c["concordance"] == pytest.approx((4 + 1) / 6)


def test_bad_input():
    with pytest.raises(ValueError, match="no events"):
        fit_cox(np.ones((5, 1)), [1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="missing"):
        fit_cox(np.array([[1.0], [np.nan], [0.0]]), [1, 2, 3], [1, 1, 0])
    with pytest.raises(ConvergenceError):
        fit_cox(np.ones((6, 1)), [1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="ties"):
        fit_cox(np.ones((3, 1)), [1, 2, 3], [1, 1, 1], ties="exact")
    with pytest.raises(ValueError, match="missing"):
        design_matrix(pd.DataFrame({"g": ["a", None, "b"]}), categorical={"g": "a"})
