"""AdhereR's continuous multiple-interval measures of medication availability (CMA1 to CMA9), per episode and
over sliding windows, and its treatment episodes.

These are the definitions of the R package AdhereR (Dima and Dediu, PLoS ONE 2017; version 0.8.1, functions
``compute.event.int.gaps``, ``CMA1`` .. ``CMA9``, ``CMA_per_episode``, ``CMA_sliding_window`` and
``compute.treatment.episodes``), written again from its documentation and sources, on AdhereR's own clock:

* a day is an integer; an event (dispensing) on day ``t`` with duration ``d`` supplies ``[t, t + d)``;
* a window is given by its start and its length in days, ``[start, start + days)``: its end
  ``start + days`` is the first day after it. As in AdhereR an event dated on the end day itself counts as
  inside the window (AdhereR tests ``date <= end``); it supplies none of the window's days;
* the follow-up window (FUW) selects the events considered at all (``FUW start <= t <= FUW end``); the
  observation window (OW) must lie inside it (else :class:`ValueError`, as AdhereR refuses it).

**Event intervals and gaps** (``compute.event.int.gaps``). Events of a person are sorted by date (stable).
The events used are those of the FUW that are in the OW, or, with *carry-over into the OW*, every FUW event
up to the OW end. The interval of an event is the days to the next used event, the last one's runs to the
OW end. Without *carry-over within the OW*, ``gap = max(0, interval - duration)``. With it, a supply not used
up by the next event carries over: ``gap = max(0, interval - duration - carry)`` and the new carry is the
excess; with ``carry_only_for_same_medication`` a change of medication (class) drops the carry, and with
``consider_dosage_change`` the carry is scaled by ``dose_i / dose_{i+1}`` (when the class does not change, if
both options are on).

**The measures** (``n`` events in the OW, ``t_1 .. t_n`` their dates, ``OW = [a, b)``):

* CMA1 = sum of the durations of events 1..n-1 / (t_n - t_1) (NaN with fewer than 2 events or
  ``t_n = t_1``); CMA3 = min(1, CMA1);
* CMA2 = sum of all durations / (b - t_1) (NaN without an event); CMA4 = min(1, CMA2);
* CMA5 = 1 - (gaps of events 1..n-1, carry-over within the OW) / (t_n - t_1);
* CMA6 = 1 - (gaps of events 1..n, carry-over within the OW, the last gap running to ``b``) / (b - t_1);
* CMA7 = 1 - (days without supply in the OW) / (b - a), with carry-over within and into the OW: the gap
  before the first OW event is ``min(gap of the previous event, t_1 - a)`` (``t_1 - a`` with no previous
  event); with no event in the OW, ``1 - gap of the last earlier event / (b - a)`` if that gap fits in the
  OW, else 0 (NaN without any event);
* CMA8 = CMA7 on the OW shifted to start when the supplies dispensed before it run out (the latest end,
  ``t + duration + carry``, of the events before ``a`` that end after ``a``): a lagged OW of the same end;
* CMA9 = the per-interval availability ``1 - gap / interval`` (intervals and gaps over the whole FUW, with
  carry-over) spread evenly over each interval, averaged over the OW: sum of (ratio x days of the interval in
  the OW) / (b - a). CMA7 counts the days actually supplied in a partial window, CMA9 the interval's share:
  a 30-day supply followed 60 days later by the next gives January 30/31 and February 0 under CMA7, 0.5 and
  0.5 under CMA9.

With carry-over within and into the window and no hospital stay, CMA7 is the project's PDC
(:mod:`oncopipe.methods.adherence`: covered days / window days).

**Treatment episodes** (``compute.treatment.episodes``): gaps over the FUW (carry-over within it, never from
before it); an episode ends after an event whose gap exceeds the maximum permissible gap (days, or a percent
of that event's duration), or whose medication differs from the next event's (``medication_change_means_
new_episode``; AdhereR's default) or whose daily dose differs (``dosage_change_means_new_episode``). The
next episode starts at the next event (a resumption). Duration = next episode start - start - the gap that
ended it; the last episode runs to the FUW end, minus its final gap when that gap is at least the maximum
permissible gap. ``append_max_gap`` adds the maximum permissible gap back to an episode ended by a gap larger
than it (AdhereR's ``maximum.permissible.gap.append.to.episode``, as documented: its code for the single-
episode case subtracts it instead; its dosage-change test compares the column name and never triggers, so the
documented rule, the daily doses, is used here).

Each function works person by person (as AdhereR does); the project's monthly marts use the vectorised PDC
of :mod:`oncopipe.methods.adherence`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Measure = Literal["CMA1", "CMA2", "CMA3", "CMA4", "CMA5", "CMA6", "CMA7", "CMA8", "CMA9"]
MEASURES: tuple[str, ...] = ("CMA1", "CMA2", "CMA3", "CMA4", "CMA5", "CMA6", "CMA7", "CMA8", "CMA9")
GAP_UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.0, "years": 365.0}
EVENT_COLUMNS = ("person_id", "date", "duration")
WINDOW_COLUMNS = ("person_id", "followup_start", "followup_days", "observation_start", "observation_days")


@dataclass(frozen=True)
class CarryOver:
    """How supplies carry over (AdhereR's ``carry.only.for.same.medication`` and ``consider.dosage.change``)."""

    only_same_medication: bool = False
    dosage_change: bool = False


@dataclass(frozen=True)
class _Events:
    """One person's events, sorted by date: day numbers, durations, classes, daily doses."""

    t: np.ndarray
    duration: np.ndarray
    medication: np.ndarray | None
    dose: np.ndarray | None

    def take(self, mask: np.ndarray) -> _Events:
        return _Events(self.t[mask], self.duration[mask],
                       None if self.medication is None else self.medication[mask],
                       None if self.dose is None else self.dose[mask])


@dataclass(frozen=True)
class _Gaps:
    """Events of the FUW with AdhereR's event.interval, gap.days and carry-over (NaN where unused)."""

    events: _Events
    before: np.ndarray
    after: np.ndarray
    interval: np.ndarray
    gap: np.ndarray
    carry: np.ndarray


def _days(values: Iterable) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]").astype(np.int64)


