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
                                   "min_group_n", "min_estimated_share", "min_share_upper", "max_share_gap",
                                   "min_app", "min_occ", "app_ok", "occ_ok", "shares_match", "size_ok", "adequate",
                                   "bic_evidence", "converged", "chosen"]
    assert (table["adequate"] == table[["app_ok", "occ_ok", "shares_match", "size_ok"]].all(axis=1)).all()
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


# Four planted groups over 24 months: adherent, slow decline, fast decline, and a small group adherent for 10
# months that then drops (a kink, which the quadratic of each group only approximates).
_m = np.arange(24)
SMALL_GROUP = np.stack([np.full(24, 1.15), 1.05 - 0.6 * _m / 24, 0.95 - 1.6 * _m / 24,
                        np.where(_m < 10, 1.1, 1.1 - 0.12 * (_m - 10))])


def _exact_groups(n: int, trajectories: np.ndarray, shares, seed: int, **options):
    """simulate_panel with exactly round(share x n) people per group (a true group of exactly 5%)."""
    frames, truth, offset = [], [], 0
    for j, share in enumerate(shares):
        size = int(round(share * n))
        frame, _ = tr.simulate_panel(size, trajectories[j:j + 1], shares=[1.0], seed=seed * 100 + j, **options)
        frames.append(frame.assign(person_id=frame["person_id"] + offset))
        truth += [j] * size
        offset += size
    return pd.concat(frames, ignore_index=True), np.asarray(truth)


def _small_group_selection(small: float, seed: int, n: int = 2500, **rules):
    # Everyone followed 24 months: a woman of the small group lost before month 8 would look adherent, so the
    # identifiable share would be below the planted one.
    frame, truth = _exact_groups(n, SMALL_GROUP, [0.62 - small, 0.23, 0.15, small], seed, sigma=0.25,
                                 dropout_share=0.0)
    panel = tr.panel_from_long(frame, n_months=24)
    sel = tr.select_gbtm(panel, min_groups=2, max_groups=5, degree=2, seed=0, n_starts=2,
                         rules=tr.SelectionRules(**rules))
    return sel, truth


def _ari(fit, truth):
    return adjusted_rand_score(truth, fit.assignment[np.argsort(fit.person_ids)])


@pytest.fixture(scope="module")
def five_percent():
    return _small_group_selection(0.05, seed=1)


@pytest.fixture(scope="module")
def three_percent():
    return _small_group_selection(0.03, seed=1, min_share=0.02)


def test_a_real_five_percent_group_is_kept(five_percent):
    """A true 5% group is estimated at 5% +/- its sampling error: the minimum-share rule judges it with that
    error (size_ok), so the 4-group model is adequate whether its assigned share falls just under 5% or not."""
    sel, truth = five_percent
    assert sel.chosen_k == 4 and sel.chosen_adequate
    assert _ari(sel.chosen, truth) >= 0.9
    row = sel.table.set_index("k").loc[4]
    assert row["min_share_upper"] >= 0.05 and row["size_ok"]
    # The spurious 5th group fails Nagin's other criteria, not (only) the minimum share.
    five = sel.table.set_index("k").loc[5]
    assert not (five["app_ok"] and five["occ_ok"] and five["shares_match"])


def test_a_real_three_percent_group_with_its_minimum_share(three_percent):
    """With the minimum share set to 2% a true 3% group is found (right k, ARI >= 0.9); under the default 5% the
    same candidates, judged again, fail the size rule at 4 groups and the 3-group model is chosen."""
    sel, truth = three_percent
    assert sel.rules.min_share == 0.02
    assert sel.chosen_k == 4 and sel.chosen_adequate
    assert _ari(sel.chosen, truth) >= 0.9
    strict = tr.choose_model(sel.fits, tr.SelectionRules())
    assert not strict.table.set_index("k").loc[4, "size_ok"]
    assert strict.chosen_k == 3


