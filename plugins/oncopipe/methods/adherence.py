"""Adherence to hormone therapy from dispensings: the project's PDC rule, vectorised over patients.

This is the Python implementation of THE PDC RULE of the project (the dbt model implements it in SQL and
tests compare them). The PDC is AdhereR's CMA7 (carry-over within and into the window), with the hospital
rule of step 3 added; AdhereR's whole family (CMA1-CMA9, sliding windows, episodes) is
:mod:`oncopipe.methods.cma`. Every number below is defined on whole calendar days; a day is an integer (days
since 1970-01-01) and every interval is inclusive at both ends.

**1. Supplies.** Input dispensings are already cleaned (information-only lines dropped, regularisation
lines netted out; :func:`dispensings_from_claims` does that from raw claims). Dispensing ``d`` on day
``t_d`` supplies ``s_d >= 1`` days (boxes x units per box, one tablet a day).

**2. Carry-over.** Per person, dispensings are sorted by date, then CIP13, then line id (columns
``cip13`` and ``line_id`` when present). Supply ``d`` starts at ``start_d = max(t_d, end_{d-1} + 1)``
and ends at ``end_d = start_d + s_d - 1`` whatever the molecule: a switch of molecule within the
class continues the same treatment. Dispensings before a window that reach into it count.

**3. Hospital stays** (``hospital_days``):

* ``"ignore"``: stays have no effect.
* ``"covered_paused"`` (default): every day of a stay (entry..exit inclusive, a 0-night stay counts its
  one day) is covered, and the home supply is paused: the carry-over of step 2 runs on the timeline
  from which hospital days are removed, so a supply running into a stay resumes the day after the exit
  with the days it had left, and a dispensing made during a stay starts the day after the exit.
  Formally, with ``H(x)`` = number of hospital days ``<= x``, a dispensing on ``t`` enters the
  compressed timeline at ``t - H(t - 1)``; step 2 runs there; compressed day ``k`` is the ``k``-th
  non-hospital day. Covered days = non-hospital days whose compressed index is supplied, plus every
  hospital day. Overlapping stays are merged first.

**4. Follow-up** ``[index_date, follow_up_end_date]`` with ``follow_up_end_date = min(death, end of
data, index + 60 months - 1 day)`` (:func:`follow_up_windows`). Days after death never count. The end of
data is the last day of the last month whose dispensings are complete in the extraction
(:func:`end_of_complete_data`), not the extraction date: a pharmacy line enters the flux of the month after
its reimbursement, so the last month or two before the extraction date lack dispensings that are still in
the flux, and counting them as uncovered would invent a late drop of adherence for every woman followed to
the end of data.

**5. PDC** over a window ``[a, b]`` = distinct covered days in ``[a, b]`` / ``(b - a + 1)``, so in
[0, 1]. Month ``k`` (0-based) = ``[index + k months, index + (k + 1) months - 1 day]`` with calendar
month arithmetic clamped to the month end (as ``pandas.DateOffset(months=k)`` and DuckDB
``date + interval k month``, always computed from the index date, never chained), truncated at the
follow-up end; a month exists when its start is ``<= follow_up_end_date``. Year ``y`` (0-based) is
months ``12y .. 12y + 11``, i.e. ``[index + 12y months, index + 12(y + 1) months - 1 day]`` truncated
at the follow-up end; its PDC = covered days / follow-up days in it.

**6. Discontinuation** (``gap_days``, default 90). Take the runs of consecutive uncovered days inside
the follow-up (coverage as in 3, so in ``covered_paused`` mode a hospital stay ends a run). A run
starting on ``u`` ends on ``v = min(next covered day - 1, follow-up end)``. The first run with
``v - u + 1 >= gap_days`` is a discontinuation, dated ``u`` (the first uncovered day). In the
``ignore`` mode the next covered day is the next dispensing, so the length is
``next dispensing - end of coverage - 1``; a run cut by the follow-up end counts only if it already
lasts ``gap_days`` days (death before the gap completes is not discontinuation: competing risk).
Month ``k`` has ``is_discontinued`` when its start is on/after the discontinuation date.
Time to discontinuation (:func:`discontinuation`): ``status`` 1 = discontinued (time = date - index,
in days), 2 = died first (time = death - index), 0 = censored (time = follow-up end - index).
Treatment goes on after a discontinuation when supply resumes: the gaps of ``gap_days`` or more split the
follow-up into treatment episodes (:func:`episodes`: first covered day, last day before the gap that ends
it or the follow-up end, that gap's length), as AdhereR's treatment episodes with a maximum permissible gap.

**7. Switches** (:func:`switches`): among the dispensings dated inside the follow-up, in the order of
step 2, a switch is a dispensing whose molecule differs from the previous dispensing's; the first
switch is dated by the dispensing of the new molecule.

Every function is vectorised over people (no Python loop per person): intervals of all people live in
one sorted array keyed by ``person * KEY + day``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

HospitalDays = Literal["ignore", "covered_paused"]
HOSPITAL_OPTIONS: tuple[str, ...] = ("ignore", "covered_paused")
FOLLOW_UP_MONTHS = 60
# Months between a dispensing month and the first flux that holds all of its lines. A dispensing is
# reimbursed within a few weeks (at most 20 days later in the generator:
# ``oncopipe.synth.parameters.REIMBURSEMENT_DELAY_MAX_DAYS``) and its line is in the flux dated the first
# day of the month after the reimbursement; flux dates are first days of months, so an extraction dated in
# month M holds the flux of month M, i.e. lines reimbursed up to the end of month M - 1: dispensings of month
# M - 2 are complete, those of month M - 1 are not. See :func:`end_of_complete_data`.
PHARMACY_FLUX_LAG_MONTHS = 2
DISCONTINUATION_GAP_DAYS = 90
PDC_THRESHOLD = 0.8

# Day numbers are shifted by _DAY_SHIFT to be positive, then a person's intervals are keyed as
# person * _KEY + shifted day, so one global sort / searchsorted / running max serves every person.
_DAY_SHIFT = 1 << 24
_KEY = 1 << 31
_NEG_INF = -(1 << 40)
_POS_INF = 1 << 40


def _day_numbers(values: Iterable) -> np.ndarray:
    return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]").astype(np.int64)


def _to_dates(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")


def add_months(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Day numbers plus calendar months, clamped to the month end (Jan 31 + 1 month = Feb 28/29).

    Args:
        days: day numbers (days since 1970-01-01).
        months: months to add (broadcast against ``days``).

    Returns:
        Day numbers, as ``pandas.DateOffset(months=...)`` would give.
    """
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day_of_month = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    first = target.astype("datetime64[D]")
    length = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (first + np.minimum(day_of_month, length - 1)).astype(np.int64)


