"""Hospitals (FINESS ETA_NUM) of the synthetic extract, their planted delay effects and fast-track pathways."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oncopipe.synth import parameters as P
from oncopipe.synth.geography import DEPARTMENT_CODES, DEPARTMENT_WEIGHTS
from oncopipe.synth.streams import stream


def luhn_digit(digits: str) -> int:
    """Luhn check digit of a string of digits (FINESS numbers end with one)."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = int(d) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return (10 - total % 10) % 10


@dataclass(frozen=True)
class Hospitals:
    finess: np.ndarray      # 9-character FINESS ETA_NUM
    dept: np.ndarray        # department index
    size: np.ndarray        # relative activity
    effect: np.ndarray      # planted delay effect, days (added to the site's base delay)
    fast_track: np.ndarray  # bool: runs a fast-track pathway (delay reduced by FAST_TRACK_REDUCTION_DAYS)
    choice_cdf: np.ndarray  # [department index, hospital]: cumulative probability of choosing each hospital


def build_hospitals(seed: int) -> Hospitals:
    """The ~60 hospitals: placed in the most populated departments; effects and fast-track drawn from ``seed``."""
    rng = stream(seed, 0, "hospitals")
    n = P.N_HOSPITALS
    dept = rng.choice(len(DEPARTMENT_CODES), size=n, p=DEPARTMENT_WEIGHTS)
    finess = []
    for i, d in enumerate(dept):
        code = DEPARTMENT_CODES[d]
        prefix = code[1:] if code[0] == "0" else code[:2]
        body = f"{prefix}{'0' if len(prefix) == 2 else ''}{(i * 7919 + 1301) % 100000:05d}"[:8]
        digits = "".join(c if c.isdigit() else "0" for c in body)
        finess.append(body + str(luhn_digit(digits)))
    size = rng.lognormal(0.0, 0.6, n)
    effect = np.round(rng.normal(0.0, P.HOSPITAL_EFFECT_SD, n), 2)
    fast = np.zeros(n, dtype=bool)
    fast[rng.choice(n, size=round(P.FAST_TRACK_SHARE * n), replace=False)] = True
    # Patients go to a hospital of their department when there is one (70 %), else anywhere by size.
    nd = len(DEPARTMENT_CODES)
    prob = np.tile(size / size.sum() * 0.3, (nd, 1))
    for d in range(nd):
        local = dept == d
        if local.any():
            prob[d, local] += 0.7 * size[local] / size[local].sum()
        else:
            prob[d] = size / size.sum()
    cdf = np.cumsum(prob / prob.sum(axis=1, keepdims=True), axis=1)
    return Hospitals(np.array(finess), dept, size, effect, fast, cdf)


def choose_hospital(rng: np.random.Generator, hospitals: Hospitals, dept: np.ndarray) -> np.ndarray:
    """Draw a hospital for each patient from the choice probabilities of their department."""
    u = rng.random(len(dept))
    idx = (hospitals.choice_cdf[dept] < u[:, None]).sum(axis=1)
    return np.minimum(idx, P.N_HOSPITALS - 1).astype(np.int16)
