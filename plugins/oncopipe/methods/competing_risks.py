"""Cumulative incidence under competing risks: the Aalen-Johansen estimator with delta-method CIs.

Data: one row per person with a time ``T_i >= 0`` and a status: 0 censored, ``event`` (the event of
interest, e.g. 1 = discontinuation), any other non-zero value a competing event (e.g. 2 = death).
At each distinct time ``t_j`` with ``n_j`` people at risk (time >= t_j; people censored at ``t_j`` are
at risk at ``t_j``), ``d1_j`` events of interest and ``d_j`` events of any kind:

* overall survival ``S(t_j) = prod_{l <= j} (1 - d_l / n_l)`` (Kaplan-Meier on all events);
* cumulative incidence ``F(t) = sum_{t_j <= t} S(t_{j-1}) d1_j / n_j`` (Aalen-Johansen);
* variance, delta method (Marubini & Valsecchi 1995; Pintilie 2006, eq. 4.3)::

      Var F(t) = sum_{t_j <= t} [F(t) - F(t_j)]^2 d_j / (n_j (n_j - d_j))
               + sum_{t_j <= t} S(t_{j-1})^2 d1_j (n_j - d1_j) / n_j^3
               - 2 sum_{t_j <= t} [F(t) - F(t_j)] S(t_{j-1}) d1_j / n_j^2

  (a time where everyone at risk has an event, ``n_j = d_j``, adds 0 to the first sum);
* 95% CI on the log(-log) scale, which stays inside (0, 1): with ``theta = log(-log F)`` and
  ``se_theta = se / |F log F|``, lower = ``exp(-exp(theta + 1.96 se_theta))``, upper =
  ``exp(-exp(theta - 1.96 se_theta))``; the interval is missing (NaN) where ``F`` is 0 or 1.

The functions are vectorised: one sort, cumulative sums, no loop over times. Kept rather than a library's:
the estimate, the standard error and the limits equal scikit-survival's
``cumulative_incidence_competing_risks(conf_type="log-log", var_type="Dinse_Approx")`` and statsmodels'
``CumIncidenceRight`` to 1e-12 (tests/unit/methods/test_competing_risks.py); scikit-survival is 60 times slower
(77 ms against 1.3 ms on 5,000 people), holds a times-by-times array, and where everyone left at risk has an
event its variance is NaN at every time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def _loglog_ci(f: np.ndarray, se: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """CI of a probability on the log(-log) scale: theta = log(-log F), se_theta = se / |F log F|."""
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = (f > 0) & (f < 1) & np.isfinite(se)
        ff = np.where(valid, f, 0.5)
        se_theta = se / np.abs(ff * np.log(ff))
        theta = np.log(-np.log(ff))
        lower = np.exp(-np.exp(theta + z * se_theta))
        upper = np.exp(-np.exp(theta - z * se_theta))
    return np.where(valid, lower, np.nan), np.where(valid, upper, np.nan)


def aalen_johansen(
    time: Sequence[float] | np.ndarray,
    status: Sequence[int] | np.ndarray,
    *,
    event: int = 1,
    times: Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Cumulative incidence of ``event`` with the other non-zero statuses as competing events.

    Args:
        time: time to event or censoring per person (>= 0).
        status: 0 censored, ``event`` the event of interest, other non-zero values competing events.
        event: the status of the event of interest.
        times: where to evaluate the step function (default: every distinct event time).

    Returns:
        ``time``, ``n_at_risk`` (people with time >= t), ``cif``, ``se``, ``lower``, ``upper`` (95%),
        ``survival`` (no event of any kind).

    Raises:
        ValueError: empty input, lengths differ, negative or missing times.
    """
    t = np.asarray(time, dtype=float)
    s = np.asarray(status)
    if len(t) == 0:
        raise ValueError("aalen_johansen: no observation")
    if len(t) != len(s):
        raise ValueError(f"aalen_johansen: {len(t)} times but {len(s)} statuses")
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError("aalen_johansen: times must be present and >= 0")
    order = np.argsort(t, kind="stable")
    t, s = t[order], s[order]
    uniq, first = np.unique(t, return_index=True)
    n_at = len(t) - first
    is_event = (s == event).astype(float)
    is_any = (s != 0).astype(float)
    d1 = np.add.reduceat(is_event, first)
    d = np.add.reduceat(is_any, first)
    surv = np.cumprod(1 - d / n_at)
    surv_prev = np.r_[1.0, surv[:-1]]
    inc = surv_prev * d1 / n_at
    cif = np.cumsum(inc)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n_at > d, d / (n_at * (n_at - d)), 0.0)
    A, B, C = np.cumsum(a), np.cumsum(a * cif), np.cumsum(a * cif**2)
    D = np.cumsum(surv_prev**2 * d1 * (n_at - d1) / n_at**3)
    e = surv_prev * d1 / n_at**2
    E, G = np.cumsum(e), np.cumsum(e * cif)
    var = cif**2 * A - 2 * cif * B + C + D - 2 * (cif * E - G)
    var = np.maximum(var, 0.0)

    grid = uniq[d > 0] if times is None else np.asarray(times, dtype=float)
    pos = np.searchsorted(uniq, grid, side="right") - 1
    at_risk = len(t) - np.searchsorted(t, grid, side="left")
    before = pos < 0
    p = np.maximum(pos, 0)
    f = np.where(before, 0.0, cif[p])
    se = np.where(before, 0.0, np.sqrt(var[p]))
    lower, upper = _loglog_ci(f, se)
    return pd.DataFrame({
        "time": grid,
        "n_at_risk": at_risk.astype(np.int64),
        "cif": f,
        "se": se,
        "lower": lower,
        "upper": upper,
        "survival": np.where(before, 1.0, surv[p]),
    })
