"""Raw-gate faults the generator can inject (``--faults KIND[@SOURCE],...``), one per expectation of the gate.

Each fault touches one source (its default, or the one named after ``@`` for the kinds that accept any
source) and leaves every other source clean. What was injected, where and on how many rows is recorded in
truth.json. Row-level faults are applied to each chunk's table before writing; file-level faults
(truncated_file, and bad_encoding for CSV) after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from oncopipe.contracts.sources import SOURCES_BY_NAME
from oncopipe.synth.chunk import Chunk
from oncopipe.synth.dates import month_start_after, to_date
from oncopipe.synth.files import extraction_dir
from oncopipe.synth.streams import stream


@dataclass(frozen=True)
class FaultKind:
    kind: str
    source: str
    column: str | None
    description: str
    caught_by: str
    any_source: bool = False


FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind("missing_column", "ir_ben_r", "BEN_SEX_COD", "drops a column", "schema: column set", True),
    FaultKind("wrong_type", "er_pha_f", "PHA_ACT_QSN", "quantity written as text with non-numeric values",
              "schema: column types"),
    FaultKind("unparsable_dates", "er_prs_f", "EXE_SOI_DTD", "date written as text, ~2% like '2021-13-45'",
              "date parse"),
    FaultKind("death_before_birth", "ir_ben_r", "BEN_DCD_DTE", "death date before birth for ~1%", "date order"),
    FaultKind("duplicated_keys", "ir_ben_r", None, "~1% of lines duplicated with different values",
              "key uniqueness", True),
    FaultKind("unknown_codes", "t_mco_b", "DGN_PAL", "principal diagnosis not ICD-10 for ~5%", "ICD-10 format"),
    FaultKind("invalid_cip13", "er_pha_f", "PHA_PRS_C13", "wrong check digit or length for ~5%", "CIP13 format"),
    FaultKind("invalid_atc", "ir_pha_r", "PHA_ATC_C07", "malformed ATC codes (~20% of presentations)",
              "ATC format"),
    FaultKind("invalid_ccam", "t_mco_a", "CDC_ACT", "malformed CCAM codes for ~5%", "CCAM format"),
    FaultKind("invalid_department", "ir_ben_r", "BEN_RES_DPT", "department '999' / 'XX' for ~5%",
              "department value set"),
    FaultKind("unknown_sex", "ir_ben_r", "BEN_SEX_COD", "sex code 7 for ~5%", "sex value set"),
    FaultKind("invalid_dpn_qlf", "er_prs_f", "DPN_QLF", "DPN_QLF = 99 for ~5%", "DPN_QLF value set"),
    FaultKind("negative_quantities", "er_pha_f", "PHA_ACT_QSN", "negative quantity on ~5% of the drug lines",
              "quantity range"),
    FaultKind("null_mandatory", "er_prs_f", "BEN_NIR_PSA", "mandatory column null on ~2%", "not null", True),
    FaultKind("future_dates", "er_prs_f", "EXE_SOI_DTD", "care date after the extraction date for ~2%",
              "date range"),
    FaultKind("care_after_death", "er_prs_f", "EXE_SOI_DTD", "dispensings > 90 days after death for ~5% of the dead",
              "no care after death"),
    FaultKind("empty_file", "er_pha_f", None, "every part file has zero rows", "row count > 0", True),
    FaultKind("truncated_file", "er_pha_f", None, "one part file cut in the middle (unreadable)", "file readable",
              True),
    FaultKind("bad_encoding", "ir_pha_r", "PHA_NOM_PA", "labels written as Latin-1 bytes, not UTF-8", "encoding"),
    FaultKind("row_count_collapse", "er_pha_f", None, "keeps 10% of the lines",
              "row count vs previous accepted extraction", True),
    FaultKind("month_gap", "er_prs_f", "EXE_SOI_DTD", "drops every line of one month of care",
              "share of lines per month"),
    FaultKind("orphan_stays", "t_mco_c", None, "~5% of stays of t_mco_b have no linkage line",
              "referential integrity"),
    FaultKind("orphan_drug_lines", "er_pha_f", None, "~5% more drug lines under claim numbers ER_PRS_F does not hold",
              "drug line has its claim line"),
)
FAULTS_BY_KIND = {f.kind: f for f in FAULT_KINDS}
_DEFAULT_NULL_COLUMN = {"er_prs_f": "BEN_NIR_PSA"}


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    source: str
    column: str | None


def parse_faults(faults: str | list[str] | tuple[str, ...] | None) -> list[FaultSpec]:
    """Parse ``KIND[@SOURCE]`` items (a list or one comma-separated string); raise ValueError on bad input."""
    if not faults:
        return []
    items = faults.split(",") if isinstance(faults, str) else [x for f in faults for x in f.split(",")]
    specs = []
    for raw in (i.strip() for i in items):
        if not raw:
            continue
        kind, _, src = raw.partition("@")
        if kind not in FAULTS_BY_KIND:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULTS_BY_KIND)}")
        fk = FAULTS_BY_KIND[kind]
        source = src or fk.source
        if source not in SOURCES_BY_NAME:
            raise ValueError(f"fault {raw!r}: unknown source {source!r}")
        if source != fk.source and not fk.any_source:
            raise ValueError(f"fault {kind!r} only applies to {fk.source}, not {source!r}")
        spec = FaultSpec(kind, source, _column_for(fk, source))
        clash = next((s for s in specs if s.source == source and (s.kind == kind or (
            spec.column is not None and s.column == spec.column))), None)
        if clash:
            raise ValueError(f"faults {clash.kind!r} and {kind!r} both target {source}.{spec.column or '*'}; "
                             "inject them in separate extractions")
        specs.append(spec)
    return specs


def _column_for(fk: FaultKind, source: str) -> str | None:
    if source == fk.source:
        return fk.column
    cols = SOURCES_BY_NAME[source].columns
    if fk.kind == "missing_column":
        return cols[-1].name
    if fk.kind == "null_mandatory":
        return _DEFAULT_NULL_COLUMN.get(source, next(c.name for c in cols if not c.nullable))
    return None


def _mask(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    m = rng.random(n) < rate
    if n and not m.any():
        m[rng.integers(0, n)] = True  # at least one row per chunk, so small extracts still carry the fault
    return m


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, pa.field(name, values.type), values)


def _replace(table: pa.Table, name: str, mask: np.ndarray, values: np.ndarray) -> pa.Table:
    col = table[name].combine_chunks()
    new = pc.if_else(pa.array(mask), pa.array(values, type=col.type), col)
    return _set(table, name, new)


def _apply(spec: FaultSpec, table: pa.Table, rng: np.random.Generator, chunk, date: int,
           previous: int | None) -> tuple[pa.Table, int]:
    n = table.num_rows
    k = spec.kind
    col = spec.column
    if k == "missing_column":
        return table.drop_columns([col]), n
    if k in ("empty_file",):
        return table.slice(0, 0), n
    if k == "row_count_collapse":
        keep = rng.random(n) < 0.10
        return table.filter(pa.array(keep)), int((~keep).sum())
    if n == 0:
        return table, 0
    if k == "wrong_type":
        m = _mask(rng, n, 0.05)
        text = pc.cast(table[col], pa.string()).combine_chunks().to_numpy(zero_copy_only=False).astype(object)
        text[m] = np.array(["N/A", "deux", "1,5", "?"], dtype=object)[rng.integers(0, 4, int(m.sum()))]
        return _set(table, col, pa.array(text, type=pa.string())), int(m.sum())
    if k == "unparsable_dates":
        m = _mask(rng, n, 0.02)
        text = pc.strftime(table[col], "%Y-%m-%d").combine_chunks().to_numpy(zero_copy_only=False).astype(object)
        bad = np.array(["2021-13-45", "2020-02-30", "31/12/2019", "2022-00-10"], dtype=object)
        text[m] = bad[rng.integers(0, len(bad), int(m.sum()))]
        return _set(table, col, pa.array(text, type=pa.string())), int(m.sum())
    if k == "death_before_birth":
        m = _mask(rng, n, 0.01)
        birth = np.array([np.datetime64(f"{y}-{mo}-01") for y, mo in zip(
            table["BEN_NAI_ANN"].to_pylist(), table["BEN_NAI_MOI"].to_pylist(), strict=True)])
        before = (birth.astype("datetime64[D]").astype(np.int64) - rng.integers(30, 3650, n)).astype(np.int32)
        values = pa.array(before).cast(pa.date32()).to_numpy(zero_copy_only=False)
        return _replace(table, col, m, values), int(m.sum())
    if k == "duplicated_keys":
        m = _mask(rng, n, 0.01)
        dup = table.filter(pa.array(m))
        key = SOURCES_BY_NAME[spec.source].key
        target = next(c for c in dup.column_names if c not in key)
        vals = dup[target].combine_chunks()
        if pa.types.is_integer(vals.type) or pa.types.is_floating(vals.type):
            changed = pc.add(vals, pa.scalar(1, vals.type))
        elif pa.types.is_date(vals.type):
            changed = pa.array((vals.cast(pa.int32()).to_numpy(zero_copy_only=False) + 1).astype(np.int32)
                               ).cast(pa.date32())
        else:
            changed = pc.binary_join_element_wise(vals, pa.scalar("X"), "")
        dup = _set(dup, target, changed)
        return pa.concat_tables([table, dup]), dup.num_rows
    if k == "unknown_codes":
        m = _mask(rng, n, 0.05)
        bad = np.array(["XX99Z", "12345", "C50.9", "C5"], dtype=object)[rng.integers(0, 4, n)]
        return _replace(table, col, m, bad), int(m.sum())
    if k == "invalid_cip13":
        m = _mask(rng, n, 0.05)
        codes = table[col].combine_chunks().to_numpy(zero_copy_only=False).astype(object)
        wrong_digit = np.array([c[:12] + str((int(c[12]) + 1) % 10) for c in codes[m]], dtype=object)
        short = np.array([c[:12] for c in codes[m]], dtype=object)
        codes[m] = np.where(rng.random(int(m.sum())) < 0.7, wrong_digit, short)
        return _set(table, col, pa.array(codes, type=pa.string())), int(m.sum())
    if k == "invalid_atc":
        m = _mask(rng, n, 0.2)
        bad = np.array(["L02B", "l02ba01", "1234567", "L02BA0X1"], dtype=object)[rng.integers(0, 4, n)]
        return _replace(table, col, m, bad), int(m.sum())
    if k == "invalid_ccam":
        m = _mask(rng, n, 0.05)
        bad = np.array(["QEF003", "qefa003", "1234ABC", "QEFA0031"], dtype=object)[rng.integers(0, 4, n)]
        return _replace(table, col, m, bad), int(m.sum())
    if k == "invalid_department":
        m = _mask(rng, n, 0.05)
        bad = np.array(["999", "XX"], dtype=object)[rng.integers(0, 2, n)]
        return _replace(table, col, m, bad), int(m.sum())
    if k == "unknown_sex":
        m = _mask(rng, n, 0.05)
        return _replace(table, col, m, np.full(n, 7)), int(m.sum())
    if k == "invalid_dpn_qlf":
        m = _mask(rng, n, 0.05)
        return _replace(table, col, m, np.full(n, 99)), int(m.sum())
    if k == "negative_quantities":
        m = _mask(rng, n, 0.05)
        qty = table[col].to_numpy()
        return _replace(table, col, m, -np.abs(qty)), int(m.sum())
    if k == "null_mandatory":
        m = _mask(rng, n, 0.02)
        c = table[col].combine_chunks()
        return _set(table, col, pc.if_else(pa.array(m), pa.scalar(None, c.type), c)), int(m.sum())
    if k == "future_dates":
        m = _mask(rng, n, 0.02)
        later = (date + rng.integers(1, 366, n)).astype(np.int32)
        return _replace(table, col, m, pa.array(later).cast(pa.date32()).to_numpy(zero_copy_only=False)), int(m.sum())
    if k == "care_after_death":
        return _care_after_death(table, rng, chunk, date, previous)
    if k == "bad_encoding":
        labels = table[col].to_pylist()
        return _set(table, col, pa.array([v.encode("latin-1") for v in labels], type=pa.binary())), n
    if k == "month_gap":
        month = month_start_after(np.array([date - 75]))[0] - 1  # last day of the month two months back
        month_first = np.datetime64(to_date(month), "M")
        care = table[col].combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
        drop = care.astype("datetime64[M]") == month_first
        return table.filter(pa.array(~drop)), int(drop.sum())
    if k == "orphan_drug_lines":
        m = _mask(rng, n, 0.05)
        orphans = table.filter(pa.array(m))
        # Claim numbers of 9 digits per person: no claim line of ER_PRS_F has them.
        orphans = _set(orphans, "DCT_ORD_NUM", pc.add(orphans["DCT_ORD_NUM"].combine_chunks(),
                                                      pa.scalar(ORPHAN_CLAIM_OFFSET, pa.int64())))
        return pa.concat_tables([table, orphans]), orphans.num_rows
    if k == "orphan_stays":
        m = _mask(rng, n, 0.05)
        return table.filter(pa.array(~m)), int(m.sum())
    raise ValueError(f"fault {k!r} has no table-level action")


def _care_after_death(table: pa.Table, rng: np.random.Generator, chunk, date: int,
                      previous: int | None) -> tuple[pa.Table, int]:
    p = chunk.people
    known = (p.death_day + p.death_report_delay) <= date
    lo = max(previous if previous is not None else -(2**31), 0)
    # Care dates in the flux window, more than 90 days after death; the flux month stays <= the extraction date.
    first = np.maximum(p.death_day + 91, lo)
    last = date - 31
    who = np.flatnonzero(known & (first <= last) & (rng.random(len(p)) < 0.05))
    if not len(who):
        return table, 0
    care = first[who] + np.floor(rng.random(len(who)) * (last - first[who] + 1)).astype(np.int64)
    flux = month_start_after(care)
    template = table.slice(0, 1)
    rows = {name: pa.array(np.repeat(template[name].to_numpy(zero_copy_only=False), len(who)),
                           type=template.schema.field(name).type) for name in table.column_names}
    rows["BEN_NIR_PSA"] = pa.array(p.nir[who], type=pa.string())
    rows["EXE_SOI_DTD"] = pa.array(care.astype(np.int32)).cast(pa.date32())
    rows["FLX_DIS_DTD"] = pa.array(flux.astype(np.int32)).cast(pa.date32())
    rows["FLX_TRT_DTD"] = pa.array((flux - 3).astype(np.int32)).cast(pa.date32())
    rows["DCT_ORD_NUM"] = pa.array(p.index[who] * 10_000 + 9_999, type=pa.int64())
    rows["PRS_ORD_NUM"] = pa.array(np.ones(len(who), dtype=np.int64))
    rows["DPN_QLF"] = pa.array(np.zeros(len(who), dtype=np.int64))
    extra = pa.table([rows[c] for c in table.column_names], schema=table.schema)
    return pa.concat_tables([table, extra]), len(who)


_FILE_LEVEL = ("truncated_file",)
ORPHAN_CLAIM_OFFSET = 900_000_000_000


def apply_table_faults(tables: dict[str, pa.Table], specs: tuple[FaultSpec, ...] | list[FaultSpec],
                       chunk: Chunk | None,
                       seed: int, date: int, previous: int | None,
                       fmt: str = "parquet") -> tuple[dict[str, pa.Table], dict]:
    """Apply the row-level faults aimed at the given tables; returns the tables and rows affected per fault."""
    affected: dict[tuple[str, str], int] = {}
    for spec in specs:
        if spec.source not in tables or spec.kind in _FILE_LEVEL:
            continue
        if spec.kind == "bad_encoding" and fmt == "csv":
            continue  # CSV text cannot hold Latin-1 in a UTF-8 writer: the written file is re-encoded instead
        table = tables[spec.source]
        if spec.kind == "bad_encoding" and table.schema.get_field_index(spec.column) < 0:
            continue
        if spec.kind == "care_after_death" and chunk is None:
            continue
        rng = stream(seed, 999_999 if chunk is None else chunk.number, f"fault-{spec.kind}-{spec.source}")
        tables[spec.source], n = _apply(spec, table, rng, chunk, date, previous)
        affected[(spec.kind, spec.source)] = affected.get((spec.kind, spec.source), 0) + n
    return tables, affected


def apply_file_faults(out: Path, date: str, fmt: str, specs: list[FaultSpec], seed: int,
                      rows: dict[str, int]) -> dict[tuple[str, str], int]:
    """Faults on written files: cut one part file in the middle; Latin-1 CSV for bad_encoding."""
    affected = {}
    for spec in specs:
        if spec.kind == "bad_encoding" and fmt == "csv":
            for part in sorted(extraction_dir(out, spec.source, date).glob("part-*.csv")):
                part.write_bytes(part.read_text(encoding="utf-8").encode("latin-1"))
            affected[(spec.kind, spec.source)] = rows.get(spec.source, 0)
            continue
        if spec.kind != "truncated_file":
            continue
        folder = extraction_dir(out, spec.source, date)
        parts = sorted(folder.glob(f"part-*.{fmt}"))
        if not parts:
            continue
        target = parts[len(parts) // 2]
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
        affected[(spec.kind, spec.source)] = 1
    return affected
