"""Simulated poor-prognosis case and delay tables with known parameters, for tests and benchmarks.

Shaped like the ``poor_prognosis_cases`` and ``care_pathway_delays`` marts. Death = the earlier of a
general-population death (life-table hazard by sex, attained age and calendar year, piecewise constant per
year of follow-up) and a cancer death with Weibull excess hazard
``k_site * t**shape * HR_stage * HR_age``. Delay to first treatment: gamma around a site base delay, plus a
hospital effect, minus ``fast_track_days`` in fast-track hospitals. Every parameter is returned in ``truth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from oncopipe.methods.net_survival import hazard_array

SITES = {"lung": 0.54, "pancreas": 0.16, "liver": 0.11, "oesophagus": 0.06, "stomach": 0.07, "cns": 0.06}
EXCESS_SCALE = {"lung": 0.55, "pancreas": 0.9, "liver": 0.6, "oesophagus": 0.6, "stomach": 0.4, "cns": 0.45}
WEIBULL_SHAPE = 0.75
HR_STAGE = {"I": 0.25, "II": 0.5, "III": 1.0, "IV": 2.2, "X": 1.2}
HR_AGE = {"<50": 0.8, "50-64": 1.0, "65-74": 1.25, "75+": 1.6}
BASE_DELAY = {"lung": 38.0, "pancreas": 30.0, "liver": 40.0, "oesophagus": 35.0, "stomach": 32.0, "cns": 20.0}


@dataclass
class SimulatedCohort:
    cases: pd.DataFrame
    delays: pd.DataFrame
    truth: dict = field(default_factory=dict)


def simulate_cohort(n: int, life_table: pd.DataFrame, *, seed: int = 0, n_hospitals: int = 40,
                    fast_track_share: float = 0.2, fast_track_days: float = 20.0,
                    end_of_data: str = "2024-12-31") -> SimulatedCohort:
    """Simulate ``n`` cases diagnosed 2012-2022 followed to ``end_of_data`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    sites = np.array(list(SITES))
    site = rng.choice(sites, n, p=np.array(list(SITES.values())) / sum(SITES.values()))
    sex = np.where(rng.random(n) < 0.62, "male", "female")
    age = np.clip(rng.normal(68, 11, n), 20, 98)
    stage = rng.choice(list(HR_STAGE), n, p=[0.18, 0.14, 0.22, 0.38, 0.08])
    stage = np.where(site == "cns", "X", stage)
    quintile = rng.integers(1, 6, n).astype(float)
    quintile[rng.random(n) < 0.03] = np.nan
    region = rng.choice(["11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93"], n)
    diag = pd.Timestamp("2012-01-01") + pd.to_timedelta(rng.integers(0, 11 * 365, n), unit="D")
    end = pd.Timestamp(end_of_data)
    birth_year = (diag.year - age).astype(int)
    age_exact = (diag - pd.to_datetime(pd.Series(birth_year).astype(str) + "-07-01")).dt.days.to_numpy() / 365.25
    year_exact = diag.year.to_numpy() + (diag.day_of_year.to_numpy() - 0.5) / 365.25
    age_band = pd.cut(age_exact, [0, 50, 65, 75, 200], labels=list(HR_AGE), right=False).astype(str)
    hr = np.array([HR_STAGE[s] for s in stage]) * np.array([HR_AGE[a] for a in age_band])
    k = np.array([EXCESS_SCALE[s] for s in site])
    t_excess = (rng.exponential(size=n) / (k * hr)) ** (1 / WEIBULL_SHAPE) * 365.25
    s_idx, ages, years, cube = hazard_array(life_table)
    steps = np.arange(15)
    a_idx = np.clip(np.floor(age_exact[:, None] + steps + 0.5).astype(int) - ages[0], 0, ages.size - 1)
    y_idx = np.clip(np.floor(year_exact[:, None] + steps + 0.5).astype(int) - years[0], 0, years.size - 1)
    hz = cube[pd.Series(sex).map(s_idx).to_numpy()[:, None], a_idx, y_idx]
    cum = np.cumsum(hz, axis=1)
    e = rng.exponential(size=n)
    j = (cum < e[:, None]).sum(axis=1)
    inside = j < steps.size
    before = np.where(j > 0, cum[np.arange(n), np.maximum(j - 1, 0)], 0.0)
    t_pop = np.full(n, np.inf)
    t_pop[inside] = (j[inside] + (e[inside] - before[inside]) / hz[inside, j[inside]]) * 365.25
    t_death = np.ceil(np.minimum(t_excess, t_pop))
    censor = (end - diag).days.to_numpy().astype(float)
    follow = np.minimum(t_death, censor)
    event = (t_death <= censor).astype(int)
    hospitals = np.array([f"{750000000 + 1000 * i + 17:09d}" for i in range(n_hospitals)])
    fast = rng.random(n_hospitals) < fast_track_share
    fast[0] = True
    effect = rng.normal(0, 4, n_hospitals)
    effect[fast] = 0.0
    h = rng.integers(0, n_hospitals, n)
    mean_delay = np.array([BASE_DELAY[s] for s in site]) + effect[h] - fast_track_days * fast[h]
    delay = np.round(rng.gamma(4.0, np.maximum(mean_delay, 3.0) / 4.0))
    treated = (rng.random(n) > 0.15) & (delay < follow)
    delay = np.where(treated, delay, np.nan)
    case_id = np.array([f"c{i:08d}" for i in range(n)])
    cases = pd.DataFrame({
        "case_id": case_id, "person_id": case_id, "site": site, "icd10_code": "C349", "stage": stage, "sex": sex,
        "birth_year": birth_year, "age_at_diagnosis": np.floor(age_exact).astype(int),
        "department_code": "075", "region_code": region, "deprivation_quintile": pd.array(quintile, dtype="Int64"),
        "hospital_id": hospitals[h], "diagnosis_date": diag.date, "diagnosis_year": diag.year,
        "first_treatment_date": (diag + pd.to_timedelta(np.nan_to_num(delay), unit="D")).where(treated).date,
        "first_treatment_kind": np.where(treated, "chemotherapy", None),
        "death_date": (diag + pd.to_timedelta(follow, unit="D")).where(event == 1).date,
        "end_of_data_date": end.date(), "follow_up_days": follow.astype(int), "event": event,
        "case_source": "registry",
    })
    delays = cases[["case_id", "site", "hospital_id", "diagnosis_date", "first_treatment_date",
                    "first_treatment_kind", "stage", "sex", "age_at_diagnosis", "deprivation_quintile"]].copy()
    delays["delay_days"] = pd.array(delay, dtype="Int64")
    delays["treated"] = treated
    truth = {"hr_stage": HR_STAGE, "hr_age": HR_AGE, "fast_track_hospitals": sorted(hospitals[fast].tolist()),
             "fast_track_days": fast_track_days}
    return SimulatedCohort(cases=cases, delays=delays, truth=truth)
