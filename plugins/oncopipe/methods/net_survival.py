"""Pohar-Perme net survival against a general-population life table, as R ``relsurv::rs.surv(method =
"pohar-perme")`` (relsurv 2.2-9, its default ``precision = 1`` day), and the excess-hazard regression.

Life table (argument ``life_table``), in either of two forms, turned into a :class:`RateTable` (daily hazards by
sex, attained age and calendar date, relsurv's ``ratetable``) by :func:`rate_table`:

- the platform's French table: a DataFrame with ``sex`` (``male``/``female``), ``age`` (whole years), ``year``
  (calendar year) and ``hazard`` (annual force of mortality) or ``qx`` (annual probability of death, converted
  with ``hazard = -ln(1 - qx)``, ``qx`` of 1 capped at 1 - 1e-9). Age cells start at ``age * 365.25`` days,
  calendar cells on 1 January of ``year`` (``(year - 1960) * 365.25`` days after 1960-01-01), the daily
  hazard is ``hazard / 365.25``;
- relsurv's conventions: a DataFrame with ``sex``, ``age_from_days`` (lower bound of the age cell in days),
  ``date_from`` (first day of the calendar cell) and ``hazard_per_day``, one row per cell; this is how R's
  ``slopop`` is exported in ``tests/reference/slopop.csv``; or a :class:`RateTable` directly.

Ages and dates outside the table use its first or last cell (as R rate tables do).

Patient coordinates: ``age_years * 365.25`` days of age and the date of diagnosis, given as a decimal year
(``(year - 1960) * 365.25`` days after 1960-01-01) or as ``datetime64`` dates; both are rounded to 1e-6 day
so that a value converted from whole days lands on its day.

Expected hazard (as relsurv): day ``k`` of follow-up (``[k, k + 1)``) uses the hazard of the cell holding the
attained age ``age + k`` and date ``date + k`` at the start of the day, so age and calendar year advance with
follow-up. ``Lambda_P,i(k)`` cumulates them and ``w_i(k) = 1 / S_P,i(k) = exp(Lambda_P,i(k))``.

Estimator (Pohar Perme, Stare & Esteve 2012), with relsurv's discretisation. Follow-up times are whole days (a
fraction is rounded up). The distinct follow-up times ``tau_1 < tau_2 < ...`` of the group (deaths and
censorings) cut follow-up into intervals; within an interval the risk set ``R`` (follow-up ``>= tau_j``) is
fixed, and each day ``k`` in it adds ``(A_k / B_k + C_k / D_k) / 2`` to the population part, where ``A_k``,
``B_k`` cumulate from the start of the interval the sums over ``R`` of ``w_i lambda_i`` and ``w_i`` at the
start of each day, and ``C_k``, ``D_k`` the same at its end. At ``tau_j``:

``dLambda_E(tau_j) = sum_{i dies at tau_j} w_i(tau_j) / sum_{i in R} w_i(tau_j) - (population part of the
interval)``, and net survival is the product integral ``S_N(t) = prod_{tau_j <= t} (1 - dLambda_E(tau_j))``,
read at day ``floor(t * 365.25)`` (the 1-year figure counts the deaths up to day 365, as relsurv's curve at
365.241 days does). ``n_risk`` at ``t`` is the number followed ``>= t * 365.25`` days (R's ``summary(fit,
times = t)``, and the count the Kaplan-Meier tables give at ``t``).

Variance of the cumulative excess hazard (relsurv's ``std.err``):
``sum_{tau_j <= t} sum_{deaths} w_i^2 / (sum_R w_i)^2``. Confidence intervals: ``conf_type="log"`` (relsurv's
default), ``S_N exp(-+ z se)``; ``"log-log"``: ``exp(-exp(log(-log S_N) -+ z se / log S_N))``, undefined (NaN)
where ``S_N`` is 0, 1 or above 1. ``S_N`` may exceed 1 when the cohort dies less than the population.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from oncopipe.methods.cox import ConvergenceError

DAYS_PER_YEAR = 365.25
CONF_TYPES = ("log", "log-log")
REFERENCES = {"Pohar-Perme net survival": "R relsurv 2.2-9, rs.surv(method = \"pohar-perme\")"}
_CHUNK_CELLS = 4_000_000
_ORIGIN = np.datetime64("1960-01-01", "D")
# Piecewise-constant baseline of the excess-hazard model: monthly over the first quarter, where the excess
# hazard of poor-prognosis cancers falls fastest, then coarser. Too coarse an early split biases the ratios of
# high-risk groups upwards (their person-time is concentrated where the true hazard is highest).
EXCESS_BREAKS_YEARS = (0, 1 / 12, 2 / 12, 3 / 12, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5)


class LifeTableError(ValueError):
    """The life table lacks a column, a sex, or has invalid values."""


@dataclass(frozen=True)
class RateTable:
    """Population hazards per day by sex, attained age and calendar date (R's ``ratetable``).

    Attributes:
        sexes: sex labels, in the order of ``hazard``'s first axis.
        age_cuts: lower bounds of the age cells in days, increasing.
        date_cuts: lower bounds of the calendar cells in days after 1960-01-01, increasing.
        hazard: daily hazards ``[sex, age cell, calendar cell]``.
    """

    sexes: tuple[str, ...]
    age_cuts: np.ndarray
    date_cuts: np.ndarray
    hazard: np.ndarray

    def sex_index(self, sex: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row of each patient's sex; raises ValueError naming the sexes absent from the table."""
        codes = pd.Series(np.asarray(sex, dtype=str)).map({s: i for i, s in enumerate(self.sexes)})
        if codes.isna().any():
            raise ValueError(f"sex values {sorted(set(np.asarray(sex, dtype=str)) - set(self.sexes))} "
                             "are not in the life table")
        return codes.to_numpy(dtype=np.int64)

    def daily(self, sex_idx: np.ndarray, age_days: np.ndarray, date_days: np.ndarray) -> np.ndarray:
        """Daily hazard of the cells holding (age, date); arrays broadcast, outside cells clamp to the edge."""
        a = np.clip(np.searchsorted(self.age_cuts, age_days, side="right") - 1, 0, self.age_cuts.size - 1)
        y = np.clip(np.searchsorted(self.date_cuts, date_days, side="right") - 1, 0, self.date_cuts.size - 1)
        return self.hazard[sex_idx, a, y]


def hazard_array(life_table: pd.DataFrame) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """The platform's annual table -> (sex index, ages, years, annual hazard[sex, age, year]).

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


def _life_table_cube(life_table: pd.DataFrame) -> RateTable:
    """The platform's annual table (sex, whole age, calendar year, hazard or qx) as a daily rate table."""
    s_idx, ages, years, cube = hazard_array(life_table)
    return RateTable(tuple(s_idx), ages * DAYS_PER_YEAR, (years - 1960) * DAYS_PER_YEAR, cube / DAYS_PER_YEAR)


def _relsurv_cube(frame: pd.DataFrame) -> RateTable:
    """A rate table in relsurv's conventions (sex, age_from_days, date_from, hazard_per_day)."""
    haz = frame["hazard_per_day"].astype(float)
    if haz.isna().any() or (haz < 0).any():
        raise LifeTableError("rate table hazard_per_day must be non-missing and >= 0")
    try:
        dates = (pd.to_datetime(frame["date_from"]).to_numpy().astype("datetime64[D]") - _ORIGIN).astype(float)
    except (ValueError, TypeError) as exc:
        raise LifeTableError(f"rate table date_from is not a date: {exc}") from exc
    sexes, s_code = np.unique(frame["sex"].astype(str).to_numpy(), return_inverse=True)
    age_cuts, a_code = np.unique(frame["age_from_days"].astype(float).to_numpy(), return_inverse=True)
    date_cuts, d_code = np.unique(dates, return_inverse=True)
    cube = np.full((sexes.size, age_cuts.size, date_cuts.size), np.nan)
    cube[s_code, a_code, d_code] = haz.to_numpy()
    if np.isnan(cube).any():
        raise LifeTableError("rate table has missing (sex, age, date) cells")
    return RateTable(tuple(str(s) for s in sexes), age_cuts, date_cuts, cube)


def rate_table(life_table: pd.DataFrame | RateTable) -> RateTable:
    """Either life-table form of the module docstring as a :class:`RateTable`.

    Raises:
        LifeTableError: missing columns, a gap in the grid, negative or missing values.
    """
    if isinstance(life_table, RateTable):
        return life_table
    if {"age_from_days", "date_from", "hazard_per_day", "sex"} <= set(life_table.columns):
        return _relsurv_cube(life_table)
    return _life_table_cube(life_table)


def patient_coordinates(age_years: Sequence[float] | np.ndarray, year: Sequence[float] | np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(age in days, date in days after 1960-01-01) at diagnosis; ``year`` decimal or ``datetime64``."""
    age_days = np.round(np.asarray(age_years, dtype=float) * DAYS_PER_YEAR, 6)
    yr = np.asarray(year)
    if np.issubdtype(yr.dtype, np.datetime64):
        if np.isnat(yr).any():
            raise ValueError("missing date of diagnosis")
        date_days = (yr.astype("datetime64[D]") - _ORIGIN).astype(float)
    else:
        date_days = np.round((yr.astype(float) - 1960) * DAYS_PER_YEAR, 6)
    return age_days, date_days


def expected_cumhaz(table: RateTable, sex_idx: np.ndarray, age_days: np.ndarray, date_days: np.ndarray,
                    days: int) -> np.ndarray:
    """Cumulated expected hazard ``Lambda_P,i(d)`` for d = 0..days (rows: patients)."""
    k = np.arange(days)[None, :]
    daily = table.daily(sex_idx[:, None], age_days[:, None] + k, date_days[:, None] + k)
    out = np.zeros((age_days.size, days + 1))
    np.cumsum(daily, axis=1, out=out[:, 1:])
    return out


@dataclass
class ExpectedPass:
    """One pass over the patients: Pohar-Perme sums per group on the daily grid and expected deaths.

    Day ``k`` of the arrays of width ``horizon`` is ``[k, k + 1)``, its risk set the patients followed ``> k``.

    Attributes:
        labels: group labels (index = group code).
        w_lam_start, w_start: per group and day: sums over the risk set of ``w_i lambda_i`` and ``w_i`` at
            the start of the day.
        w_lam_end, w_end: the same with ``w_i`` at the end of the day.
        ev_w, ev_w2: per group and day ``d`` (0..horizon): sum over deaths on that day of ``w_i(d)``,
            ``w_i(d)^2``.
        n_risk: per group and day ``d``: number followed ``>= d``.
        ends: per group and day ``d``: number whose follow-up ends on day ``d`` (deaths and censorings).
        expected: per patient and interval of ``breaks_years``: expected deaths (or None).
    """

    labels: list[object]
    w_lam_start: np.ndarray
    w_start: np.ndarray
    w_lam_end: np.ndarray
    w_end: np.ndarray
    ev_w: np.ndarray
    ev_w2: np.ndarray
    n_risk: np.ndarray
    ends: np.ndarray
    expected: np.ndarray | None


def expected_pass(
    time_days: Sequence[float] | np.ndarray,
    event: Sequence[int] | np.ndarray,
    age_years: Sequence[float] | np.ndarray,
    year: Sequence[float] | np.ndarray,
    sex: Sequence[str] | np.ndarray,
    life_table: pd.DataFrame | RateTable,
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
    sx = np.asarray(sex, dtype=str)
    if t.size == 0:
        raise ValueError("net survival on an empty sample")
    age_days, date_days = patient_coordinates(age_years, year)
    if not (t.size == e.size == age_days.size == date_days.size == sx.size):
        raise ValueError("time, event, age, year and sex differ in length")
    if (t < 0).any() or np.isnan(age_days).any() or np.isnan(date_days).any():
        raise ValueError("negative times or missing age/year")
    table = rate_table(life_table)
    sexi = table.sex_index(sx)
    codes, labels = pd.factorize(pd.Series(np.zeros(t.size) if groups is None else np.asarray(groups, dtype=object)),
                                 sort=True)
    n_groups = len(labels)
    edges = None if breaks_years is None else np.round(np.asarray(breaks_years, float) * DAYS_PER_YEAR).astype(int)
    # One day past the last reported day, so that follow-up cut at the horizon closes no interval that matters.
    horizon = int(np.floor(horizon_years * DAYS_PER_YEAR)) + 1
    if edges is not None:
        horizon = max(horizon, int(edges[-1]))
    tc = np.minimum(t, horizon)
    sums = {name: np.zeros((n_groups, horizon)) for name in ("wls", "ws", "wle", "we")}
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
            cum = expected_cumhaz(table, sexi[idx], age_days[idx], date_days[idx], width)
            w = np.exp(cum)
            lam = np.diff(cum, axis=1)
            ti = tc[idx]
            at_risk = ti[:, None] > np.arange(width)[None, :]
            for name, value in (("wls", w[:, :-1] * lam), ("ws", w[:, :-1]), ("wle", w[:, 1:] * lam),
                                ("we", w[:, 1:])):
                sums[name][gi, :width] += np.where(at_risk, value, 0.0).sum(axis=0)
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
    return ExpectedPass(list(labels), sums["wls"], sums["ws"], sums["wle"], sums["we"], ev_w, ev_w2, n_risk,
                        counts[:, : horizon + 1], expected)


def _segment_cumsum(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Running sums of ``values`` that restart wherever ``start`` is True."""
    total = np.cumsum(values)
    seg = np.cumsum(start) - 1
    before = np.concatenate([[0.0], total])[np.flatnonzero(start)]
    return total - before[seg]


def net_survival_table(ps: ExpectedPass, group: int | Sequence[int], times_years: Sequence[float],
                       conf_level: float = 0.95, conf_type: str = "log") -> pd.DataFrame:
    """Pohar-Perme estimates at ``times_years`` for one group, or several groups pooled (sums add up).

    Returns:
        One row per time: years, n_risk, net_survival, std_err (of the cumulative excess hazard), lower and
        upper (``conf_type`` limits), lower_log, upper_log, lower_loglog, upper_loglog.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    g = [group] if isinstance(group, int | np.integer) else list(group)
    wls, ws, wle, we = (arr[g].sum(axis=0) for arr in (ps.w_lam_start, ps.w_start, ps.w_lam_end, ps.w_end))
    ev_w, ev_w2, n_risk, ends = (arr[g].sum(axis=0) for arr in (ps.ev_w, ps.ev_w2, ps.n_risk, ps.ends))
    horizon = ws.size
    # Intervals start on day 0 and on every day where someone's follow-up ends (relsurv's crude times).
    start = ends[:horizon] > 0
    start[0] = True
    with np.errstate(divide="ignore", invalid="ignore"):
        daily = (np.where(ws > 0, _segment_cumsum(wls, start) / _segment_cumsum(ws, start), 0.0)
                 + np.where(we > 0, _segment_cumsum(wle, start) / _segment_cumsum(we, start), 0.0)) / 2
    segment_pop = _segment_cumsum(daily, start)
    # population part closes at the end of each interval: day k + 1 when day k + 1 starts a new one
    closes = np.concatenate([start[1:], [True]])
    pop = np.zeros(horizon + 1)
    pop[1:] = np.where(closes, segment_pop, 0.0)
    at_risk_w = np.concatenate([[float(n_risk[0])], we])  # sum of w(d) over those followed >= d
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.where(at_risk_w > 0, ev_w / at_risk_w, 0.0)
        var_jump = np.where(at_risk_w > 0, ev_w2 / at_risk_w**2, 0.0)
    surv = np.cumprod(1.0 - (jump - pop))
    var = np.cumsum(var_jump)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    rows = []
    for ty in times_years:
        d = int(np.floor(ty * DAYS_PER_YEAR))
        # followed >= t: the same count as the Kaplan-Meier tables at t (R summary.survfit(times = t))
        at = int(np.ceil(ty * DAYS_PER_YEAR))
        if at >= n_risk.size or n_risk[at] == 0:
            rows.append({"years": ty, "n_risk": 0, "net_survival": np.nan, "std_err": np.nan})
            continue
        rows.append({"years": ty, "n_risk": int(n_risk[at]), "net_survival": float(surv[d]),
                     "std_err": float(np.sqrt(var[d]))})
    out = pd.DataFrame(rows)
    sn, se = out["net_survival"].to_numpy(dtype=float), out["std_err"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["lower_log"], out["upper_log"] = sn * np.exp(-z * se), sn * np.exp(z * se)
        ok = (sn > 0) & (sn < 1)
        xx = np.where(ok, sn, np.nan)
        shift = z * se / np.log(xx)
        out["lower_loglog"] = np.exp(-np.exp(np.log(-np.log(xx)) - shift))
        out["upper_loglog"] = np.exp(-np.exp(np.log(-np.log(xx)) + shift))
    suffix = "log" if conf_type == "log" else "loglog"
    out.insert(4, "lower", out[f"lower_{suffix}"])
    out.insert(5, "upper", out[f"upper_{suffix}"])
    return out


def pohar_perme(
    time_days: Sequence[float] | np.ndarray,
    event: Sequence[int] | np.ndarray,
    age_years: Sequence[float] | np.ndarray,
    year: Sequence[float] | np.ndarray,
    sex: Sequence[str] | np.ndarray,
    life_table: pd.DataFrame | RateTable,
    *,
    times_years: Sequence[float] = (1, 3, 5),
    conf_level: float = 0.95,
    conf_type: str = "log",
) -> pd.DataFrame:
    """Pohar-Perme net survival at ``times_years`` (see the module docstring).

    Args:
        time_days: follow-up in days.
        event: 1 death (any cause), 0 censored.
        age_years: exact age at diagnosis in years (e.g. 67.4).
        year: date of diagnosis as a decimal year (e.g. 2016.35) or as ``datetime64`` dates.
        sex: sex per patient, as in the life table (``male``/``female``).
        life_table: either form of the module docstring, or a :class:`RateTable`.
        times_years: where to report.
        conf_level: level of the CI.
        conf_type: ``"log"`` (relsurv's default) or ``"log-log"`` for ``lower``/``upper``; both are given
            in the ``*_log`` and ``*_loglog`` columns.

    Returns:
        One row per time: years, n_risk, net_survival, std_err (of the cumulative excess hazard), lower, upper,
        lower_log, upper_log, lower_loglog, upper_loglog.

    Raises:
        ValueError: empty input, unequal lengths, a sex absent from the life table.
    """
    ps = expected_pass(time_days, event, age_years, year, sex, life_table, horizon_years=max(times_years))
    return net_survival_table(ps, 0, times_years, conf_level, conf_type)


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