def _gaps(ev: _Events, fu: tuple[int, int], ow: tuple[int, int], *, within: bool, into: bool,
          carry: CarryOver) -> _Gaps:
    """AdhereR's compute.event.int.gaps for one person (events outside the FUW removed)."""
    ev = ev.take((ev.t >= fu[0]) & (ev.t <= fu[1]))
    n = len(ev.t)
    before, after = ev.t < ow[0], ev.t > ow[1]
    interval, gap, carried = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    used = np.flatnonzero(~after if into else ~before & ~after)
    if len(used):
        # The last used event's next event is outside the OW (or the FUW): its interval ends at the OW end.
        interval[used[:-1]] = np.diff(ev.t[used])
        interval[used[-1]] = ow[1] - ev.t[used[-1]]
        excess = interval[used] - ev.duration[used]
        if len(used) == 1 or not within:
            gap[used] = np.maximum(excess, 0.0)
            carried[used] = 0.0
        else:
            med = ev.medication[used] if ev.medication is not None else None
            changed = (np.r_[med[:-1] != med[1:], False] if med is not None else np.zeros(len(used), bool))
            ratio = (np.r_[ev.dose[used][:-1] / ev.dose[used][1:], 1.0] if ev.dose is not None
                     else np.ones(len(used)))
            drop = carry.only_same_medication & changed
            scale = (carry.only_same_medication & carry.dosage_change & ~changed) | (
                (not carry.only_same_medication) & carry.dosage_change)
            c = 0.0
            for i, e in enumerate(used):
                carried[e] = c
                g = excess[i] - c
                gap[e], c = (0.0, -g) if g < 0 else (g, 0.0)
                if drop[i]:
                    c = 0.0
                elif scale[i]:
                    c *= ratio[i]
    return _Gaps(ev, before, after, interval, gap, carried)


def _cma7(ev: _Events, fu: tuple[int, int], ow: tuple[int, int], carry: CarryOver) -> float:
    g = _gaps(ev, fu, ow, within=True, into=True, carry=carry)
    s = np.flatnonzero(~g.before & ~g.after)
    length = ow[1] - ow[0]
    if len(s) == 0:
        if not g.before.any():
            return np.nan
        last = int(np.flatnonzero(g.before).max())
        return 1.0 - g.gap[last] / length if g.gap[last] <= length else 0.0
    first = int(s[0])
    lead = float(g.events.t[first] - ow[0])
    before_first = lead if first == 0 else min(g.gap[first - 1], lead)
    return 1.0 - (np.nansum(g.gap[s[:-1]]) + g.gap[s[-1]] + before_first) / length


