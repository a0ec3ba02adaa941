"""Kaplan-Meier survival, medians and log-rank tests, with R ``survival`` conventions.

Conventions (those of R ``survival::survfit`` / ``survdiff``; references in ``tests/unit/methods/test_survival.py``):

- Ties: deaths and censorings at the same time: the deaths happen first (a subject censored at ``t`` is
  counted at risk at ``t``). ``n_risk(t)`` = number with follow-up time ``>= t``.
- Survival: product-limit ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)``, right-continuous.
- Variance: Greenwood, on the log scale: ``se(log S(t)) = sqrt(sum_{t_j <= t} d_j / (n_j (n_j - d_j)))``
  (R's ``std.err`` component).
- Pointwise confidence intervals (``conf_type``):
  ``"log-log"`` (default here, as asked by the study protocol; R ``conf.type="log-log"``):
  ``S^exp(+-z se / log S)``, undefined (NaN) where ``S`` is 0 or 1, as in R;
  ``"log"`` (R's default): ``S exp(+-z se)``, upper limit capped at 1, NaN where ``S`` = 0;
  ``"plain"``: ``S +- z S se`` clipped to [0, 1].
- Median (and any quantile) with its confidence interval as R's ``quantile.survfit`` / ``print.survfit``
  (Brookmeyer-Crowley: the interval is read where the pointwise confidence band crosses 0.5):
  the first time the curve is ``<= 0.5``; if the curve is exactly 0.5 on an interval, the midpoint of that
  interval. The lower limit is read on the lower band, the upper limit on the upper band, with the same rule.
  A limit that is never reached is NaN ("not reached").
- Log-rank: Mantel-Haenszel with the hypergeometric variance; for k groups the chi-square is
  ``(O - E)' V^- (O - E)`` on ``k - 1`` degrees of freedom (groups with zero expected dropped), as ``survdiff``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONF_TYPES = ("log-log", "log", "plain")
REFERENCES = {"Kaplan-Meier": "R survival 3.5-3, survfit()", "log-rank": "R survival 3.5-3, survdiff()"}
DAYS_PER_YEAR = 365.25
_TOL = np.sqrt(np.finfo(float).eps)


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan-Meier curve on its distinct observed times (events and censorings).

    Attributes:
        time: distinct follow-up times, increasing.
        n_risk: number at risk at each time (follow-up ``>=`` time).
        n_event: deaths at each time.
        n_censor: censorings at each time.
        surv: survival just after each time.
        std_err: Greenwood standard error of ``log S`` (R's ``std.err``).
        lower, upper: pointwise confidence limits (NaN where undefined).
        conf_type: the transform used for the limits.
        conf_level: e.g. 0.95.
    """

    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    conf_type: str
    conf_level: float

    @property
    def n(self) -> int:
        return int(self.n_risk[0]) if len(self.n_risk) else 0

    @property
    def events(self) -> int:
        return int(self.n_event.sum())


