"""Import a delivered extract (the insurer's files) into the landing layout (the engine behind ``oncopipe import``).

A delivery is a folder of files, one per table (and per year for the PMSI), named as the insurer names them:
``IR_BEN_R.csv``, ``T_MCO23B.csv``, ``ki_cci_r_2023.sas7bdat``, ``IR_PHA_R.parquet``. For each file:

1. the table is read from the file name (case ignored; a trailing ``_YYYY`` is a year, ``T_MCOaaX`` names the PMSI
   table X of year aa) and must be a landing source of the contract (``contracts/sources.py``);
2. ``--map OLD=NEW`` renames delivered columns; a source with a person key takes it from whichever one pseudonym
   column of ``PSEUDONYMS`` the file carries (NUM_ENQ, BEN_NIR_PSA, NIR_ANO_17, BEN_NIR_ANO);
3. every column of the contract must be present (others are ignored); values convert to the contract type, dates
   by the source's delivered format (``Source.delivered_dates``), never by guessing from the data; the first bad
   value stops the import with the file, line, column and value;
4. a per-year table (``Source.year_column``: the PMSI) keeps the year of its file's name in its year column
   (``PMSI_ANN``), and a line whose ``SOR_ANN`` is another year stops the import;
5. CSV is read as UTF-8 unless ``--encoding`` names another (``cp1252``: Windows-1252 / Latin-1, which SAS-based
   environments often export); a byte the encoding cannot read stops the import with the file and line;
6. the file streams in batches (pyarrow's CSV streaming reader, Parquet row groups, pandas ``read_sas`` chunks),
   written as typed Parquet; a header-only file lands as an empty table, a file named ``.sas7bdat`` that is no
   SAS table is refused by name.

Everything is written under a hidden folder of the landing (``.import-<date>-<id>``) that no reader lists; only
when every file has converted is each ``<source>/extraction=<date>`` folder moved into place (one rename each, on
the same file system). An extraction folder that already exists is never touched: the import refuses before
writing anything. A failure removes the hidden folder and leaves the landing as it was.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from oncopipe.contracts.sources import PSEUDONYMS, SOURCES, YEAR_CHECKED, Column, Source
from oncopipe.landing.layout import extraction_dir

FORMATS = {"csv": (".csv",), "parquet": (".parquet",), "sas": (".sas7bdat",)}
BATCH_BYTES = 16 << 20
"""CSV block size read at a time (pyarrow streaming reader). 16 MB: as fast as 64 MB and a third less peak memory
(measured at 10 M lines: 406 s vs 405 s per 100 M lines, 878 MB vs 1,231 MB peak RSS)."""
SAS_CHUNK_ROWS = 500_000
_ARROW = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32()}
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_PMSI = re.compile(r"^T_MCO(\d{2})([ABCD])$")
_YEAR_SUFFIX = re.compile(r"^(.*?)_(\d{4}|\d{2})$")


class ExtractImportError(ValueError):
    """A delivered file does not meet the landing contract; the message names file, line, column and value."""


@dataclass
class ImportReport:
    """What an import landed: per source the files and lines, and the files it skipped (not data)."""

    extraction_date: str
    files: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def table_of(path: Path) -> tuple[Source, int | None]:
    """The landing source a delivered file holds, and its year when the name carries one.

    Raises:
        ExtractImportError: the name is no table of the contract.
    """
    stem = path.name[: -len("".join(path.suffixes))] if path.suffixes else path.name
    name = stem.upper()
    year = None
    if (m := _PMSI.match(name)) is not None:
        year, name = 2000 + int(m.group(1)), f"T_MCOAA{m.group(2)}"
    elif (m := _YEAR_SUFFIX.match(name)) is not None and not _table_named(name):
        name, digits = m.group(1), m.group(2)
        year = int(digits) if len(digits) == 4 else 2000 + int(digits)
        if (p := _PMSI.match(name)) is not None:
            name = f"T_MCOAA{p.group(2)}"
    src = _table_named(name)
    if src is None:
        known = ", ".join(sorted(s.snds_table if _is_snds(s) else s.name.upper() for s in SOURCES))
        raise ExtractImportError(f"{path.name}: no table of the landing contract is named {stem!r} "
                                 f"(known: {known}; PMSI tables per year as T_MCOaaB, e.g. T_MCO23B)")
    return src, year


def delivered_name(src: Source, year: int | None = None) -> str:
    """The file stem the insurer gives the table ``src`` (of ``year`` for a per-year table): the inverse of
    :func:`table_of`. ``IR_BEN_R``, ``T_MCO23B`` (T_MCOaaB of 2023), ``registry_cases`` (not an SNDS table).

    Raises:
        ExtractImportError: a per-year table has no year.
    """
    if src.year_column is not None:
        if year is None or "aa" not in src.snds_table:
            raise ExtractImportError(f"{src.name}: {src.snds_table} is delivered per year; give the year")
        return src.snds_table.replace("aa", f"{year % 100:02d}")
    return src.snds_table if _is_snds(src) else src.name


def _is_snds(src: Source) -> bool:
    return re.fullmatch(r"[A-Z][A-Za-z_]+", src.snds_table) is not None


def _table_named(name: str) -> Source | None:
    for src in SOURCES:
        if (src.snds_table.upper() == name and _is_snds(src)) or src.name.upper() == name:
            return src
    return None


def _renames(mapping: dict[str, str], names: list[str], src: Source, path: Path,
             named_year: int | None) -> dict[str, str]:
    """Delivered column -> contract column, for the columns the contract reads (but the year column when the
    file's name gives the year: the name wins)."""
    renamed = {n: mapping.get(n, n) for n in names}
    if named_year is not None:
        renamed = {n: new for n, new in renamed.items() if new != src.year_column}
    if src.person is not None and src.person not in renamed.values():
        found = [n for n, new in renamed.items() if new in PSEUDONYMS]
        if len(found) > 1:
            raise ExtractImportError(f"{path.name}: several pseudonym columns ({', '.join(found)}); say which one "
                                     f"is the person with --map {found[0]}={src.person}")
        if found:
            renamed[found[0]] = src.person
    missing = [c.name for c in src.columns if c.name not in renamed.values()
               and not (named_year is not None and c.name == src.year_column)]
    if missing:
        hint = (f"; name the file for its year (e.g. T_MCO23B.csv) to give {src.year_column}"
                if src.year_column in missing else "")
        raise ExtractImportError(f"{path.name}: column(s) {', '.join(missing)} of {src.snds_table} missing "
                                 f"(the file has {', '.join(names)}); rename a delivered column with --map OLD=NEW"
                                 f"{hint}")
    wanted = set(src.column_names)
    return {old: new for old, new in renamed.items() if new in wanted}


def _bad_value(values: pa.Array, ok: pa.Array) -> int:
    """Index of the first value that is not null and not ``ok``."""
    bad = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(ok, False)))
    return pc.index(bad, True).as_py()