def _cma8(ev: _Events, fu: tuple[int, int], ow: tuple[int, int], carry: CarryOver) -> float:
    g = _gaps(ev, fu, ow, within=True, into=True, carry=carry)
    ends = g.events.t + g.events.duration + g.carry
    reaching = g.before & (ends > ow[0])
    start = float(np.nanmax(ends[reaching])) if reaching.any() else ow[0]
    if start >= ow[1]:
        return np.nan
    return _cma7(ev, fu, (start, ow[1]), carry)


def _cma9(ev: _Events, fu: tuple[int, int], ow: tuple[int, int], carry: CarryOver) -> float:
    g = _gaps(ev, fu, fu, within=True, into=True, carry=carry)
    if not (g.events.t <= ow[1]).any():
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 1.0 - g.gap / g.interval
    start = np.maximum(g.events.t, ow[0])
    end = np.minimum(g.events.t + g.interval, ow[1])
    return float(np.nansum(ratio * np.maximum(0.0, end - start)) / (ow[1] - ow[0]))


def _cma_one(measure: str, ev: _Events, fu: tuple[int, int], ow: tuple[int, int], carry: CarryOver) -> float:
    if measure == "CMA7":
        return _cma7(ev, fu, ow, carry)
    if measure == "CMA8":
        return _cma8(ev, fu, ow, carry)
    if measure == "CMA9":
        return _cma9(ev, fu, ow, carry)
    within = measure in ("CMA5", "CMA6")
    g = _gaps(ev, fu, ow, within=within, into=False, carry=carry)
    s = np.flatnonzero(~g.before & ~g.after)
    t, d = g.events.t, g.events.duration
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in ("CMA1", "CMA3", "CMA5"):
            if len(s) < 2 or t[s[-1]] == t[s[0]]:
                return np.nan
            span = float(t[s[-1]] - t[s[0]])
            if measure == "CMA5":
                return 1.0 - float(np.sum(g.gap[s[:-1]])) / span
            value = float(np.sum(d[s[:-1]])) / span
            return min(1.0, value) if measure == "CMA3" else value
        if len(s) == 0:
            return np.nan
        span = np.float64(ow[1] - t[s[0]])
        if measure == "CMA6":
            return float(1.0 - np.sum(g.gap[s]) / span)
        value = float(np.float64(np.sum(d[s])) / span)  # AdhereR divides by 0 (Inf) for an event on the OW end
        return min(1.0, value) if measure == "CMA4" else value


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, not {measure!r}")


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, frame.columns))}")


def _people(events: pd.DataFrame, medication: str | None, dose: str | None) -> dict:
    _require(events, EVENT_COLUMNS, "events")
    for column in (medication, dose):
        if column is not None and column not in events.columns:
            raise ValueError(f"events: no column {column!r}")
    duration = events["duration"].to_numpy(dtype=float)
    bad = ~(np.isfinite(duration) & (duration > 0))
    if bad.any():
        raise ValueError(f"events: {int(bad.sum())} row(s) with a missing or non-positive duration (first at row "
                         f"{int(np.flatnonzero(bad)[0])}): AdhereR requires strictly positive durations")
    if events["date"].isna().any():
        raise ValueError(f"events: {int(events['date'].isna().sum())} row(s) without date")
    if dose is not None:
        doses = events[dose].to_numpy(dtype=float)
        if not (np.isfinite(doses) & (doses > 0)).all():
            raise ValueError(f"events: column {dose!r} must hold strictly positive daily doses")
    frame = pd.DataFrame({"person_id": events["person_id"].to_numpy(), "t": _days(events["date"]),
                          "duration": duration})
    if medication is not None:
        frame["medication"] = events[medication].to_numpy()
    if dose is not None:
        frame["dose"] = events[dose].to_numpy(dtype=float)
    frame = frame.sort_values(["person_id", "t"], kind="stable")
    out = {}
    for pid, g in frame.groupby("person_id", sort=False):
        out[pid] = _Events(g["t"].to_numpy(), g["duration"].to_numpy(),
                           g["medication"].to_numpy() if medication is not None else None,
                           g["dose"].to_numpy() if dose is not None else None)
    return out


