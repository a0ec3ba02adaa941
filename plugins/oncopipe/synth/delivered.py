"""Write a landed extraction as the insurer delivers it: the inverse of ``oncopipe import``.

``oncopipe generate --delivered DIR`` writes the extraction it generated a second time, in the shape
:mod:`oncopipe.landing.importer` reads, so the synthetic path exercises the real import. Everything comes from the
landing contract (``contracts/sources.py``) and the importer's own naming, never from a list of tables here:

- one file per source, named by
  :func:`oncopipe.landing.importer.delivered_name` (``IR_BEN_R.csv``, ``registry_cases.csv``); a per-year source
  (``Source.year_column``: the PMSI) gives one file per year of that column, without the column
  (``T_MCO22B.csv``, ``T_MCO23B.csv``: the year is in the name);
- the person key under the delivered pseudonym (``NUM_ENQ`` by default, any of ``PSEUDONYMS``);
- CSV: ``;``-separated, UTF-8, no quoting, dates in the source's delivered format (``Source.delivered_dates``:
  DD/MM/YYYY, DDMMYYYY in the PMSI, ISO in the registry), decimal point, empty field for null; Parquet: typed
  columns (the importer reads them as they are);
- a source with no line in the extraction is a header-only file (a per-year one under the extraction's year).

Parts are streamed batch by batch (a landed ER_PHA_F can be larger than memory).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from oncopipe.contracts.sources import PSEUDONYMS, SOURCES, Source
from oncopipe.landing.importer import delivered_name
from oncopipe.landing.layout import extraction_dir, part_files

DELIVERED_FORMATS: tuple[str, ...] = ("csv", "parquet")
_ARROW = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32()}


@dataclass
class DeliveredReport:
    """What was written: per file its source and lines."""

    out: Path
    files: dict[str, str] = field(default_factory=dict)
    """file name -> landing source."""
    rows: dict[str, int] = field(default_factory=dict)
    """file name -> lines (header excluded)."""


def write_delivered(landing: Path, extraction_date: str, out: Path, *, fmt: str = "csv",
                    pseudonym: str = "NUM_ENQ") -> DeliveredReport:
    """Write extraction ``extraction_date`` of ``landing`` into ``out`` as a delivered extract.

    Args:
        landing: the landing folder holding the extraction.
        extraction_date: the extraction, ``YYYY-MM-DD``.
        out: the delivery folder (created; a file of the same name is replaced).
        fmt: ``csv`` (the insurer's text files) or ``parquet``.
        pseudonym: the delivered name of every source's person column (``PSEUDONYMS``).

    Returns:
        A :class:`DeliveredReport`.

    Raises:
        ValueError: an unknown format or pseudonym, or a source not landed at that date.
    """
    if fmt not in DELIVERED_FORMATS:
        raise ValueError(f"unknown delivered format {fmt!r}; expected one of {', '.join(DELIVERED_FORMATS)}")
    if pseudonym not in PSEUDONYMS:
        raise ValueError(f"unknown pseudonym column {pseudonym!r}; expected one of {', '.join(PSEUDONYMS)}")
    year = dt.date.fromisoformat(extraction_date).year
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = DeliveredReport(out)
    for src in SOURCES:
        parts = part_files(extraction_dir(Path(landing), src.name, extraction_date))
        if not parts:
            raise ValueError(f"{src.name}: no extraction {extraction_date} in {landing} to deliver")
        with _Files(out, src, fmt, pseudonym, report) as files:
            for batch in _landed_batches(parts, src):
                if src.year_column is None:
                    files.write(None, batch)
                    continue
                years = batch.column(src.year_column)
                for value in pc.unique(years).to_pylist():
                    if value is None:
                        raise ValueError(f"{src.name}: a line with no {src.year_column} cannot be delivered "
                                         "(its year names its file)")
                    files.write(value, batch.filter(pc.equal(years, value)))
            if not files.written:
                files.write(year if src.year_column else None, _empty(src))
    return report


def _landed_batches(parts: list[Path], src: Source) -> Iterator[pa.RecordBatch]:
    """The landed lines of ``src`` in the contract's types, part after part (landing Parquet or ISO CSV)."""
    schema = pa.schema([pa.field(c.name, _ARROW[c.type]) for c in src.columns])
    for path in parts:
        if path.suffix == ".parquet":
            batches: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(columns=schema.names)
        else:
            batches = iter(pacsv.open_csv(
                path, parse_options=pacsv.ParseOptions(delimiter=";"),
                convert_options=pacsv.ConvertOptions(column_types=schema, include_columns=schema.names,
                                                     null_values=[""], strings_can_be_null=True)))
        for batch in batches:
            yield pa.RecordBatch.from_arrays([batch.column(n).cast(f.type) for n, f in zip(
                schema.names, schema, strict=True)], schema=schema)


def _empty(src: Source) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=pa.schema([pa.field(c.name, _ARROW[c.type]) for c in src.columns]))


class _Files:
    """The open delivered files of one source, one per year for a per-year source."""

    def __init__(self, out: Path, src: Source, fmt: str, pseudonym: str, report: DeliveredReport) -> None:
        self.out, self.src, self.fmt, self.pseudonym, self.report = out, src, fmt, pseudonym, report
        self.writers: dict[int | None, pacsv.CSVWriter | pq.ParquetWriter] = {}
        self.written = False

    def __enter__(self) -> _Files:
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self.writers.values():
            writer.close()

    def write(self, year: int | None, batch: pa.RecordBatch) -> None:
        """Append ``batch`` (contract columns and types) to the file of ``year``."""
        delivered = self._delivered(batch)
        name = f"{delivered_name(self.src, year)}.{self.fmt}"
        if year not in self.writers:
            path = self.out / name
            if self.fmt == "csv":
                self.writers[year] = pacsv.CSVWriter(path, delivered.schema, write_options=pacsv.WriteOptions(
                    delimiter=";", quoting_style="none", quoting_header="none"))
            else:
                self.writers[year] = pq.ParquetWriter(path, delivered.schema, compression="zstd")
            self.report.files[name] = self.src.name
            self.report.rows[name] = 0
        try:
            self.writers[year].write_batch(delivered)
        except pa.ArrowInvalid as exc:  # quoting_style none: a value holding ';', '"' or a line break
            raise ValueError(f"{self.src.name}: a value cannot be written unquoted in {name}: {exc}") from exc
        self.report.rows[name] += batch.num_rows
        self.written = True

    def _delivered(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The delivered columns: no year column, the person under the pseudonym, CSV values as the insurer's
        text (dates in the delivered format)."""
        names, arrays = [], []
        for col in self.src.columns:
            if col.name == self.src.year_column:
                continue
            values = batch.column(col.name)
            if self.fmt == "csv":
                values = (pc.strftime(values, format=self.src.delivered_dates) if col.type == "date"
                          else pc.cast(values, pa.string()))
            names.append(self.pseudonym if col.name == self.src.person else col.name)
            arrays.append(values)
        return pa.RecordBatch.from_arrays(arrays, names=names)