def _convert(values: pa.Array, col: Column, date_format: str, where: tuple[Path, int]) -> pa.Array:
    """``values`` (text, or already typed) as the contract type of ``col``; ``where`` is (file, first line)."""
    path, first_line = where
    target = _ARROW[col.type]
    if values.type == target:
        return values
    if pa.types.is_timestamp(values.type) and col.type == "date":
        return pc.cast(values, pa.date32())
    if col.type == "string":
        if pa.types.is_floating(values.type):
            # SAS stores every number as a double: a code read as 30.0 is the text "30".
            values = pc.cast(values, pa.int64())
        return pc.cast(values, pa.string())
    if pa.types.is_integer(values.type) and col.type == "float":
        return pc.cast(values, target)
    if pa.types.is_floating(values.type) and col.type == "int":
        whole = pc.equal(pc.floor(values), values)
        if (i := _bad_value(values, whole)) >= 0:
            raise _error(path, first_line + i, col, values[i].as_py(), "a whole number")
        return pc.cast(values, target)
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    if col.type == "date":
        parsed = pc.cast(pc.strptime(text, format=date_format, unit="s", error_is_null=True), pa.date32())
        if (i := _bad_value(text, _as_delivered(text, parsed, date_format))) >= 0:
            raise _error(path, first_line + i, col, text[i].as_py(), f"a date {_shown(date_format)}")
        return parsed
    pattern = _INT if col.type == "int" else _FLOAT
    if (i := _bad_value(text, pc.match_substring_regex(text, pattern.pattern))) >= 0:
        raise _error(path, first_line + i, col, text[i].as_py(), "an integer" if col.type == "int" else
                     "a decimal number with a point")
    return pc.cast(text, target)