def test_bic_evidence_prefers_the_simpler_model_on_a_small_gain(three_percent):
    """A larger adequate model is chosen only if its BIC is lower by more than bic_evidence (2 ln B > 10): with a
    huge threshold the simplest adequate candidate wins; with 0 it is the smallest BIC among adequate ones."""
    sel, _ = three_percent
    adequate = sel.table[sel.table["adequate"]]
    loose = tr.choose_model(sel.fits, tr.SelectionRules(min_share=0.02, bic_evidence=1e12))
    assert loose.chosen_k == int(adequate["k"].min())
    exact = tr.choose_model(sel.fits, tr.SelectionRules(min_share=0.02, bic_evidence=0))
    assert exact.chosen_k == int(adequate.loc[adequate["bic"].idxmin(), "k"])
    assert exact.table.loc[exact.table["chosen"], "bic_evidence"].iloc[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize(("small", "min_share"), [(0.05, 0.05), (0.03, 0.02)])
@pytest.mark.parametrize("seed", [2, 3])
def test_small_group_choice_is_stable_across_samples(small, min_share, seed):
    sel, truth = _small_group_selection(small, seed=seed, min_share=min_share)
    assert sel.chosen_k == 4
    assert _ari(sel.chosen, truth) >= 0.9


def test_selection_rules_are_validated():
    with pytest.raises(ValueError, match="min_share"):
        tr.SelectionRules(min_share=1.5)
    with pytest.raises(ValueError, match="app_min"):
        tr.SelectionRules(app_min=0)


def test_mass_at_both_bounds_is_censored_not_observed():
    """A month at 1.0 is the event latent >= 1 (log of 1 - Phi((1 - mu) / sigma)), a month at 0 the event
    latent <= 0 (log Phi(-mu / sigma)); a month inside uses the density. So a group at latent mean 1.3
    (sigma 0.3: 84% of its months at 1.0) is fitted with its latent mean above 1 and sigma recovered, while the
    mean of its observed values is below 1; likewise a stopped group at -0.2 (75% of months at 0)."""
    months = 12
    frame, _ = tr.simulate_panel(1500, np.stack([np.full(months, 1.3), np.full(months, -0.2)]), shares=[0.5, 0.5],
                                 sigma=0.3, dropout_share=0.0, days_in_month=10**6, seed=2)
    truth_high = frame.groupby("person_id")["pdc"].mean() > 0.5
    high = frame[frame["person_id"].map(truth_high)]
    assert (high["pdc"] == 1.0).mean() == pytest.approx(1 - norm.cdf((1 - 1.3) / 0.3), abs=0.02)
    a, b = -1.3 / 0.3, (1 - 1.3) / 0.3
    censored_mean = 1.3 * (norm.cdf(b) - norm.cdf(a)) + 0.3 * (norm.pdf(a) - norm.pdf(b)) + norm.sf(b)
    assert high["pdc"].mean() == pytest.approx(censored_mean, abs=0.005) and censored_mean < 0.98
    fit = tr.fit_gbtm(tr.panel_from_long(frame), 2, 0, n_starts=1)
    assert fit.betas[0][0] == pytest.approx(1.3, abs=0.03) and fit.betas[1][0] == pytest.approx(-0.2, abs=0.03)
    assert fit.sigma[0] == pytest.approx(0.3, abs=0.02)
    expected = fit.expected_value()
    assert expected.max() <= 1.0 and expected.min() >= 0.0
    assert expected[0, 0] == pytest.approx(high["pdc"].mean(), abs=0.01)
    # Each cell's log-likelihood by the censoring rule, against scipy.
    model = tr._Model(tr.panel_from_long(frame), (0, 0), True, 0.0, 1.0)
    ll = model.terms([np.array([1.3 / 0.3]), np.array([-0.2 / 0.3])], np.array([1 / 0.3]))
    y = model.y
    want = np.where(y <= 0, norm.logcdf(-1.3 / 0.3), np.where(y >= 1, norm.logsf((1 - 1.3) / 0.3),
                                                             norm.logpdf((y - 1.3) / 0.3) - np.log(0.3)))
    assert ll[:, 0] == pytest.approx(want, rel=1e-10)
