"""One chunk of people with their whole simulated history (independent of any extraction date)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oncopipe.synth import parameters as P
from oncopipe.synth.background_drugs import simulate_background_drugs
from oncopipe.synth.dates import add_months, month_start_after
from oncopipe.synth.endocrine import HormoneTherapy, simulate_hormone_therapy
from oncopipe.synth.hospital_care import CarePlan, Stays, simulate_hospital_care
from oncopipe.synth.hospitals import Hospitals
from oncopipe.synth.population import People, simulate_people
from oncopipe.synth.streams import stream

# PRS_ORD_NUM offsets of the lines dirt adds (so every version has its own line key).
INFO_LINE_OFFSET = 50
SPURIOUS_LINE_OFFSET = 60
CANCEL_LINE_OFFSET = 70


@dataclass
class PharmacyLines:
    """Every DCIR pharmacy line of the chunk over the history, dirt included (one entry per line)."""

    person: np.ndarray
    day: np.ndarray          # EXE_SOI_DTD
    presentation: np.ndarray
    boxes: np.ndarray        # PHA_ACT_QSN
    flux: np.ndarray         # FLX_DIS_DTD
    processed: np.ndarray    # FLX_TRT_DTD
    claim: np.ndarray        # DCT_ORD_NUM
    line: np.ndarray         # PRS_ORD_NUM
    dpn_qlf: np.ndarray
    specialty: np.ndarray
    dirt: np.ndarray         # 0 clean, 1 info line, 2 exact duplicate, 3 late re-sent, 4 spurious, 5 cancellation


DIRT_KINDS = ("clean", "information_line", "exact_duplicate", "late_resent", "spurious_line", "cancellation")


@dataclass
class Chunk:
    seed: int
    number: int
    people: People
    stays: Stays
    care: CarePlan
    hormone: HormoneTherapy
    pharmacy: PharmacyLines | None


def _pharmacy_lines(seed: int, number: int, people: People, hormone: HormoneTherapy, dirt_rate: float) -> PharmacyLines:
    bg = simulate_background_drugs(seed, number, people)
    rng = stream(seed, number, "pharmacy-lines")
    person = np.concatenate([hormone.disp_person, bg.person])
    day = np.concatenate([hormone.disp_day, bg.day])
    pres = np.concatenate([hormone.disp_presentation, bg.presentation])
    boxes = np.concatenate([hormone.disp_boxes, bg.boxes])
    is_ht = np.concatenate([np.ones(len(hormone.disp_day), bool), np.zeros(len(bg.day), bool)])
    # One int64 key (person, date, presentation) sorts like lexsort on the three, about twice as fast.
    order = np.argsort((person.astype(np.int64) << 32) | ((day - P.HISTORY_START + 4096) << 8) | pres, kind="stable")
    person, day, pres, boxes, is_ht = person[order], day[order], pres[order], boxes[order], is_ht[order]
    n = len(person)
    new_claim = np.ones(n, dtype=bool)
    new_claim[1:] = (person[1:] != person[:-1]) | (day[1:] != day[:-1])
    claim_no = np.cumsum(new_claim)
    new_person = np.ones(n, dtype=bool)
    new_person[1:] = person[1:] != person[:-1]
    first_claim_of_person = np.maximum.accumulate(np.where(new_person, claim_no, 0))
    claim = people.index[person] * 10_000 + (claim_no - first_claim_of_person + 1)
    claim_start = np.maximum.accumulate(np.where(new_claim, np.arange(n), 0))
    line = np.arange(n) - claim_start + 1
    reimbursed = day + rng.integers(0, P.REIMBURSEMENT_DELAY_MAX_DAYS + 1, n)
    flux = month_start_after(reimbursed)
    specialty = np.where(is_ht, np.where(rng.random(n) < 0.5, 6, 1),
                         np.array([1, 1, 1, 1, 1, 1, 1, 3, 14, 32])[rng.integers(0, 10, n)])
    base = dict(person=person, day=day, presentation=pres, boxes=boxes, flux=flux, processed=reimbursed,
                claim=claim, line=line, dpn_qlf=np.zeros(n, dtype=np.int64), specialty=specialty,
                dirt=np.zeros(n, dtype=np.int8))
    parts = [base]
    drng = stream(seed, number, "dirt-pharmacy")

    def pick(rate: float) -> np.ndarray:
        return np.flatnonzero(drng.random(n) < rate)

    def copy(sel: np.ndarray, kind: int) -> dict[str, np.ndarray]:
        out = {k: v[sel].copy() for k, v in base.items()}
        out["dirt"][:] = kind
        return out

    if dirt_rate > 0:
        # The draws come in a fixed order (reproducible files): the lines of each kind of dirt, then the re-sent
        # lines' delays and which of them correct a quantity.
        info_sel, dup_sel, late_sel = pick(dirt_rate), pick(dirt_rate), pick(dirt_rate)
        late_months = drng.integers(1, 7, len(late_sel))
        late_lag = drng.integers(2, 9, len(late_sel))
        corrected = drng.random(len(late_sel)) < 0.3
        sel = pick(dirt_rate / 2)
        # A re-sent line holds the true quantity, the one the refill timing was drawn with; on 30 % of them the
        # first version carried a wrong one (one box more or less). Cleaning keeps the latest version of a line,
        # so the other way round (a true first version "corrected" to a wrong quantity) would leave an extra box
        # of stock that carry-over spreads over months: fully covered months with no refill behind them.
        late = copy(late_sel, 3)
        late["flux"] = add_months(late["flux"], late_months)
        late["processed"] = late["flux"] - late_lag
        wrong = late_sel[corrected]
        base["boxes"][wrong] = np.maximum(1, base["boxes"][wrong] + np.where(base["boxes"][wrong] > 1, -1, 1))
        info = copy(info_sel, 1)
        info["dpn_qlf"][:] = 71
        info["line"] += INFO_LINE_OFFSET
        dup = copy(dup_sel, 2)
        spurious = copy(sel, 4)
        spurious["line"] += SPURIOUS_LINE_OFFSET
        cancel = copy(sel, 5)
        cancel["line"] += CANCEL_LINE_OFFSET
        cancel["boxes"] = -cancel["boxes"]
        cancel["flux"] = add_months(cancel["flux"], 1)
        cancel["processed"] = cancel["flux"] - 3
        parts += [info, dup, late, spurious, cancel]
    # Row order: clean lines by person and date, then each kind of dirt (fixed, so files are reproducible).
    return PharmacyLines(**{k: np.concatenate([p[k] for p in parts]) for k in base})


def simulate_chunk(seed: int, number: int, start: int, n: int, hospitals: Hospitals, dirt_rate: float,
                   with_pharmacy: bool = True) -> Chunk:
    """Simulate people ``start..start+n-1`` (chunk ``number``) over the whole history."""
    people = simulate_people(seed, number, start, n, hospitals, dirt_rate)
    stays, care = simulate_hospital_care(seed, number, people, hospitals)
    hormone = simulate_hormone_therapy(seed, number, people, care)
    pharmacy = _pharmacy_lines(seed, number, people, hormone, dirt_rate) if with_pharmacy else None
    return Chunk(seed, number, people, stays, care, hormone, pharmacy)


def chunk_bounds(patients: int) -> list[tuple[int, int, int]]:
    """(chunk number, first person, number of people) of each chunk."""
    return [(i, s, min(P.CHUNK_SIZE, patients - s)) for i, s in enumerate(range(0, patients, P.CHUNK_SIZE))]
