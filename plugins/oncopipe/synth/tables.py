"""Cut a chunk's history at an extraction date and shape it as the landing sources (pyarrow tables).

Delta sources keep the lines whose flux date (FLX_DIS_DTD; exit date EXE_SOI_DTF for PMSI) is in
``(previous extraction, extraction]``; snapshots show the state at the extraction date.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from oncopipe.contracts.sources import SOURCES_BY_NAME
from oncopipe.synth import clinical_codes as C
from oncopipe.synth import parameters as P
from oncopipe.synth.chunk import Chunk
from oncopipe.synth.dates import month_start_after, year_of
from oncopipe.synth.drugs import catalogue
from oncopipe.synth.geography import DEPARTMENT_CODES, REGISTRIES, communes
from oncopipe.synth.hospitals import Hospitals
from oncopipe.synth.streams import stream

ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32()}


def arrow_schema(source: str) -> pa.Schema:
    """The pyarrow schema of a landing source, from oncopipe.contracts.sources."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=True) for c in SOURCES_BY_NAME[source].columns])


def dates(days: np.ndarray) -> pa.Array:
    """Day numbers as a date32 array."""
    return pa.array(np.asarray(days, dtype=np.int32)).cast(pa.date32())


def _table(source: str, columns: dict[str, object]) -> pa.Table:
    schema = arrow_schema(source)
    arrays = []
    for f in schema:
        v = columns[f.name]
        arrays.append(v if isinstance(v, pa.Array | pa.ChunkedArray) else pa.array(v, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _take(values: np.ndarray, index: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def ir_ben_r(chunk: Chunk, date: int) -> pa.Table:
    """IR_BEN_R at ``date``: everyone, with the death dates known by then (late reports stay null)."""
    p = chunk.people
    keep = np.flatnonzero(p.ins_day <= date)
    known = (p.death_day[keep] + p.death_report_delay[keep]) <= date
    death = dates(np.where(known, p.death_day[keep], 0))
    death = pa.array(death.to_pylist(), type=pa.date32(), mask=~known) if len(keep) else death
    birth = p.birth_day[keep].astype("datetime64[D]")
    updated = np.where(known, p.death_day[keep] + p.death_report_delay[keep], p.ins_day[keep])
    com = communes()
    return _table("ir_ben_r", {
        "BEN_NIR_PSA": p.nir[keep], "BEN_RNG_GEM": np.ones(len(keep), dtype=np.int64),
        "BEN_SEX_COD": p.sex[keep].astype(np.int64),
        "BEN_NAI_ANN": birth.astype("datetime64[Y]").astype(str),
        "BEN_NAI_MOI": np.char.zfill(((birth.astype("datetime64[M]").astype(np.int64) % 12) + 1).astype(str), 2),
        "BEN_RES_DPT": DEPARTMENT_CODES[p.dept[keep]], "BEN_RES_COM": com.code[p.commune[keep]],
        "BEN_DCD_DTE": death, "BEN_DTE_INS": dates(p.ins_day[keep]), "BEN_DTE_MAJ": dates(updated),
    })


def ki_cci_r(chunk: Chunk, date: int) -> pa.Table:
    """Causes of death known at ``date`` (same reporting as IR_BEN_R)."""
    p = chunk.people
    known = np.flatnonzero((p.death_day + p.death_report_delay) <= date)
    return _table("ki_cci_r", {
        "BEN_NIR_ANO": p.nir[known], "BEN_DCD_DTE": dates(p.death_day[known]),
        "DCD_CIM_COD": p.death_cause[known].astype(str), "DCD_DPT_COD": DEPARTMENT_CODES[p.dept[known]],
    })


def registry_cases(chunk: Chunk, date: int) -> pa.Table:
    """Registry records of the cases diagnosed by ``date`` in a registry area for their site."""
    p = chunk.people
    rng = stream(chunk.seed, chunk.number, "registry")
    n = len(p)
    morph = np.empty(n, dtype=object)
    for s, site in enumerate(C.SITES):
        m = p.site == s
        codes = np.array([c for c, _ in C.MORPHOLOGY[site]])
        w = np.array([w for _, w in C.MORPHOLOGY[site]])
        morph[m] = codes[rng.choice(len(codes), size=int(m.sum()), p=w / w.sum())]
    base = np.where(rng.random(n) < 0.9, 7, np.where(rng.random(n) < 0.5, 5, 6))
    keep = np.flatnonzero((p.registry >= 0) & (p.diag_day <= date))
    icd = p.icd10[keep].astype(str)
    reg_ids = np.array([r.reg_id for r in REGISTRIES])
    year = year_of(p.diag_day[keep])
    return _table("registry_cases", {
        "REG_ID": reg_ids[p.registry[keep]],
        "REG_CAS_ID": np.char.add(year.astype(str), np.char.zfill(p.index[keep].astype(str), 8)),
        "BEN_NIR_PSA": p.nir[keep], "DAT_DIAG": dates(p.diag_day[keep]),
        "TOP_ICDO3": np.array([f"{c[:3]}.{c[3:] or '9'}" for c in icd], dtype=object),
        "MOR_ICDO3": morph[keep].astype(str), "CIM10": icd,
        "STADE": np.array(P.STAGES)[p.stage[keep]], "BASE_DIAG": base[keep].astype(np.int64),
    })


# The DCIR emitter keys: a pharmacy flux and a doctors' flux come from different emitters of the same type, so a
# consultation and a dispensing may share fund, claim and line numbers and differ only in FLX_EMT_NUM.
EMITTER_TYPE = 1
PHARMACY_EMITTER = 100
DOCTOR_EMITTER = 200
FLUX_SEQUENCE = 1
REIMBURSED = 1  # REM_TYP_AFF of an ordinary reimbursement
PHARMACY_NATURE = 3317
GP_CONSULTATION = 1111
GP_VISITS_PER_YEAR = 1.0


def _dcir_keys(flux: np.ndarray, processed: np.ndarray, emitter: int, org: pa.Array, claim: np.ndarray,
               line: np.ndarray) -> dict[str, object]:
    n = len(flux)
    return {
        "FLX_DIS_DTD": dates(flux), "FLX_TRT_DTD": dates(processed),
        "FLX_EMT_TYP": np.full(n, EMITTER_TYPE, dtype=np.int64), "FLX_EMT_NUM": np.full(n, emitter, dtype=np.int64),
        "FLX_EMT_ORD": np.full(n, FLUX_SEQUENCE, dtype=np.int64), "ORG_CLE_NUM": org,
        "DCT_ORD_NUM": np.asarray(claim, dtype=np.int64), "PRS_ORD_NUM": np.asarray(line, dtype=np.int64),
        "REM_TYP_AFF": np.full(n, REIMBURSED, dtype=np.int64),
    }


def _funds(chunk: Chunk) -> np.ndarray:
    return np.char.add(np.char.add("01", DEPARTMENT_CODES[chunk.people.dept].astype("U3")), "0001")


def _pharmacy_cut(chunk: Chunk, previous: int | None, date: int) -> np.ndarray:
    lines = chunk.pharmacy
    lo = -(2**31) if previous is None else previous
    return np.flatnonzero((lines.flux > lo) & (lines.flux <= date))


def er_prs_f(chunk: Chunk, previous: int | None, date: int) -> pa.Table:
    """DCIR claim lines whose flux date is in ``(previous, date]``: one per pharmacy line, then GP consultations."""
    lines = chunk.pharmacy
    p = chunk.people
    keep = _pharmacy_cut(chunk, previous, date)
    person = lines.person[keep]
    org = _funds(chunk)
    gp = gp_consultations(chunk, previous, date)
    pharmacy = _table("er_prs_f", {
        "BEN_NIR_PSA": _take(p.nir, person), "BEN_RNG_GEM": np.ones(len(keep), dtype=np.int64),
        **_dcir_keys(lines.flux[keep], lines.processed[keep], PHARMACY_EMITTER, _take(org, person),
                     lines.claim[keep], lines.line[keep]),
        "EXE_SOI_DTD": dates(lines.day[keep]), "PRS_NAT_REF": np.full(len(keep), PHARMACY_NATURE, dtype=np.int64),
        "DPN_QLF": lines.dpn_qlf[keep], "PSE_SPE_COD": lines.specialty[keep].astype(np.int64),
    })
    n = len(gp["person"])
    visits = _table("er_prs_f", {
        "BEN_NIR_PSA": _take(p.nir, gp["person"]), "BEN_RNG_GEM": np.ones(n, dtype=np.int64),
        **_dcir_keys(gp["flux"], gp["processed"], DOCTOR_EMITTER, _take(org, gp["person"]), gp["claim"],
                     np.ones(n, dtype=np.int64)),
        "EXE_SOI_DTD": dates(gp["day"]), "PRS_NAT_REF": np.full(n, GP_CONSULTATION, dtype=np.int64),
        "DPN_QLF": np.zeros(n, dtype=np.int64), "PSE_SPE_COD": np.ones(n, dtype=np.int64),
    })
    return pa.concat_tables([pharmacy, visits])


def er_pha_f(chunk: Chunk, previous: int | None, date: int) -> pa.Table:
    """DCIR drug lines whose flux date is in ``(previous, date]``, each under its ER_PRS_F claim line's nine keys."""
    lines = chunk.pharmacy
    cat = catalogue()
    keep = _pharmacy_cut(chunk, previous, date)
    org = _funds(chunk)
    return _table("er_pha_f", {
        **_dcir_keys(lines.flux[keep], lines.processed[keep], PHARMACY_EMITTER, _take(org, lines.person[keep]),
                     lines.claim[keep], lines.line[keep]),
        "PHA_PRS_C13": _take(cat.cip, lines.presentation[keep]), "PHA_ACT_QSN": lines.boxes[keep],
        "PHA_ACT_PRU": cat.price[lines.presentation[keep]],
    })


def gp_consultations(chunk: Chunk, previous: int | None, date: int) -> dict[str, np.ndarray]:
    """GP consultations (claims with no drug line) whose flux date is in ``(previous, date]``.

    About ``GP_VISITS_PER_YEAR`` a year of a person's coverage, from a random stream of their own (the pharmacy
    lines and every planted truth are drawn as before). Claim numbers count from 1 per person, as the pharmacy
    claims do, under another emitter (``DOCTOR_EMITTER``).
    """
    p = chunk.people
    rng = stream(chunk.seed, chunk.number, "gp-consultations")
    first = np.maximum(p.ins_day, P.HISTORY_START)
    last = np.minimum(p.death_day, P.HISTORY_END)
    years = np.maximum(last - first, 0) / 365.25
    count = rng.poisson(GP_VISITS_PER_YEAR * years)
    person = np.repeat(np.arange(len(p)), count)
    day = first[person] + np.floor(rng.random(len(person)) * (last - first)[person]).astype(np.int64)
    order = np.lexsort((day, person))
    person, day = person[order], day[order]
    processed = day + rng.integers(0, P.REIMBURSEMENT_DELAY_MAX_DAYS + 1, len(person))
    flux = month_start_after(processed)
    starts = np.concatenate([[0], np.cumsum(count)[:-1]]) if len(count) else np.array([], dtype=np.int64)
    claim = p.index[person] * 10_000 + (np.arange(len(person)) - starts[person] + 1)
    lo = -(2**31) if previous is None else previous
    cut = (flux > lo) & (flux <= date)
    return {"person": person[cut], "day": day[cut], "flux": flux[cut], "processed": processed[cut],
            "claim": claim[cut]}


def _stay_numbers(chunk: Chunk) -> np.ndarray:
    """RSA_NUM of each stay: the person's number and the stay's rank among that person's stays of its PMSI year.

    Each PMSI year numbers its stays from the start again, as the hospitals' yearly files do: the first stay of a
    person in 2022 and in 2023 carry the same number, so in one hospital T_MCO22B and T_MCO23B hold one RSA_NUM
    for two stays and only the year (PMSI_ANN) tells them apart, which the key must keep (a real extract's trap).
    """
    s = chunk.stays
    year = year_of(s.exit)
    order = np.lexsort((s.kind, s.entry, year, s.person))
    seq = np.empty(len(order), dtype=np.int64)
    person_sorted, year_sorted = s.person[order], year[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (person_sorted[1:] != person_sorted[:-1]) | (year_sorted[1:] != year_sorted[:-1])
    start = np.maximum.accumulate(np.where(new, np.arange(len(order)), 0))
    seq[order] = np.arange(len(order)) - start + 1
    return np.char.zfill((chunk.people.index[s.person] * 1000 + seq).astype(str), 10)


def pmsi(chunk: Chunk, hospitals: Hospitals, previous: int | None, date: int,
         stay_dirt_rate: float = 0.0) -> dict[str, pa.Table]:
    """The four PMSI MCO tables for stays whose exit date is in the flux."""
    s = chunk.stays
    p = chunk.people
    lo = -(2**31) if previous is None else previous
    keep = np.flatnonzero((s.exit > lo) & (s.exit <= date))
    rsa_all = _stay_numbers(chunk)
    eta_all = hospitals.finess[s.hospital]
    dgn = s.dgn_pal[keep].astype(str)
    if stay_dirt_rate > 0:
        # Dirt: a few out-of-range principal diagnoses on background stays.
        rng = stream(chunk.seed, chunk.number, "dirt-stays")
        bad = (rng.random(len(s.person)) < stay_dirt_rate)[keep] & (s.kind[keep] == 5)
        dgn = np.where(bad, "ZZZ9", dgn)
    rel = s.dgn_rel[keep]
    # The PMSI year a stay is delivered in is the year it ended (T_MCO23B holds the stays that exited in 2023).
    pmsi_year = year_of(s.exit).astype(np.int64)
    tables = {
        "t_mco_b": _table("t_mco_b", {
            "ETA_NUM": eta_all[keep], "RSA_NUM": rsa_all[keep], "DGN_PAL": dgn,
            "DGN_REL": pa.array(list(rel), type=pa.string()), "GRG_GHM": s.ghm[keep].astype(str),
            "SEJ_NBJ": (s.exit[keep] - s.entry[keep]).astype(np.int64),
            "ENT_MOD": np.full(len(keep), "8"), "SOR_MOD": s.sor_mod[keep].astype(str),
            "SOR_ANN": year_of(s.exit[keep]).astype(str), "PMSI_ANN": pmsi_year[keep],
        }),
        "t_mco_c": _table("t_mco_c", {
            "ETA_NUM": eta_all[keep], "RSA_NUM": rsa_all[keep], "NIR_ANO_17": p.nir[s.person[keep]],
            "EXE_SOI_DTD": dates(s.entry[keep]), "EXE_SOI_DTF": dates(s.exit[keep]),
            "NIR_RET": np.full(len(keep), "0"), "ENT_DAT": dates(s.entry[keep]), "SOR_DAT": dates(s.exit[keep]),
            "PMSI_ANN": pmsi_year[keep],
        }),
    }
    in_cut = np.zeros(len(s.person), dtype=bool)
    in_cut[keep] = True
    ka = np.flatnonzero(in_cut[s.act_stay])
    act_stay = s.act_stay[ka]
    order = np.lexsort((np.arange(len(ka)), act_stay))
    ka, act_stay = ka[order], act_stay[order]
    tables["t_mco_a"] = _table("t_mco_a", {
        "ETA_NUM": eta_all[act_stay], "RSA_NUM": rsa_all[act_stay],
        "CDC_ACT": s.act_code[ka].astype(str), "ENT_DAT_DEL": s.act_delay[ka],
        "ACV_ACT": np.full(len(ka), "1"), "PMSI_ANN": pmsi_year[act_stay],
    })
    kd = np.flatnonzero(in_cut[s.ass_stay])
    ass_stay = s.ass_stay[kd]
    order = np.lexsort((np.arange(len(kd)), ass_stay))
    kd, ass_stay = kd[order], ass_stay[order]
    tables["t_mco_d"] = _table("t_mco_d", {
        "ETA_NUM": eta_all[ass_stay], "RSA_NUM": rsa_all[ass_stay], "DGN_ASS_NUM": _rank(ass_stay),
        "ASS_DGN": s.ass_code[kd].astype(str), "PMSI_ANN": pmsi_year[ass_stay],
    })
    return tables


def _rank(sorted_keys: np.ndarray) -> np.ndarray:
    n = len(sorted_keys)
    new = np.ones(n, dtype=bool)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0)) if n else np.array([], dtype=np.int64)
    return (np.arange(n) - start + 1).astype(np.int64)


def ir_pha_r() -> pa.Table:
    """The drug referential (every presentation of the catalogue)."""
    cat = catalogue()
    ps = cat.presentations
    return _table("ir_pha_r", {
        "PHA_CIP_C13": [p.cip13 for p in ps], "PHA_ATC_C07": [p.atc for p in ps],
        "PHA_ATC_L07": [p.atc_label for p in ps], "PHA_UNT_NBR_DSES": [str(p.units) for p in ps],
        "PHA_NOM_PA": [p.label for p in ps],
    })


def ir_geo_fdep() -> pa.Table:
    """Every commune with its FDep index and quintile."""
    com = communes()
    return _table("ir_geo_fdep", {
        "DPT_COD": DEPARTMENT_CODES[com.department], "COM_COD": com.code, "FDEP_IDX": com.fdep,
        "FDEP_QUINT": com.quintile.astype(np.int64),
    })
