"""Multinomial predictors (oncopipe.methods.predictors) and Aalen-Johansen (oncopipe.methods.competing_risks) on
known truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods.competing_risks import aalen_johansen
from oncopipe.methods.predictors import MissingCovariates, ModelNotEstimable, multinomial_odds_ratios

# True log-odds vs group 1 (reference): intercept, age per 10 years, region=B, region=C.
TRUE = {2: np.array([-0.5, 0.4, 0.7, -0.3]), 3: np.array([-1.0, -0.3, 0.0, 0.9])}


def _simulate(n=20000, seed=2):
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    region = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    X = np.column_stack([np.ones(n), age / 10 - 6, region == "B", region == "C"]).astype(float)
    eta = np.column_stack([np.zeros(n), X @ TRUE[2], X @ TRUE[3]])
    prob = np.exp(eta - eta.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    group = 1 + (rng.random(n)[:, None] > prob.cumsum(1)).sum(1)
    return pd.DataFrame({"group": group, "age": age - 60, "region": region})


def test_odds_ratios_recovered_within_ci():
    res = multinomial_odds_ratios(_simulate(), "group", 1, continuous={"age": 10}, categorical=["region"])
    t = res.table.set_index(["group", "term"])
    assert res.reference_levels == {"region": "A"}  # most frequent
    for g, beta in TRUE.items():
        for term, b in zip(["age (per 10)", "region=B", "region=C"], beta[1:], strict=True):
            row = t.loc[(g, term)]
            assert row["lower"] <= np.exp(b) <= row["upper"], (g, term, row.to_dict())
            assert row["lower"] < row["odds_ratio"] < row["upper"]
    assert t.loc[(3, "region=B"), "p_value"] > 0.001  # true OR 1
    assert t.loc[(3, "region=C"), "p_value"] < 1e-6
    assert set(res.table["n_reference"]) == {int((_simulate()["group"] == 1).sum())}


def test_missing_covariates_named_or_dropped():
    data = _simulate(2000)
    data.loc[:4, "region"] = None
    with pytest.raises(MissingCovariates, match="region: 5 row"):
        multinomial_odds_ratios(data, "group", 1, continuous=["age"], categorical=["region"])
    res = multinomial_odds_ratios(data, "group", 1, continuous=["age"], categorical=["region"], missing="drop")
    assert res.n_dropped == 5 and res.n_used == 1995


def test_not_estimable_is_named():
    data = _simulate(500).assign(group=1)
    with pytest.raises(ModelNotEstimable, match="reference"):
        multinomial_odds_ratios(data, "group", 1, continuous=["age"])
    data = _simulate(500).assign(const=1.0)
    with pytest.raises(ModelNotEstimable, match="collinear"):
        multinomial_odds_ratios(data, "group", 1, continuous=["age", "const"])


def test_quasi_separation_is_not_estimable():
    # 30 women of a fourth region, all in group 2: the likelihood grows without bound along region=D, so no
    # finite odds ratio exists (Newton stops at OR ~ 4e10 with the interval [0, inf] before this check).
    data = pd.concat([_simulate(3000), pd.DataFrame({"group": [2] * 30, "age": np.linspace(-10, 10, 30),
                                                     "region": ["D"] * 30})], ignore_index=True)
    with pytest.raises(ModelNotEstimable, match=r"region=D .*unbounded \(quasi-complete separation"):
        multinomial_odds_ratios(data, "group", 1, continuous={"age": 10}, categorical=["region"])


def test_aalen_johansen_hand_computed():
    # times 1..6; status: 1 event, 2 competing, 0 censored.
    time = [1, 2, 2, 3, 4, 5]
    status = [1, 2, 1, 0, 1, 2]
    out = aalen_johansen(time, status, times=[0, 1, 2, 3, 4, 5, 6])
    # t=1: n=6, d1=1 -> F=1/6, S=5/6. t=2: n=5, d1=1, d=2 -> F=1/6+5/6*1/5=1/3, S=5/6*3/5=1/2.
    # t=4: n=2, d1=1 -> F=1/3+1/2*1/2=7/12, S=1/4. t=5: n=1, competing -> F unchanged, S=0.
    assert out["cif"].tolist() == pytest.approx([0, 1 / 6, 1 / 3, 1 / 3, 7 / 12, 7 / 12, 7 / 12])
    assert out["n_at_risk"].tolist() == [6, 6, 5, 3, 2, 1, 0]
    assert out["survival"].tolist() == pytest.approx([1, 5 / 6, 1 / 2, 1 / 2, 1 / 4, 0, 0])
    # Delta-method variance at t=1: S(0)^2 d1 (n - d1) / n^3 = 5/216 (the other sums vanish at t = t_1).
    assert out["se"].iloc[1] == pytest.approx(np.sqrt(5 / 216))


def test_aalen_johansen_variance_matches_simulation():
    rng = np.random.default_rng(0)
    estimates, ses, covered = [], [], 0
    truth = (0.1 / 0.15) * (1 - np.exp(-0.15 * 8))
    for _ in range(200):
        t1, t2, c = rng.exponential(10, 300), rng.exponential(20, 300), rng.uniform(0, 30, 300)
        t = np.minimum.reduce([t1, t2, c])
        status = np.where(c == t, 0, np.where(t1 == t, 1, 2))
        out = aalen_johansen(t, status, times=[8.0])
        estimates.append(out["cif"].iloc[0])
        ses.append(out["se"].iloc[0])
        covered += out["lower"].iloc[0] <= truth <= out["upper"].iloc[0]
    assert np.mean(ses) == pytest.approx(np.std(estimates), rel=0.15)
    assert 0.9 <= covered / 200 <= 0.99
    assert np.mean(estimates) == pytest.approx(truth, abs=0.01)


def test_aalen_johansen_bad_input():
    with pytest.raises(ValueError, match="no observation"):
        aalen_johansen([], [])
    with pytest.raises(ValueError, match=">= 0"):
        aalen_johansen([-1, 2], [1, 0])
