"""The people of one chunk: demographics, residence, cancer diagnosis, hospital, death.

Everything here is drawn once per (seed, chunk) over the whole simulated history (2010..2027), so the same
person has the same life whatever the extraction date; an extraction only cuts it at its date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oncopipe.synth import parameters as P
from oncopipe.synth.clinical_codes import ICD10, OTHER_DEATH_CAUSES, SITES
from oncopipe.synth.dates import NEVER
from oncopipe.synth.deaths import (
    hazard_ratio,
    sample_excess_death,
    sample_population_death,
)
from oncopipe.synth.geography import communes, draw_residence, registry_lookup
from oncopipe.synth.hospitals import Hospitals, choose_hospital
from oncopipe.synth.streams import splitmix64, stream

COHORTS = ("other", "breast", "poor_prognosis")


@dataclass
class People:
    """Arrays, one entry per person of the chunk (``index`` is the global person number)."""

    index: np.ndarray
    nir: np.ndarray
    sex: np.ndarray            # 1 male, 2 female
    birth_day: np.ndarray
    dept: np.ndarray           # index into geography.DEPARTMENTS
    commune: np.ndarray        # index into geography.communes()
    quintile: np.ndarray
    cohort: np.ndarray         # index into COHORTS
    site: np.ndarray           # index into SITES, -1 none
    icd10: np.ndarray          # '' when no cancer
    diag_day: np.ndarray       # NEVER when no cancer
    stage: np.ndarray          # index into STAGES, -1 none
    age_diag: np.ndarray
    hospital: np.ndarray       # diagnosing hospital index, -1 none
    registry: np.ndarray       # registry index, -1 not covered
    hazard_ratio: np.ndarray   # excess-hazard ratio (1 when no cancer)
    death_day: np.ndarray      # NEVER when alive at the end of the history
    cancer_death: np.ndarray   # death from the cancer (excess hazard) rather than other causes
    death_cause: np.ndarray
    death_report_delay: np.ndarray  # days before the death reaches IR_BEN_R (dirt: usually 0)
    ins_day: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


def pseudonyms(seed: int, index: np.ndarray) -> np.ndarray:
    """17-character pseudonymised identifiers, distinct for distinct (seed, index)."""
    mixed = splitmix64(index.astype(np.uint64) ^ splitmix64(np.array([seed], dtype=np.uint64))[0])
    return np.array([f"{v:016X}{i % 7}" for v, i in zip(mixed.tolist(), index.tolist(), strict=True)])


def _weighted_codes(rng: np.random.Generator, table: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    codes = np.array([c for c, _ in table])
    w = np.array([w for _, w in table])
    return codes[rng.choice(len(codes), size=n, p=w / w.sum())]


def simulate_people(seed: int, chunk: int, start: int, n: int, hospitals: Hospitals, dirt_rate: float) -> People:
    """Draw ``n`` people numbered ``start..start+n-1`` (chunk ``chunk``)."""
    rng = stream(seed, chunk, "people")
    index = np.arange(start, start + n, dtype=np.int64)
    shares = np.array([P.COHORT_SHARES["other"], P.COHORT_SHARES["breast"], P.COHORT_SHARES["poor_prognosis"]])
    cohort = rng.choice(3, size=n, p=shares).astype(np.int8)
    dept, commune = draw_residence(rng, n)
    quintile = communes().quintile[commune]

    site = np.full(n, -1, dtype=np.int8)
    site[cohort == 1] = P.SITE_INDEX["breast"]
    poor = cohort == 2
    inc = np.array([P.SITE_INCIDENCE[SITES[i]] for i in P.POOR_INDEX])
    site[poor] = P.POOR_INDEX[rng.choice(len(inc), size=int(poor.sum()), p=inc / inc.sum())]

    sex = np.where(rng.random(n) < 0.52, 2, 1).astype(np.int8)
    sex[cohort == 1] = 2
    for s in P.POOR_INDEX:
        m = site == s
        sex[m] = np.where(rng.random(int(m.sum())) < P.SITE_MALE_SHARE[SITES[s]], 1, 2)

    cancer = site >= 0
    diag_day = np.full(n, NEVER, dtype=np.int64)
    diag_day[cancer] = rng.integers(P.DIAGNOSIS_START, P.DIAGNOSIS_END + 1, int(cancer.sum()))
    age_diag = np.zeros(n)
    stage = np.full(n, -1, dtype=np.int8)
    icd10 = np.full(n, "", dtype=object)
    for s, name in enumerate(SITES):
        m = site == s
        k = int(m.sum())
        mean, sd = P.SITE_AGE[name]
        age_diag[m] = np.clip(rng.normal(mean, sd, k), 20, 98)
        stage[m] = rng.choice(len(P.STAGES), size=k, p=P.STAGE_MIX[name])
        icd10[m] = _weighted_codes(rng, ICD10[name], k)
    mean, sd = P.OTHER_AGE_2010
    age_2010 = np.clip(rng.normal(mean, sd, n), 18, 95)
    birth_day = np.where(cancer, diag_day - np.round(age_diag * 365.25), P.HISTORY_START - np.round(age_2010 * 365.25))
    birth_day = birth_day.astype(np.int64)

    hospital = np.full(n, -1, dtype=np.int16)
    hospital[cancer] = choose_hospital(rng, hospitals, dept[cancer])
    reg_table = registry_lookup()
    registry = np.full(n, -1, dtype=np.int16)
    registry[cancer] = reg_table[dept[cancer], site[cancer]]

    # Death: population mortality from the later of 2010 and diagnosis; excess mortality after diagnosis.
    death_rng = stream(seed, chunk, "death")
    start_day = np.where(cancer, diag_day, P.HISTORY_START)
    years = int(np.ceil((P.HISTORY_END - P.HISTORY_START) / 365.25)) + 1
    t_pop = sample_population_death(death_rng, sex, birth_day, start_day, years)
    hr = np.ones(n)
    t_exc = np.full(n, np.inf)
    for s, name in enumerate(SITES):
        m = site == s
        if m.any():
            hr[m] = hazard_ratio(stage[m], age_diag[m], quintile[m])
            t_exc[m] = sample_excess_death(death_rng, name, hr[m])
    t = np.minimum(t_pop, t_exc)
    death_day = np.where(np.isfinite(t), start_day + np.floor(np.minimum(t, 1e7)), NEVER).astype(np.int64)
    death_day[death_day > P.HISTORY_END] = NEVER
    # A same-day diagnosis and death is recorded: the diagnostic stay ends with the death.
    cancer_death = (t_exc < t_pop) & (death_day != NEVER)
    cause = _weighted_codes(death_rng, OTHER_DEATH_CAUSES, n).astype(object)
    cause[cancer_death] = icd10[cancer_death]

    dirt_rng = stream(seed, chunk, "dirt-deaths")
    late = dirt_rng.random(n) < dirt_rate
    delay = np.where(late, dirt_rng.integers(60, 400, n), 0).astype(np.int64)

    # Entry in the referential: between 1990 and 2010, never before birth.
    ins_day = np.maximum(birth_day, P.HISTORY_START - rng.integers(0, 7300, n))
    return People(index, pseudonyms(seed, index), sex, birth_day, dept, commune, quintile, cohort, site, icd10,
                  diag_day, stage, age_diag, hospital, registry, hr, death_day, cancer_death, cause, delay,
                  ins_day.astype(np.int64))
