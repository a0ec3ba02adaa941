"""Delivery profiles: what the raw gate remembers of each accepted extraction of a source.

A profile is small (a few kB): the number of lines, an order-free *fingerprint* of the content, the lines per
flux month (delta sources) and the value counts of the coded columns (``Column.coded`` in the contract). The
gate compares the extraction it checks with these profiles:
- a fingerprint equal to that of an accepted extraction is a duplicated (same delivery landed again under a
  later date) or stale (an old delivery re-sent as new) delivery, and the message names the extraction it
  repeats;
- the coded columns' distributions are compared with the previous accepted extraction (PSI, see
  :func:`psi`), so two swapped or shifted columns show even when each stays within its value set;
- the lines per flux month of the previous extraction are the reference of the volume checks.

Profiles live at ``<quality>/deliveries/<source>/extraction=<date>.json``, written when the raw gate accepts
an extraction. The profile of an accepted extraction landed before this store existed (or whose files changed
since, as when a corrected delivery replaces a refused one under the same date) is computed from its files on
first use: each profile records the names, sizes and modification times of the files it was computed from.

Fingerprint: per line, a 64-bit hash of every contract column read as canonical text (so a Parquet and a CSV
delivery of the same lines agree); the fingerprint is the line count with the sum of the line hashes modulo
2**64. A sum, not a xor, so that a line present twice does not cancel out; order-free, so the same lines split
differently across part files give the same fingerprint. The hash is the engine's (DuckDB's ``hash``, Spark's
``xxhash64``: :mod:`oncopipe.quality.spark_sql`), so the same lines have a different fingerprint on each engine: a
profile records its ``line_hash``, and an accepted profile made by the other engine is recomputed before it is
compared (the line counts, flux months and value counts, being counts, are equal on both engines).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oncopipe.contracts.sources import Source
from oncopipe.landing.layout import extraction_dates, extraction_dir, part_files, relation_sql
from oncopipe.quality.spark_sql import SQL_ERRORS, GateConnection, line_hash

TOP_VALUES = 30
"""Coded values kept per column (the others are pooled as one ``other`` bin)."""
PSI_FLOOR = 1e-4
"""Share given to a value absent from one side, so a new or vanished value counts without dividing by zero."""


@dataclass
class Profile:
    """What the gate keeps of one extraction of one source."""

    source: str
    extraction: str
    lines: int
    fingerprint: str
    flux_months: dict[str, int] = field(default_factory=dict)  # YYYY-MM -> lines (delta sources with a flux)
    values: dict[str, dict[str, int]] = field(default_factory=dict)  # coded column -> value -> lines
    files: list[list[Any]] = field(default_factory=list)  # [name, size, mtime_ns] it was computed from
    line_hash: str = "duckdb"  # the engine's line hash (spark_sql.line_hash); profiles before it were DuckDB's

    @property
    def empty(self) -> bool:
        return self.lines == 0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def file_stamps(paths: list[Path]) -> list[list[Any]]:
    """``[name, size, mtime_ns]`` of each file: a profile is stale when these change."""
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(paths)]


_CANONICAL = {"int": "bigint", "float": "double", "date": "date"}


def _text(column: str, type_: str = "string") -> str:
    """The column as canonical text: a CSV ``2`` and a Parquet ``2.0`` double, or a midnight timestamp and an
    ISO date, read the same."""
    text = f"cast({_q(column)} as varchar)"
    if type_ in _CANONICAL:
        text = f"coalesce(cast(try_cast({_q(column)} as {_CANONICAL[type_]}) as varchar), {text})"
    return text


def compute_profile(con: GateConnection, paths: list[Path], src: Source, extraction: str,
                    flux_column: str | None) -> Profile:
    """Profile the lines of ``paths`` (one streaming pass for the fingerprint, one group-by per coded column)."""
    rel = relation_sql(paths)
    hashed = "hash(" + ", ".join(_text(c.name, c.type) for c in src.columns) + ")"
    lines, total = con.execute(f"select count(*), coalesce(sum({hashed}::hugeint), 0) from {rel}").fetchone()
    # Modulo 2**64 here: DuckDB's hash is unsigned, Spark's xxhash64 signed (Python's % is never negative).
    profile = Profile(src.name, extraction, int(lines), f"{int(lines)}:{int(total) % 2**64:016x}",
                      files=file_stamps(paths), line_hash=line_hash(con))
    if flux_column:
        months = con.execute(f"""select strftime(date_trunc('month', try_cast({_q(flux_column)} as date)), '%Y-%m'),
                                        count(*) from {rel} group by 1 order by 1""").fetchall()
        profile.flux_months = {m: int(n) for m, n in months if m is not None}
    for column in (c for c in src.columns if c.coded):
        col = column.name
        counts = con.execute(f"""select {_text(col, column.type)}, count(*) from {rel} where {_q(col)} is not null
                                 group by 1 order by 2 desc, 1 limit {TOP_VALUES + 1}""").fetchall()
        kept = dict(counts[:TOP_VALUES])
        if len(counts) > TOP_VALUES:
            n_kept = sum(kept.values())
            n_all = con.execute(f"select count({_q(col)}) from {rel}").fetchone()[0]
            kept["other"] = int(n_all) - n_kept
        profile.values[col] = {str(k): int(v) for k, v in kept.items()}
    return profile


def _path(quality: Path, source: str, extraction: str) -> Path:
    return quality / "deliveries" / source / f"extraction={extraction}.json"


def save(quality: Path, profile: Profile) -> Path:
    """Write ``profile`` as the accepted profile of its extraction (atomically: temp file then rename)."""
    path = _path(quality, profile.source, profile.extraction)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(profile), indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def _load(quality: Path, source: str, extraction: str) -> Profile | None:
    path = _path(quality, source, extraction)
    if not path.exists():
        return None
    return Profile(**json.loads(path.read_text()))


def accepted_profiles(con: GateConnection, landing: Path, quality: Path, src: Source,
                      extraction: str, flux_column: str | None) -> dict[str, Profile]:
    """Profiles of the accepted extractions of ``src`` other than ``extraction``, by date.

    Accepted: still in the landing (the gate moves a refused one to the quarantine) and either earlier than
    ``extraction`` or with a profile the gate saved when it accepted it (a later extraction still pending has
    none, and is not compared).
    """
    out: dict[str, Profile] = {}
    for date in extraction_dates(landing, src.name):
        if date == extraction:
            continue
        paths = part_files(extraction_dir(landing, src.name, date))
        if not paths:
            continue
        saved = _load(quality, src.name, date)
        unchanged = saved is not None and saved.files == file_stamps(paths)
        if unchanged and saved.line_hash == line_hash(con):
            out[date] = saved
        elif date < extraction or unchanged:
            # Also an accepted profile of the same files whose fingerprint another engine's hash made: it is
            # recomputed with this engine's, so fingerprints are only ever compared within one hash function.
            try:
                profile = compute_profile(con, paths, src, date, flux_column)
            except (*SQL_ERRORS, ValueError):
                continue  # unreadable: it was refused or repaired by hand; nothing to compare with
            save(quality, profile)
            out[date] = profile
    return out


def psi(current: dict[str, int], previous: dict[str, int]) -> tuple[float, list[dict[str, Any]]]:
    """Population stability index of a coded column, and the values that moved most.

    ``PSI = sum over values of (p - q) * ln(p / q)`` with ``p`` the share of a value now and ``q`` in the previous
    extraction (a value absent from one side gets :data:`PSI_FLOOR`). Why PSI rather than a chi-square or KS
    test: with millions of lines every test rejects tiny, harmless changes (a p-value measures the sample size
    as much as the shift), while PSI measures the size of the shift whatever the volume; KS suits continuous
    columns, and the compared columns are codes. Conventional reading: below 0.1 stable, 0.1-0.25 moderate,
    above 0.25 a real shift.

    Returns:
        ``(psi, moved)``: ``moved`` lists the 5 values contributing most, with both shares.
    """
    n_now, n_before = sum(current.values()), sum(previous.values())
    if not n_now or not n_before:
        return 0.0, []
    terms = []
    for value in sorted(set(current) | set(previous)):
        p = max(current.get(value, 0) / n_now, PSI_FLOOR)
        q = max(previous.get(value, 0) / n_before, PSI_FLOOR)
        terms.append(((p - q) * math.log(p / q), value, current.get(value, 0) / n_now,
                      previous.get(value, 0) / n_before))
    terms.sort(key=lambda t: -t[0])
    moved = [{"value": v, "share_now": round(p, 4), "share_previous": round(q, 4)} for _, v, p, q in terms[:5]]
    return float(sum(t[0] for t in terms)), moved
