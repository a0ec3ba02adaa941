"""Where an extraction lies in the landing folder, and how to read its part files.

Layout (contracts/sources.py): ``<landing>/<source>/extraction=<YYYY-MM-DD>/part-<NNNNN>.parquet`` or ``.csv``
(``;`` separated, UTF-8). Quarantined extractions are moved out of the landing, so the *previous accepted
extraction* of a source is simply the latest earlier ``extraction=`` folder still in the landing.
"""

from __future__ import annotations

import re
from pathlib import Path

_EXTRACTION = re.compile(r"^extraction=(\d{4}-\d{2}-\d{2})$")
PART_SUFFIXES = (".parquet", ".csv")


def extraction_dir(landing: Path, source: str, extraction_date: str) -> Path:
    """``<landing>/<source>/extraction=<date>``."""
    return landing / source / f"extraction={extraction_date}"


def part_files(folder: Path) -> list[Path]:
    """The part files of an extraction folder, sorted by name (empty list if the folder is missing)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in PART_SUFFIXES)


def extraction_dates(landing: Path, source: str) -> list[str]:
    """Dates of the extractions of ``source`` present in the landing, oldest first."""
    folder = landing / source
    if not folder.is_dir():
        return []
    return sorted(m.group(1) for p in folder.iterdir() if p.is_dir() and (m := _EXTRACTION.match(p.name)))


def previous_extraction(landing: Path, source: str, extraction_date: str) -> str | None:
    """The latest extraction of ``source`` before ``extraction_date`` still in the landing, if any."""
    earlier = [d for d in extraction_dates(landing, source) if d < extraction_date]
    return earlier[-1] if earlier else None


def latest_extraction(landing: Path) -> str | None:
    """The most recent extraction date present for any source."""
    from oncopipe.contracts.sources import SOURCES

    dates = [d for s in SOURCES for d in extraction_dates(landing, s.name)]
    return max(dates) if dates else None


def sql_list(paths: list[Path]) -> str:
    """A DuckDB list literal of file paths."""
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"[{quoted}]"


def relation_sql(paths: list[Path], columns: list[str] | None = None, *, hive: bool = False) -> str:
    """A DuckDB ``FROM`` expression reading ``paths`` (Parquet and/or CSV, unioned by column name).

    CSV is read as text (``all_varchar``), with ``;`` separator and a header; casting is left to the caller.
    With ``hive``, the ``extraction`` folder becomes a date column (``extraction=<date>`` in the path).
    """
    parquet = [p for p in paths if p.suffix == ".parquet"]
    csv = [p for p in paths if p.suffix == ".csv"]
    # DuckDB detects hive folders by default: without ``hive``, the ``extraction=`` folder must not become a
    # column (the raw gate would report it as a column outside the contract).
    partitioned = (", hive_partitioning = true, hive_types = {'extraction': date}" if hive
                   else ", hive_partitioning = false")
    parts = []
    if parquet:
        parts.append(f"select * from read_parquet({sql_list(parquet)}, union_by_name = true{partitioned})")
    if csv:
        parts.append(f"select * from read_csv({sql_list(csv)}, delim = ';', header = true, all_varchar = true, "
                     f"union_by_name = true{partitioned})")
    if not parts:
        raise ValueError("no part files to read")
    return "(" + " union all by name ".join(parts) + ")"


def landed_parts(landing: Path, source: str, up_to: str | None = None) -> dict[str, list[Path]]:
    """The part files of every extraction of ``source`` up to ``up_to`` (all when None), by date, oldest first."""
    return {d: part_files(extraction_dir(landing, source, d)) for d in extraction_dates(landing, source)
            if up_to is None or d <= up_to}


def part_formats(paths: list[Path]) -> list[str]:
    """The formats (``csv``, ``parquet``) of ``paths``, sorted."""
    return sorted({p.suffix.lstrip(".") for p in paths})
