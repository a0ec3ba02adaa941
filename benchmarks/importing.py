"""Benchmark ``oncopipe import`` on a delivered-shape CSV: wall time, CPU, peak RSS, and the time per 100 M lines.

Usage: ``nice -n 10 .venv/bin/python benchmarks/importing.py [--lines 10000000] [--table T_MCO23A]``.
The delivered file is written first (not measured; a block of 1 M generated lines, repeated): ``;``-separated,
the insurer's date format, NUM_ENQ as the pseudonym where the table has a person, plus columns the platform does
not read. The default is the table a national extract holds most lines of, ER_PHA_F (the DCIR drug lines: the nine
DCIR keys, two of them DD/MM/YYYY dates, CIP13, boxes, price); ER_PRS_F is its claim lines (the keys, the person as
NUM_ENQ, the care date and five codes); T_MCOaaC (8 columns, 5 of them dates, a person) is the widest PMSI table,
T_MCOaaA the narrow one (5 columns, no date), T_MCOaaB carries SOR_ANN, checked on every line against the name's year.
Writes ``benchmarks/results/import-<table>-<lines>.json``; the files go to a
temporary folder under var/ and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from measure import measure, write_results
from oncopipe.contracts.settings import get_settings
from oncopipe.landing.importer import import_extract

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 1_000_000


def _block(table: str, n: int, seed: int = 1) -> pa.Table:
    """``n`` delivered lines of ``table`` (text, the insurer's formats)."""
    rng = np.random.default_rng(seed)
    if table.startswith("ER_"):
        return _dcir_block(table, n, rng)
    frame = {"ETA_NUM": np.char.zfill(rng.integers(10_000_000, 999_999_999, n).astype(str), 9),
             "RSA_NUM": np.char.zfill(np.arange(n).astype(str), 10)}
    if table.endswith("C"):
        entry = pd.Series(np.datetime64("2023-01-01") + rng.integers(0, 365, n))
        exit_ = entry + pd.to_timedelta(rng.integers(0, 20, n), unit="D")
        frame.update({
            "NUM_ENQ": np.char.add("P", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 16)),
            "EXE_SOI_DTD": entry.dt.strftime("%d%m%Y"), "EXE_SOI_DTF": exit_.dt.strftime("%d%m%Y"),
            "NIR_RET": "0", "ENT_DAT": entry.dt.strftime("%d%m%Y"), "SOR_DAT": exit_.dt.strftime("%d%m%Y")})
    elif table.endswith("B"):
        frame.update({
            "DGN_PAL": np.array(["C509", "C341", "Z511", "I10"])[rng.integers(0, 4, n)], "DGN_REL": "",
            "GRG_GHM": "09C05J", "SEJ_NBJ": rng.integers(0, 20, n).astype(str), "ENT_MOD": "8", "SOR_MOD": "8",
            "SOR_ANN": "2023", "AGE_ANN": rng.integers(18, 99, n).astype(str)})
    else:
        frame.update({
            "CDC_ACT": np.char.add(np.array(["QEFA", "HFFC", "ZZNL", "YYYY"])[rng.integers(0, 4, n)],
                                   np.char.zfill(rng.integers(1, 999, n).astype(str), 3)),
            "ENT_DAT_DEL": rng.integers(0, 30, n).astype(str), "ACV_ACT": "1", "PHA_ACT": "0"})
    return pa.Table.from_pandas(pd.DataFrame(frame).astype(str), preserve_index=False)


def _dcir_block(table: str, n: int, rng: np.random.Generator) -> pa.Table:
    flux = pd.Series(np.datetime64("2023-01-01") + 30 * rng.integers(0, 12, n).astype("timedelta64[D]"))
    frame = {"FLX_DIS_DTD": flux.dt.strftime("%d/%m/%Y"), "FLX_TRT_DTD": flux.dt.strftime("%d/%m/%Y"),
             "FLX_EMT_TYP": "1", "FLX_EMT_NUM": rng.integers(1, 200, n).astype(str), "FLX_EMT_ORD": "1",
             "ORG_CLE_NUM": np.char.zfill(rng.integers(0, 10**8, n).astype(str), 9),
             "DCT_ORD_NUM": np.arange(n).astype(str), "PRS_ORD_NUM": "1", "REM_TYP_AFF": "1"}
    if table == "ER_PHA_F":
        frame.update({"PHA_PRS_C13": "3400935955838", "PHA_ACT_QSN": rng.integers(1, 4, n).astype(str),
                      "PHA_ACT_PRU": np.round(rng.uniform(1, 90, n), 2).astype(str)})
    else:
        care = flux - pd.to_timedelta(rng.integers(0, 28, n), unit="D")
        frame.update({"NUM_ENQ": np.char.add("P", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 16)),
                      "BEN_RNG_GEM": "1", "EXE_SOI_DTD": care.dt.strftime("%d/%m/%Y"), "PRS_NAT_REF": "3317",
                      "DPN_QLF": "0", "PSE_SPE_COD": rng.integers(1, 80, n).astype(str)})
    return pa.Table.from_pandas(pd.DataFrame(frame).astype(str), preserve_index=False)


def _write_delivery(path: Path, table: str, lines: int) -> int:
    """Write ``lines`` delivered lines: one generated block of ``CHUNK`` lines, repeated (the import reads every
    line the same way whatever its value; generating 100 M distinct lines would take longer than importing them)."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(_block(table, CHUNK), sink, pacsv.WriteOptions(delimiter=";", quoting_style="none"))
    text = sink.getvalue().to_pybytes()
    header, _, body = text.partition(b"\n")
    with path.open("wb") as fh:
        fh.write(header + b"\n")
        for start in range(0, lines, CHUNK):
            n = min(CHUNK, lines - start)
            fh.write(body if n == CHUNK else b"\n".join(body.split(b"\n")[:n]) + b"\n")
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--table", default="ER_PHA_F",
                        choices=["ER_PHA_F", "ER_PRS_F", "T_MCO23C", "T_MCO23B", "T_MCO23A"])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default var/bench-import)")
    args = parser.parse_args(argv)
    work = args.out or get_settings().home / "bench-import"
    if work.exists():
        shutil.rmtree(work)
    delivery = work / "delivery"
    delivery.mkdir(parents=True)
    size = _write_delivery(delivery / f"{args.table}.csv", args.table, args.lines)
    load_before = os.getloadavg()
    try:
        with measure("import") as m:
            report = import_extract(delivery, work / "landing", "2024-12-31")
            m.rows = sum(report.rows.values())
        landed = sum(p.stat().st_size for p in (work / "landing").rglob("*") if p.is_file())
        m.extra = {"table": args.table, "csv_bytes": size, "landed_parquet_bytes": landed,
                   "seconds_per_100M_lines": m.wall_s * 1e8 / max(m.rows, 1),
                   "load_average_before": load_before, "load_average_after": os.getloadavg()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = write_results(RESULTS / f"import-{args.table}-{args.lines}.json", [m])
    print(f"{m.rows:,} lines in {m.wall_s:.1f} s ({m.extra['seconds_per_100M_lines']:.0f} s per 100 M lines), "
          f"peak RSS {m.peak_rss_mb:.0f} MB, CSV {size / 2**20:.0f} MB -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