def _grouped_cummax(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Running max within each owner (rows sorted by owner); owners are small non-negative ints."""
    keyed = owner * _KEY + (values + _DAY_SHIFT)
    return np.maximum.accumulate(keyed) - owner * _KEY - _DAY_SHIFT


def _grouped_cumsum(values: np.ndarray, owner: np.ndarray) -> np.ndarray:
    if len(owner) == 0:
        return np.zeros(0, dtype=np.int64)
    total = np.cumsum(values)
    first = np.r_[True, owner[1:] != owner[:-1]]
    base = (total - values)[first]
    return total - np.repeat(base, np.diff(np.r_[np.flatnonzero(first), len(owner)]))


def _merge(owner: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge overlapping or adjacent intervals of each owner; returns sorted disjoint intervals."""
    if len(owner) == 0:
        return owner, start, end
    order = np.lexsort((end, start, owner))
    owner, start, end = owner[order], start[order], end[order]
    run_end = _grouped_cummax(end, owner)
    prev_end = np.r_[_NEG_INF, run_end[:-1]]
    new = np.r_[True, owner[1:] != owner[:-1]] | (start > prev_end + 1)
    idx = np.flatnonzero(new)
    return owner[idx], start[idx], np.maximum.reduceat(end, idx)


@dataclass(frozen=True)
class _IntervalSet:
    """Disjoint sorted intervals per owner, with the measure of the set up to any day."""

    owner: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @cached_property
    def keys(self) -> np.ndarray:
        return self.owner * _KEY + (self.start + _DAY_SHIFT)

    @cached_property
    def cumulative_before(self) -> np.ndarray:
        """Days of the owner's set strictly before each interval."""
        return _grouped_cumsum(self.end - self.start + 1, self.owner) - (self.end - self.start + 1)

    def measure_upto(self, owner: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Number of days of ``owner``'s set that are ``<= day`` (vectorised)."""
        owner = np.asarray(owner, dtype=np.int64)
        day = np.asarray(day, dtype=np.int64)
        if len(self.owner) == 0:
            return np.zeros(np.broadcast(owner, day).shape, dtype=np.int64)
        pos = np.searchsorted(self.keys, owner * _KEY + (day + _DAY_SHIFT), side="right") - 1
        safe = np.maximum(pos, 0)
        mine = (pos >= 0) & (self.owner[safe] == owner)
        inside = np.minimum(day, self.end[safe]) - self.start[safe] + 1
        return np.where(mine, self.cumulative_before[safe] + inside, 0)


@dataclass(frozen=True)
class Coverage:
    """Covered days of every person, after carry-over and the hospital option (steps 1-3).

    Build it with :func:`coverage`. ``persons`` maps the internal person number to ``person_id``.
    """

    persons: pd.Index
    covered: _IntervalSet
    hospital: _IntervalSet
    hospital_days: str

    def person_numbers(self, person_ids: Iterable) -> np.ndarray:
        """Internal numbers of ``person_ids``; people without dispensing get -1 (never covered)."""
        return self.persons.get_indexer(pd.Index(person_ids))

    def covered_days(self, person_ids: Iterable, start: Iterable, end: Iterable) -> np.ndarray:
        """Distinct covered days in ``[start, end]`` per row (dates or day numbers)."""
        owner = self.person_numbers(person_ids)
        a, b = _as_days(start), _as_days(end)
        return _window(self.covered, owner, a, b)

    def hospitalised_days(self, person_ids: Iterable, start: Iterable, end: Iterable) -> np.ndarray:
        """Distinct hospital days in ``[start, end]`` per row."""
        owner = self.person_numbers(person_ids)
        return _window(self.hospital, owner, _as_days(start), _as_days(end))

    def intervals(self) -> pd.DataFrame:
        """The covered days as disjoint intervals: person_id, start, end (dates, inclusive)."""
        return pd.DataFrame({
            "person_id": self.persons[self.covered.owner],
            "start": _to_dates(self.covered.start),
            "end": _to_dates(self.covered.end),
        })


def _as_days(values: Iterable) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    return _day_numbers(arr)


def _window(intervals: _IntervalSet, owner: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    known = owner >= 0
    o = np.where(known, owner, 0)
    days = intervals.measure_upto(o, b) - intervals.measure_upto(o, a - 1)
    return np.where(known & (b >= a), days, 0)


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, frame.columns))}")


