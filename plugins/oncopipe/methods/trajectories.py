"""Group-based trajectory modelling (Nagin's GBTM) of monthly PDC: a censored-normal mixture fitted by EM.

Model. Person ``i`` belongs to one of ``k`` latent groups with probability ``pi_j``. In group ``j`` the
monthly PDC ``y_it`` is a normal variable censored at ``lower`` (0) and ``upper`` (1) with latent mean
``mu_jt = sum_p beta_jp * tau_t**p`` (polynomial of degree ``d_j`` <= 3, set per group) and standard
deviation ``sigma`` (one for all groups, as in Nagin's ``traj``; ``common_sigma=False`` gives one per
group). ``tau_t = (t - c) / c`` with ``c = (T - 1) / 2`` rescales month ``t`` = 0..T-1 to [-1, 1] for numerical
stability; the reported trajectories do not depend on it. The contribution of an observation is
``Phi((lower - mu) / sigma)`` if ``y <= lower``, ``1 - Phi((upper - mu) / sigma)`` if ``y >= upper`` and
``phi((y - mu) / sigma) / sigma`` otherwise; a person's likelihood is the product over the months she
is observed (months after death or the end of data are simply absent: missing at random, nobody is
dropped), mixed over groups.

Fitting. EM: the E-step gives posterior group probabilities, the M-step sets ``pi`` to their mean and
maximises the posterior-weighted censored-normal (Tobit) likelihood in ``beta`` and ``log sigma`` by
L-BFGS with the analytic gradient. Monthly PDC takes few distinct values (days covered / days in the
month), so observations are aggregated into cells (month, value): the data are a sparse person x cell
incidence matrix ``A`` and every step is two sparse products (``A @ loglik_cells`` for the E-step,
``A.T @ posterior`` for the M-step weights). Several starts are run on a subsample of people, each a
k-means partition over the **observed months only** (months after a person's follow-up ends are missing in
the starts as in the likelihood, never filled in) from its own k-means++ seeding; each start is iterated by
EM on the subsample, the start with the best subsample likelihood is then refined by EM on all people until
the relative change of the log-likelihood is below ``tol``.

Censoring at both bounds. Monthly PDC piles up at 1 (every day covered) and at 0 (none): these are not
values of the normal variable but the events "latent value >= 1" and "latent value <= 0". A month at 1.0
contributes ``P(y* >= 1) = 1 - Phi((1 - mu) / sigma)`` and a month at 0 contributes ``P(y* <= 0) =
Phi(-mu / sigma)`` (Tobit; Nagin 2005, ch. 2, the ``cnorm`` model of ``traj``); only months strictly inside
(0, 1) use the density. So a group whose months are mostly at 1.0 has a latent mean above 1 (its fitted mean
PDC, :meth:`GBTMFit.expected_value`, stays <= 1), and a group that stopped has a latent mean below 0; the
model is never fitted to the piled-up values as if they were ordinary observations.

Selection (Nagin 2005, ch. 4-5; Nagin and Odgers 2010). ``BIC = -2 logL + p ln N`` and ``AIC = -2 logL + 2p``
(smaller is better; Nagin's ``BIC = logL - p ln(N) / 2`` is ``-1/2`` of this, so the order of the models is
the same) with ``N`` the number of **people** (not observations), as Jones, Nagin and Roeder (2001) recommend,
and ``p = sum_j (d_j + 1) + (k - 1) + number of sigmas``. Every candidate is judged on Nagin's criteria
together (:class:`SelectionRules`), each reported in the selection table:

* ``app_ok``: average posterior probability of assignment ``APP_j >= 0.7`` in every group (mean of ``p_ij``
  over the people assigned to ``j``, assignment = maximum posterior);
* ``occ_ok``: odds of correct classification ``OCC_j = [APP_j / (1 - APP_j)] / [pi_j / (1 - pi_j)] >= 5``
  with ``pi_j`` the estimated group probability;
* ``shares_match``: the estimated probability and the share assigned agree in every group,
  ``|assigned_j - pi_j| <= share_tolerance * pi_j`` (0.25);
* ``size_ok``: every group reaches the minimum share (a parameter, 5% by default) within its sampling error:
  ``pi_j + 1.96 sqrt(pi_j (1 - pi_j) / N) >= min_share``. A true group of exactly 5% is estimated at 5% +/-
  its error; asking ``pi_j >= 5%`` would keep or drop it by chance (Nagin's criterion of a reasonably tight
  confidence interval for ``pi_j``), while a split-off group of 1-2% stays out.

A candidate meeting all four is adequate. Among the adequate ones the chosen model is the one with the fewest
groups whose BIC is within ``bic_evidence`` (10) of the smallest adequate BIC: ``BIC_simple - BIC_complex``
approximates ``2 ln B`` (the Bayes factor of the larger model, Jones, Nagin and Roeder 2001; Kass and Raftery
1995), and a larger model is taken only on "very strong" evidence (``2 ln B > 10``), so the choice does not
follow small BIC gains of spurious groups. If no candidate is adequate, the smallest BIC overall is chosen
(flagged). Relative entropy ``1 - sum_i sum_j -p_ij ln p_ij / (N ln k)`` is reported. Groups are numbered
1..k from the most to the least adherent (mean fitted PDC over the months).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import log_ndtr, logsumexp, ndtr

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
APP_MIN = 0.7
OCC_MIN = 5.0
SHARE_MIN = 0.05
SHARE_TOLERANCE = 0.25
BIC_EVIDENCE = 10.0
START_SOFTNESS = 0.01  # posterior mass a start partition leaves to the other groups
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class SelectionRules:
    """Nagin's adequacy criteria and the BIC evidence a larger model needs (module docstring)."""

    app_min: float = APP_MIN
    occ_min: float = OCC_MIN
    min_share: float = SHARE_MIN
    share_tolerance: float = SHARE_TOLERANCE
    bic_evidence: float = BIC_EVIDENCE

    def __post_init__(self) -> None:
        if not 0 < self.app_min < 1:
            raise ValueError(f"app_min must be in (0, 1), not {self.app_min}")
        if self.occ_min <= 0:
            raise ValueError(f"occ_min must be > 0, not {self.occ_min}")
        if not 0 <= self.min_share < 1:
            raise ValueError(f"min_share must be in [0, 1), not {self.min_share}")
        if self.share_tolerance <= 0:
            raise ValueError(f"share_tolerance must be > 0, not {self.share_tolerance}")
        if self.bic_evidence < 0:
            raise ValueError(f"bic_evidence must be >= 0, not {self.bic_evidence}")