_WIDTHS = {"%d": 2, "%m": 2, "%Y": 4, "%y": 2}


def _as_delivered(text: pa.Array, parsed: pa.Array, fmt: str) -> pa.Array:
    """Whether each parsed date is the one written: strptime rolls an impossible day over (31/02 -> 03/03).

    For a fixed-width format (DD/MM/YYYY, DDMMYYYY, YYYY-MM-DD) the text must have the format's width and its day
    digits must be the parsed day (strftime back and compare is 7 times slower); any other format prints back.
    """
    offset, width, day_at = 0, 0, None
    i = 0
    while i < len(fmt):
        token = fmt[i:i + 2] if fmt[i] == "%" else fmt[i]
        if token.startswith("%") and token not in _WIDTHS:
            return pc.equal(pc.strftime(parsed, format=fmt), text)
        if token == "%d":
            day_at = offset
        offset += _WIDTHS.get(token, 1)
        width = offset
        i += len(token)
    if day_at is None:
        return pc.is_valid(parsed)
    digits = pc.utf8_slice_codeunits(text, day_at, day_at + 2)
    digits = pc.if_else(pc.match_substring_regex(digits, "^[0-9]{2}$"), digits, "0")
    day = pc.cast(digits, pa.int64())
    return pc.and_(pc.equal(pc.utf8_length(text), width), pc.equal(pc.day(parsed), day))


def _shown(fmt: str) -> str:
    return fmt.replace("%d", "DD").replace("%m", "MM").replace("%Y", "YYYY")


def _error(path: Path, line: int, col: Column, value: object, expected: str) -> ExtractImportError:
    return ExtractImportError(f"{path.name}, line {line}, column {col.name}: {value!r} is not {expected} "
                              f"(landing contract, {col.type})")


class _Delivered:
    """One delivered file opened for streaming: its column names (known from the header or the file's schema
    before any line is read, so a header-only file lands as an empty table) and its batches."""

    def __init__(self, names: list[str], batches: Iterator[tuple[pa.RecordBatch, int]]) -> None:
        self.names = names
        self.batches = batches


def _open_csv(path: Path, encoding: str) -> _Delivered:
    """Batches of text columns and the file line of their first row (line 1 is the header), read as ``encoding``."""
    header = _all_text(path, encoding)
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=BATCH_BYTES, encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=";"),
        convert_options=pacsv.ConvertOptions(column_types=header, null_values=[""], strings_can_be_null=True))

    def batches() -> Iterator[tuple[pa.RecordBatch, int]]:
        line = 2
        for batch in reader:
            yield batch, line
            line += batch.num_rows

    return _Delivered(reader.schema.names, batches())


def _all_text(path: Path, encoding: str) -> dict[str, pa.DataType]:
    """Every column of the header as text: types come from the contract, never from pyarrow's inference (which
    reads the FINESS 010000024 or the date 09122023 as a number and drops the leading zero)."""
    with path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as fh:
        header = next(csv.reader(fh, delimiter=";"), [])
    return {name: pa.string() for name in header}


def _open_parquet(path: Path, encoding: str) -> _Delivered:
    """Row groups as batches (``encoding`` is for text files: Parquet strings are UTF-8)."""
    file = pq.ParquetFile(path)

    def batches() -> Iterator[tuple[pa.RecordBatch, int]]:
        line = 1
        for batch in file.iter_batches(batch_size=1_000_000):
            yield batch, line
            line += batch.num_rows

    return _Delivered(file.schema_arrow.names, batches())