def coverage(
    dispensings: pd.DataFrame,
    stays: pd.DataFrame | None = None,
    *,
    hospital_days: HospitalDays = "covered_paused",
) -> Coverage:
    """Covered days of every person (steps 1-3 of the rule).

    Args:
        dispensings: one row per cleaned dispensing: ``person_id``, ``dispensing_date``, ``days_supply``
            (int >= 1), optional ``molecule``, ``cip13``, ``line_id`` (tie-breakers of the sort order).
        stays: hospital stays: ``person_id``, ``entry_date``, ``exit_date`` (inclusive); may be None.
        hospital_days: ``"covered_paused"`` (default) or ``"ignore"``.

    Returns:
        The :class:`Coverage` of everyone with a dispensing or a stay.

    Raises:
        ValueError: a missing column, an unknown option, a non-positive supply, a stay exiting before entry.
    """
    if hospital_days not in HOSPITAL_OPTIONS:
        raise ValueError(f"hospital_days must be one of {HOSPITAL_OPTIONS}, not {hospital_days!r}")
    _require(dispensings, ("person_id", "dispensing_date", "days_supply"), "dispensings")
    supply = dispensings["days_supply"].to_numpy()
    bad = ~(pd.notna(supply) & (supply >= 1))
    if bad.any():
        raise ValueError(f"dispensings: {int(bad.sum())} row(s) with days_supply missing or < 1 "
                         f"(first at row {int(np.flatnonzero(bad)[0])}); clean regularisations first")
    if dispensings["dispensing_date"].isna().any():
        raise ValueError(f"dispensings: {int(dispensings['dispensing_date'].isna().sum())} row(s) without date")
    if stays is None:
        stays = pd.DataFrame({"person_id": [], "entry_date": [], "exit_date": []})
    _require(stays, ("person_id", "entry_date", "exit_date"), "stays")
    persons = pd.Index(pd.unique(pd.concat([dispensings["person_id"], stays["person_id"]], ignore_index=True)))

    entry = _day_numbers(stays["entry_date"]) if len(stays) else np.zeros(0, np.int64)
    exit_ = _day_numbers(stays["exit_date"]) if len(stays) else np.zeros(0, np.int64)
    if (exit_ < entry).any():
        raise ValueError(f"stays: {int((exit_ < entry).sum())} stay(s) exit before entry")
    hospital = _IntervalSet(*_merge(persons.get_indexer(stays["person_id"]).astype(np.int64), entry, exit_))

    owner = persons.get_indexer(dispensings["person_id"]).astype(np.int64)
    t = _day_numbers(dispensings["dispensing_date"])
    s = supply.astype(np.int64)
    # Tie-breakers as sorted integer codes: lexsort on integers, not on millions of strings.
    tie_cols = [pd.factorize(dispensings[c].astype(str), sort=True)[0]
                for c in ("line_id", "cip13") if c in dispensings.columns]
    order = np.lexsort((*tie_cols, t, owner))
    owner, t, s = owner[order], t[order], s[order]

    paused = hospital_days == "covered_paused" and len(hospital.owner) > 0
    compressed = t - hospital.measure_upto(owner, t - 1) if paused else t
    total = _grouped_cumsum(s, owner)
    end = _grouped_cummax(compressed - (total - s), owner) + total - 1
    start = end - s + 1
    if paused:
        start, end = _uncompress(hospital, owner, start), _uncompress(hospital, owner, end)
        owner = np.r_[owner, hospital.owner]
        start = np.r_[start, hospital.start]
        end = np.r_[end, hospital.end]
    covered = _IntervalSet(*_merge(owner, start, end))
    return Coverage(persons, covered, hospital, hospital_days)