@dataclass(frozen=True)
class Panel:
    """Monthly values of many people, aggregated into (month, value) cells.

    Build it with :func:`panel_from_long`. ``incidence`` is the person x cell 0/1 matrix (CSR).
    """

    person_ids: np.ndarray
    n_months: int
    cell_month: np.ndarray
    cell_value: np.ndarray
    incidence: sparse.csr_matrix
    incidence_t: sparse.csr_matrix
    observed: np.ndarray  # months observed per person

    @property
    def n_people(self) -> int:
        return len(self.person_ids)

    @property
    def n_observations(self) -> int:
        return int(self.incidence.nnz)

    def subset(self, rows: np.ndarray) -> Panel:
        inc = self.incidence[rows]
        return Panel(self.person_ids[rows], self.n_months, self.cell_month, self.cell_value, inc,
                     inc.T.tocsr(), self.observed[rows])

    def dense(self, rows: np.ndarray) -> np.ndarray:
        """Person x month matrix (NaN where unobserved) for the given rows (small subsets only)."""
        inc = self.incidence[rows].tocoo()
        out = np.full((len(rows), self.n_months), np.nan)
        out[inc.row, self.cell_month[inc.col]] = self.cell_value[inc.col]
        return out


def panel_from_long(
    frame: pd.DataFrame,
    *,
    person: str = "person_id",
    month: str = "month_index",
    value: str = "pdc",
    n_months: int | None = None,
    decimals: int = 9,
) -> Panel:
    """Aggregate a long table (one row per person and month) into a :class:`Panel`.

    Args:
        frame: long table; rows with a missing value are ignored (that month is unobserved).
        person, month, value: column names.
        n_months: number of months (default: max month + 1).
        decimals: values are rounded to this many decimals before grouping into cells.

    Raises:
        ValueError: missing columns, negative months, duplicated (person, month).
    """
    missing = [c for c in (person, month, value) if c not in frame.columns]
    if missing:
        raise ValueError(f"trajectory panel: missing column(s) {', '.join(missing)}")
    data = frame.loc[frame[value].notna(), [person, month, value]]
    if data.empty:
        raise ValueError("trajectory panel: no observed value")
    codes, persons = pd.factorize(data[person], sort=False)
    t = data[month].to_numpy().astype(np.int64)
    if t.min() < 0:
        raise ValueError("trajectory panel: negative month index")
    n_months = int(n_months if n_months is not None else t.max() + 1)
    if t.max() >= n_months:
        raise ValueError(f"trajectory panel: month {int(t.max())} >= n_months {n_months}")
    y = np.round(data[value].to_numpy(dtype=float), decimals)
    values, vcode = np.unique(y, return_inverse=True)
    cell_key = t * len(values) + vcode
    cells, cell_idx = np.unique(cell_key, return_inverse=True)
    n = len(persons)
    inc = sparse.csr_matrix((np.ones(len(t)), (codes, cell_idx)), shape=(n, len(cells)))
    # Duplicates show as summed entries of the person x month matrix (COO -> CSR needs no global sort).
    person_month = sparse.csr_matrix((np.ones(len(t), dtype=np.int32), (codes, t)), shape=(len(persons), n_months))
    person_month.sum_duplicates()
    if person_month.nnz and person_month.data.max() > 1:
        raise ValueError("trajectory panel: duplicated (person, month) rows")
    del person_month
    observed = np.bincount(codes, minlength=n)
    return Panel(np.asarray(persons), n_months, cells // len(values), values[cells % len(values)], inc,
                 inc.T.tocsr(), observed)


