"""PMSI MCO stays of one chunk: cancer diagnosis and treatment stays, end-of-life stays, background stays.

Stays are simulated over the whole history; an extraction keeps those whose exit date falls in its flux.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from oncopipe.synth import clinical_codes as C
from oncopipe.synth import parameters as P
from oncopipe.synth.dates import NEVER
from oncopipe.synth.hospitals import Hospitals, choose_hospital
from oncopipe.synth.population import People
from oncopipe.synth.streams import stream

KINDS = ("diagnosis", "surgery", "chemotherapy", "radiotherapy", "palliative", "background")


@dataclass
class Stays:
    """Stays (one entry per stay) with their acts and associated diagnoses."""

    person: np.ndarray   # local person index
    hospital: np.ndarray
    entry: np.ndarray
    exit: np.ndarray
    kind: np.ndarray
    dgn_pal: np.ndarray
    dgn_rel: np.ndarray  # None when absent
    ghm: np.ndarray
    sor_mod: np.ndarray
    act_stay: np.ndarray
    act_code: np.ndarray
    act_delay: np.ndarray
    ass_stay: np.ndarray
    ass_code: np.ndarray


@dataclass
class CarePlan:
    """Per person: first treatment (poor-prognosis sites) and the breast pathway dates."""

    first_treatment: np.ndarray          # index into TREATMENTS, -1 untreated/none
    first_treatment_day: np.ndarray      # NEVER when none
    planned_delay: np.ndarray            # planted delay (days), nan when no treatment planned
    breast_surgery_day: np.ndarray       # NEVER when none
    breast_adjuvant_end: np.ndarray      # last day of chemo/radiotherapy (or surgery) before hormone therapy


@dataclass
class _Builder:
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    acts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    assoc: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    count: int = 0

    def add(self, person, hospital, entry, exit_, kind, dgn_pal, dgn_rel, ghm, sor_mod) -> np.ndarray:
        n = len(person)
        ids = np.arange(self.count, self.count + n)
        self.count += n
        cols = {"person": person, "hospital": hospital, "entry": entry, "exit": exit_,
                "kind": np.full(n, KINDS.index(kind), dtype=np.int8), "dgn_pal": dgn_pal, "dgn_rel": dgn_rel,
                "ghm": ghm, "sor_mod": sor_mod}
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(np.broadcast_to(np.asarray(v, dtype=object if k in (
                "dgn_pal", "dgn_rel", "ghm", "sor_mod") else None), (n,)).copy())
        return ids

    def act(self, stay_ids, codes, delay) -> None:
        n = len(stay_ids)
        self.acts.append((stay_ids, np.broadcast_to(np.asarray(codes, dtype=object), (n,)).copy(),
                          np.broadcast_to(np.asarray(delay), (n,)).astype(np.int64)))

    def associated(self, stay_ids, codes) -> None:
        n = len(stay_ids)
        self.assoc.append((stay_ids, np.broadcast_to(np.asarray(codes, dtype=object), (n,)).copy()))

    def build(self) -> Stays:
        def cat(k):
            return np.concatenate(self.parts[k]) if self.parts.get(k) else np.array([], dtype=object)

        def catl(lst, i, dtype=object):
            return np.concatenate([x[i] for x in lst]) if lst else np.array([], dtype=dtype)

        return Stays(cat("person").astype(np.int64), cat("hospital").astype(np.int16), cat("entry").astype(np.int64),
                     cat("exit").astype(np.int64), cat("kind").astype(np.int8), cat("dgn_pal"), cat("dgn_rel"),
                     cat("ghm"), cat("sor_mod"), catl(self.acts, 0, np.int64).astype(np.int64),
                     catl(self.acts, 1), catl(self.acts, 2, np.int64).astype(np.int64),
                     catl(self.assoc, 0, np.int64).astype(np.int64), catl(self.assoc, 1))


def _pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> np.ndarray:
    return np.array(options, dtype=object)[rng.integers(0, len(options), n)]


def _sessions(b: _Builder, rng, people_idx, hospital, first_day, death_day, n_sessions, every, dgn, rel, ghm,
              first_act: str | None, act_codes: tuple[str, ...] | None) -> np.ndarray:
    """Day-case sessions (chemotherapy or radiotherapy) every ``every`` days; returns the last session day."""
    last = np.full(len(people_idx), -1, dtype=np.int64)
    for k in range(int(n_sessions.max(initial=0))):
        day_k = first_day + k * every + (rng.integers(-1, 2, len(first_day)) if k else 0)
        ok = (k < n_sessions) & (day_k < death_day) & (day_k <= P.HISTORY_END)
        if not ok.any():
            continue
        ids = b.add(people_idx[ok], hospital[ok], day_k[ok], day_k[ok], "chemotherapy" if dgn == C.CHEMOTHERAPY_DGN
                    else "radiotherapy", dgn, rel[ok], ghm, "8")
        if k == 0 and first_act:
            b.act(ids, first_act, 0)
        if act_codes:
            b.act(ids, _pick(rng, act_codes, len(ids)), 0)
        last[ok] = day_k[ok]
    return last


def simulate_hospital_care(seed: int, chunk: int, people: People, hospitals: Hospitals) -> tuple[Stays, CarePlan]:
    """Simulate every stay of the chunk's people over the whole history."""
    rng = stream(seed, chunk, "hospital-care")
    n = len(people)
    b = _Builder()
    idx = np.arange(n)
    death = people.death_day
    first_kind = np.full(n, -1, dtype=np.int8)
    first_day = np.full(n, NEVER, dtype=np.int64)
    planned = np.full(n, np.nan)
    surgery_day = np.full(n, NEVER, dtype=np.int64)
    adjuvant_end = np.full(n, NEVER, dtype=np.int64)

    cancer = people.site >= 0
    ci = idx[cancer]
    diag = people.diag_day[ci]
    hosp = people.hospital[ci]
    code = people.icd10[ci]
    site_names = np.array(C.SITES)[people.site[ci]]
    # 1. Diagnostic stay: entry on the diagnosis date.
    los = np.where(site_names == "breast", 0, rng.poisson(3, len(ci)))
    exit_ = np.minimum(diag + los, death[ci])
    sor = np.where(exit_ == death[ci], "9", "8").astype(object)
    ids = b.add(ci, hosp, diag, exit_, "diagnosis", code, None, C.GHM["diagnosis"], sor)
    for s, name in enumerate(C.SITES):
        m = people.site[ci] == s
        if m.any():
            b.act(ids[m], C.DIAGNOSTIC_ACTS[name][0], 0)
            b.act(ids[m], C.DIAGNOSTIC_ACTS[name][1], 0)
    metastatic = people.stage[ci] == P.STAGES.index("IV")
    mets = np.array(["C787", "C793", "C780", "C795"], dtype=object)[rng.integers(0, 4, len(ci))]
    b.associated(ids[metastatic], mets[metastatic])

    # 2. Poor-prognosis sites: first treatment after a hospital-dependent delay.
    for s in P.POOR_INDEX:
        name = C.SITES[s]
        m = people.site == s
        pi = idx[m]
        k = len(pi)
        if k == 0:
            continue
        h = people.hospital[pi]
        delay = (P.BASE_DELAY_DAYS[name] + hospitals.effect[h] - P.FAST_TRACK_REDUCTION_DAYS * hospitals.fast_track[h]
                 + rng.gamma(2.0, 6.0, k) - 12.0)
        delay = np.maximum(np.round(delay), 3).astype(np.int64)
        treated = rng.random(k) >= P.UNTREATED_SHARE[name]
        kind = rng.choice(3, size=k, p=P.TREATMENT_MIX[name])
        day_t = people.diag_day[pi] + delay
        happens = treated & (day_t < death[pi]) & (day_t <= P.HISTORY_END)
        planned[pi[treated]] = delay[treated]
        first_kind[pi[happens]] = kind[happens]
        first_day[pi[happens]] = day_t[happens]
        rel = people.icd10[pi]
        # Surgery stays.
        sm = happens & (kind == 0)
        if sm.any():
            los_s = rng.integers(5, 14, int(sm.sum()))
            ex = np.minimum(day_t[sm] + los_s, death[pi[sm]])
            ids = b.add(pi[sm], h[sm], day_t[sm], ex, "surgery", rel[sm], None, C.SURGERY_GHM[name],
                        np.where(ex == death[pi[sm]], "9", "8").astype(object))
            b.act(ids, _pick(rng, C.SURGERY_ACTS[name], len(ids)), rng.integers(0, 2, len(ids)))
        # Chemotherapy: first-line, or adjuvant after surgery for some.
        cm = happens & ((kind == 1) | ((kind == 0) & (rng.random(k) < 0.4)))
        if cm.any():
            start = np.where(kind[cm] == 1, day_t[cm], day_t[cm] + rng.integers(35, 60, int(cm.sum())))
            _sessions(b, rng, pi[cm], h[cm], start, death[pi[cm]], rng.integers(4, 9, int(cm.sum())), 21,
                      C.CHEMOTHERAPY_DGN, rel[cm], C.GHM["chemotherapy"], C.CHEMOTHERAPY_PORT_ACT, None)
        rm = happens & (kind == 2)
        if rm.any():
            _sessions(b, rng, pi[rm], h[rm], day_t[rm], death[pi[rm]], rng.integers(6, 11, int(rm.sum())), 3,
                      C.RADIOTHERAPY_DGN, rel[rm], C.GHM["radiotherapy"], None, C.RADIOTHERAPY_ACTS)

    # 3. Breast: surgery, (neo)adjuvant chemotherapy and radiotherapy.
    bm = people.site == P.SITE_INDEX["breast"]
    bi = idx[bm]
    k = len(bi)
    if k:
        h = people.hospital[bi]
        rel = people.icd10[bi]
        delay = np.maximum(np.round(P.BASE_DELAY_DAYS["breast"] + hospitals.effect[h] + rng.gamma(2.0, 5.0, k) - 10),
                           7).astype(np.int64)
        operated = rng.random(k) < P.BREAST_SURGERY_SHARE
        sday = people.diag_day[bi] + delay
        ok = operated & (sday < death[bi]) & (sday <= P.HISTORY_END)
        mast = rng.random(k) < P.MASTECTOMY_SHARE
        los_b = np.where(mast, rng.integers(2, 5, k), rng.integers(0, 2, k))
        ex = np.minimum(sday + los_b, death[bi])
        ids = b.add(bi[ok], h[ok], sday[ok], ex[ok], "surgery", rel[ok], None, C.SURGERY_GHM["breast"],
                    np.where(ex[ok] == death[bi[ok]], "9", "8").astype(object))
        acts = np.where(mast, _pick(rng, C.SURGERY_ACTS["breast_mastectomy"], k),
                        _pick(rng, C.SURGERY_ACTS["breast_lumpectomy"], k))
        b.act(ids, acts[ok], 0)
        surgery_day[bi[ok]] = sday[ok]
        first_kind[bi[ok]] = 0
        first_day[bi[ok]] = sday[ok]
        chemo_p = np.array([P.BREAST_CHEMO_SHARE_BY_STAGE[s] for s in P.STAGES])[people.stage[bi]]
        chemo = ok & (rng.random(k) < chemo_p)
        end = np.where(ok, ex, people.diag_day[bi])
        if chemo.any():
            cstart = sday[chemo] + rng.integers(25, 45, int(chemo.sum()))
            last = _sessions(b, rng, bi[chemo], h[chemo], cstart, death[bi[chemo]], np.full(int(chemo.sum()), 6), 21,
                             C.CHEMOTHERAPY_DGN, rel[chemo], C.GHM["chemotherapy"], C.CHEMOTHERAPY_PORT_ACT, None)
            end[chemo] = np.maximum(end[chemo], last)
        radio = ok & ~mast
        if radio.any():
            rstart = end[radio] + rng.integers(20, 40, int(radio.sum()))
            last = _sessions(b, rng, bi[radio], h[radio], rstart, death[bi[radio]], np.full(int(radio.sum()), 8), 4,
                             C.RADIOTHERAPY_DGN, rel[radio], C.GHM["radiotherapy"], None, C.RADIOTHERAPY_ACTS)
            end[radio] = np.maximum(end[radio], last)
        adjuvant_end[bi] = end

    # 4. End-of-life stays for most cancer deaths.
    eol = cancer & people.cancer_death & (rng.random(n) < 0.6)
    ei = idx[eol]
    if len(ei):
        los_e = rng.integers(2, 21, len(ei))
        entry = np.maximum(death[ei] - los_e, people.diag_day[ei] + 1)
        ok = entry < death[ei]
        ids = b.add(ei[ok], people.hospital[ei[ok]], entry[ok], death[ei[ok]], "palliative", C.PALLIATIVE_DGN,
                    people.icd10[ei[ok]], C.GHM["palliative"], "9")

    # 5. Background stays for everyone, rate rising with age.
    brng = stream(seed, chunk, "background-stays")
    life_end = np.minimum(death, P.HISTORY_END)
    years = np.maximum(life_end - P.HISTORY_START, 0) / 365.25
    age_mid = (P.HISTORY_START + (life_end - P.HISTORY_START) / 2 - people.birth_day) / 365.25
    rate = np.exp(P.BACKGROUND_STAYS_PER_YEAR["intercept"] + P.BACKGROUND_STAYS_PER_YEAR["per_decade"]
                  * (age_mid - 50) / 10)
    counts = brng.poisson(rate * years)
    who = np.repeat(idx, counts)
    if len(who):
        entry = P.HISTORY_START + np.floor(brng.random(len(who)) * (life_end[who] - P.HISTORY_START)).astype(np.int64)
        w = np.array([s[3] for s in C.BACKGROUND_STAYS])
        pick = brng.choice(len(w), size=len(who), p=w / w.sum())
        los_bg = np.minimum(brng.geometric(0.3, len(who)) - 1, 30)
        ex = np.minimum(entry + los_bg, life_end[who])
        sor = np.where(ex == death[who], "9", "8").astype(object)
        hosp = choose_hospital(brng, hospitals, people.dept[who])
        dgn = np.array([s[0] for s in C.BACKGROUND_STAYS], dtype=object)[pick]
        ghm = np.array([s[2] for s in C.BACKGROUND_STAYS], dtype=object)[pick]
        ids = b.add(who, hosp, entry, ex, "background", dgn, None, ghm, sor)
        act = np.array([s[1] for s in C.BACKGROUND_STAYS], dtype=object)[pick]
        has = act != None  # noqa: E711 - object array comparison
        b.act(ids[has], act[has], 0)
        nass = brng.integers(0, 3, len(ids))
        for j in range(2):
            m = nass > j
            b.associated(ids[m], _pick(brng, C.ASSOCIATED_BACKGROUND, int(m.sum())))
    return b.build(), CarePlan(first_kind, first_day, planned, surgery_day, adjuvant_end)
