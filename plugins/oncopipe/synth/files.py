"""Writing landing files deterministically: fixed row order, no timestamps, same bytes for the same input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv")


def extraction_dir(out: Path, source: str, date: str) -> Path:
    """``<out>/<source>/extraction=<date>``."""
    return Path(out) / source / f"extraction={date}"


def part_path(folder: Path, part: int, fmt: str) -> Path:
    return folder / f"part-{part:05d}.{fmt}"


def write_part(table: pa.Table, path: Path, fmt: str) -> Path:
    """Write one part file (Parquet: zstd, no statistics timestamps; CSV: ``;``, UTF-8, ISO dates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if fmt == "parquet":
        pq.write_table(table, tmp, compression="zstd", row_group_size=1_000_000, write_statistics=True)
    elif fmt == "csv":
        pacsv.write_csv(table, tmp, pacsv.WriteOptions(delimiter=";", include_header=True))
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    tmp.replace(path)
    return path


def reset_dir(folder: Path) -> None:
    """Remove a previous extraction folder of the same date (re-generation is idempotent)."""
    if folder.exists():
        shutil.rmtree(folder)