def _design(months: np.ndarray, n_months: int, degree: int) -> np.ndarray:
    c = max((n_months - 1) / 2, 0.5)
    tau = (np.asarray(months, dtype=float) - c) / c
    return np.vander(tau, degree + 1, increasing=True)


@dataclass
class GBTMFit:
    """One fitted trajectory model (groups ordered from most to least adherent)."""

    k: int
    degrees: tuple[int, ...]
    betas: list[np.ndarray]
    sigma: np.ndarray  # length 1 (common) or k
    pi: np.ndarray
    loglik: float
    n_people: int
    n_months: int
    n_iter: int
    converged: bool
    posterior: np.ndarray
    person_ids: np.ndarray
    lower: float = 0.0
    upper: float = 1.0
    stats: dict = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        return sum(d + 1 for d in self.degrees) + (self.k - 1) + len(self.sigma)

    @property
    def bic(self) -> float:
        return -2 * self.loglik + self.n_params * np.log(self.n_people)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def assignment(self) -> np.ndarray:
        """0-based group of maximum posterior probability per person."""
        return self.posterior.argmax(axis=1)

    def latent_mean(self, months: np.ndarray | None = None) -> np.ndarray:
        """k x months matrix of the latent (uncensored) means."""
        months = np.arange(self.n_months) if months is None else np.asarray(months)
        return np.stack([_design(months, self.n_months, d) @ b for d, b in zip(self.degrees, self.betas, strict=True)])

    def expected_value(self, months: np.ndarray | None = None) -> np.ndarray:
        """k x months matrix of the expected observed (censored) value, i.e. the fitted mean PDC."""
        mu = self.latent_mean(months)
        s = np.broadcast_to(self.sigma[:, None] if len(self.sigma) > 1 else self.sigma[0], mu.shape)
        a, b = (self.lower - mu) / s, (self.upper - mu) / s
        inside = mu * (ndtr(b) - ndtr(a)) + s * (np.exp(-0.5 * a**2) - np.exp(-0.5 * b**2)) / np.sqrt(2 * np.pi)
        return self.lower * ndtr(a) + inside + self.upper * (1 - ndtr(b))

    def diagnostics(self, rules: SelectionRules | None = None) -> dict[str, float]:
        """Entropy, group shares, APP, OCC and Nagin's criteria under ``rules`` (see module docstring)."""
        rules = rules or SelectionRules()
        post = self.posterior
        assign = self.assignment
        counts = np.bincount(assign, minlength=self.k)
        share = counts / self.n_people
        app = np.array([post[assign == j, j].mean() if (assign == j).any() else 0.0 for j in range(self.k)])
        with np.errstate(divide="ignore", invalid="ignore"):
            occ = (app / (1 - app)) / (self.pi / (1 - self.pi))
            share_gap = np.abs(share - self.pi) / self.pi
        occ = np.where(app >= 1, np.inf, occ)
        share_upper = self.pi + _Z95 * np.sqrt(self.pi * (1 - self.pi) / self.n_people)
        plogp = np.where(post > 0, post * np.log(np.clip(post, 1e-300, 1)), 0.0)
        entropy = 1 + plogp.sum() / (self.n_people * np.log(self.k)) if self.k > 1 else 1.0
        checks = {
            "app_ok": bool(app.min() >= rules.app_min),
            "occ_ok": bool(occ.min() >= rules.occ_min),
            "shares_match": bool(np.nan_to_num(share_gap, nan=np.inf).max() <= rules.share_tolerance),
            "size_ok": bool(share_upper.min() >= rules.min_share),
        }
        return {
            "entropy": float(entropy),
            "shares": share,
            "app": app,
            "occ": occ,
            "min_group_share": float(share.min()),
            "min_group_n": int(counts.min()),
            "min_estimated_share": float(self.pi.min()),
            "min_share_upper": float(share_upper.min()),
            "max_share_gap": float(np.nan_to_num(share_gap, nan=np.inf).max()),
            "min_app": float(app.min()),
            "min_occ": float(occ.min()),
            **checks,
            "adequate": all(checks.values()),
        }