def _uncompress(hospital: _IntervalSet, owner: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Real day of the ``k``-th non-hospital day: k + length of the stays that start before it."""
    before = hospital.cumulative_before
    length = hospital.end - hospital.start + 1
    position = hospital.start - before  # compressed index of the first day after each stay
    keys = hospital.owner * _KEY + (position + _DAY_SHIFT)
    pos = np.searchsorted(keys, owner * _KEY + (k + _DAY_SHIFT), side="right") - 1
    safe = np.maximum(pos, 0)
    mine = (pos >= 0) & (hospital.owner[safe] == owner)
    return k + np.where(mine, before[safe] + length[safe], 0)


def end_of_complete_data(extraction_date, *, lag_months: int = PHARMACY_FLUX_LAG_MONTHS) -> pd.Timestamp:
    """End of data for an extraction: the last day of the last complete flux month before the extraction date.

    The extraction holds the pharmacy flux up to the one dated the first day of the extraction date's month,
    and a dispensing's line arrives at most ``lag_months`` flux months after the dispensing month (see
    ``PHARMACY_FLUX_LAG_MONTHS``). So the last month whose dispensings are all present is the extraction
    month minus ``lag_months``, and follow-up that ends at the end of data ends on its last day.

    Args:
        extraction_date: the extraction (cut-off) date.
        lag_months: ``PHARMACY_FLUX_LAG_MONTHS`` (2), >= 1 (1: lines arrive in the flux of the month
            right after the dispensing).

    Returns:
        The end-of-data date, e.g. 2026-04-30 for an extraction of 2026-06-30 (or of 2026-06-01).

    Raises:
        ValueError: ``lag_months`` < 1 or a missing date.
    """
    if lag_months < 1:
        raise ValueError(f"lag_months must be >= 1, not {lag_months}")
    when = pd.Timestamp(extraction_date)
    if pd.isna(when):
        raise ValueError("end_of_complete_data: the extraction date is missing")
    first_of_month = when.normalize().replace(day=1)
    return first_of_month - pd.DateOffset(months=lag_months - 1) - pd.Timedelta(days=1)


def follow_up_windows(cohort: pd.DataFrame, *, months: int = FOLLOW_UP_MONTHS) -> pd.DataFrame:
    """Follow-up of each person (step 4): index date to min(death, end of data, index + months - 1 day).

    Args:
        cohort: ``person_id``, ``index_date``, ``end_of_data_date`` (from :func:`end_of_complete_data`, as
            the cohort mart sets it) and optional ``death_date``.
        months: maximum follow-up in months (60).

    Returns:
        ``person_id``, ``index_date``, ``follow_up_end_date``, ``follow_up_end_reason`` (death,
        end_of_data, five_years; ties resolved in that order), ``death_date``.
    """
    _require(cohort, ("person_id", "index_date", "end_of_data_date"), "cohort")
    index = _day_numbers(cohort["index_date"])
    horizon = add_months(index, months) - 1
    eod = _day_numbers(cohort["end_of_data_date"])
    has_death = "death_date" in cohort.columns
    death = (
        pd.to_datetime(cohort["death_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
        if has_death else np.full(len(cohort), _POS_INF)
    )
    if has_death:
        death = np.where(cohort["death_date"].isna().to_numpy(), _POS_INF, death)
    end = np.minimum(np.minimum(death, eod), horizon)
    reason = np.where(end == death, "death", np.where(end == eod, "end_of_data", "five_years"))
    return pd.DataFrame({
        "person_id": cohort["person_id"].to_numpy(),
        "index_date": _to_dates(index),
        "follow_up_end_date": _to_dates(end),
        "follow_up_end_reason": reason,
        "death_date": pd.to_datetime(cohort["death_date"]).to_numpy() if has_death else pd.NaT,
    })


def pdc_windows(cov: Coverage, windows: pd.DataFrame) -> pd.DataFrame:
    """PDC over arbitrary windows (step 5).

    Args:
        cov: the coverage.
        windows: ``person_id``, ``start``, ``end`` (inclusive; keep them inside the follow-up).

    Returns:
        ``windows`` with ``days``, ``days_covered`` and ``pdc`` added.
    """
    _require(windows, ("person_id", "start", "end"), "windows")
    a, b = _as_days(windows["start"]), _as_days(windows["end"])
    out = windows.copy()
    out["days"] = np.maximum(b - a + 1, 0)
    out["days_covered"] = cov.covered_days(windows["person_id"], a, b)
    out["pdc"] = np.where(out["days"] > 0, out["days_covered"] / np.maximum(out["days"], 1), np.nan)
    return out


def pdc_follow_up(cov: Coverage, follow_up: pd.DataFrame) -> pd.DataFrame:
    """PDC over the whole follow-up of each person: person_id, days, days_covered, pdc."""
    windows = pd.DataFrame({"person_id": follow_up["person_id"].to_numpy(),
                            "start": follow_up["index_date"].to_numpy(),
                            "end": follow_up["follow_up_end_date"].to_numpy()})
    return pdc_windows(cov, windows)[["person_id", "days", "days_covered", "pdc"]]


def _periods(follow_up: pd.DataFrame, months_per_period: int, n_periods: int) -> pd.DataFrame:
    index = _day_numbers(follow_up["index_date"])
    fu_end = _day_numbers(follow_up["follow_up_end_date"])
    k = np.arange(n_periods, dtype=np.int64)
    starts = add_months(index[:, None], k[None, :] * months_per_period)
    ends = np.minimum(add_months(index[:, None], (k[None, :] + 1) * months_per_period) - 1, fu_end[:, None])
    keep = starts <= fu_end[:, None]
    rows, cols = np.nonzero(keep)
    return pd.DataFrame({
        "person_id": follow_up["person_id"].to_numpy()[rows],
        "row": rows.astype(np.int64),
        "period": cols.astype(np.int64),
        "start": starts[rows, cols],
        "end": ends[rows, cols],
    })


def _uncovered_runs(cov: Coverage, follow_up: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Every run of consecutive uncovered days inside each follow-up (step 6): row, first day u, last day v.

    Returns ``(row, u, v, index, fu_end)``: the runs (``u <= v``, sorted by row then day) and, per follow-up
    row, its index date and follow-up end (day numbers).
    """
    _require(follow_up, ("person_id", "index_date", "follow_up_end_date"), "follow_up")
    n = len(follow_up)
    owner = cov.person_numbers(follow_up["person_id"])
    index = _day_numbers(follow_up["index_date"])
    fu_end = _day_numbers(follow_up["follow_up_end_date"])
    c = cov.covered
    # For each follow-up row: the covered intervals of that person, preceded by a sentinel ending at -inf.
    first = np.searchsorted(c.owner, owner, side="left")
    last = np.searchsorted(c.owner, owner, side="right")
    counts = np.where(owner >= 0, last - first, 0)
    row = np.repeat(np.arange(n), counts + 1)
    pos_in = np.arange(len(row)) - np.repeat(np.cumsum(counts + 1) - (counts + 1), counts + 1)
    interval = np.repeat(first, counts + 1) + pos_in - 1  # -1 = sentinel
    has_prev = pos_in > 0
    starts, ends = np.r_[c.start, 0], np.r_[c.end, 0]  # padded: valid indices even with no interval
    prev_end = np.where(has_prev, ends[np.maximum(interval, 0)], _NEG_INF)
    is_last = pos_in == counts[row]
    next_start = np.where(is_last, _POS_INF, starts[np.minimum(interval + 1, len(c.start))])
    u = np.maximum(prev_end + 1, index[row])
    v = np.minimum(next_start - 1, fu_end[row])
    keep = u <= v
    return row[keep], u[keep], v[keep], index, fu_end


