"""Background (non-cancer) dispensings of everyone: chronic treatments refilled monthly or quarterly, and
occasional acute drugs. Calibrated to about 100 dispensing lines per person over the history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oncopipe.synth import parameters as P
from oncopipe.synth.drugs import catalogue
from oncopipe.synth.population import People
from oncopipe.synth.streams import stream


@dataclass
class Dispensings:
    person: np.ndarray
    day: np.ndarray
    presentation: np.ndarray
    boxes: np.ndarray


def simulate_background_drugs(seed: int, chunk: int, people: People) -> Dispensings:
    """Every background dispensing of the chunk over the history."""
    rng = stream(seed, chunk, "background-drugs")
    cat = catalogue()
    n = len(people)
    life_end = np.minimum(people.death_day, P.HISTORY_END)
    span = np.maximum(life_end - P.HISTORY_START, 0)
    age_mid = (P.HISTORY_START + span / 2 - people.birth_day) / 365.25
    # Chronic courses: a drug taken from a start date, refilled every box, until stopped, death or the end.
    lam = np.exp(P.CHRONIC_DRUGS_PER_PERSON["intercept"] + P.CHRONIC_DRUGS_PER_PERSON["per_decade"]
                 * (age_mid - 50) / 10)
    n_courses = rng.poisson(lam)
    cp = np.repeat(np.arange(n), n_courses)
    m = len(cp)
    pres = cat.chronic[rng.choice(len(cat.chronic), size=m, p=cat.chronic_weight)]
    start = P.HISTORY_START + np.floor((rng.random(m) * 1.3 - 0.3) * span[cp]).astype(np.int64)
    start = np.maximum(start, P.HISTORY_START)
    duration = rng.exponential(8 * 365.25, m).astype(np.int64)
    end = np.minimum(start + duration, life_end[cp])
    units = cat.units[pres]
    count = np.maximum((end - start) // units + 1, 0)
    count[end < start] = 0
    course = np.repeat(np.arange(m), count)
    k = np.arange(len(course)) - np.repeat(np.cumsum(count) - count, count)
    day = start[course] + k * units[course] + rng.integers(-3, 4, len(course))
    day = np.clip(day, P.HISTORY_START, life_end[cp[course]])
    chronic = Dispensings(cp[course], day, pres[course], np.ones(len(course), dtype=np.int64))
    # Acute drugs: Poisson events over the person's time in the history.
    na = rng.poisson(P.ACUTE_DISPENSINGS_PER_YEAR * span / 365.25)
    ap = np.repeat(np.arange(n), na)
    aday = P.HISTORY_START + np.floor(rng.random(len(ap)) * span[ap]).astype(np.int64)
    apres = cat.acute[rng.choice(len(cat.acute), size=len(ap), p=cat.acute_weight)]
    aboxes = np.where(rng.random(len(ap)) < 0.2, 2, 1)
    return Dispensings(np.concatenate([chronic.person, ap]), np.concatenate([chronic.day, aday]),
                       np.concatenate([chronic.presentation, apres]), np.concatenate([chronic.boxes, aboxes]))