class _Model:
    """The censored-normal mixture on one panel: cell log-likelihoods, E-step, Newton M-step.

    Parameters are kept in Olsen's form, ``theta_j = beta_j / sigma`` and ``h = 1 / sigma``, in which the
    censored-normal log-likelihood is globally concave: the weighted M-step is then solved by Newton's
    method with step halving, which converges in a few steps from the previous iteration's values.
    """

    def __init__(self, panel: Panel, degrees: Sequence[int], common_sigma: bool, lower: float, upper: float):
        self.panel = panel
        self.k = len(degrees)
        self.degrees = tuple(int(d) for d in degrees)
        self.common_sigma = common_sigma
        self.X = _design(panel.cell_month, panel.n_months, max(self.degrees))
        y = panel.cell_value
        self.left = y <= lower
        self.right = y >= upper
        self.mid = ~(self.left | self.right)
        self.y, self.lower, self.upper = y, lower, upper
        self.sizes = [d + 1 for d in self.degrees]
        self.n_h = 1 if common_sigma else self.k

    def _h_cells(self, h: np.ndarray) -> np.ndarray:
        return np.broadcast_to(h[None, :] if len(h) > 1 else h[0], (len(self.y), self.k))

    def terms(self, thetas: Sequence[np.ndarray], h: np.ndarray, order: int = 0):
        """Cell x group log-likelihood and, for ``order`` 2, its first and second derivatives in (m, h)."""
        m = np.column_stack([self.X[:, :s] @ t for s, t in zip(self.sizes, thetas, strict=True)])
        hc = self._h_cells(h)
        y = self.y[:, None]
        L, R, M = self.left, self.right, self.mid
        ll = np.empty_like(m)
        resid = hc * y - m
        ll[M] = np.log(hc[M]) - 0.5 * resid[M] ** 2 - _LOG_SQRT_2PI
        arg = np.where(L[:, None], hc * self.lower - m, m - hc * self.upper)
        ll[L] = log_ndtr(arg[L])
        ll[R] = log_ndtr(arg[R])
        if order == 0:
            return ll
        cens = ~M
        lam = np.zeros_like(m)
        lam[cens] = np.exp(-0.5 * arg[cens] ** 2 - _LOG_SQRT_2PI - ll[cens])
        dlam = -lam * (arg + lam)
        bound = np.where(L, self.lower, self.upper)[:, None]
        sign = np.where(L, -1.0, 1.0)[:, None]  # d arg / d m
        dm = np.where(M[:, None], resid, sign * lam)
        dh = np.where(M[:, None], 1 / hc - resid * y, -sign * lam * bound)
        d2m = np.where(M[:, None], -1.0, dlam)
        d2h = np.where(M[:, None], -1 / hc**2 - y**2, dlam * bound**2)
        dmh = np.where(M[:, None], y, -dlam * bound)
        return ll, dm, dh, d2m, d2h, dmh

    def to_natural(self, thetas, h) -> tuple[list[np.ndarray], np.ndarray]:
        hj = h if len(h) > 1 else np.repeat(h, self.k)
        return [t / hj[j] for j, t in enumerate(thetas)], 1 / h

    def e_step(self, thetas, h, pi, panel: Panel) -> tuple[float, np.ndarray]:
        cell = self.terms(thetas, h)
        joint = panel.incidence @ cell + np.log(np.clip(pi, 1e-300, None))[None, :]
        total = logsumexp(joint, axis=1)
        return float(total.sum()), np.exp(joint - total[:, None])

    def m_step(self, posterior: np.ndarray, thetas, h, panel: Panel, max_newton: int = 25):
        weights = np.asarray(panel.incidence_t @ posterior)  # cells x k
        pi = posterior.mean(axis=0)
        thetas = [t.copy() for t in thetas]
        h = h.copy()
        sizes = self.sizes
        offsets = np.r_[0, np.cumsum(sizes)]
        n_theta = offsets[-1]

        def value(th, hh):
            return float((weights * self.terms(th, hh)).sum())

        current = value(thetas, h)
        for _ in range(max_newton):
            _, dm, dh, d2m, d2h, dmh = self.terms(thetas, h, order=2)
            grad = np.zeros(n_theta + self.n_h)
            hess = np.zeros((n_theta + self.n_h,) * 2)
            for j, size in enumerate(sizes):
                X = self.X[:, :size]
                sl = slice(offsets[j], offsets[j + 1])
                w = weights[:, j]
                grad[sl] = X.T @ (w * dm[:, j])
                hess[sl, sl] = (X * (w * d2m[:, j])[:, None]).T @ X
                hj = n_theta + (0 if self.common_sigma else j)
                cross = X.T @ (w * dmh[:, j])
                hess[sl, hj] += cross
                hess[hj, sl] += cross
                grad[hj] += (w * dh[:, j]).sum()
                hess[hj, hj] += (w * d2h[:, j]).sum()
            try:
                step = np.linalg.solve(-hess, grad)
            except np.linalg.LinAlgError:
                step = grad / max(np.abs(np.diag(hess)).max(), 1.0)
            t = 1.0
            while t > 1e-6:
                new_h = h + t * step[n_theta:]
                if np.all(new_h > 0):
                    new_thetas = [thetas[j] + t * step[offsets[j]:offsets[j + 1]] for j in range(self.k)]
                    candidate = value(new_thetas, new_h)
                    if candidate >= current - 1e-12 * abs(current):
                        break
                t /= 2
            else:
                break
            gain = candidate - current
            thetas, h, current = new_thetas, new_h, candidate
            if gain <= 1e-10 * max(abs(current), 1.0):
                break
        return thetas, h, pi

    def init_from_labels(self, labels: np.ndarray, panel: Panel):
        # Nearly hard labels: with 0.9 / 0.1 the other groups' people outweigh a small group's own (a 3% group of
        # a 4-group start: 0.9 x 3% of the people against 0.1 / 3 x 97%) and its start dissolves into the mean.
        post = np.full((panel.n_people, self.k), START_SOFTNESS / max(self.k - 1, 1))
        post[np.arange(panel.n_people), labels] = 1 - START_SOFTNESS if self.k > 1 else 1.0
        weights = np.asarray(panel.incidence_t @ post)
        means = (weights * self.y[:, None]).sum(0) / np.maximum(weights.sum(0), 1e-12)
        h = np.full(self.n_h, 1 / 0.3)
        hj = h if len(h) > 1 else np.repeat(h, self.k)
        thetas = [np.r_[means[j] * hj[j], np.zeros(size - 1)] for j, size in enumerate(self.sizes)]
        return self.m_step(post, thetas, h, panel)

    def run_em(self, thetas, h, pi, panel: Panel, max_iter: int, tol: float):
        previous = -np.inf
        n_iter = 0
        while True:
            n_iter += 1
            loglik, post = self.e_step(thetas, h, pi, panel)
            converged = np.isfinite(previous) and abs(loglik - previous) <= tol * abs(loglik)
            if converged or n_iter >= max_iter:
                return thetas, h, pi, loglik, post, n_iter, bool(converged)
            previous = loglik
            thetas, h, pi = self.m_step(post, thetas, h, panel)


