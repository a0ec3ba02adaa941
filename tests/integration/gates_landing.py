"""A small hand-made clean landing extraction for the gate tests (independent of the generator).

``write_extraction(landing, date, n)`` writes every source of contracts/sources.py with ``n`` beneficiaries, clean
values and realistic shapes (dispensings every month, stays with linkage, deaths after births).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from oncopipe.contracts.sources import SOURCES_BY_NAME

_ARROW = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32()}


def cip13(stem12: str) -> str:
    weighted = sum(int(ch) * (3 if i % 2 else 1) for i, ch in enumerate(stem12))
    return stem12 + str((10 - weighted % 10) % 10)


def write_table(landing: Path, source: str, date: str, columns: dict[str, list], part: int = 0) -> Path:
    src = SOURCES_BY_NAME[source]
    schema = pa.schema([(c.name, _ARROW[c.type]) for c in src.columns if c.name in columns])
    table = pa.table({c: columns[c] for c in schema.names}, schema=schema)
    folder = landing / source / f"extraction={date}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part:05d}.parquet"
    pq.write_table(table, path)
    return path


def extraction_tables(date: str, n: int = 60, seed: int = 1, months: int = 24) -> dict[str, dict[str, list]]:
    """Column lists of every source for a clean extraction ending at ``date``."""
    rng = np.random.default_rng(seed)
    end = dt.date.fromisoformat(date)
    start = dt.date(end.year - months // 12, end.month, 1)
    nir = [f"NIR{i:014d}" for i in range(n)]
    birth_year = rng.integers(1940, 1970, n)
    death = [None] * n
    for i in range(0, n, 10):
        death[i] = end - dt.timedelta(days=int(rng.integers(200, 400)))
    depts = ["075", "013", "02A", "971", "069"]
    tables: dict[str, dict[str, list]] = {}
    tables["ir_ben_r"] = {
        "BEN_NIR_PSA": nir, "BEN_RNG_GEM": [1] * n, "BEN_SEX_COD": [2] * n,
        "BEN_NAI_ANN": [str(y) for y in birth_year], "BEN_NAI_MOI": [f"{m:02d}" for m in rng.integers(1, 13, n)],
        "BEN_RES_DPT": [depts[i % 5] for i in range(n)], "BEN_RES_COM": ["001"] * n, "BEN_DCD_DTE": death,
        "BEN_DTE_INS": [dt.date(2000, 1, 1)] * n, "BEN_DTE_MAJ": [end] * n,
    }
    cips = [cip13(f"34009{300000 + k:07d}") for k in range(4)]
    tables["ir_pha_r"] = {
        "PHA_CIP_C13": cips, "PHA_ATC_C07": ["L02BA01", "L02BG03", "L02BG04", "L02BG06"],
        "PHA_ATC_L07": ["TAMOXIFENE", "ANASTROZOLE", "LETROZOLE", "EXEMESTANE"],
        "PHA_UNT_NBR_DSES": ["30", "28", "30", "30"],
        "PHA_NOM_PA": ["TAMOXIFÈNE 20MG", "ANASTROZOLE 1MG", "LÉTROZOLE 2,5MG", "EXÉMESTANE 25MG"],
    }
    dcir = dict.fromkeys(SOURCES_BY_NAME["er_prs_f"].column_names + SOURCES_BY_NAME["er_pha_f"].column_names)
    lines: dict[str, list] = {c: [] for c in dcir}
    order = 0
    for i in range(n):
        month = start
        while month < dt.date(end.year, end.month, 1):
            care = month + dt.timedelta(days=int(rng.integers(0, 27)))
            if death[i] is None or care <= death[i]:
                order += 1
                flux = (care.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
                if flux > end:
                    flux = care.replace(day=1)
                for col, value in (("BEN_NIR_PSA", nir[i]), ("BEN_RNG_GEM", 1), ("FLX_DIS_DTD", flux),
                                   ("FLX_TRT_DTD", flux), ("FLX_EMT_TYP", 1), ("FLX_EMT_NUM", 100),
                                   ("FLX_EMT_ORD", 1), ("ORG_CLE_NUM", "01C751001"), ("DCT_ORD_NUM", order),
                                   ("PRS_ORD_NUM", 1), ("REM_TYP_AFF", 1), ("EXE_SOI_DTD", care),
                                   ("PRS_NAT_REF", 3317), ("PHA_PRS_C13", cips[i % 4]), ("PHA_ACT_QSN", 1),
                                   ("PHA_ACT_PRU", 12.5), ("DPN_QLF", 0), ("PSE_SPE_COD", 1)):
                    lines[col].append(value)
            month = (month + dt.timedelta(days=32)).replace(day=1)
    # One claim line (ER_PRS_F) per drug line (ER_PHA_F), under the same nine keys.
    for name in ("er_prs_f", "er_pha_f"):
        tables[name] = {c: list(lines[c]) for c in SOURCES_BY_NAME[name].column_names}
    stays = n
    eta = ["750100042"] * stays
    rsa = [f"{k:010d}" for k in range(stays)]
    entry = [start + dt.timedelta(days=int(d)) for d in rng.integers(0, 300, stays)]
    tables["t_mco_b"] = {
        "ETA_NUM": eta, "RSA_NUM": rsa, "DGN_PAL": ["C509"] * stays, "DGN_REL": [None] * stays,
        "GRG_GHM": ["09M051"] * stays, "SEJ_NBJ": [2] * stays, "ENT_MOD": ["8"] * stays, "SOR_MOD": ["8"] * stays,
        "SOR_ANN": [str(e.year) for e in entry], "PMSI_ANN": [e.year for e in entry],
    }
    tables["t_mco_c"] = {
        "ETA_NUM": eta, "RSA_NUM": rsa, "NIR_ANO_17": nir[:stays], "EXE_SOI_DTD": entry,
        "EXE_SOI_DTF": [e + dt.timedelta(days=2) for e in entry], "NIR_RET": ["0"] * stays,
        "ENT_DAT": entry, "SOR_DAT": [e + dt.timedelta(days=2) for e in entry], "PMSI_ANN": [e.year for e in entry],
    }
    tables["t_mco_d"] = {"ETA_NUM": eta, "RSA_NUM": rsa, "DGN_ASS_NUM": [1] * stays, "ASS_DGN": ["Z511"] * stays,
                         "PMSI_ANN": [e.year for e in entry]}
    tables["t_mco_a"] = {"ETA_NUM": eta, "RSA_NUM": rsa, "CDC_ACT": ["QEFA003"] * stays,
                         "ENT_DAT_DEL": [0] * stays, "ACV_ACT": ["1"] * stays, "PMSI_ANN": [e.year for e in entry]}
    tables["registry_cases"] = {
        "REG_ID": ["R01"] * n, "REG_CAS_ID": [f"C{i:06d}" for i in range(n)], "BEN_NIR_PSA": nir,
        "DAT_DIAG": entry[:n], "TOP_ICDO3": ["C50.9"] * n, "MOR_ICDO3": ["8500/3"] * n, "CIM10": ["C509"] * n,
        "STADE": ["II"] * n, "BASE_DIAG": [7] * n,
    }
    dead = [i for i in range(n) if death[i] is not None]
    tables["ki_cci_r"] = {"BEN_NIR_ANO": [nir[i] for i in dead], "BEN_DCD_DTE": [death[i] for i in dead],
                          "DCD_CIM_COD": ["C509"] * len(dead), "DCD_DPT_COD": ["075"] * len(dead)}
    tables["ir_geo_fdep"] = {"DPT_COD": depts, "COM_COD": ["001"] * 5, "FDEP_IDX": [0.1, 0.2, 0.3, 0.4, 0.5],
                             "FDEP_QUINT": [1, 2, 3, 4, 5]}
    return tables


def write_extraction(landing: Path, date: str, n: int = 60, seed: int = 1) -> dict[str, dict[str, list]]:
    """Write a clean extraction of every source; returns the tables written."""
    tables = extraction_tables(date, n, seed)
    for source, columns in tables.items():
        write_table(landing, source, date, columns)
    return tables