def confidence_limits(
    surv: np.ndarray, se_log: np.ndarray, conf_type: str = "log-log", conf_level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits of a survival curve from ``se(log S)`` (R's ``survfit_confint``)."""
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    s = np.asarray(surv, dtype=float)
    se = np.asarray(se_log, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "log":
            xx = np.where(s == 0, np.nan, s)
            return np.exp(np.log(xx) - z * se), np.minimum(np.exp(np.log(xx) + z * se), 1.0)
        if conf_type == "log-log":
            xx = np.where((s == 0) | (s == 1), np.nan, s)
            se2 = z * se / np.log(xx)
            loglog = np.log(-np.log(xx))
            return np.exp(-np.exp(loglog - se2)), np.exp(-np.exp(loglog + se2))
        half = z * se * s
        return np.maximum(s - half, 0.0), np.minimum(s + half, 1.0)


def kaplan_meier(
    time: Sequence[float] | np.ndarray,
    event: Sequence[int] | np.ndarray,
    *,
    conf_type: str = "log-log",
    conf_level: float = 0.95,
) -> KaplanMeier:
    """Kaplan-Meier estimate with Greenwood variance (see the module docstring for conventions).

    Args:
        time: follow-up times (>= 0).
        event: 1 death, 0 censored.
        conf_type: ``"log-log"``, ``"log"`` or ``"plain"``.
        conf_level: confidence level of the pointwise limits.

    Raises:
        ValueError: empty input, negative or missing times, events not 0/1.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    if t.size == 0:
        raise ValueError("Kaplan-Meier on an empty sample")
    if t.shape != e.shape:
        raise ValueError("time and event differ in length")
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError("follow-up times must be non-missing and >= 0")
    if not np.isin(e, (0, 1, True, False)).all():
        raise ValueError("event must be 0/1")
    e = e.astype(np.int64)
    uniq, inverse = np.unique(t, return_inverse=True)
    n_event = np.bincount(inverse, weights=e, minlength=uniq.size)
    n_total = np.bincount(inverse, minlength=uniq.size).astype(float)
    n_risk = n_total[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    var = np.cumsum(term)
    std_err = np.sqrt(var)
    lower, upper = confidence_limits(surv, std_err, conf_type, conf_level)
    return KaplanMeier(
        time=uniq, n_risk=n_risk, n_event=n_event, n_censor=n_total - n_event, surv=surv, std_err=std_err,
        lower=lower, upper=upper, conf_type=conf_type, conf_level=conf_level,
    )


def survival_at(km: KaplanMeier, times: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """Survival, CI and number at risk at given times (as R ``summary(fit, times=)``).

    ``n_risk`` is the number still followed at the time (``>= t``); ``n_event`` the deaths up to ``t``.
    After the last follow-up time: survival 0 if the curve reached 0 (everyone still followed died at the last
    time; R's ``summary(fit, times = , extend = TRUE)``), with its standard error and limits as at that time
    (undefined on the log and log-log scales); otherwise NaN (the curve is unknown there).
    """
    ts = np.asarray(times, dtype=float)
    idx = np.searchsorted(km.time, ts, side="right") - 1
    first_at_or_after = np.searchsorted(km.time, ts, side="left")
    n_risk = np.where(first_at_or_after < km.time.size,
                      km.n_risk[np.minimum(first_at_or_after, km.time.size - 1)], 0.0)
    before = idx < 0
    safe = np.maximum(idx, 0)
    surv = np.where(before, 1.0, km.surv[safe])
    se = np.where(before, 0.0, km.std_err[safe])
    lower = np.where(before, np.nan if km.conf_type == "log-log" else 1.0, km.lower[safe])
    upper = np.where(before, np.nan if km.conf_type == "log-log" else 1.0, km.upper[safe])
    beyond = (ts > km.time[-1]) & (km.surv[-1] > 0)
    cum_events = np.concatenate([[0.0], np.cumsum(km.n_event)])[idx + 1]
    for arr in (surv, se, lower, upper):
        arr[beyond] = np.nan
    return pd.DataFrame({
        "time": ts, "n_risk": n_risk.astype(np.int64), "n_event": cum_events.astype(np.int64),
        "surv": surv, "std_err": se, "lower": lower, "upper": upper,
    })


def _first_crossing(x: np.ndarray, y: np.ndarray, p: float) -> float:
    """R ``quantile.survfit`` rule on one step curve: first x where y <= p, midpoint on a flat p."""
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    if y.size == 0:
        return float("nan")
    # Runs of equal values: keep the first point of each run (R drops duplicated y).
    first = np.concatenate([[True], np.diff(y) != 0])
    x, y = x[first], y[first]
    hit = np.flatnonzero(y <= p + _TOL)
    if hit.size == 0:
        return float("nan")
    i = hit[0]
    if abs(y[i] - p) < _TOL:
        below = np.flatnonzero(y < p - _TOL)
        if below.size:
            return float((x[i] + x[below[0]]) / 2)
    return float(x[i])


def quantile_survival(km: KaplanMeier, prob: float = 0.5) -> tuple[float, float, float]:
    """Time by which a share ``prob`` has died, with its CI (``prob=0.5``: the median).

    Returns:
        (estimate, lower, upper); NaN where not reached.
    """
    p = 1.0 - prob
    x = np.concatenate([[0.0], km.time])
    one = 1.0 if km.conf_type != "log-log" else np.nan
    est = _first_crossing(x, np.concatenate([[1.0], km.surv]), p)
    lo = _first_crossing(x, np.concatenate([[one], km.lower]), p)
    hi = _first_crossing(x, np.concatenate([[one], km.upper]), p)
    return est, lo, hi


@dataclass(frozen=True)
class LogRank:
    """Result of a k-group log-rank test."""

    chisq: float
    df: int
    p_value: float
    table: pd.DataFrame  # group, n, observed, expected


def logrank_test(
    time: Sequence[float] | np.ndarray, event: Sequence[int] | np.ndarray, group: Sequence[object] | np.ndarray
) -> LogRank:
    """Log-rank (Mantel-Haenszel) test between groups, as R ``survdiff(rho=0)``.

    Raises:
        ValueError: fewer than two groups.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    g = pd.Series(np.asarray(group, dtype=object))
    codes, labels = pd.factorize(g, sort=True)
    k = labels.size
    if k < 2:
        raise ValueError("log-rank test needs at least two groups")
    uniq, inv = np.unique(t, return_inverse=True)
    m = uniq.size
    d_gt = np.zeros((m, k))
    n_gt = np.zeros((m, k))
    np.add.at(d_gt, (inv, codes), e)
    np.add.at(n_gt, (inv, codes), 1.0)
    risk = n_gt[::-1].cumsum(axis=0)[::-1]
    d = d_gt.sum(axis=1)
    n = risk.sum(axis=1)
    ev = d > 0
    risk, d, n, d_gt = risk[ev], d[ev], n[ev], d_gt[ev]
    expected = (risk * (d / n)[:, None]).sum(axis=0)
    observed = d_gt.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 1, d * (n - d) / (n * n * (n - 1)), 0.0)
    var = np.diag((factor[:, None] * risk * n[:, None]).sum(axis=0)) - (risk * factor[:, None]).T @ risk
    use = np.flatnonzero(expected > 0)[:-1]
    diff = (observed - expected)[use]
    sub = var[np.ix_(use, use)]
    chisq = float(diff @ np.linalg.pinv(sub) @ diff) if use.size else 0.0
    df = int(use.size)
    p = float(stats.chi2.sf(chisq, df)) if df else float("nan")
    table = pd.DataFrame({
        "group": list(labels), "n": np.bincount(codes, minlength=k),
        "observed": observed, "expected": expected,
    })
    return LogRank(chisq=chisq, df=df, p_value=p, table=table)


AGE_BINS = (0, 50, 65, 75, 200)
AGE_LABELS = ("<50", "50-64", "65-74", "75+")


def age_group(age: pd.Series) -> pd.Series:
    """Age groups used in the survival tables and models: <50, 50-64, 65-74, 75+."""
    return pd.cut(age, bins=list(AGE_BINS), labels=list(AGE_LABELS), right=False).astype(str)


def km_tables(
    cases: pd.DataFrame,
    by: Sequence[str],
    *,
    years: Sequence[int] = (1, 3, 5),
    curve_step_days: float = 30,
    max_years: int = 5,
    conf_type: str = "log-log",
    time_col: str = "follow_up_days",
    event_col: str = "event",
) -> dict[str, pd.DataFrame]:
    """Kaplan-Meier summaries per group of ``by`` (columns of ``cases``), times in days, marks in years.

    Returns a dict of aggregated frames (never patient level):
        ``estimates``: survival with CI, n at risk and cumulative deaths (``n_event``) at each of ``years``.
            ``n_event`` is for analysis, not for publication: the difference between two marks is the
            number of deaths in the interval, a count that no disclosure rule on a single cell sees.
        ``curves``: the curve for a figure, sampled at ``k * curve_step_days`` for ``k = 0, 1, ...`` up to
            ``max_years``: ``years`` (rounded to 4 decimals, so a grid point on a whole year is exactly that
            year), ``n_risk``, ``surv``, ``lower``, ``upper``; no event counts, no row once nobody is at risk.
        ``medians``: n, events, median survival (days and years) with CI.
    """
    est_rows, curve_rows, med_rows = [], [], []
    n_steps = int(np.floor(max_years * DAYS_PER_YEAR / curve_step_days + 1e-9))
    grid = np.arange(n_steps + 1) * float(curve_step_days)
    grid_years = np.round(grid / DAYS_PER_YEAR, 4)
    marks = np.asarray(years, dtype=float) * DAYS_PER_YEAR
    slim = cases[[*by, time_col, event_col]]
    for key, part in slim.groupby(list(by), sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        labels = dict(zip(by, key, strict=True))
        km = kaplan_meier(part[time_col].to_numpy(), part[event_col].to_numpy(), conf_type=conf_type)
        at = survival_at(km, marks).drop(columns=["time", "std_err"])
        est_rows.append(pd.DataFrame({**labels, "years": list(years), **at}))
        cur = survival_at(km, grid).drop(columns=["time", "std_err", "n_event"])
        cur = pd.DataFrame({**labels, "years": grid_years, **cur})
        curve_rows.append(cur[cur["n_risk"] > 0])
        med, lo, hi = quantile_survival(km)
        med_rows.append({**labels, "n": km.n, "events": km.events, "median_days": med, "median_lower_days": lo,
                         "median_upper_days": hi, "median_years": med / DAYS_PER_YEAR,
                         "median_lower_years": lo / DAYS_PER_YEAR, "median_upper_years": hi / DAYS_PER_YEAR})
    return {
        "estimates": pd.concat(est_rows, ignore_index=True),
        "curves": pd.concat(curve_rows, ignore_index=True),
        "medians": pd.DataFrame(med_rows),
    }


def logrank_table(
    cases: pd.DataFrame, within: str, between: Sequence[str], *, time_col: str = "follow_up_days",
    event_col: str = "event",
) -> pd.DataFrame:
    """Log-rank chi-square within each level of ``within`` (site) across each factor of ``between``."""
    rows = []
    for level, part in cases.groupby(within, sort=True):
        for factor in between:
            sub = part.dropna(subset=[factor])
            if sub[factor].nunique() < 2:
                continue
            res = logrank_test(sub[time_col], sub[event_col], sub[factor].astype(str))
            rows.append({within: level, "factor": factor, "groups": int(res.table.shape[0]), "n": int(len(sub)),
                         "chisq": res.chisq, "df": res.df, "p_value": res.p_value})
    return pd.DataFrame(rows)