def episodes(cov: Coverage, follow_up: pd.DataFrame, *, gap_days: int = DISCONTINUATION_GAP_DAYS) -> pd.DataFrame:
    """Treatment episodes inside the follow-up: the stretches between discontinuation gaps (step 6).

    The gaps of ``gap_days`` or more uncovered days (step 6, so a gap cut by the follow-up end counts only if
    it already lasts ``gap_days``) split the follow-up; each stretch with a covered day is an episode, from its
    first covered day to the day before the gap that ends it, or to the follow-up end (shorter gaps stay inside
    an episode, as AdhereR's maximum permissible gap). An episode after the first one is a resumption.

    Args:
        cov: the coverage.
        follow_up: from :func:`follow_up_windows`.
        gap_days: the discontinuation gap (90).

    Returns:
        One row per episode, by person (input order) and time: ``person_id``, ``episode`` (1-based),
        ``episode_start``, ``episode_end`` (dates, inclusive), ``episode_days``, ``ending_gap_days`` (the gap that
        ended it, 0 if none), ``ended_by`` (``"gap"`` or ``"follow_up_end"``).
    """
    if gap_days < 1:
        raise ValueError(f"gap_days must be >= 1, not {gap_days}")
    row, u, v, index, fu_end = _uncovered_runs(cov, follow_up)
    gap = v - u + 1 >= gap_days
    row, u, v = row[gap], u[gap], v[gap]
    n = len(follow_up)
    # Stretch starts (index, day after each gap) and ends (day before each gap, follow-up end), per row in order.
    seg_row = np.r_[np.arange(n), row]
    start = np.r_[index, v + 1]
    end = np.r_[u - 1, fu_end]
    end_row = np.r_[row, np.arange(n)]
    gap_len = np.r_[v - u + 1, np.zeros(n, np.int64)]
    by_start = np.lexsort((start, seg_row))
    by_end = np.lexsort((end, end_row))
    seg_row, start = seg_row[by_start], start[by_start]
    end, gap_len = end[by_end], gap_len[by_end]
    owner = cov.person_numbers(follow_up["person_id"])[seg_row]
    covered = _window(cov.covered, owner, start, end)
    keep = (start <= end) & (covered > 0)
    seg_row, start, end, gap_len, owner = seg_row[keep], start[keep], end[keep], gap_len[keep], owner[keep]
    first = _first_covered_from(cov.covered, owner, start)
    number = _grouped_cumsum(np.ones(len(seg_row), np.int64), seg_row)
    return pd.DataFrame({
        "person_id": follow_up["person_id"].to_numpy()[seg_row],
        "episode": number,
        "episode_start": _to_dates(first),
        "episode_end": _to_dates(end),
        "episode_days": end - first + 1,
        "ending_gap_days": gap_len,
        "ended_by": np.where(gap_len > 0, "gap", "follow_up_end"),
    })


