"""Generate one SNDS-shaped extraction into a landing folder (the engine behind ``oncopipe generate``).

People are simulated in fixed chunks of ``parameters.CHUNK_SIZE`` (chunk ``i`` holds people
``i*CHUNK_SIZE ..``), each from its own random streams, so a person's history depends only on the seed and
the person, never on the extraction date: a later extraction into the same folder is a consistent
continuation (deltas hold only the new flux, snapshots are updated). Chunks run in worker processes and each
writes its own part files; the referentials (ir_pha_r, ir_geo_fdep) are single files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from oncopipe.contracts.sources import SOURCES, SOURCES_BY_NAME
from oncopipe.synth import parameters as P
from oncopipe.synth import tables as T
from oncopipe.synth.chunk import DIRT_KINDS, chunk_bounds, simulate_chunk
from oncopipe.synth.dates import day
from oncopipe.synth.faults import FaultSpec, apply_file_faults, apply_table_faults, parse_faults
from oncopipe.synth.files import FORMATS, extraction_dir, part_path, reset_dir, write_part
from oncopipe.synth.hospitals import build_hospitals
from oncopipe.synth.truth import MONTHS, cases_frame, trajectories_frame
from oncopipe.synth.truth_report import build_truth

TRUTH_DIR = "_truth"
PMSI = ("t_mco_b", "t_mco_c", "t_mco_d", "t_mco_a")
DCIR = ("er_prs_f", "er_pha_f")
PER_CHUNK = ("ir_ben_r", *DCIR, *PMSI, "registry_cases", "ki_cci_r")
REFERENTIALS = ("ir_pha_r", "ir_geo_fdep")
_EXTRACTION_RE = re.compile(r"^extraction=(\d{4}-\d{2}-\d{2})$")


@dataclass
class GenerationReport:
    """What a generation wrote: per source the files and rows, and where the truth is."""

    out: Path
    extraction_date: str
    previous: dict[str, str | None]
    files: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    truth_dir: Path | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)


def previous_extraction(out: Path, source: str, date: str) -> str | None:
    """The latest extraction date of ``source`` in ``out`` strictly before ``date`` (None if none)."""
    folder = Path(out) / source
    if not folder.is_dir():
        return None
    found = [m.group(1) for p in folder.iterdir() if (m := _EXTRACTION_RE.match(p.name)) and m.group(1) < date]
    return max(found) if found else None


@dataclass(frozen=True)
class _Job:
    out: str
    seed: int
    number: int
    start: int
    size: int
    date: str
    previous: dict[str, str | None]
    sources: tuple[str, ...]
    fmt: str
    dirt_rate: float
    faults: tuple[FaultSpec, ...]


def _run_chunk(job: _Job) -> dict[str, Any]:
    hospitals = build_hospitals(job.seed)
    date = day(job.date)
    need_pharmacy = any(s in job.sources for s in DCIR)
    chunk = simulate_chunk(job.seed, job.number, job.start, job.size, hospitals, job.dirt_rate, need_pharmacy)

    def prev(source: str) -> int | None:
        value = job.previous.get(source)
        return None if value is None else day(value)

    built: dict[str, pa.Table] = {}
    for source in job.sources:
        if source == "ir_ben_r":
            built[source] = T.ir_ben_r(chunk, date)
        elif source == "ki_cci_r":
            built[source] = T.ki_cci_r(chunk, date)
        elif source == "registry_cases":
            built[source] = T.registry_cases(chunk, date)
        elif source == "er_prs_f":
            built[source] = T.er_prs_f(chunk, prev(source), date)
        elif source == "er_pha_f":
            built[source] = T.er_pha_f(chunk, prev(source), date)
    if any(s in job.sources for s in PMSI):
        # The four PMSI tables share one flux: the previous extraction of the first one written.
        pmsi = T.pmsi(chunk, hospitals, prev(next(s for s in PMSI if s in job.sources)), date, job.dirt_rate / 2)
        built.update({k: v for k, v in pmsi.items() if k in job.sources})
    dirt = _dirt_counts(chunk, prev(_dcir_flux(job.sources)), date) if need_pharmacy else {}
    built, fault_rows = apply_table_faults(built, job.faults, chunk, job.seed, date,
                                           prev(_dcir_flux(job.sources)), job.fmt)
    written: dict[str, tuple[int, int]] = {}
    for source, table in built.items():
        if table.num_rows == 0 and job.number > 0:
            continue
        folder = extraction_dir(Path(job.out), source, job.date)
        write_part(table, part_path(folder, job.number, job.fmt), job.fmt)
        written[source] = (1, table.num_rows)
    cases = cases_frame(chunk, hospitals, date)
    groups, pdc_sums, pdc_counts = trajectories_frame(chunk, date)
    return {"number": job.number, "written": written, "cases": cases, "groups": groups, "pdc_sums": pdc_sums,
            "pdc_counts": pdc_counts, "dirt": dirt, "fault_rows": fault_rows,
            "cohort": np.bincount(chunk.people.cohort, minlength=3)}


def _dcir_flux(sources: tuple[str, ...]) -> str:
    """The DCIR table whose previous extraction bounds the flux: the two tables share one flux."""
    return next((s for s in DCIR if s in sources), "er_prs_f")


def _dirt_counts(chunk, previous: int | None, date: int) -> dict[str, int]:
    lines = chunk.pharmacy
    lo = -(2**31) if previous is None else previous
    kept = lines.dirt[(lines.flux > lo) & (lines.flux <= date)]
    counts = np.bincount(kept, minlength=len(DIRT_KINDS))
    return {DIRT_KINDS[i]: int(counts[i]) for i in range(1, len(DIRT_KINDS))}


def generate(out: str | Path, patients: int, seed: int, extraction_date: str | dt.date, *,
             fmt: str = "parquet", faults: Sequence[str] | str | None = None, dirt_rate: float = 0.01,
             sources: Sequence[str] | None = None, workers: int | None = None,
             on_chunk: Callable[[int, int], None] | None = None) -> GenerationReport:
    """Write one extraction of ``patients`` people at ``extraction_date`` into ``out``.

    Args:
        out: the landing folder (``<out>/<source>/extraction=<date>/part-NNNNN.<fmt>``).
        patients: number of people simulated (all appear in ir_ben_r).
        seed: random seed; the same seed and arguments give the same bytes.
        extraction_date: the cut-off date (ISO string or date), between 2012-01-01 and 2027-12-31.
        fmt: ``parquet`` or ``csv``.
        faults: fault kinds to inject (``KIND`` or ``KIND@source``, list or comma-separated string).
        dirt_rate: rate of the ordinary dirt real extracts carry (0 for a clean extract).
        sources: write only these sources (default: all of oncopipe.contracts.sources); the truth is always written.
        workers: worker processes (default: up to 2, one per chunk).
        on_chunk: progress callback ``(chunks done, chunks total)``.

    Returns:
        A :class:`GenerationReport`.
    """
    date = extraction_date.isoformat() if isinstance(extraction_date, dt.date) else str(extraction_date)
    try:
        date_day = day(date)
    except ValueError:
        raise ValueError(f"extraction date {date!r} is not an ISO date YYYY-MM-DD") from None
    if not (P.DIAGNOSIS_START <= date_day <= P.HISTORY_END):
        raise ValueError(f"extraction date {date} outside the simulated history 2012-01-01..2027-12-31")
    if patients < 1:
        raise ValueError(f"--patients must be >= 1, got {patients}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not 0 <= dirt_rate <= 0.2:
        raise ValueError(f"--dirt-rate must be in [0, 0.2], got {dirt_rate}")
    chosen = tuple(s.name for s in SOURCES) if sources is None else tuple(sources)
    for s in chosen:
        if s not in SOURCES_BY_NAME:
            raise ValueError(f"unknown source {s!r}; known: {', '.join(SOURCES_BY_NAME)}")
    specs = parse_faults(faults)
    out = Path(out)
    previous = {s: previous_extraction(out, s, date) for s in chosen if SOURCES_BY_NAME[s].delivery == "delta"}
    for s in chosen:
        reset_dir(extraction_dir(out, s, date))
    truth_dir = out / TRUTH_DIR / f"extraction={date}"
    reset_dir(truth_dir)

    bounds = chunk_bounds(patients)
    jobs = [_Job(str(out), seed, i, start, size, date, previous, tuple(s for s in chosen if s in PER_CHUNK), fmt,
                 dirt_rate, tuple(specs)) for i, start, size in bounds]
    n_workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(jobs)))
    results: list[dict[str, Any]] = []
    if n_workers == 1:
        for job in jobs:
            results.append(_run_chunk(job))
            if on_chunk:
                on_chunk(len(results), len(jobs))
    else:
        with ProcessPoolExecutor(n_workers, mp_context=get_context("fork")) as pool:
            for result in pool.map(_run_chunk, jobs):
                results.append(result)
                if on_chunk:
                    on_chunk(len(results), len(jobs))

    report = GenerationReport(out, date, previous)
    for source in chosen:
        if source in REFERENTIALS:
            table = T.ir_pha_r() if source == "ir_pha_r" else T.ir_geo_fdep()
            table, rows = apply_table_faults({source: table}, specs, None, seed, date_day, None, fmt)
            write_part(table[source], part_path(extraction_dir(out, source, date), 0, fmt), fmt)
            results.append({"written": {source: (1, table[source].num_rows)}, "fault_rows": rows})
    for r in results:
        for source, (files, rows) in r["written"].items():
            report.files[source] = report.files.get(source, 0) + files
            report.rows[source] = report.rows.get(source, 0) + rows
    fault_rows: dict[tuple[str, str], int] = {}
    for r in results:
        for key, n in r.get("fault_rows", {}).items():
            fault_rows[key] = fault_rows.get(key, 0) + n
    fault_rows.update(apply_file_faults(out, date, fmt, specs, seed, report.rows))
    report.faults = [{"kind": s.kind, "source": s.source, "column": s.column,
                      "rows_affected": fault_rows.get((s.kind, s.source), 0)} for s in specs]

    chunk_results = [r for r in results if "cases" in r]
    cases = pd.concat([r["cases"] for r in chunk_results], ignore_index=True)
    groups = pd.concat([r["groups"] for r in chunk_results], ignore_index=True)
    pdc_sums = sum(r["pdc_sums"] for r in chunk_results)
    pdc_counts = sum(r["pdc_counts"] for r in chunk_results)
    dirt: dict[str, int] = {}
    for r in chunk_results:
        for k, v in r["dirt"].items():
            dirt[k] = dirt.get(k, 0) + v
    truth_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(cases, preserve_index=False), truth_dir / "cases.parquet", compression="zstd")
    pq.write_table(pa.Table.from_pandas(groups, preserve_index=False), truth_dir / "trajectory_groups.parquet",
                   compression="zstd")
    truth = build_truth(
        seed=seed, patients=patients, date=date, fmt=fmt, dirt_rate=dirt_rate, previous=previous, report=report,
        cohort=sum(r["cohort"] for r in chunk_results), cases=cases, groups=groups,
        mean_pdc=np.where(pdc_counts > 0, pdc_sums / np.maximum(pdc_counts, 1), np.nan)[:, :MONTHS],
        dirt=dirt, hospitals=build_hospitals(seed),
    )
    (truth_dir / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True, default=str) + "\n")
    report.truth_dir = truth_dir
    return report