def _windows(windows: pd.DataFrame) -> pd.DataFrame:
    _require(windows, WINDOW_COLUMNS, "windows")
    w = pd.DataFrame({"person_id": windows["person_id"].to_numpy(),
                      "fu0": _days(windows["followup_start"]), "ow0": _days(windows["observation_start"])})
    w["fu1"] = w["fu0"] + windows["followup_days"].to_numpy(dtype=np.int64)
    w["ow1"] = w["ow0"] + windows["observation_days"].to_numpy(dtype=np.int64)
    bad = (w["ow0"] < w["fu0"]) | (w["ow1"] > w["fu1"]) | (w["ow1"] <= w["ow0"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"windows: the observation window is not a non-empty part of the follow-up window for "
                         f"{int(bad.sum())} row(s), first person {w['person_id'].iloc[row]!r} (row {row})")
    return w


_NO_EVENTS = _Events(np.zeros(0, np.int64), np.zeros(0), None, None)


def cma(
    events: pd.DataFrame,
    windows: pd.DataFrame,
    measure: Measure = "CMA7",
    *,
    medication: str | None = None,
    daily_dose: str | None = None,
    carry_only_for_same_medication: bool = False,
    consider_dosage_change: bool = False,
) -> pd.DataFrame:
    """One of AdhereR's CMA1..CMA9 per window (see the module docstring for the definitions).

    Args:
        events: ``person_id``, ``date`` (dates or day numbers), ``duration`` (days, > 0), and the columns named
            by ``medication`` and ``daily_dose`` if given.
        windows: one row per window: ``person_id``, ``followup_start``, ``followup_days``,
            ``observation_start``, ``observation_days`` (``[start, start + days)``); a person may have several.
        measure: ``"CMA1"`` .. ``"CMA9"``.
        medication: the medication class column (carry-over across classes, episodes).
        daily_dose: the daily dose column (``consider_dosage_change``).
        carry_only_for_same_medication: AdhereR's ``carry.only.for.same.medication`` (CMA5-CMA9).
        consider_dosage_change: AdhereR's ``consider.dosage.change`` (CMA5-CMA9).

    Returns:
        ``windows`` with a ``cma`` column (NaN where AdhereR gives NA).

    Raises:
        ValueError: an unknown measure, a missing column, a non-positive duration, an OW outside its FUW.
    """
    _check_measure(measure)
    if carry_only_for_same_medication and medication is None:
        raise ValueError("carry_only_for_same_medication needs the medication column")
    if consider_dosage_change and daily_dose is None:
        raise ValueError("consider_dosage_change needs the daily_dose column")
    people = _people(events, medication, daily_dose)
    w = _windows(windows)
    carry = CarryOver(carry_only_for_same_medication, consider_dosage_change)
    values = [_cma_one(measure, people.get(pid, _NO_EVENTS), (fu0, fu1), (ow0, ow1), carry)
              for pid, fu0, fu1, ow0, ow1 in zip(w["person_id"], w["fu0"], w["fu1"], w["ow0"], w["ow1"],
                                                 strict=True)]
    return windows.assign(cma=np.asarray(values, dtype=float))


def sliding_windows(windows: pd.DataFrame, *, start_days: int = 0, window_days: int = 90,
                    step_days: int = 30) -> pd.DataFrame:
    """AdhereR's sliding windows inside each observation window (``CMA_sliding_window``, step given).

    Windows of ``window_days`` start ``start_days`` after the OW start and every ``step_days``, as many as fit
    before the OW end: ``floor((OW end - first start - window_days) / step_days) + 1`` (none if negative).
    AdhereR's months and years are 30 and 365 days here too.

    Returns:
        One row per sliding window: ``person_id``, ``window_id`` (1-based), ``followup_start``,
        ``followup_days`` (the person's FUW), ``observation_start``, ``observation_days`` (the sliding window).
    """
    if window_days < 1 or step_days < 1 or start_days < 0:
        raise ValueError("sliding windows need window_days >= 1, step_days >= 1, start_days >= 0")
    w = _windows(windows)
    first = w["ow0"].to_numpy() + start_days
    room = w["ow1"].to_numpy() - first - window_days
    n = np.where(room >= 0, room // step_days + 1, 0)
    row = np.repeat(np.arange(len(w)), n)
    k = np.arange(len(row)) - np.repeat(np.cumsum(n) - n, n)
    return pd.DataFrame({
        "person_id": w["person_id"].to_numpy()[row],
        "window_id": k + 1,
        "followup_start": _to_dates(w["fu0"].to_numpy()[row]),
        "followup_days": (w["fu1"] - w["fu0"]).to_numpy()[row],
        "observation_start": _to_dates(first[row] + k * step_days),
        "observation_days": np.full(len(row), window_days, dtype=np.int64),
    })


def cma_sliding_window(events: pd.DataFrame, windows: pd.DataFrame, measure: Measure = "CMA7", *,
                       start_days: int = 0, window_days: int = 90, step_days: int = 30, **options) -> pd.DataFrame:
    """A CMA over AdhereR's sliding windows (:func:`sliding_windows`), the FUW unchanged; ``options`` as
    :func:`cma`. Returns the sliding windows with ``window_end`` (first day after) and ``cma``."""
    slides = sliding_windows(windows, start_days=start_days, window_days=window_days, step_days=step_days)
    out = cma(events, slides, measure, **options)
    out["window_end"] = out["observation_start"] + pd.to_timedelta(out["observation_days"], unit="D")
    return out


def _to_dates(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")


def _episodes_one(ev: _Events, fu: tuple[int, int], *, max_gap: float, percent: bool, carry: CarryOver,
                  medication_change: bool, dosage_change: bool, append: bool) -> list[tuple[int, int, float, float]]:
    """(episode start, first event index, end gap, duration) per episode of one person."""
    g = _gaps(ev, fu, fu, within=True, into=False, carry=carry)
    keep = ~np.isnan(g.gap)
    t, gap, dur = g.events.t[keep], g.gap[keep], g.events.duration[keep]
    n = len(t)
    if n == 0:
        return []
    mpg = max_gap * dur if percent else np.full(n, max_gap)
    split = gap > mpg
    if medication_change and n > 1:
        med = g.events.medication[keep]
        split |= np.r_[med[:-1] != med[1:], True]
    if dosage_change and n > 1:
        dose = g.events.dose[keep]
        split |= np.r_[dose[:-1] != dose[1:], True]
    s = np.flatnonzero(split)
    if len(s) == 0 or (len(s) == 1 and s[0] == n - 1) or n == 1:
        starts, last_events = np.array([0]), np.array([n - 1])
    elif s[-1] != n - 1:
        starts, last_events = np.r_[0, s + 1], np.r_[s, n - 1]
    else:
        starts, last_events = np.r_[0, s[:-1] + 1], s
    end_gap = gap[last_events]
    out = []
    for i, (first, last) in enumerate(zip(starts, last_events, strict=True)):
        final = i == len(starts) - 1
        room = (fu[1] - t[first]) if final else (t[starts[i + 1]] - t[first])
        if append:
            duration = room - (end_gap[i] - mpg[last] if end_gap[i] > mpg[last] else 0.0)
        elif final:
            duration = room - (end_gap[i] if end_gap[i] >= mpg[n - 1] else 0.0)
        else:
            duration = room - end_gap[i]
        out.append((int(t[first]), int(first), float(end_gap[i]), float(duration)))
    return out


def treatment_episodes(
    events: pd.DataFrame,
    followup: pd.DataFrame,
    *,
    max_gap: float = 90,
    max_gap_unit: Literal["days", "weeks", "months", "years", "percent"] = "days",
    medication: str | None = None,
    daily_dose: str | None = None,
    carry_only_for_same_medication: bool = True,
    consider_dosage_change: bool = True,
    medication_change_means_new_episode: bool = True,
    dosage_change_means_new_episode: bool = False,
    append_max_gap: bool = False,
) -> pd.DataFrame:
    """AdhereR's treatment episodes (``compute.treatment.episodes``; module docstring), AdhereR's defaults.

    Args:
        events: as for :func:`cma`.
        followup: ``person_id``, ``followup_start``, ``followup_days`` (one row per person).
        max_gap: the maximum permissible gap, in ``max_gap_unit`` (weeks, months, years: 7, 30, 365 days;
            percent: of the duration of the event before the gap).
        medication, daily_dose: column names (needed by the options that use them; a missing medication
            column switches the carry and episode rules on medication off).
        carry_only_for_same_medication, consider_dosage_change: carry-over options (with the columns).
        medication_change_means_new_episode, dosage_change_means_new_episode: a change starts a new episode.
        append_max_gap: add the maximum permissible gap to an episode ended by a longer gap.

    Returns:
        One row per episode: ``person_id``, ``episode_id`` (1-based), ``episode_start``,
        ``end_episode_gap_days`` (the gap after its last event: the one that ended it, or the one running to
        the FUW end), ``episode_duration`` (days), ``episode_end`` (start + duration: the first day after it).
    """
    if max_gap_unit != "percent" and max_gap_unit not in GAP_UNITS:
        raise ValueError(f"max_gap_unit must be one of {', '.join([*GAP_UNITS, 'percent'])}, not {max_gap_unit!r}")
    if dosage_change_means_new_episode and daily_dose is None:
        raise ValueError("dosage_change_means_new_episode needs the daily_dose column")
    percent = max_gap_unit == "percent"
    limit = max(0.0, float(max_gap) / 100 if percent else float(max_gap) * GAP_UNITS[max_gap_unit])
    carry = CarryOver(carry_only_for_same_medication and medication is not None,
                      consider_dosage_change and daily_dose is not None)
    people = _people(events, medication, daily_dose)
    _require(followup, ("person_id", "followup_start", "followup_days"), "followup")
    fu0 = _days(followup["followup_start"])
    fu1 = fu0 + followup["followup_days"].to_numpy(dtype=np.int64)
    rows = []
    for pid, a, b in zip(followup["person_id"], fu0, fu1, strict=True):
        found = _episodes_one(people.get(pid, _NO_EVENTS), (int(a), int(b)), max_gap=limit, percent=percent,
                              carry=carry, medication_change=medication_change_means_new_episode
                              and medication is not None, dosage_change=dosage_change_means_new_episode,
                              append=append_max_gap)
        rows += [(pid, i + 1, start, gap, duration) for i, (start, _, gap, duration) in enumerate(found)]
    out = pd.DataFrame(rows, columns=["person_id", "episode_id", "start", "end_episode_gap_days", "episode_duration"])
    start = out["start"].to_numpy(dtype=np.int64)
    return pd.DataFrame({
        "person_id": out["person_id"].to_numpy(),
        "episode_id": out["episode_id"].to_numpy(dtype=np.int64),
        "episode_start": _to_dates(start),
        "end_episode_gap_days": out["end_episode_gap_days"].to_numpy(dtype=float),
        "episode_duration": out["episode_duration"].to_numpy(dtype=float),
        "episode_end": _to_dates(start + np.rint(out["episode_duration"].to_numpy(dtype=float)).astype(np.int64)),
    })


def cma_per_episode(events: pd.DataFrame, windows: pd.DataFrame, measure: Measure = "CMA7", *,
                    episode_options: dict | None = None, **options) -> pd.DataFrame:
    """A CMA per treatment episode (AdhereR's ``CMA_per_episode``).

    Episodes come from :func:`treatment_episodes` over each person's FUW (``episode_options``); each one is
    cut to the OW (episodes outside it are dropped) and the CMA is computed with the episode as FUW and its
    part in the OW as OW. ``options`` go to :func:`cma` (and the column names to the episodes too).

    Returns:
        ``person_id``, ``episode_id``, ``episode_start`` and ``episode_end`` (cut to the OW, as AdhereR
        reports them), ``end_episode_gap_days``, ``episode_duration`` (the whole episode's, as AdhereR), ``cma``.
    """
    _check_measure(measure)
    names = {k: options[k] for k in ("medication", "daily_dose") if k in options}
    w = _windows(windows)
    if w["person_id"].duplicated().any():
        raise ValueError("cma_per_episode: one window per person (the episodes cover the person's FUW)")
    fu = pd.DataFrame({"person_id": w["person_id"], "followup_start": w["fu0"], "followup_days": w["fu1"] - w["fu0"]})
    episodes = treatment_episodes(events, fu, **names, **(episode_options or {}))
    start = _days(episodes["episode_start"])
    end = start + np.rint(episodes["episode_duration"].to_numpy()).astype(np.int64)
    ow = w.set_index("person_id").loc[episodes["person_id"]]
    cut0 = np.maximum(start, ow["ow0"].to_numpy())
    cut1 = np.minimum(end, ow["ow1"].to_numpy())
    keep = cut0 < cut1
    inner = pd.DataFrame({"person_id": episodes["person_id"].to_numpy()[keep], "followup_start": start[keep],
                          "followup_days": (end - start)[keep], "observation_start": cut0[keep],
                          "observation_days": (cut1 - cut0)[keep]})
    values = cma(events, inner, measure, **options)["cma"].to_numpy()
    return pd.DataFrame({
        "person_id": inner["person_id"].to_numpy(),
        "episode_id": episodes["episode_id"].to_numpy()[keep],
        "episode_start": _to_dates(cut0[keep]),
        "episode_end": _to_dates(cut1[keep]),
        "end_episode_gap_days": episodes["end_episode_gap_days"].to_numpy()[keep],
        "episode_duration": episodes["episode_duration"].to_numpy()[keep],
        "cma": values,
    })