def _first_covered_from(covered: _IntervalSet, owner: np.ndarray, day: np.ndarray) -> np.ndarray:
    """First covered day >= ``day`` of each owner (the caller knows there is one)."""
    pos = np.searchsorted(covered.keys, owner * _KEY + (day + _DAY_SHIFT), side="right") - 1
    safe = np.maximum(pos, 0)
    inside = (pos >= 0) & (covered.owner[safe] == owner) & (covered.end[safe] >= day)
    following = covered.start[np.minimum(pos + 1, len(covered.start) - 1)]
    return np.where(inside, day, following)


def discontinuation(
    cov: Coverage, follow_up: pd.DataFrame, *, gap_days: int = DISCONTINUATION_GAP_DAYS
) -> pd.DataFrame:
    """Discontinuation and time to it, death as a competing event, and what follows it (step 6).

    Args:
        cov: the coverage.
        follow_up: from :func:`follow_up_windows` (``person_id``, ``index_date``, ``follow_up_end_date``,
            ``follow_up_end_reason``).
        gap_days: the gap that makes a discontinuation (90).

    Returns:
        One row per person: ``person_id``, ``discontinued`` (bool), ``discontinuation_date`` (NaT if
        none), ``status`` (1 discontinued, 2 died first, 0 censored) and ``time_days`` (days from index
        date to the discontinuation date, the death, or the follow-up end), all on the first discontinuation;
        then ``n_discontinuations`` (gaps of ``gap_days`` or more in the follow-up), ``n_episodes`` and
        ``resumption_date`` (start of the second episode, NaT if treatment never resumed): see :func:`episodes`.
    """
    if gap_days < 1:
        raise ValueError(f"gap_days must be >= 1, not {gap_days}")
    n = len(follow_up)
    row, u, v, index, fu_end = _uncovered_runs(cov, follow_up)
    gap = v - u + 1 >= gap_days
    disc_day = np.full(n, _POS_INF)
    np.minimum.at(disc_day, row[gap], u[gap])
    discontinued = disc_day < _POS_INF
    reason = follow_up["follow_up_end_reason"].to_numpy() if "follow_up_end_reason" in follow_up else None
    died = (reason == "death") if reason is not None else np.zeros(n, bool)
    status = np.where(discontinued, 1, np.where(died, 2, 0))
    time_days = np.where(discontinued, disc_day - index, fu_end - index)
    disc_date = pd.Series(_to_dates(np.where(discontinued, disc_day, 0))).where(discontinued)
    ep = episodes(cov, follow_up, gap_days=gap_days)
    per_row = pd.Series(np.arange(n), index=pd.Index(follow_up["person_id"].to_numpy()))
    ep_row = per_row.reindex(ep["person_id"].to_numpy()).to_numpy()
    second = ep["episode"].to_numpy() == 2
    resumption = pd.Series(pd.NaT, index=np.arange(n), dtype="datetime64[ns]")
    resumption.iloc[ep_row[second]] = ep["episode_start"].to_numpy()[second]
    return pd.DataFrame({
        "person_id": follow_up["person_id"].to_numpy(),
        "discontinued": discontinued,
        "discontinuation_date": disc_date.to_numpy(),
        "status": status.astype(np.int64),
        "time_days": time_days.astype(np.int64),
        "n_discontinuations": np.bincount(row[gap], minlength=n).astype(np.int64),
        "n_episodes": np.bincount(ep_row, minlength=n).astype(np.int64),
        "resumption_date": resumption.to_numpy(),
    })


def monthly_pdc(
    cov: Coverage,
    follow_up: pd.DataFrame,
    *,
    gap_days: int = DISCONTINUATION_GAP_DAYS,
    months: int = FOLLOW_UP_MONTHS,
) -> pd.DataFrame:
    """Monthly PDC in the shape of the ``endocrine_adherence_monthly`` mart (without ``molecule``).

    Args:
        cov: the coverage.
        follow_up: from :func:`follow_up_windows`.
        gap_days: discontinuation gap (step 6), for ``is_discontinued``.
        months: number of months of follow-up at most (60).

    Returns:
        ``person_id``, ``month_index``, ``month_start``, ``month_end``, ``days_in_month``, ``days_covered``,
        ``days_hospitalised``, ``pdc``, ``is_discontinued``; sorted by person (input order) and month.
    """
    per = _periods(follow_up, 1, months)
    a, b = per["start"].to_numpy(), per["end"].to_numpy()
    disc = discontinuation(cov, follow_up, gap_days=gap_days)
    disc_day = np.where(disc["discontinued"], disc["time_days"].to_numpy() + _day_numbers(follow_up["index_date"]),
                        _POS_INF)
    row_of = per["row"].to_numpy()
    days = b - a + 1
    covered = cov.covered_days(per["person_id"], a, b)
    return pd.DataFrame({
        "person_id": per["person_id"].to_numpy(),
        "month_index": per["period"].to_numpy(),
        "month_start": _to_dates(a),
        "month_end": _to_dates(b),
        "days_in_month": days,
        "days_covered": covered,
        "days_hospitalised": cov.hospitalised_days(per["person_id"], a, b),
        "pdc": covered / days,
        "is_discontinued": a >= disc_day[row_of],
    })


