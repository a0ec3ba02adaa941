"""The planted truth of an extraction: what tests and studies compare the pipeline's findings against.

Written to ``<out>/_truth/extraction=<date>/`` (``truth.json`` plus ``cases.parquet`` and
``trajectory_groups.parquet``), outside every source folder; the pipeline never reads it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from oncopipe.synth import clinical_codes as C
from oncopipe.synth import parameters as P
from oncopipe.synth.chunk import Chunk
from oncopipe.synth.dates import NEVER, add_months
from oncopipe.synth.deaths import excess_survival, population_survival
from oncopipe.synth.drugs import catalogue
from oncopipe.synth.geography import DEPARTMENT_CODES, REGISTRIES
from oncopipe.synth.hospitals import Hospitals

MONTHS = 60


def _date_col(days: np.ndarray) -> pd.Series:
    values = np.where(days == NEVER, np.datetime64("NaT"), days.astype("datetime64[D]"))
    return pd.Series(values.astype("datetime64[s]"))


def cases_frame(chunk: Chunk, hospitals: Hospitals, date: int) -> pd.DataFrame:
    """One row per cancer case diagnosed on or before ``date`` with its planted attributes."""
    p = chunk.people
    c = chunk.care
    keep = np.flatnonzero((p.site >= 0) & (p.diag_day <= date))
    site = np.array(C.SITES)[p.site[keep]]
    pop5 = population_survival(p.sex[keep], p.birth_day[keep], p.diag_day[keep], 5)
    net5 = np.ones(len(keep))
    for name in C.SITES:
        m = site == name
        net5[m] = excess_survival(name, p.hazard_ratio[keep][m])
    treat = c.first_treatment[keep]
    reg_ids = np.array([r.reg_id for r in REGISTRIES] + [None], dtype=object)
    return pd.DataFrame({
        "BEN_NIR_PSA": p.nir[keep], "site": site, "icd10": p.icd10[keep].astype(str),
        "diagnosis_date": _date_col(p.diag_day[keep]), "stage": np.array(P.STAGES)[p.stage[keep]],
        "sex": np.where(p.sex[keep] == 1, "male", "female"), "age_at_diagnosis": np.floor(p.age_diag[keep]).astype(int),
        "department": DEPARTMENT_CODES[p.dept[keep]], "deprivation_quintile": p.quintile[keep].astype(int),
        "hospital_id": hospitals.finess[p.hospital[keep]], "registry_id": reg_ids[p.registry[keep]],
        "first_treatment_kind": np.array(list(P.TREATMENTS) + [None], dtype=object)[np.where(treat >= 0, treat, 3)],
        "first_treatment_date": _date_col(c.first_treatment_day[keep]),
        "planted_delay_days": c.planned_delay[keep],
        "death_date": _date_col(p.death_day[keep]), "cancer_death": p.cancer_death[keep],
        "excess_hazard_ratio": p.hazard_ratio[keep],
        "expected_population_survival_5y": pop5, "expected_net_survival_5y": net5,
    })


def monthly_pdc(person: np.ndarray, day: np.ndarray, supply: np.ndarray, index_day: np.ndarray,
                end_day: np.ndarray, months: int = MONTHS) -> tuple[np.ndarray, np.ndarray]:
    """Monthly PDC by the carry-over rule (no hospital days) of women ``0..k-1``.

    Args:
        person: woman of each dispensing (0..k-1), sorted by woman then date.
        day, supply: dispensing date and days of supply.
        index_day, end_day: follow-up start and last day (inclusive) per woman.

    Returns:
        (pdc, observed): arrays (k, months); ``observed`` is False for months starting after the follow-up end.
    """
    k = len(index_day)
    new = np.ones(len(person), dtype=bool)
    new[1:] = person[1:] != person[:-1]
    # Carry-over: end_d = max_{j<=d, same woman}(t_j - S_{j-1}) + S_d - 1, S = cumulative supply.
    cum = np.cumsum(supply)
    first = np.maximum.accumulate(np.where(new, np.arange(len(person)), 0))
    s_before = cum - supply - np.where(first > 0, cum[first - 1], 0) if len(person) else cum
    offset = person.astype(np.int64) * 10_000_000
    run = np.maximum.accumulate(day - s_before + offset) - offset
    start = run + s_before
    # Supplies are disjoint after carry-over, so covered days before day x = sum_d clip(x - start_d, 0, s_d).
    last = end_day - index_day  # relative last follow-up day (inclusive)
    bounds = np.stack([add_months(index_day, m) - index_day for m in range(months + 1)], axis=1)
    a = bounds[:, :-1]
    b = np.minimum(bounds[:, 1:], last[:, None] + 1)
    rel_start = start - index_day[person]
    edges = np.concatenate([a, b], axis=1)
    per_line = np.clip(edges[person] - rel_start[:, None], 0, supply[:, None])
    covered_before = np.zeros((k, edges.shape[1]))
    _add_rows(covered_before, person, per_line)
    days = b - a
    observed = days > 0
    cov = covered_before[:, months:] - covered_before[:, :months]
    pdc = np.where(observed, cov / np.maximum(days, 1), np.nan)
    return pdc, observed


def _add_rows(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """target[rows[i]] += values[i] for rows sorted ascending (reduceat is much faster than add.at)."""
    if not len(rows):
        return
    starts = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
    target[rows[starts]] += np.add.reduceat(values, starts, axis=0)


PROFILE_CHUNKS = 4  # realised profiles are measured on the first chunks only (100,000 people are plenty)


def trajectories_frame(chunk: Chunk, date: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Treated women with index date on or before ``date``, and per-group PDC sums and counts (60 months).

    The sums and counts are zero for chunks from :data:`PROFILE_CHUNKS` on.
    """
    h = chunk.hormone
    p = chunk.people
    keep = h.index_day <= date
    names = np.array([n for n, _ in P.TRAJECTORY_GROUPS])
    frame = pd.DataFrame({
        "BEN_NIR_PSA": p.nir[h.person[keep]], "group": h.group[keep].astype(int) + 1,
        "group_name": names[h.group[keep]], "index_date": _date_col(h.index_day[keep]),
        "first_atc": h.first_atc[keep], "switch_date": _date_col(h.switch_day[keep]),
    })
    groups = len(P.TRAJECTORY_GROUPS)
    sums = np.zeros((groups, MONTHS))
    counts = np.zeros((groups, MONTHS))
    if chunk.number >= PROFILE_CHUNKS:
        return frame, sums, counts
    cat = catalogue()
    k = len(h.person)
    local = np.full(len(p), -1)
    local[h.person] = np.arange(k)
    woman = local[h.disp_person]
    order = np.lexsort((h.disp_day, woman))
    end_day = np.minimum.reduce([p.death_day[h.person], add_months(h.index_day, 60) - 1,
                                np.full(len(h.person), P.HISTORY_END)])
    pdc, observed = monthly_pdc(woman[order], h.disp_day[order], (cat.units[h.disp_presentation] * h.disp_boxes)[order],
                                h.index_day, end_day)
    for g in range(groups):
        m = h.group == g
        sums[g] = np.nansum(pdc[m], axis=0)
        counts[g] = observed[m].sum(axis=0)
    return frame, sums, counts

