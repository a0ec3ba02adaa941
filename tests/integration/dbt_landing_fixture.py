"""A tiny hand-made landing extraction with known answers, for the dbt tests (no generator needed).

Two extractions (2021-06-30 and 2021-12-31) of every source, written as the landing contract says
(``<landing>/<source>/extraction=<date>/part-00000.parquet``, or ``.csv``). Snapshot sources repeat the
whole table; delta sources hold the lines whose flux/exit date falls after the previous extraction.

People (the pseudonyms are 17 characters, as BEN_NIR_PSA):
- ``P1`` woman, Paris (no registry): breast cancer found by the claims algorithm (stay with DP C504 on
  2020-03-10 at hospital H1, mastectomy QEFA003 two days after entry); tamoxifen from 2020-04-01, then
  letrozole (a switch inside the carry-over), a 5-day hospital stay during a supply, a 120-day gap.
- ``P2`` woman, Calvados (general registry GEN14): registry breast case (C50.4, stage II, 2020-02-01);
  anastrozole from 2020-03-02 with a regularisation (a line cancelled by a negative line), an exact duplicate
  line, an information-only (DPN_QLF 71) line and a line re-sent in the second flux with a later flux date.
- ``P3`` man, Rhône (no registry): lung cancer by claims (DP C341 on 2021-01-05 at H2), chemotherapy session
  (Z511) on 2021-02-01; dies 2021-08-01: the death is missing in the first IR_BEN_R extraction.
- ``P4`` woman, Calvados: registry lung case (C34.1, stage IV, 2021-03-15), never treated, alive.
- ``P4`` also has a cataract stay in 2018: it opens the PMSI history (washout of the claims algorithm).
- ``P5`` man, Calvados: a hospital stay coded C341 but no registry record: the registry covers him, so the
  claims algorithm must not make a case of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from oncopipe.contracts.sources import SOURCES_BY_NAME

EXTRACTIONS = (dt.date(2021, 6, 30), dt.date(2021, 12, 31))
_ARROW = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32()}


def _nir(name: str) -> str:
    return name.ljust(17, "0")


def _cip13(number: int) -> str:
    first12 = f"34009{number:07d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


TAMOXIFEN_30 = _cip13(1000001)
LETROZOLE_30 = _cip13(1000002)
ANASTROZOLE_28 = _cip13(1000003)
ANASTROZOLE_84 = _cip13(1000004)
STATIN_30 = _cip13(2000001)

D = dt.date


def _drugs() -> list[dict[str, Any]]:
    return [
        {"PHA_CIP_C13": TAMOXIFEN_30, "PHA_ATC_C07": "L02BA01", "PHA_ATC_L07": "TAMOXIFENE", "PHA_UNT_NBR_DSES": "30",
         "PHA_NOM_PA": "TAMOXIFENE 20 mg, boîte de 30"},
        {"PHA_CIP_C13": LETROZOLE_30, "PHA_ATC_C07": "L02BG04", "PHA_ATC_L07": "LETROZOLE", "PHA_UNT_NBR_DSES": "30",
         "PHA_NOM_PA": "LETROZOLE 2,5 mg, boîte de 30"},
        {"PHA_CIP_C13": ANASTROZOLE_28, "PHA_ATC_C07": "L02BG03", "PHA_ATC_L07": "ANASTROZOLE",
         "PHA_UNT_NBR_DSES": "28", "PHA_NOM_PA": "ANASTROZOLE 1 mg, boîte de 28"},
        {"PHA_CIP_C13": ANASTROZOLE_84, "PHA_ATC_C07": "L02BG03", "PHA_ATC_L07": "ANASTROZOLE",
         "PHA_UNT_NBR_DSES": "84", "PHA_NOM_PA": "ANASTROZOLE 1 mg, boîte de 84"},
        {"PHA_CIP_C13": STATIN_30, "PHA_ATC_C07": "C10AA05", "PHA_ATC_L07": "ATORVASTATINE", "PHA_UNT_NBR_DSES": "30",
         "PHA_NOM_PA": "ATORVASTATINE 20 mg, boîte de 30"},
    ]


def _beneficiaries(extraction: dt.date) -> list[dict[str, Any]]:
    p3_death = D(2021, 8, 1) if extraction >= D(2021, 12, 31) else None
    rows = [
        ("P1", 2, "1960", "05", "075", "101", None),
        ("P2", 2, "1955", "11", "014", "201", None),
        ("P3", 1, "1950", "01", "069", "301", p3_death),
        ("P4", 2, "1948", "07", "014", "202", None),
        ("P5", 1, "1952", "03", "014", "201", None),
    ]
    return [{"BEN_NIR_PSA": _nir(p), "BEN_RNG_GEM": 1, "BEN_SEX_COD": sex, "BEN_NAI_ANN": year, "BEN_NAI_MOI": month,
             "BEN_RES_DPT": dpt, "BEN_RES_COM": com, "BEN_DCD_DTE": death, "BEN_DTE_INS": D(2010, 1, 1),
             "BEN_DTE_MAJ": extraction} for p, sex, year, month, dpt, com, death in rows]


def _dispensing(person: str, claim: int, day: dt.date, cip13: str, boxes: int, *, qualifier: int = 0,
                flux: dt.date | None = None, line: int = 1) -> dict[str, Any]:
    flux = flux or (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    # One dict holds the claim line (ER_PRS_F) and its drug line (ER_PHA_F): each table takes its own columns.
    return {"BEN_NIR_PSA": _nir(person), "BEN_RNG_GEM": 1, "FLX_DIS_DTD": flux, "FLX_TRT_DTD": flux,
            "FLX_EMT_TYP": 1, "FLX_EMT_NUM": 100, "FLX_EMT_ORD": 1, "REM_TYP_AFF": 1, "ORG_CLE_NUM": "01C751000",
            "DCT_ORD_NUM": claim, "PRS_ORD_NUM": line, "EXE_SOI_DTD": day,
            "PRS_NAT_REF": 3317, "PHA_PRS_C13": cip13, "PHA_ACT_QSN": boxes, "PHA_ACT_PRU": 10.0,
            "DPN_QLF": qualifier, "PSE_SPE_COD": 6}


def all_dispensings() -> list[dict[str, Any]]:
    """Every dispensing line ever sent (before splitting into fluxes)."""
    lines = []
    # P1: tamoxifen monthly from 2020-04-01 (x6, on time), letrozole from 2020-09-25 (early: carried over),
    # then a 120-day gap, then letrozole again.
    claim = 100
    for k, day in enumerate([D(2020, 4, 1), D(2020, 5, 1), D(2020, 5, 31), D(2020, 6, 30), D(2020, 7, 30),
                             D(2020, 8, 29)]):
        lines.append(_dispensing("P1", claim + k, day, TAMOXIFEN_30, 1))
    lines.append(_dispensing("P1", 120, D(2020, 9, 25), LETROZOLE_30, 2))
    lines.append(_dispensing("P1", 121, D(2021, 3, 24), LETROZOLE_30, 1))
    lines.append(_dispensing("P1", 122, D(2021, 4, 23), LETROZOLE_30, 3))
    # P2: anastrozole; a cancelled line (+1 then -1 the same day), an exact duplicate, an information-only
    # line and a line re-sent with a later flux (the later version has 2 boxes).
    lines.append(_dispensing("P2", 200, D(2020, 3, 2), ANASTROZOLE_28, 1))
    lines.append(_dispensing("P2", 201, D(2020, 3, 30), ANASTROZOLE_84, 1))
    lines.append(_dispensing("P2", 202, D(2020, 6, 22), ANASTROZOLE_84, 1))
    lines.append(_dispensing("P2", 203, D(2020, 6, 22), ANASTROZOLE_84, -1))  # regularisation of claim 202
    lines.append(_dispensing("P2", 204, D(2020, 6, 23), ANASTROZOLE_84, 1))
    lines.append(_dispensing("P2", 204, D(2020, 6, 23), ANASTROZOLE_84, 1))  # exact duplicate
    lines.append(_dispensing("P2", 205, D(2020, 9, 14), ANASTROZOLE_84, 1, qualifier=71))  # information only
    lines.append(_dispensing("P2", 206, D(2021, 5, 10), ANASTROZOLE_84, 1, flux=D(2021, 6, 1)))
    lines.append(_dispensing("P2", 206, D(2021, 5, 10), ANASTROZOLE_84, 2, flux=D(2021, 9, 1)))  # re-sent
    lines.append(_dispensing("P2", 207, D(2021, 10, 1), ANASTROZOLE_84, 1))
    # Background drug (not hormone therapy).
    lines.append(_dispensing("P3", 300, D(2021, 1, 20), STATIN_30, 3))
    return lines


def all_stays() -> list[dict[str, Any]]:
    """(t_mco_b, t_mco_c, t_mco_d, t_mco_a) rows of each stay, with its exit date for the delta split."""
    stays = [
        # P4's cataract in 2018 opens the PMSI history (the claims algorithm's washout needs one year of it).
        ("H30000003", "0000000000", "P4", D(2018, 5, 2), D(2018, 5, 2), "H251", None, [("BFGA004", 0)], []),
        # hospital, rsa, person, entry, exit, DP, DR, acts [(code, days after entry)], DA
        ("H10000001", "0000000001", "P1", D(2020, 3, 10), D(2020, 3, 14), "C504", None, [("QEFA003", 2)], ["I10"]),
        ("H10000001", "0000000002", "P1", D(2020, 6, 10), D(2020, 6, 14), "J189", None, [], []),
        ("H20000002", "0000000003", "P3", D(2021, 1, 5), D(2021, 1, 8), "C341", None, [("GEQE007", 0)], []),
        ("H20000002", "0000000004", "P3", D(2021, 2, 1), D(2021, 2, 1), "Z511", "C341", [("EBLA003", 0)], []),
        ("H10000001", "0000000005", "P2", D(2020, 2, 10), D(2020, 2, 12), "C504", None, [("QEFA001", 0)], []),
        ("H30000003", "0000000006", "P5", D(2021, 4, 2), D(2021, 4, 3), "C341", None, [], []),
    ]
    out = []
    for eta, rsa, person, entry, exit_, dp, dr, acts, das in stays:
        out.append({
            "exit": exit_,
            "t_mco_b": [{"ETA_NUM": eta, "RSA_NUM": rsa, "DGN_PAL": dp, "DGN_REL": dr, "GRG_GHM": "09C05J",
                         "SEJ_NBJ": (exit_ - entry).days, "ENT_MOD": "8", "SOR_MOD": "8",
                         "SOR_ANN": str(exit_.year), "PMSI_ANN": exit_.year}],
            # ENT_DAT / SOR_DAT left empty on P5's stay: staging falls back to EXE_SOI_DTD / EXE_SOI_DTF.
            "t_mco_c": [{"ETA_NUM": eta, "RSA_NUM": rsa, "NIR_ANO_17": _nir(person), "EXE_SOI_DTD": entry,
                         "EXE_SOI_DTF": exit_, "NIR_RET": "0", "ENT_DAT": None if person == "P5" else entry,
                         "SOR_DAT": None if person == "P5" else exit_, "PMSI_ANN": exit_.year}],
            "t_mco_d": [{"ETA_NUM": eta, "RSA_NUM": rsa, "DGN_ASS_NUM": i + 1, "ASS_DGN": da, "PMSI_ANN": exit_.year}
                        for i, da in enumerate(das)],
            "t_mco_a": [{"ETA_NUM": eta, "RSA_NUM": rsa, "CDC_ACT": code, "ENT_DAT_DEL": delay,
                         "ACV_ACT": "1", "PMSI_ANN": exit_.year} for code, delay in acts],
        })
    return out


def _registry() -> list[dict[str, Any]]:
    return [
        {"REG_ID": "GEN14", "REG_CAS_ID": "000001", "BEN_NIR_PSA": _nir("P2"), "DAT_DIAG": D(2020, 2, 1),
         "TOP_ICDO3": "C50.4", "MOR_ICDO3": "8500/3", "CIM10": "C504", "STADE": "II", "BASE_DIAG": 7},
        {"REG_ID": "GEN14", "REG_CAS_ID": "000002", "BEN_NIR_PSA": _nir("P4"), "DAT_DIAG": D(2021, 3, 15),
         "TOP_ICDO3": "C34.1", "MOR_ICDO3": "8140/3", "CIM10": "C341", "STADE": "IV", "BASE_DIAG": 7},
    ]


def _deaths(extraction: dt.date) -> list[dict[str, Any]]:
    if extraction < D(2021, 12, 31):
        return []
    return [{"BEN_NIR_ANO": _nir("P3"), "BEN_DCD_DTE": D(2021, 8, 1), "DCD_CIM_COD": "C349", "DCD_DPT_COD": "069"}]


def _fdep() -> list[dict[str, Any]]:
    rows = [("075", "101", -0.5, 2), ("014", "201", 0.3, 3), ("069", "301", 1.1, 4), ("014", "202", 2.0, 5)]
    return [{"DPT_COD": d, "COM_COD": c, "FDEP_IDX": i, "FDEP_QUINT": q} for d, c, i, q in rows]


def _write(landing: Path, source: str, extraction: dt.date, rows: Iterable[dict[str, Any]], fmt: str) -> None:
    spec = SOURCES_BY_NAME[source]
    rows = list(rows)
    table = pa.table({c.name: pa.array([r.get(c.name) for r in rows], type=_ARROW[c.type]) for c in spec.columns})
    folder = landing / source / f"extraction={extraction.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, folder / "part-00000.parquet")
    else:
        pacsv.write_csv(table, folder / "part-00000.csv",
                        write_options=pacsv.WriteOptions(delimiter=";", quoting_style="needed"))


def write_extraction(landing: Path, extraction: dt.date, *, fmt: str = "parquet") -> None:
    """Write every source of one extraction (delta sources: lines after the previous extraction date)."""
    previous = max((e for e in EXTRACTIONS if e < extraction), default=dt.date.min)
    flux = [r for r in all_dispensings() if previous < r["FLX_DIS_DTD"] <= extraction]
    _write(landing, "er_prs_f", extraction, flux, fmt)
    _write(landing, "er_pha_f", extraction, flux, fmt)
    stays = [s for s in all_stays() if previous < s["exit"] <= extraction]
    for table in ("t_mco_b", "t_mco_c", "t_mco_d", "t_mco_a"):
        _write(landing, table, extraction, [row for s in stays for row in s[table]], fmt)
    _write(landing, "ir_ben_r", extraction, _beneficiaries(extraction), fmt)
    _write(landing, "ir_pha_r", extraction, _drugs(), fmt)
    _write(landing, "registry_cases", extraction, _registry(), fmt)
    _write(landing, "ki_cci_r", extraction, _deaths(extraction), fmt)
    _write(landing, "ir_geo_fdep", extraction, _fdep(), fmt)


def write_landing(landing: Path, *, fmt: str = "parquet", extractions: Iterable[dt.date] = EXTRACTIONS) -> Path:
    """Write the fixture's extractions under ``landing`` and return it."""
    for extraction in extractions:
        write_extraction(landing, extraction, fmt=fmt)
    return landing
