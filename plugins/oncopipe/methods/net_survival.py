"""Pohar-Perme net survival against a general-population life table (as R ``relsurv::rs.surv``,
``method="pohar-perme"``).

Life table (argument ``life_table``): a DataFrame with columns ``sex`` (``male``/``female``), ``age`` (whole
years), ``year`` (calendar year) and either ``hazard`` (annual force of mortality, per person-year, constant
within the year of age and calendar year) or ``qx`` (annual probability of death; converted with
``hazard = -ln(1 - qx)``, ``qx`` of 1 capped at 1 - 1e-9). Ages above the table use its oldest age, years
outside it the nearest year (as R rate tables do).

Expected hazard: each patient's population hazard is looked up, day by day of follow-up, at the attained age
``age_at_diagnosis + t`` and the calendar year ``year_of_diagnosis + t`` (``t`` in years, 365.25 days), so a
patient moves through cells of the table as follow-up proceeds; the daily hazard is the table's annual hazard
/ 365.25 evaluated at the middle of the day. ``Lambda_P,i(t)`` is the cumulated expected hazard and the
inverse-probability weight is ``w_i(t) = 1 / S_P,i(t) = exp(Lambda_P,i(t))``.

Estimator (Pohar Perme, Stare & Esteve 2012), on the daily grid of follow-up (times in whole days; a time
with a fraction is rounded up):

``Lambda_E(t) = sum_{s <= t} [ sum_i dN_i(s) w_i(s) / sum_i Y_i(s) w_i(s) ]
              - int_0^t sum_i Y_i(s) w_i(s) lambda_P,i(s) ds / sum_i Y_i(s) w_i(s)``

with ``Y_i(s) = 1`` while follow-up ``>= s``. Because ``w_i lambda_P,i ds = dw_i``, the integral over a day
with a fixed risk set is exactly ``log(W(s) / W(s - 1))`` where ``W`` is the weighted number at risk; no
quadrature error beyond the daily lookup. Net survival ``S_N(t) = exp(-Lambda_E(t))``.

Variance (Pohar Perme et al. 2012, eq. for the cumulative excess hazard; as relsurv):
``Var Lambda_E(t) = sum_{s <= t} sum_i dN_i(s) w_i(s)^2 / (sum_i Y_i(s) w_i(s))^2``; the confidence interval is
on the log scale of survival (relsurv's default ``conf.type="log"``): ``S_N exp(-+ z se)``. ``S_N`` may exceed
1 when the cohort dies less than the population.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from oncopipe.methods.cox import ConvergenceError

DAYS_PER_YEAR = 365.25
_CHUNK_CELLS = 4_000_000
# Piecewise-constant baseline of the excess-hazard model: monthly over the first quarter, where the excess
# hazard of poor-prognosis cancers falls fastest, then coarser. Too coarse an early split biases the ratios of
# high-risk groups upwards (their person-time is concentrated where the true hazard is highest).
EXCESS_BREAKS_YEARS = (0, 1 / 12, 2 / 12, 3 / 12, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5)


class LifeTableError(ValueError):
    """The life table lacks a column, a sex, or has invalid values."""


def hazard_array(life_table: pd.DataFrame) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """Life table -> (sex index, ages, years, hazard[sex, age, year]) with annual hazards.

    Raises:
        LifeTableError: missing columns, a gap in the age x year grid, negative or missing values.
    """
    need = {"sex", "age", "year"}
    missing = need - set(life_table.columns)
    if missing or not ({"hazard", "qx"} & set(life_table.columns)):
        raise LifeTableError(f"life table needs sex, age, year and hazard or qx; missing {sorted(missing)}")
    lt = life_table.copy()
    if "hazard" not in lt.columns:
        qx = lt["qx"].astype(float)
        if ((qx < 0) | (qx > 1) | qx.isna()).any():
            raise LifeTableError("life table qx must be in [0, 1]")
        lt["hazard"] = -np.log1p(-np.minimum(qx, 1 - 1e-9))
    haz = lt["hazard"].astype(float)
    if haz.isna().any() or (haz < 0).any():
        raise LifeTableError("life table hazard must be non-missing and >= 0")
    lt["hazard"] = np.minimum(haz, -np.log(1e-9))
    sexes = sorted(lt["sex"].astype(str).unique())
    ages = np.sort(lt["age"].astype(int).unique())
    years = np.sort(lt["year"].astype(int).unique())
    if ages.size != ages[-1] - ages[0] + 1 or years.size != years[-1] - years[0] + 1:
        raise LifeTableError("life table ages and years must be consecutive")
    cube = np.full((len(sexes), ages.size, years.size), np.nan)
    s_idx = {s: i for i, s in enumerate(sexes)}
    cube[lt["sex"].astype(str).map(s_idx).to_numpy(), lt["age"].astype(int).to_numpy() - ages[0],
         lt["year"].astype(int).to_numpy() - years[0]] = lt["hazard"].to_numpy()
    if np.isnan(cube).any():
        raise LifeTableError("life table has missing (sex, age, year) cells")
    return s_idx, ages, years, cube


def expected_cumhaz(
    age_years: np.ndarray, year: np.ndarray, sex_idx: np.ndarray, days: int,
    ages: np.ndarray, years: np.ndarray, cube: np.ndarray,
) -> np.ndarray:
    """Cumulated expected hazard ``Lambda_P,i(d)`` for d = 0..days (rows: patients)."""
    mid = (np.arange(1, days + 1) - 0.5) / DAYS_PER_YEAR
    a = np.clip(np.floor(age_years[:, None] + mid[None, :]).astype(np.int64) - ages[0], 0, ages.size - 1)
    y = np.clip(np.floor(year[:, None] + mid[None, :]).astype(np.int64) - years[0], 0, years.size - 1)
    daily = cube[sex_idx[:, None], a, y] / DAYS_PER_YEAR
    out = np.zeros((age_years.size, days + 1))
    np.cumsum(daily, axis=1, out=out[:, 1:])
    return out


@dataclass
class ExpectedPass:
    """One pass over the patients: Pohar-Perme sums per group on the daily grid and expected deaths.

    Attributes:
        labels: group labels (index = group code).
        w_now: per group and day ``d``: sum over patients at risk at ``d`` of ``w_i(d)``.
        w_prev: same risk set, ``w_i(d - 1)``.
        ev_w, ev_w2: per group and day: sum over deaths on that day of ``w_i(d)`` and ``w_i(d)^2``.
        n_risk: per group and day: number at risk.
        expected: per patient and interval of ``breaks_years``: expected deaths (or None).
    """

    labels: list[object]
    w_now: np.ndarray
    w_prev: np.ndarray
    ev_w: np.ndarray
    ev_w2: np.ndarray
    n_risk: np.ndarray
    expected: np.ndarray | None


def expected_pass(
    time_days: Sequence[float] | np.ndarray,
    event: Sequence[int] | np.ndarray,
    age_years: Sequence[float] | np.ndarray,
    year: Sequence[float] | np.ndarray,
    sex: Sequence[str] | np.ndarray,
    life_table: pd.DataFrame,
    *,
    groups: Sequence[object] | np.ndarray | None = None,
    horizon_years: float = 5.0,
    breaks_years: Sequence[float] | None = None,
) -> ExpectedPass:
    """Compute every patient's expected hazard once and accumulate what the estimators need.

    Patients are processed in chunks sorted by group and follow-up, each chunk only as wide (in days) as
    its longest follow-up, so short poor-prognosis follow-ups cost little.
    """
    t = np.ceil(np.asarray(time_days, dtype=float)).astype(np.int64)
    e = np.asarray(event).astype(bool)
    age = np.asarray(age_years, dtype=float)
    yr = np.asarray(year, dtype=float)
    sx = np.asarray(sex, dtype=str)
    if t.size == 0:
        raise ValueError("net survival on an empty sample")
    if not (t.size == e.size == age.size == yr.size == sx.size):
        raise ValueError("time, event, age, year and sex differ in length")
    if (t < 0).any() or np.isnan(age).any() or np.isnan(yr).any():
        raise ValueError("negative times or missing age/year")
    s_idx, ages, years, cube = hazard_array(life_table)
    sexi = pd.Series(sx).map(s_idx)
    if sexi.isna().any():
        raise ValueError(f"sex values {sorted(set(sx) - set(s_idx))} are not in the life table")
    sexi = sexi.to_numpy(dtype=np.int64)
    codes, labels = pd.factorize(pd.Series(np.zeros(t.size) if groups is None else np.asarray(groups, dtype=object)),
                                 sort=True)
    n_groups = len(labels)
    edges = None if breaks_years is None else np.round(np.asarray(breaks_years, float) * DAYS_PER_YEAR).astype(int)
    horizon = int(np.ceil(horizon_years * DAYS_PER_YEAR))
    if edges is not None:
        horizon = max(horizon, int(edges[-1]))
    tc = np.minimum(t, horizon)
    w_now = np.zeros((n_groups, horizon + 1))
    w_prev = np.zeros((n_groups, horizon + 1))
    ev_w = np.zeros((n_groups, horizon + 1))
    ev_w2 = np.zeros((n_groups, horizon + 1))
    counts = np.zeros((n_groups, horizon + 2))
    np.add.at(counts, (codes, np.minimum(t, horizon + 1)), 1.0)
    n_risk = counts[:, ::-1].cumsum(axis=1)[:, ::-1][:, : horizon + 1]
    expected = None if edges is None else np.zeros((t.size, edges.size - 1))
    order = np.lexsort((tc, codes))
    tcs, gs = tc[order], codes[order]
    bounds = np.flatnonzero(np.concatenate([[True], gs[1:] != gs[:-1], [True]]))
    for ga, gb in zip(bounds[:-1], bounds[1:], strict=True):
        gi = gs[ga]
        pos = ga
        while pos < gb:
            cells = (np.arange(gb - pos) + 1) * (tcs[pos:gb] + 1)
            end = pos + max(1, int(np.searchsorted(cells, _CHUNK_CELLS, side="right")))
            idx = order[pos:end]
            width = int(tcs[end - 1])
            cum = expected_cumhaz(age[idx], yr[idx], sexi[idx], width, ages, years, cube)
            w = np.exp(cum)
            ti = tc[idx]
            at_risk = ti[:, None] >= np.arange(width + 1)[None, :]
            w_now[gi, : width + 1] += np.where(at_risk, w, 0.0).sum(axis=0)
            w_prev[gi, 1: width + 1] += np.where(at_risk[:, 1:], w[:, :-1], 0.0).sum(axis=0)
            dead = np.flatnonzero(e[idx] & (t[idx] <= horizon))
            wd = w[dead, ti[dead]]
            np.add.at(ev_w[gi], ti[dead], wd)
            np.add.at(ev_w2[gi], ti[dead], wd * wd)
            if expected is not None:
                rows = np.arange(idx.size)
                for j in range(edges.size - 1):
                    lo = min(int(edges[j]), width)
                    stop = np.minimum(np.clip(ti, edges[j], edges[j + 1]), width)
                    expected[idx, j] = cum[rows, stop] - cum[rows, lo]
            pos = end
    return ExpectedPass(list(labels), w_now, w_prev, ev_w, ev_w2, n_risk, expected)


def net_survival_table(ps: ExpectedPass, group: int | Sequence[int], times_years: Sequence[float],
                       conf_level: float = 0.95) -> pd.DataFrame:
    """Pohar-Perme estimates at ``times_years`` for one group, or several groups pooled (sums add up)."""
    g = [group] if isinstance(group, int | np.integer) else list(group)
    w_now, w_prev = ps.w_now[g].sum(axis=0), ps.w_prev[g].sum(axis=0)
    ev_w, ev_w2, n_risk = ps.ev_w[g].sum(axis=0), ps.ev_w2[g].sum(axis=0), ps.n_risk[g].sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.where(w_now > 0, ev_w / w_now, 0.0)
        pop = np.zeros(w_now.size)
        pop[1:] = np.where(w_now[1:] > 0, np.log(w_now[1:] / w_prev[1:]), 0.0)
        var_jump = np.where(w_now > 0, ev_w2 / w_now**2, 0.0)
    cum = np.cumsum(jump - pop)
    var = np.cumsum(var_jump)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    rows = []
    for ty in times_years:
        d = int(np.ceil(ty * DAYS_PER_YEAR))
        if d >= n_risk.size or n_risk[d] == 0:
            rows.append({"years": ty, "n_risk": 0, "net_survival": np.nan, "std_err": np.nan,
                         "lower": np.nan, "upper": np.nan})
            continue
        se = float(np.sqrt(var[d]))
        sn = float(np.exp(-cum[d]))
        rows.append({"years": ty, "n_risk": int(n_risk[d]), "net_survival": sn, "std_err": se,
                     "lower": sn * np.exp(-z * se), "upper": sn * np.exp(z * se)})
    return pd.DataFrame(rows)


def pohar_perme(
    time_days: Sequence[float] | np.ndarray,
    event: Sequence[int] | np.ndarray,
    age_years: Sequence[float] | np.ndarray,
    year: Sequence[float] | np.ndarray,
    sex: Sequence[str] | np.ndarray,
    life_table: pd.DataFrame,
    *,
    times_years: Sequence[float] = (1, 3, 5),
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Pohar-Perme net survival at ``times_years`` (see the module docstring).

    Args:
        time_days: follow-up in days.
        event: 1 death (any cause), 0 censored.
        age_years: exact age at diagnosis in years (e.g. 67.4).
        year: calendar date of diagnosis as a decimal year (e.g. 2016.35).
        sex: ``male``/``female`` per patient, as in the life table.
        life_table: see the module docstring.
        times_years: where to report.
        conf_level: level of the CI.

    Returns:
        One row per time: years, n_risk, net_survival, std_err (of the cumulative excess hazard), lower, upper.

    Raises:
        ValueError: empty input, unequal lengths, a sex absent from the life table.
    """
    ps = expected_pass(time_days, event, age_years, year, sex, life_table, horizon_years=max(times_years))
    return net_survival_table(ps, 0, times_years, conf_level)