def yearly_pdc(cov: Coverage, follow_up: pd.DataFrame, *, years: int = FOLLOW_UP_MONTHS // 12) -> pd.DataFrame:
    """PDC per follow-up year (months 12y..12y+11, truncated at follow-up end).

    Returns:
        ``person_id``, ``year`` (0-based), ``start``, ``end`` (dates), ``days``, ``days_covered``, ``pdc``,
        ``complete`` (True when the follow-up covers the whole year).
    """
    per = _periods(follow_up, 12, years)
    index = _day_numbers(follow_up["index_date"])[per["row"].to_numpy()]
    full_end = add_months(index, (per["period"].to_numpy() + 1) * 12) - 1
    out = pdc_windows(cov, per).drop(columns="row").rename(columns={"period": "year"})
    out["complete"] = per["end"].to_numpy() == full_end
    out["start"] = _to_dates(per["start"].to_numpy())
    out["end"] = _to_dates(per["end"].to_numpy())
    return out


def adherent_share_by_year(
    yearly: pd.DataFrame, *, threshold: float = PDC_THRESHOLD, complete_years_only: bool = False
) -> pd.DataFrame:
    """Share of people with PDC >= ``threshold`` per follow-up year.

    Args:
        yearly: from :func:`yearly_pdc` (or any frame with ``year``, ``pdc``, ``complete``).
        threshold: the adherence threshold (0.8); compared with ``>=``.
        complete_years_only: count only people followed for the whole year (default: everyone with at
            least one day of follow-up in the year, PDC over the days followed).

    Returns:
        ``year``, ``n_patients``, ``n_adherent``, ``share_adherent``, ``mean_pdc``.
    """
    data = yearly[yearly["complete"]] if complete_years_only else yearly
    data = data.assign(adherent=data["pdc"] >= threshold)
    out = data.groupby("year").agg(n_patients=("pdc", "size"), n_adherent=("adherent", "sum"),
                                   mean_pdc=("pdc", "mean")).reset_index()
    out["share_adherent"] = out["n_adherent"] / out["n_patients"]
    return out[["year", "n_patients", "n_adherent", "share_adherent", "mean_pdc"]]


def switches(dispensings: pd.DataFrame, follow_up: pd.DataFrame) -> pd.DataFrame:
    """Switches of molecule during the follow-up (step 7).

    Args:
        dispensings: as for :func:`coverage`, with ``molecule``.
        follow_up: ``person_id``, ``index_date``, ``follow_up_end_date``.

    Returns:
        One row per follow-up person: ``person_id``, ``n_switches``, ``first_switch_date`` (NaT if none),
        ``switch_from``, ``switch_to`` (molecules of the first switch, None if none).
    """
    _require(dispensings, ("person_id", "dispensing_date", "molecule"), "dispensings")
    fu = follow_up[["person_id", "index_date", "follow_up_end_date"]]
    d = dispensings.merge(fu, on="person_id", how="inner")
    t = _day_numbers(d["dispensing_date"])
    inside = (t >= _day_numbers(d["index_date"])) & (t <= _day_numbers(d["follow_up_end_date"]))
    d = d.loc[inside].assign(_t=t[inside])
    order_cols = ["person_id", "_t"] + [c for c in ("cip13", "line_id") if c in d.columns]
    d = d.sort_values(order_cols, kind="stable")
    same_person = d["person_id"].eq(d["person_id"].shift())
    prev = d["molecule"].shift()
    d["_switch"] = same_person & d["molecule"].ne(prev)
    d["_from"] = prev
    sw = d[d["_switch"]]
    first = sw.groupby("person_id", sort=False).head(1).set_index("person_id")
    counts = sw.groupby("person_id").size()
    out = pd.DataFrame({"person_id": follow_up["person_id"].to_numpy()})
    out["n_switches"] = out["person_id"].map(counts).fillna(0).astype(np.int64)
    out["first_switch_date"] = out["person_id"].map(first["dispensing_date"]).astype("datetime64[ns]")
    out["switch_from"] = out["person_id"].map(first["_from"])
    out["switch_to"] = out["person_id"].map(first["molecule"])
    return out


HORMONE_MOLECULES: dict[str, str] = {
    "L02BA01": "tamoxifen",
    "L02BG03": "anastrozole",
    "L02BG04": "letrozole",
    "L02BG06": "exemestane",
}
INFORMATION_ONLY = 71


def join_dcir(er_prs_f: pd.DataFrame, er_pha_f: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """ER_PHA_F drug lines with the columns of their ER_PRS_F claim line, joined on ``keys``.

    ``keys`` are the nine DCIR keys (``oncopipe.contracts.sources.DCIR_KEY``; passed in, methods read no
    contract). A claim line repeated in one flux (an exact duplicate) is kept once, so a drug line is never
    multiplied; a drug line with no claim line (and a claim line with no drug line, a GP consultation) gives no
    row. The extraction is a key too when both frames carry it (read from the hive folders).
    """
    on = [c for c in (*keys, "extraction") if c in er_prs_f.columns and c in er_pha_f.columns]
    return er_pha_f.merge(er_prs_f.drop_duplicates(on), on=on, how="inner")


def dispensings_from_claims(
    er_pha_f: pd.DataFrame, ir_pha_r: pd.DataFrame, molecules: dict[str, str] | None = None
) -> pd.DataFrame:
    """Cleaned hormone-therapy dispensings from raw DCIR pharmacy lines (step 1 of the rule).

    ``er_pha_f`` holds the drug lines with their claim line's columns (:func:`join_dcir`).

    Cleaning, in this order: information-only lines (``DPN_QLF = 71``) are dropped; exact duplicates are
    dropped; a line re-sent in a later flux (same ``ORG_CLE_NUM``, ``DCT_ORD_NUM``, ``PRS_ORD_NUM``)
    keeps only its latest ``FLX_DIS_DTD`` version; each negative (regularisation) line cancels one earlier
    positive line of the same person, date, CIP13 and absolute quantity (matched in flux order) and is then
    dropped. Days of supply = boxes (``PHA_ACT_QSN``) x units per box (``PHA_UNT_NBR_DSES``, text in the
    dictionary); only CIP13 whose ATC is in ``molecules`` (default: the four hormone therapies) are kept.

    Args:
        er_pha_f: raw pharmacy lines (landing contract columns).
        ir_pha_r: drug referential (``PHA_CIP_C13``, ``PHA_ATC_C07``, ``PHA_UNT_NBR_DSES``).
        molecules: ATC -> molecule name.

    Returns:
        ``person_id``, ``dispensing_date``, ``days_supply``, ``molecule``, ``cip13``, ``line_id``.
    """
    molecules = molecules or HORMONE_MOLECULES
    ref = ir_pha_r.loc[ir_pha_r["PHA_ATC_C07"].isin(list(molecules)),
                       ["PHA_CIP_C13", "PHA_ATC_C07", "PHA_UNT_NBR_DSES"]]
    ref = ref.drop_duplicates("PHA_CIP_C13")
    lines = er_pha_f[er_pha_f["PHA_PRS_C13"].isin(ref["PHA_CIP_C13"])]
    lines = lines[lines["DPN_QLF"] != INFORMATION_ONLY].drop_duplicates()
    line_key = ["ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM"]
    lines = lines.sort_values("FLX_DIS_DTD", kind="stable").drop_duplicates(line_key, keep="last")
    match = ["BEN_NIR_PSA", "EXE_SOI_DTD", "PHA_PRS_C13", "_qty"]
    lines = lines.assign(_qty=lines["PHA_ACT_QSN"].abs())
    negative = lines["PHA_ACT_QSN"] < 0
    pos, neg = lines[~negative].copy(), lines[negative]
    pos["_rank"] = pos.groupby(match, sort=False).cumcount()
    cancelled = neg.groupby(match).size().rename("_cancelled").reset_index()
    pos = pos.merge(cancelled, on=match, how="left")
    pos = pos[pos["_rank"] >= pos["_cancelled"].fillna(0)]
    pos = pos[pos["PHA_ACT_QSN"] > 0].merge(ref, left_on="PHA_PRS_C13", right_on="PHA_CIP_C13")
    return pd.DataFrame({
        "person_id": pos["BEN_NIR_PSA"].to_numpy(),
        "dispensing_date": pd.to_datetime(pos["EXE_SOI_DTD"]).to_numpy(),
        "days_supply": (pos["PHA_ACT_QSN"] * pos["PHA_UNT_NBR_DSES"].astype(np.int64)).astype(np.int64).to_numpy(),
        "molecule": pos["PHA_ATC_C07"].map(molecules).to_numpy(),
        "cip13": pos["PHA_PRS_C13"].astype(str).to_numpy(),
        "line_id": (pos["ORG_CLE_NUM"].astype(str) + ":" + pos["DCT_ORD_NUM"].astype(str).str.zfill(12) + ":"
                    + pos["PRS_ORD_NUM"].astype(str).str.zfill(6)).to_numpy(),
    })