def _open_sas(path: Path, encoding: str) -> _Delivered:
    """Chunks of ``SAS_CHUNK_ROWS`` lines (``encoding`` is for text files: a SAS table names its own encoding)."""
    import pandas as pd

    try:
        reader = pd.read_sas(path, format="sas7bdat", chunksize=SAS_CHUNK_ROWS, encoding="infer")
    except ValueError as exc:  # pandas' sas7bdat reader checks the file's magic number first
        raise ExtractImportError(f"{path.name}: not a SAS table although named .sas7bdat ({exc})") from exc
    names = [n if isinstance(n, str) else n.decode("latin-1") for n in reader.column_names]

    def batches() -> Iterator[tuple[pa.RecordBatch, int]]:
        line = 1
        with reader:
            for frame in reader:
                batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
                yield batch, line
                line += batch.num_rows

    return _Delivered(names, batches())


_READERS = {".csv": _open_csv, ".parquet": _open_parquet, ".sas7bdat": _open_sas}
"""Suffix -> reader(path, encoding) of a delivered file."""


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """(line, byte) of the first byte of ``path`` that ``encoding`` cannot read, or None. Line by line, streamed (the
    error path, for a file of any size); the encodings of a delivery are ASCII-compatible, so no character of a line
    holds its newline byte."""
    with path.open("rb") as fh:
        for line, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                return line, raw[exc.start]
    return None


def _land_file(path: Path, src: Source, year: int | None, mapping: dict[str, str], out: Path,
               encoding: str) -> int:
    """Convert one delivered file into the Parquet part ``out``; returns its lines.

    ``year`` is the year the file's name gives (T_MCO23B: 2023), if any: a per-year source's year column is filled
    from it (``Source.year_column``) and the file's ``YEAR_CHECKED`` column must agree with it.
    """
    if path.stat().st_size == 0:
        raise ExtractImportError(f"{path.name}: empty file (not even a header line)")
    schema = pa.schema([pa.field(c.name, _ARROW[c.type]) for c in src.columns])
    named_year = year if src.year_column is not None else None
    rows = 0
    try:
        delivered = _READERS[path.suffix.lower()](path, encoding)
        renames = _renames(mapping, delivered.names, src, path, named_year)
        by_target = {new: old for old, new in renames.items()}
        checked = next((n for n in delivered.names if mapping.get(n, n) == YEAR_CHECKED), None)
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            writer.write_table(schema.empty_table())  # a header-only file still lands, as an empty part
            for batch, first_line in delivered.batches:
                if named_year is not None and checked is not None:
                    _check_year(batch.column(checked), named_year, path, first_line)
                arrays = [pa.array(np.full(batch.num_rows, named_year), pa.int64())
                          if named_year is not None and c.name == src.year_column
                          else _convert(batch.column(by_target[c.name]), c, src.delivered_dates, (path, first_line))
                          for c in src.columns]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                rows += batch.num_rows
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        bad = _first_undecodable(path, encoding) if path.suffix.lower() == ".csv" else None
        if bad is not None:
            line, byte = bad
            hint = ("; if the delivery is Windows-1252 / Latin-1 (as SAS-based environments export), import it with "
                    "--encoding cp1252") if encoding == "utf-8" else ""
            raise ExtractImportError(f"{path.name}, line {line}: byte 0x{byte:02X} is not {encoding} text{hint}") \
                from exc
        raise ExtractImportError(f"{path.name}: unreadable as {path.suffix.lstrip('.')}: {exc}") from exc
    return rows


def _check_year(values: pa.Array, year: int, path: Path, first_line: int) -> None:
    """Refuse the file when a filled ``YEAR_CHECKED`` value is not the year its name gives."""
    years = _convert(values, Column(YEAR_CHECKED, "int", "year of exit"), "", (path, first_line))
    if (i := _bad_value(years, pc.equal(years, year))) >= 0:
        raise ExtractImportError(f"{path.name}, line {first_line + i}, column {YEAR_CHECKED}: "
                                 f"{values[i].as_py()!r} is not {year}, the year of the file's name: a PMSI table "
                                 "holds the stays that ended in its year")


