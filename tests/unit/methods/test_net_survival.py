"""Pohar-Perme net survival and the excess-hazard regression.

Checks: R relsurv 2.2-9 ``rs.surv(method = "pohar-perme")`` on its ``colrec`` data with its ``slopop`` rate table
(``tests/reference/``, made by ``survival_reference.R``), a hand-computable case (constant population hazard:
the weights cancel), simulations with a known net survival (exponential and Weibull excess hazards, constant
and age/year-dependent population hazards, where censoring is informative for all-cause survival), and input
checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oncopipe.landing.lifetables import build_life_table
from oncopipe.methods.cox import design_matrix
from oncopipe.methods.net_survival import (
    DAYS_PER_YEAR,
    LifeTableError,
    excess_hazard_regression,
    expected_cumhaz,
    expected_pass,
    net_survival_table,
    patient_coordinates,
    pohar_perme,
    rate_table,
)

REFERENCE = Path(__file__).resolve().parents[2] / "reference"


def constant_table(hazard: float) -> pd.DataFrame:
    return pd.DataFrame([(s, a, y, hazard) for s in ("male", "female") for a in range(111)
                         for y in range(2000, 2031)], columns=["sex", "age", "year", "hazard"])


def test_constant_population_hazard_by_hand():
    lam = 0.1  # per year
    daily = lam / DAYS_PER_YEAR
    # 5 patients: deaths at days 100, 200 (two deaths), censored at 150 and 400. With one hazard for all the
    # weights cancel; each interval between follow-up times subtracts daily * its length, and the interval
    # (200, 400] is not closed at day 365, so it does not count at 1 year (relsurv's step function).
    time = [100, 150, 200, 200, 400]
    event = [1, 0, 1, 1, 0]
    res = pohar_perme(time, event, [60] * 5, [2010.5] * 5, ["male"] * 5, constant_table(lam), times_years=[1])
    expected = (1 - (1 / 5 - 100 * daily)) * (1 - (0 - 50 * daily)) * (1 - (2 / 3 - 50 * daily))
    assert res.loc[0, "net_survival"] == pytest.approx(expected, rel=1e-12)
    assert res.loc[0, "std_err"] == pytest.approx(np.sqrt(1 / 25 + 2 / 9), rel=1e-12)
    assert res.loc[0, "n_risk"] == 1
    z = 1.959963984540054
    assert res.loc[0, "lower"] == pytest.approx(expected * np.exp(-z * res.loc[0, "std_err"]), rel=1e-10)
    # a death just after one year (day 366) is not in the 1-year figure
    later = pohar_perme([100, 366, 400], [1, 1, 0], [60] * 3, [2010.5] * 3, ["male"] * 3, constant_table(lam),
                        times_years=[1])
    assert later.loc[0, "net_survival"] == pytest.approx(1 - (1 / 3 - 100 * daily), rel=1e-12)


@pytest.fixture(scope="module")
def colrec_pass():
    colrec = pd.read_csv(REFERENCE / "colrec.csv")
    slopop = rate_table(pd.read_csv(REFERENCE / "slopop.csv"))
    dates = np.datetime64("1960-01-01") + colrec["diag_days"].to_numpy().astype("timedelta64[D]")
    return expected_pass(colrec["time"], colrec["stat"], colrec["age_days"] / DAYS_PER_YEAR, dates, colrec["sex"],
                         slopop, groups=colrec["sex"], horizon_years=5)


@pytest.mark.parametrize("conf_type", ["log", "log-log"])
@pytest.mark.parametrize("stratum", ["all", "male", "female"])
def test_matches_relsurv_on_colrec(colrec_pass, conf_type, stratum):
    ref = json.loads((REFERENCE / "net_survival_reference.json").read_text())
    key = f"{'overall' if stratum == 'all' else 'sex'}_{conf_type.replace('-', '_')}"
    expect = ref[key][stratum]
    groups = [0, 1] if stratum == "all" else colrec_pass.labels.index(stratum)
    out = net_survival_table(colrec_pass, groups, [1, 3, 5], conf_type=conf_type)
    assert out["n_risk"].tolist() == expect["n_risk"]
    np.testing.assert_allclose(out["net_survival"], expect["net_survival"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["std_err"], expect["std_err"], rtol=1e-6)
    np.testing.assert_allclose(out["lower"], expect["lower"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["upper"], expect["upper"], rtol=0, atol=1e-6)


def test_relsurv_table_and_dates_agree_with_decimal_years():
    """A date of diagnosis given as a decimal year lands on the same day as the date itself."""
    colrec = pd.read_csv(REFERENCE / "colrec.csv").head(300)
    slopop = rate_table(pd.read_csv(REFERENCE / "slopop.csv"))
    dates = np.datetime64("1960-01-01") + colrec["diag_days"].to_numpy().astype("timedelta64[D]")
    decimal = 1960 + colrec["diag_days"] / DAYS_PER_YEAR
    assert np.array_equal(patient_coordinates([0.0] * 300, decimal)[1], colrec["diag_days"].to_numpy(float))
    args = (colrec["time"], colrec["stat"], colrec["age_days"] / DAYS_PER_YEAR)
    a = pohar_perme(*args, dates, colrec["sex"], slopop)
    b = pohar_perme(*args, decimal, colrec["sex"], slopop)
    pd.testing.assert_frame_equal(a, b)


def test_qx_and_hazard_tables_agree():
    lam = 0.05
    by_hazard = constant_table(lam)
    by_qx = by_hazard.drop(columns="hazard").assign(qx=1 - np.exp(-lam))
    args = ([30, 400, 800, 1200], [1, 1, 0, 1], [70.2] * 4, [2015.1] * 4, ["female"] * 4)
    a = pohar_perme(*args, by_hazard, times_years=[1, 3])
    b = pohar_perme(*args, by_qx, times_years=[1, 3])
    np.testing.assert_allclose(a["net_survival"], b["net_survival"], rtol=1e-12)


def test_exponential_excess_with_constant_population_hazard():
    lam_p, lam_e, n = 0.05, 0.3, 20_000
    rng = np.random.default_rng(11)
    death = np.ceil(rng.exponential(DAYS_PER_YEAR / (lam_p + lam_e), n))
    censor = np.ceil(rng.uniform(0, 7 * DAYS_PER_YEAR, n))
    res = pohar_perme(np.minimum(death, censor), (death <= censor).astype(int), rng.uniform(40, 80, n),
                      rng.uniform(2010, 2015, n), rng.choice(["male", "female"], n), constant_table(lam_p))
    truth = np.exp(-lam_e * np.array([1, 3, 5]))
    assert (np.abs(res["net_survival"] - truth) < 3 * res["net_survival"] * res["std_err"]).all()
    assert ((res["lower"] < truth) & (truth < res["upper"])).sum() >= 2


def _simulate_life_table_cohort(n: int, seed: int, hr: np.ndarray, k: float = 0.35, shape: float = 0.75):
    lt = build_life_table()
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(70, 10, n), 30, 98)
    year = rng.uniform(2012, 2018, n)
    sex = rng.choice(["male", "female"], n)
    table = rate_table(lt)
    horizon = int(8 * DAYS_PER_YEAR)
    age_days, date_days = patient_coordinates(age, year)
    cum = expected_cumhaz(table, table.sex_index(sex), age_days, date_days, horizon)
    pop_death = (cum < rng.exponential(size=n)[:, None]).sum(axis=1).astype(float)
    pop_death[pop_death > horizon] = np.inf
    excess_death = (rng.exponential(size=n) / (k * hr)) ** (1 / shape) * DAYS_PER_YEAR
    death = np.ceil(np.minimum(pop_death, excess_death))
    censor = np.ceil(rng.uniform(2, 8, n) * DAYS_PER_YEAR)
    return lt, np.minimum(death, censor), (death <= censor).astype(int), age, year, sex


def test_weibull_excess_with_age_dependent_population_mortality():
    n = 15_000
    rng = np.random.default_rng(3)
    stage = rng.choice(["I", "III", "IV"], n)
    hr = pd.Series(stage).map({"I": 0.25, "III": 1.0, "IV": 2.2}).to_numpy()
    lt, time, event, age, year, sex = _simulate_life_table_cohort(n, 4, hr)
    res = pohar_perme(time, event, age, year, sex, lt, times_years=[1, 5])
    truth = [np.mean(np.exp(-0.35 * t**0.75 * hr)) for t in (1, 5)]
    se_s = res["net_survival"] * res["std_err"]
    assert (np.abs(res["net_survival"] - truth) < 3 * se_s).all()
    # All-cause (Kaplan-Meier) survival is clearly lower than net survival at 5 years in a 70-year-old cohort.
    from oncopipe.methods.survival import kaplan_meier, survival_at
    km5 = survival_at(kaplan_meier(time, event), [5 * DAYS_PER_YEAR])["surv"].iloc[0]
    assert km5 < res.loc[1, "net_survival"] - 0.03

    design, _ = design_matrix(pd.DataFrame({"stage": stage}), categorical={"stage": "III"})
    ehr = excess_hazard_regression(time, event, age, year, sex, design, lt).set_index("term")
    for term, planted in (("stage=I", 0.25), ("stage=IV", 2.2)):
        assert ehr.loc[term, "ehr_lower"] < planted < ehr.loc[term, "ehr_upper"], term


def test_life_table_and_input_errors():
    lt = constant_table(0.01)
    args = ([10, 20], [1, 0], [50, 60], [2010, 2011])
    with pytest.raises(LifeTableError, match="hazard or qx"):
        pohar_perme(*args, ["male", "male"], lt.drop(columns="hazard"))
    with pytest.raises(LifeTableError, match="missing"):
        pohar_perme(*args, ["male", "male"], lt.iloc[1:])
    with pytest.raises(ValueError, match="not in the life table"):
        pohar_perme(*args, ["male", "other"], lt)
    with pytest.raises(ValueError, match="empty"):
        pohar_perme([], [], [], [], [], lt)
    with pytest.raises(LifeTableError, match="qx"):
        pohar_perme(*args, ["male", "male"], lt.drop(columns="hazard").assign(qx=1.5))


def test_excess_regression_reports_an_aliased_term_as_missing_instead_of_failing():
    """A design column that is constant in the data (a level absent from a small site) cannot be estimated:
    the other terms are still fitted and the aliased one is reported as missing."""
    import numpy as np
    import pandas as pd
    from oncopipe.methods.net_survival import excess_hazard_regression

    rng = np.random.default_rng(3)
    n = 400
    stage4 = rng.integers(0, 2, n)
    time = rng.exponential(365 / (0.3 + 0.7 * stage4), n).clip(1, 5 * 365)
    event = (time < 5 * 365).astype(int)
    design = pd.DataFrame({"stage_IV": stage4.astype(float), "stage_III": np.zeros(n)})
    life = pd.DataFrame([(sex, age, year, 0.01) for sex in ("male", "female") for age in range(0, 111)
                         for year in range(1990, 2036)], columns=["sex", "age", "year", "qx"])
    out = excess_hazard_regression(time, event, np.full(n, 60.0), np.full(n, 2015.0), np.array(["male"] * n),
                                   design, life)
    by_term = out.set_index("term")
    assert np.isnan(by_term.loc["stage_III", "coef"]) and np.isnan(by_term.loc["stage_III", "se"])
    assert by_term.loc["stage_IV", "excess_hazard_ratio"] > 1.5
    assert np.isfinite(by_term.loc["stage_IV", "se"])


def test_excess_regression_survives_a_level_without_excess_deaths():
    """A level whose patients never die of the cancer pushes its coefficient to -inf: the fit must still end,
    with that term flagged by a huge coefficient or standard error (the analysis reports it as missing)."""
    import numpy as np
    import pandas as pd
    from oncopipe.methods.net_survival import excess_hazard_regression

    rng = np.random.default_rng(5)
    n = 300
    cured = (np.arange(n) % 3 == 0).astype(float)
    time = np.where(cured == 1, 5 * 365, rng.exponential(365, n).clip(1, 5 * 365))
    event = ((time < 5 * 365) & (cured == 0)).astype(int)
    design = pd.DataFrame({"cured": cured})
    life = pd.DataFrame([(sex, age, year, 0.0001) for sex in ("male", "female") for age in range(0, 111)
                         for year in range(1990, 2036)], columns=["sex", "age", "year", "qx"])
    out = excess_hazard_regression(time, event, np.full(n, 50.0), np.full(n, 2015.0), np.array(["female"] * n),
                                   design, life).set_index("term")
    coef, se = out.loc["cured", "coef"], out.loc["cured", "se"]
    assert coef < -5 or not np.isfinite(se) or se > 100