def split_person_time(time_days: np.ndarray, event: np.ndarray, breaks_years: Sequence[float]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Years at risk and deaths per patient and interval of ``breaks_years`` (beyond the last: censored)."""
    t = np.ceil(np.asarray(time_days, dtype=float)).astype(np.int64)
    e = np.asarray(event).astype(bool)
    edges = np.round(np.asarray(breaks_years, dtype=float) * DAYS_PER_YEAR).astype(np.int64)
    k = edges.size - 1
    at_risk = np.zeros((t.size, k))
    deaths = np.zeros((t.size, k))
    for j in range(k):
        lo, hi = edges[j], edges[j + 1]
        at_risk[:, j] = (np.clip(t, lo, hi) - lo) / DAYS_PER_YEAR
        # a death on day 0 belongs to the first interval
        deaths[:, j] = e & ((t > lo) if j else (t >= lo)) & (t <= hi)
    return at_risk, deaths


def excess_hazard_regression(
    time_days: Sequence[float] | np.ndarray,
    event: Sequence[int] | np.ndarray,
    age_years: Sequence[float] | np.ndarray,
    year: Sequence[float] | np.ndarray,
    sex: Sequence[str] | np.ndarray,
    design: pd.DataFrame,
    life_table: pd.DataFrame,
    *,
    breaks_years: Sequence[float] = EXCESS_BREAKS_YEARS,
    expected: np.ndarray | None = None,
    max_iter: int = 50,
) -> pd.DataFrame:
    """Excess-hazard ratios (relative-survival regression, Dickman et al. 2004, Poisson with expected deaths).

    Model: deaths in interval j of pattern g ~ Poisson(d*_gj + y_gj exp(alpha_j + x_g' beta)), with
    piecewise-constant baseline excess hazard on ``breaks_years`` (follow-up beyond the last break is
    censored), ``d*`` the expected deaths from the life table (same lookup as :func:`pohar_perme`),
    ``y`` the person-years. Fitted by Fisher scoring; standard errors from the Fisher information (as R
    ``glm`` with Dickman's custom link). Patients with identical design rows are collapsed first.
    ``expected`` (patients x intervals), when given, is :attr:`ExpectedPass.expected` for the same breaks.
    A term aliased in the data (e.g. a level absent from the cases) is not estimable: its row is all missing.

    Returns:
        term, coef, se, excess_hazard_ratio with 95% CI, p_value.
    """
    x = design.to_numpy(dtype=float)
    if np.isnan(x).any():
        raise ValueError("missing values in the design")
    y, d = split_person_time(np.asarray(time_days), np.asarray(event), breaks_years)
    if expected is None:
        expected = expected_pass(time_days, event, age_years, year, sex, life_table,
                                 horizon_years=breaks_years[-1], breaks_years=breaks_years).expected
    dstar = expected
    patterns, inverse = np.unique(x, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    k = y.shape[1]
    g = patterns.shape[0]
    agg = {name: np.stack([np.bincount(inverse, weights=arr[:, j], minlength=g) for j in range(k)], axis=1)
           for name, arr in (("y", y), ("d", d), ("dstar", dstar))}
    rows_x = np.hstack([np.repeat(np.eye(k), g, axis=0), np.tile(patterns, (k, 1))])
    yy = agg["y"].T.ravel()
    dd = agg["d"].T.ravel()
    ds = agg["dstar"].T.ravel()
    keep = yy > 0
    rows_x, yy, dd, ds = rows_x[keep], yy[keep], dd[keep], ds[keep]
    # Terms aliased with the baseline or with earlier terms in these data (a level absent from a small site, a
    # constant column) are not estimable: they are left out of the fit and reported as missing, as R's glm does.
    estimable: list[int] = []
    for j in range(patterns.shape[1]):
        candidate = [*range(k), *(k + i for i in estimable), k + j]
        if np.linalg.matrix_rank(rows_x[:, candidate]) == len(candidate):
            estimable.append(j)
    rows_x = rows_x[:, [*range(k), *(k + i for i in estimable)]]
    base = np.log(np.maximum(np.bincount(np.repeat(np.arange(k), g)[keep], weights=dd - ds, minlength=k), 1.0)
                  / np.maximum(np.bincount(np.repeat(np.arange(k), g)[keep], weights=yy, minlength=k), 1e-9))
    theta = np.concatenate([base, np.zeros(len(estimable))])

    def loglik(th: np.ndarray) -> float:
        mu = ds + yy * np.exp(rows_x @ th)
        return float(np.sum(dd * np.log(mu) - mu))

    cur = loglik(theta)
    for _ in range(max_iter):
        ex = yy * np.exp(rows_x @ theta)
        mu = ds + ex
        score = rows_x.T @ (ex * (dd / mu - 1))
        info = (rows_x * (ex * ex / mu)[:, None]).T @ rows_x
        # Least squares rather than solve: an interval or level with no excess deaths drives its parameter towards
        # -inf and its information towards 0, which makes the matrix numerically singular near the optimum.
        step = np.linalg.lstsq(info, score, rcond=None)[0]
        new = theta + step
        new_ll = loglik(new)
        halvings = 0
        while (not np.isfinite(new_ll) or new_ll < cur - 1e-10) and halvings < 30:
            step /= 2
            new = theta + step
            new_ll = loglik(new)
            halvings += 1
        theta, done = new, abs(new_ll - cur) <= 1e-10 * abs(cur)
        cur = new_ll
        if done:
            break
    else:
        raise ConvergenceError("excess-hazard regression did not converge")
    ex = yy * np.exp(rows_x @ theta)
    info = (rows_x * (ex * ex / (ds + ex))[:, None]).T @ rows_x
    se = np.full(patterns.shape[1], np.nan)
    coef = np.full(patterns.shape[1], np.nan)
    with np.errstate(invalid="ignore"):
        se[estimable] = np.sqrt(np.diag(np.linalg.pinv(info)))[k:]
    coef[estimable] = theta[k:]
    z = stats.norm.ppf(0.975)
    with np.errstate(over="ignore"):
        return pd.DataFrame({
            "term": list(design.columns), "coef": coef, "se": se, "excess_hazard_ratio": np.exp(coef),
            "ehr_lower": np.exp(coef - z * se), "ehr_upper": np.exp(coef + z * se),
            "p_value": 2 * stats.norm.sf(np.abs(coef / se)),
        })