def import_extract(src_dir: Path, landing: Path, extraction_date: str, *, fmt: str | None = None,
                   mapping: dict[str, str] | None = None, encoding: str = "utf-8") -> ImportReport:
    """Land the delivered extract in ``src_dir`` as extraction ``extraction_date`` of ``landing``.

    Args:
        src_dir: the delivered folder (files named by table, see the module docstring).
        landing: the landing folder.
        extraction_date: the extraction date, ``YYYY-MM-DD``.
        fmt: take only the files of this format (``csv``, ``parquet``, ``sas``); default: every data file.
        mapping: delivered column -> contract column renames (``--map OLD=NEW``).
        encoding: the text encoding of the CSV files (``--encoding``; a Python codec name, e.g. ``cp1252``).

    Returns:
        An :class:`ImportReport`.

    Raises:
        ExtractImportError: a file breaks the contract, or the extraction is already landed; nothing is changed.
    """
    try:
        dt.date.fromisoformat(extraction_date)
    except ValueError:
        raise ExtractImportError(f"extraction date {extraction_date!r} is not YYYY-MM-DD") from None
    try:
        encoding = codecs.lookup(encoding).name  # one spelling (utf8, UTF-8 -> utf-8) for the readers' checks
    except LookupError:
        raise ExtractImportError(f"unknown encoding {encoding!r} (a Python codec name: utf-8, cp1252, latin-1)") \
            from None
    if fmt is not None and fmt not in FORMATS:
        raise ExtractImportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    src_dir, landing = Path(src_dir), Path(landing)
    if not src_dir.is_dir():
        raise ExtractImportError(f"{src_dir}: no such folder")
    suffixes = FORMATS[fmt] if fmt else tuple(s for v in FORMATS.values() for s in v)
    report = ImportReport(extraction_date)
    plan: list[tuple[Path, Source, int | None]] = []
    for path in sorted(p for p in src_dir.iterdir() if p.is_file()):
        if path.suffix.lower() not in suffixes:
            report.skipped.append(path.name)
            continue
        plan.append((path, *table_of(path)))
    if not plan:
        raise ExtractImportError(f"{src_dir}: no {fmt or 'data'} file to import")
    targets = sorted({s.name for _, s, _ in plan})
    landed = [extraction_dir(landing, name, extraction_date) for name in targets
              if extraction_dir(landing, name, extraction_date).exists()]
    if landed:
        names = ", ".join(p.parent.name for p in landed)
        raise ExtractImportError(f"extraction {extraction_date} already landed for {names} ({landed[0]}); "
                                 "nothing was imported")
    landing.mkdir(parents=True, exist_ok=True)
    staging = landing / f".import-{extraction_date}-{uuid.uuid4().hex[:8]}"
    moved: list[Path] = []
    try:
        parts: dict[str, int] = {}
        for path, src, year in plan:
            folder = extraction_dir(staging, src.name, extraction_date)
            folder.mkdir(parents=True, exist_ok=True)
            part = parts.get(src.name, 0)
            parts[src.name] = part + 1
            rows = _land_file(path, src, year, mapping or {}, folder / f"part-{part:05d}.parquet", encoding)
            report.files.setdefault(src.name, []).append(path.name)
            report.rows[src.name] = report.rows.get(src.name, 0) + rows
        for name in targets:
            final = extraction_dir(landing, name, extraction_date)
            final.parent.mkdir(parents=True, exist_ok=True)
            extraction_dir(staging, name, extraction_date).rename(final)
            moved.append(final)
    except BaseException:
        for final in moved:
            shutil.rmtree(final, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``["OLD=NEW", ...]`` as a dict; raises :class:`ExtractImportError` on a malformed pair."""
    out = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ExtractImportError(f"--map {pair!r}: expected OLD=NEW (a delivered column and a contract column)")
        out[old.strip()] = new.strip()
    return out
