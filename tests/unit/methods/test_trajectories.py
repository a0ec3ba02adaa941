"""GBTM (oncopipe.methods.trajectories): recovery of planted groups, selection rules, likelihood and panel handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods import trajectories as tr
from scipy.stats import norm
from sklearn.metrics import adjusted_rand_score

MONTHS = 36
_t = np.arange(MONTHS)
PLANTED = np.stack([np.full(MONTHS, 1.1), 1.0 - 0.025 * _t, 0.9 - 0.08 * _t])


@pytest.fixture(scope="module")
def simulated():
    frame, truth = tr.simulate_panel(3000, PLANTED, shares=[0.5, 0.3, 0.2], sigma=0.2, dropout_share=0.25, seed=11)
    return frame, truth


@pytest.fixture(scope="module")
def selection(simulated):
    panel = tr.panel_from_long(simulated[0])
    return tr.select_gbtm(panel, min_groups=2, max_groups=5, degree=2, n_starts=3, seed=0)


def test_recovers_number_of_groups_and_membership(simulated, selection):
    _, truth = simulated
    assert selection.chosen_k == 3
    assert selection.chosen_adequate
    fit = selection.chosen
    order = {pid: i for i, pid in enumerate(fit.person_ids)}
    assigned = fit.assignment[[order[i] for i in range(len(truth))]]
    assert adjusted_rand_score(truth, assigned) >= 0.8
    # Groups are ordered from the most adherent; the planted latent means are recovered.
    latent = fit.latent_mean()
    identified = PLANTED > -0.2  # far below the censoring point the latent mean is barely identified
    assert np.abs(latent - PLANTED)[identified].max() < 0.1
    assert fit.sigma[0] == pytest.approx(0.2, abs=0.02)
    assert np.all(np.diff(fit.expected_value().mean(axis=1)) < 0)


def test_selection_table(selection):
    table = selection.table
    assert list(table.columns) == ["k", "log_likelihood", "n_params", "bic", "aic", "entropy", "min_group_share",
                                   "min_group_n", "min_app", "min_occ", "adequate", "converged", "chosen"]
    assert table["k"].tolist() == [2, 3, 4, 5]
    assert table["chosen"].sum() == 1
    # BIC with N = people: -2 logL + p ln(N); p = 3 x (2 + 1) + 2 + 1 for 3 quadratic groups.
    row = table.set_index("k").loc[3]
    assert row["n_params"] == 12
    assert row["bic"] == pytest.approx(-2 * row["log_likelihood"] + 12 * np.log(3000))
    assert row["aic"] == pytest.approx(-2 * row["log_likelihood"] + 24)
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["bic"] == table.loc[table["adequate"], "bic"].min()


def test_log_likelihood_matches_direct_computation():
    frame, _ = tr.simulate_panel(200, PLANTED[:2, :12], shares=[0.6, 0.4], sigma=0.25, seed=3)
    panel = tr.panel_from_long(frame)
    fit = tr.fit_gbtm(panel, 2, [1, 2], n_starts=2, seed=1)
    # Recompute the mixture log-likelihood observation by observation.
    tau = (frame["month_index"].to_numpy() - 5.5) / 5.5
    y = frame["pdc"].to_numpy()
    comp = []
    for j in range(2):
        mu = np.polynomial.polynomial.polyval(tau, fit.betas[j])
        s = fit.sigma[0]
        ll = np.where(y <= 0, norm.logcdf(-mu / s), np.where(y >= 1, norm.logsf((1 - mu) / s),
                                                              norm.logpdf((y - mu) / s) - np.log(s)))
        comp.append(pd.Series(ll).groupby(frame["person_id"].to_numpy()).sum().to_numpy() + np.log(fit.pi[j]))
    total = np.logaddexp(comp[0], comp[1]).sum()
    assert fit.loglik == pytest.approx(total, rel=1e-9)
    assert fit.n_params == (2 + 3) + 1 + 1


def test_people_with_short_follow_up_are_kept(simulated):
    frame, _ = simulated
    panel = tr.panel_from_long(frame)
    assert panel.n_people == 3000
    assert panel.n_observations == len(frame)
    assert panel.observed.min() < MONTHS


def test_adequacy_rules_flag_a_tiny_group():
    # 2 planted groups, one of 3%: the 2-group model fails the 5% rule.
    frame, _ = tr.simulate_panel(2000, PLANTED[[0, 2]], shares=[0.97, 0.03], sigma=0.2, seed=5)
    sel = tr.select_gbtm(tr.panel_from_long(frame), min_groups=1, max_groups=2, degree=1, n_starts=2)
    row = sel.table.set_index("k").loc[2]
    assert row["min_group_share"] < 0.05
    assert not row["adequate"]


def test_group_specific_sigma_and_per_group_degrees():
    frame, _ = tr.simulate_panel(1500, PLANTED, shares=[0.4, 0.3, 0.3], sigma=0.15, seed=8)
    fit = tr.fit_gbtm(tr.panel_from_long(frame), 3, [0, 1, 1], common_sigma=False, n_starts=2)
    assert fit.degrees == (0, 1, 1)
    assert len(fit.sigma) == 3 and np.allclose(fit.sigma, 0.15, atol=0.03)
    assert fit.n_params == 1 + 2 + 2 + 2 + 3


def test_panel_rejects_duplicates_and_bad_degree():
    frame = pd.DataFrame({"person_id": [1, 1], "month_index": [0, 0], "pdc": [0.5, 0.6]})
    with pytest.raises(ValueError, match="duplicated"):
        tr.panel_from_long(frame)
    ok = pd.DataFrame({"person_id": [1, 2, 3], "month_index": [0, 0, 0], "pdc": [0.5, 0.6, 1.0]})
    with pytest.raises(ValueError, match="degree"):
        tr.fit_gbtm(tr.panel_from_long(ok), 2, 4)


def test_starts_treat_months_after_follow_up_as_missing():
    # Early drop (0.2 for 3 months, then 1.0) vs flat 0.6; women of the first kind censored after month 2 look
    # like the first kind over their observed months. Filling their missing months with the last value
    # (0.2) would put them with the flat 0.6 group.
    months = 24
    early = np.r_[np.full(3, 0.2), np.full(months - 3, 1.0)]
    rows = [(i, t, early[t]) for i in range(200) for t in range(months)]
    rows += [(200 + i, t, 0.6) for i in range(200) for t in range(months)]
    rows += [(400 + i, t, early[t]) for i in range(100) for t in range(3)]
    panel = tr.panel_from_long(pd.DataFrame(rows, columns=["person_id", "month_index", "pdc"]))
    labels = tr._start_labels(panel, np.arange(panel.n_people), 2, seed=0)
    assert len(set(labels[:200])) == 1 and len(set(labels[200:400])) == 1 and labels[0] != labels[200]
    assert (labels[400:] == labels[0]).all()
    assert labels[0] == 0  # clusters are numbered from the most adherent (mean 0.93 against 0.6)


def test_selection_starts_from_the_smaller_model_split():
    frame, truth = tr.simulate_panel(1500, PLANTED, shares=[0.5, 0.3, 0.2], sigma=0.2, seed=4)
    panel = tr.panel_from_long(frame)
    two = tr.fit_gbtm(panel, 2, 2, n_starts=1)
    splits = tr._split_starts(panel, np.arange(panel.n_people), two, seed=0)
    assert len(splits) == 2 and all(set(np.unique(s)) == {0, 1, 2} for s in splits)
    three = tr.fit_gbtm(panel, 3, 2, n_starts=1, previous=two)
    assert three.loglik >= tr.fit_gbtm(panel, 3, 2, n_starts=1).loglik - 1e-6 * abs(three.loglik)
    with pytest.raises(ValueError, match="same panel"):
        tr._split_starts(tr.panel_from_long(frame[frame["person_id"] < 100]), np.arange(100), two, seed=0)
