"""Survival model: general-population mortality from the life table plus a planted excess hazard per site.

A case's death time after diagnosis is ``min(T_population, T_excess)``: ``T_population`` follows the French
life table (sex, attained age, calendar year), ``T_excess`` a Weibull excess hazard
``H(t) = k_site * t**shape * HR_stage * HR_age * HR_deprivation``. ``k_site`` is calibrated once (on a large
fixed reference case mix drawn from the planted site/sex/age/stage/deprivation distributions) so that the mean
5-year net survival ``E[exp(-H(5))]`` equals the published figure for the site.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
from scipy.optimize import brentq

from oncopipe.landing.lifetables import YEARS, hazard_array
from oncopipe.synth import parameters as P
from oncopipe.synth.dates import year_of


@lru_cache(maxsize=1)
def _hazards() -> np.ndarray:
    return hazard_array()


def population_yearly_hazards(sex: np.ndarray, birth_day: np.ndarray, start_day: np.ndarray,
                              years: int) -> np.ndarray:
    """Population hazard (per year) in each of ``years`` yearly intervals from ``start_day``.

    Args:
        sex: 1 male, 2 female.
        birth_day, start_day: day numbers.
        years: number of yearly intervals.

    Returns:
        Array (n, years): hazard at the attained age and calendar year of each interval.
    """
    h = _hazards()
    age0 = (start_day - birth_day) / 365.25
    cal0 = year_of(start_day) + ((start_day - _year_start(start_day)) / 365.25)
    steps = np.arange(years)
    age = np.clip(np.floor(age0[:, None] + steps[None, :]).astype(int), 0, 110)
    cal = np.clip(np.floor(cal0[:, None] + steps[None, :]).astype(int) - YEARS[0], 0, len(YEARS) - 1)
    return h[(sex - 1)[:, None], age, cal]


def _year_start(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)


def sample_population_death(rng: np.random.Generator, sex: np.ndarray, birth_day: np.ndarray,
                            start_day: np.ndarray, years: int) -> np.ndarray:
    """Days from ``start_day`` to death from general-population mortality (inf if beyond ``years``)."""
    hz = population_yearly_hazards(sex, birth_day, start_day, years)
    cum = np.cumsum(hz, axis=1)
    e = rng.exponential(size=len(sex))
    j = (cum < e[:, None]).sum(axis=1)
    out = np.full(len(sex), np.inf)
    inside = j < years
    ji = j[inside]
    before = np.where(ji > 0, cum[inside, np.maximum(ji - 1, 0)], 0.0)
    frac = (e[inside] - before) / hz[inside, ji]
    out[inside] = (ji + frac) * 365.25
    return out


def population_survival(sex: np.ndarray, birth_day: np.ndarray, start_day: np.ndarray, years: int) -> np.ndarray:
    """Expected general-population survival over ``years`` whole years from ``start_day``."""
    return np.exp(-population_yearly_hazards(sex, birth_day, start_day, years).sum(axis=1))


def age_band(age: np.ndarray) -> np.ndarray:
    """Index into :data:`parameters.AGE_BANDS` of each age."""
    out = np.zeros(len(age), dtype=np.int8)
    for i, (_, lo, hi) in enumerate(P.AGE_BANDS):
        out[(age >= lo) & (age < hi)] = i
    return out


def hazard_ratio(stage: np.ndarray, age: np.ndarray, quintile: np.ndarray) -> np.ndarray:
    """Combined excess-hazard ratio (stage index into STAGES, age in years, FDep quintile 1..5)."""
    hr_stage = np.array([P.HR_STAGE[s] for s in P.STAGES])
    hr_age = np.array([P.HR_AGE[b[0]] for b in P.AGE_BANDS])
    hr_dep = np.array([P.HR_DEPRIVATION[q] for q in range(1, 6)])
    return hr_stage[stage] * hr_age[age_band(age)] * hr_dep[quintile - 1]


def reference_case_mix(site: str, n: int = 200_000) -> dict[str, np.ndarray]:
    """A large fixed case mix of ``site`` (same distributions as the generator; constant random stream)."""
    rng = np.random.default_rng(977 + P.SITE_INDEX[site])
    mean, sd = P.SITE_AGE[site]
    age = np.clip(rng.normal(mean, sd, n), 20, 98)
    stage = rng.choice(len(P.STAGES), size=n, p=P.STAGE_MIX[site])
    quintile = rng.integers(1, 6, n)
    return {"age": age, "stage": stage, "quintile": quintile}


@cache
def excess_scale(site: str) -> float:
    """``k_site``: the Weibull scale giving the planted 5-year net survival over the reference case mix."""
    mix = reference_case_mix(site)
    hr = hazard_ratio(mix["stage"], mix["age"], mix["quintile"])
    base = 5.0 ** P.WEIBULL_SHAPE[site]
    target = P.NET_SURVIVAL_5Y[site]
    return float(brentq(lambda k: np.mean(np.exp(-k * base * hr)) - target, 1e-6, 50.0, xtol=1e-10))


def sample_excess_death(rng: np.random.Generator, site: str, hr: np.ndarray) -> np.ndarray:
    """Days from diagnosis to death from the cancer (Weibull excess hazard)."""
    k = excess_scale(site)
    e = rng.exponential(size=len(hr))
    return (e / (k * hr)) ** (1.0 / P.WEIBULL_SHAPE[site]) * 365.25


def excess_survival(site: str, hr: np.ndarray, years: float = 5.0) -> np.ndarray:
    """Net (excess-only) survival at ``years`` for each hazard ratio."""
    return np.exp(-excess_scale(site) * years ** P.WEIBULL_SHAPE[site] * hr)