def _start_labels(panel: Panel, rows: np.ndarray, k: int, seed: int, max_iter: int = 100) -> np.ndarray:
    """Start partition: k-means over the observed months only (k-means++ seeding, Lloyd iterations).

    Months after a person's follow-up ends are missing, not values: the distance of a person to a centre is
    the mean squared difference over her observed months, and a centre's month is the mean of the people of
    the cluster observed that month. Filling them (e.g. carrying the last value forward) would pull people
    censored early towards flat trajectories and bias the starts.
    """
    dense = panel.dense(rows)
    mask = ~np.isnan(dense)
    x = np.where(mask, dense, 0.0)
    m = mask.astype(float)
    n_obs = np.maximum(m.sum(axis=1), 1.0)
    x2 = (x**2).sum(axis=1)
    month_mean = np.nan_to_num(np.nanmean(np.where(mask, dense, np.nan), axis=0), nan=0.5) if mask.any() else 0.5

    def distance(centres: np.ndarray) -> np.ndarray:
        return np.maximum(x2[:, None] - 2 * x @ centres.T + m @ (centres**2).T, 0.0) / n_obs[:, None]

    def centre_of(person: int) -> np.ndarray:
        return np.where(mask[person], x[person], month_mean)

    rng = np.random.default_rng(seed)
    n = len(rows)
    centres = np.empty((k, panel.n_months))
    centres[0] = centre_of(rng.integers(n))
    closest = distance(centres[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        pick = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centres[j] = centre_of(pick)
        closest = np.minimum(closest, distance(centres[j:j + 1])[:, 0])
    labels = np.full(n, -1)
    for _ in range(max_iter):
        d = distance(centres)
        new = d.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        one_hot = np.zeros((n, k))
        one_hot[np.arange(n), labels] = 1.0
        counts = one_hot.T @ m
        sums = one_hot.T @ x
        centres = np.where(counts > 0, sums / np.maximum(counts, 1.0), centres)
        empty = np.flatnonzero(np.bincount(labels, minlength=k) == 0)
        for j in empty:  # an empty cluster restarts at the person farthest from her centre
            far = int(d[np.arange(n), labels].argmax())
            centres[j] = centre_of(far)
            labels[far] = j
    return _by_level(panel, rows, labels, k)


def _by_level(panel: Panel, rows: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Relabel a partition from the most to the least adherent cluster (mean observed value), so that
    per-group degrees apply in that order."""
    inc = panel.incidence[rows]
    sums, counts = inc @ panel.cell_value, np.asarray(inc.sum(axis=1)).ravel()
    level = np.bincount(labels, weights=sums, minlength=k) / np.maximum(np.bincount(labels, weights=counts,
                                                                                   minlength=k), 1.0)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-level, kind="stable")] = np.arange(k)
    return rank[labels]


def fit_gbtm(
    panel: Panel,
    k: int,
    degree: int | Sequence[int] = 3,
    *,
    n_starts: int = 6,
    start_sample: int = 5000,
    seed: int = 0,
    common_sigma: bool = True,
    lower: float = 0.0,
    upper: float = 1.0,
    max_iter: int = 500,
    tol: float = 1e-8,
    start_iter: int = 100,
    previous: GBTMFit | None = None,
) -> GBTMFit:
    """Fit a ``k``-group censored-normal trajectory model by EM (see module docstring).

    Args:
        panel: the data (:func:`panel_from_long`).
        k: number of groups (>= 1).
        degree: polynomial degree (0..3) of every group, or one degree per group, from the most to the least
            adherent (start clusters are numbered in that order).
        n_starts: number of k-means starts (over observed months only) tried on the subsample.
        start_sample: people in the subsample used for starts (all if fewer).
        seed: random seed (subsample and k-means).
        common_sigma: one sigma for all groups (True, Nagin's default) or one per group.
        lower, upper: censoring points (0 and 1 for PDC).
        max_iter, tol: EM stops when the relative change of the log-likelihood is <= ``tol``.
        start_iter: EM iterations at most for each start on the subsample (tolerance 1e-6).
        previous: a fit with ``k - 1`` groups on the same panel: each of its groups split in two (k-means over
            the observed months of its members) gives one more start. k-means alone tends to split the large
            adherent group and merge small declining ones; splitting a group of the smaller model does not.

    Returns:
        The fit, groups ordered from the most to the least adherent.
    """
    degrees = (degree,) * k if isinstance(degree, int | np.integer) else tuple(degree)
    if len(degrees) != k or any(d < 0 or d > 3 for d in degrees):
        raise ValueError(f"degree must be 0..3, one per group ({k}); got {degree!r}")
    if panel.n_people < k:
        raise ValueError(f"cannot fit {k} groups on {panel.n_people} people")
    model = _Model(panel, degrees, common_sigma, lower, upper)
    rng = np.random.default_rng(seed)
    rows = (np.sort(rng.choice(panel.n_people, start_sample, replace=False))
            if panel.n_people > start_sample else np.arange(panel.n_people))
    sub = panel.subset(rows) if len(rows) < panel.n_people else panel
    starts = [_start_labels(panel, rows, k, seed * 1000 + s) if k > 1 else np.zeros(len(rows), int)
              for s in range(max(n_starts, 1))]
    if previous is not None and previous.k == k - 1 and k > 1:
        starts += _split_starts(panel, rows, previous, seed)
        starts += _misfit_starts(panel, rows, previous)
    best = None
    for labels in starts:
        thetas, h, pi = model.init_from_labels(labels, sub)
        thetas, h, pi, ll, _, _, _ = model.run_em(thetas, h, pi, sub, max_iter=start_iter, tol=1e-6)
        if best is None or ll > best[3]:
            best = (thetas, h, pi, ll)
    thetas, h, pi, ll, post, n_iter, converged = model.run_em(*best[:3], panel, max_iter=max_iter, tol=tol)
    betas, sigma = model.to_natural(thetas, h)
    fit = GBTMFit(k, degrees, betas, sigma, pi, ll, panel.n_people, panel.n_months,
                  n_iter, converged, post, panel.person_ids, lower, upper)
    return _ordered(fit)


def _split_starts(panel: Panel, rows: np.ndarray, previous: GBTMFit, seed: int) -> list[np.ndarray]:
    """Start partitions of the subsample ``rows`` with one group more than ``previous``: one per group split."""
    if not np.array_equal(previous.person_ids, panel.person_ids):
        raise ValueError("previous fit is not on the same panel")
    assigned = previous.assignment[rows]
    out = []
    for j in range(previous.k):
        members = np.flatnonzero(assigned == j)
        if len(members) < 2:
            continue
        halves = _start_labels(panel, rows[members], 2, seed * 1000 + 500 + j)
        labels = assigned.copy()
        labels[members[halves == 1]] = previous.k
        out.append(_by_level(panel, rows, labels, previous.k + 1))
    return out


# Shares of the worst-fitted people of the (k-1)-group fit that seed a new group (see _misfit_starts).
MISFIT_SHARES = (0.03, 0.06)


def _misfit_starts(panel: Panel, rows: np.ndarray, previous: GBTMFit) -> list[np.ndarray]:
    """Start partitions with one group more than ``previous``: its worst-fitted people form the new group.

    A small real group (a few % of people) is absorbed by a large group in the (k-1)-group fit, and neither
    k-means nor splitting a large group in two isolates it; its members are the people that the (k-1)-group
    fit explains worst (lowest mean log-likelihood per observed month under their assigned group). Each share
    of ``MISFIT_SHARES`` of those people seeds one start; EM then keeps or dissolves the group.
    """
    model = _Model(panel, previous.degrees, len(previous.sigma) == 1, previous.lower, previous.upper)
    h = 1 / previous.sigma
    hj = h if len(h) > 1 else np.repeat(h, previous.k)
    thetas = [b * hj[j] for j, b in enumerate(previous.betas)]
    sub = panel.subset(rows) if len(rows) < panel.n_people else panel
    person_ll = np.asarray(sub.incidence @ model.terms(thetas, h))
    assigned = previous.assignment[rows]
    fit_per_month = person_ll[np.arange(len(rows)), assigned] / np.maximum(sub.observed, 1)
    order = np.argsort(fit_per_month, kind="stable")
    out = []
    for share in MISFIT_SHARES:
        worst = order[:max(int(round(share * len(rows))), 2)]
        labels = assigned.copy()
        labels[worst] = previous.k
        if len(np.unique(labels)) == previous.k + 1:
            out.append(_by_level(panel, rows, labels, previous.k + 1))
    return out


def _ordered(fit: GBTMFit) -> GBTMFit:
    order = np.argsort(-fit.expected_value().mean(axis=1), kind="stable")
    fit.betas = [fit.betas[j] for j in order]
    fit.degrees = tuple(fit.degrees[j] for j in order)
    fit.pi = fit.pi[order]
    fit.posterior = fit.posterior[:, order]
    if len(fit.sigma) > 1:
        fit.sigma = fit.sigma[order]
    fit.stats = fit.diagnostics()
    return fit


@dataclass
class Selection:
    """Candidates of a model selection, the table that compares them and the chosen one."""

    fits: dict[int, GBTMFit]
    table: pd.DataFrame
    chosen_k: int
    chosen_adequate: bool
    rules: SelectionRules = field(default_factory=SelectionRules)

    @property
    def chosen(self) -> GBTMFit:
        return self.fits[self.chosen_k]


def select_gbtm(
    panel: Panel,
    *,
    min_groups: int = 2,
    max_groups: int = 7,
    degree: int | Mapping[int, Sequence[int]] = 3,
    rules: SelectionRules | None = None,
    progress: Callable[[int, GBTMFit], None] | None = None,
    **fit_options,
) -> Selection:
    """Fit ``min_groups..max_groups`` groups and choose by Nagin's criteria together (module docstring).

    Args:
        panel: the data.
        min_groups, max_groups: range of the number of groups.
        degree: one degree for every group of every model, or ``{k: [degree per group]}``.
        rules: the criteria (:class:`SelectionRules`: APP, OCC, share match, minimum share, BIC evidence).
        progress: called after each fit with ``(k, fit)``.
        **fit_options: passed to :func:`fit_gbtm` (n_starts, seed, common_sigma, ...); each fit after the
            first also starts from the groups of the fit with one group fewer, each split in two.

    Returns:
        The :class:`Selection`; ``table`` has, per candidate: k, log_likelihood, n_params, bic, aic, entropy,
        min_group_share (assigned), min_group_n, min_estimated_share (``pi``), min_share_upper (its 95% upper
        bound), max_share_gap (``|assigned - pi| / pi``), min_app, min_occ, the criteria app_ok, occ_ok,
        shares_match, size_ok, adequate, bic_evidence (``BIC - smallest adequate BIC``, ``2 ln B`` against the
        best adequate model), converged, chosen.
    """
    if not 1 <= min_groups <= max_groups:
        raise ValueError(f"need 1 <= min_groups <= max_groups, got {min_groups}..{max_groups}")
    fits: dict[int, GBTMFit] = {}
    for k in range(min_groups, max_groups + 1):
        deg = degree.get(k, 3) if isinstance(degree, Mapping) else degree
        fits[k] = fit_gbtm(panel, k, deg, previous=fits.get(k - 1), **fit_options)
        if progress is not None:
            progress(k, fits[k])
    return choose_model(fits, rules)


def choose_model(fits: Mapping[int, GBTMFit], rules: SelectionRules | None = None) -> Selection:
    """Judge fitted candidates on Nagin's criteria under ``rules`` and choose one (see :func:`select_gbtm`).

    The fits are not changed except their ``stats``, recomputed under ``rules``; so the same candidates can be
    judged again under other rules (e.g. another minimum share) without fitting them again.
    """
    if not fits:
        raise ValueError("choose_model: no candidate model")
    rules = rules or SelectionRules()
    rows = []
    for k in sorted(fits):
        fit = fits[k]
        fit.stats = fit.diagnostics(rules)
        st = fit.stats
        rows.append({"k": k, "log_likelihood": fit.loglik, "n_params": fit.n_params, "bic": fit.bic, "aic": fit.aic,
                     "entropy": st["entropy"], "min_group_share": st["min_group_share"],
                     "min_group_n": st["min_group_n"], "min_estimated_share": st["min_estimated_share"],
                     "min_share_upper": st["min_share_upper"], "max_share_gap": st["max_share_gap"],
                     "min_app": st["min_app"], "min_occ": st["min_occ"], "app_ok": st["app_ok"],
                     "occ_ok": st["occ_ok"], "shares_match": st["shares_match"], "size_ok": st["size_ok"],
                     "adequate": st["adequate"], "converged": fit.converged})
    table = pd.DataFrame(rows)
    adequate = table[table["adequate"]]
    if len(adequate):
        best = float(adequate["bic"].min())
        chosen_k = int(adequate.loc[adequate["bic"] <= best + rules.bic_evidence, "k"].min())
    else:
        best = float(table["bic"].min())
        chosen_k = int(table.loc[table["bic"].idxmin(), "k"])
    table.insert(table.columns.get_loc("converged"), "bic_evidence", table["bic"] - best)
    table["chosen"] = table["k"] == chosen_k
    return Selection(dict(fits), table, chosen_k, bool(table.loc[table["chosen"], "adequate"].iloc[0]), rules)


def group_summary(fit: GBTMFit) -> pd.DataFrame:
    """Per group: n_patients (assigned), share, estimated_probability, app, occ, mean fitted PDC."""
    st = fit.stats
    counts = np.bincount(fit.assignment, minlength=fit.k)
    return pd.DataFrame({
        "group": np.arange(1, fit.k + 1),
        "n_patients": counts,
        "share": counts / fit.n_people,
        "estimated_probability": fit.pi,
        "app": st["app"],
        "occ": st["occ"],
        "mean_fitted_pdc": fit.expected_value().mean(axis=1),
    })


def simulate_panel(
    n_people: int,
    trajectories: np.ndarray,
    *,
    shares: Sequence[float],
    sigma: float = 0.2,
    dropout_share: float = 0.2,
    days_in_month: int = 30,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulate monthly PDC from a censored-normal mixture (tests and benchmarks).

    Args:
        n_people: number of people.
        trajectories: groups x months matrix of latent means.
        shares: group probabilities.
        sigma: latent standard deviation.
        dropout_share: share of people whose follow-up stops at a uniform random month (death, end of data).
        days_in_month: values are rounded to whole days over this month length, like real PDC.
        seed: random seed.

    Returns:
        (long table person_id, month_index, pdc; true 0-based group per person).
    """
    rng = np.random.default_rng(seed)
    k, months = trajectories.shape
    group = rng.choice(k, n_people, p=np.asarray(shares) / np.sum(shares))
    latent = trajectories[group] + rng.normal(0, sigma, (n_people, months))
    pdc = np.round(np.clip(latent, 0, 1) * days_in_month) / days_in_month
    last = np.full(n_people, months)
    drop = rng.random(n_people) < dropout_share
    last[drop] = rng.integers(1, months, drop.sum())
    observed = np.arange(months)[None, :] < last[:, None]
    rows, cols = np.nonzero(observed)
    frame = pd.DataFrame({"person_id": rows.astype(np.int64), "month_index": cols, "pdc": pdc[rows, cols]})
    return frame, group
