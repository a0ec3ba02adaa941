"""Published mart versions: stage the candidate, publish it atomically, read it back.

Layout::

    <published>/CURRENT                       the current version id (one line), switched with os.replace
    <published>/<version>/<mart>.parquet      each mart of contracts/marts.py, plus the life-table seed
                                              french_life_tables
    <published>/<version>/version.json        version id, extraction, dbt invocation, gates, row counts, sha256
    <published>/.candidates/<content hash>/   staged candidates (the marts gate checks these files)

The candidate is exported from the warehouse with a read-only DuckDB connection that is closed at once
(DuckDB holds a file lock), each table sorted by its key and written by pyarrow, so identical marts give
identical bytes. The version id is ``<extraction>_<first 12 hex of the content hash>``: publishing the same
extraction with the same content again is a no-op (same id, no new folder). A version folder is written under
a temporary name and renamed; then CURRENT is rewritten through a temporary file and ``os.replace``. A crash at
any point leaves CURRENT and every published version as they were; the temporary folders and files a crash
leaves (``.tmp-*``, ``.candidates/.tmp-*``, ``.CURRENT.tmp-*``) are removed by :func:`remove_temporary`, which
the refresh runs first. Retention (:func:`prune`) never removes CURRENT nor a version an export pins.
Readers (studies, UI) read these Parquet files only, never the warehouse.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from oncopipe.contracts.marts import MARTS, MARTS_BY_NAME
from oncopipe.contracts.settings import DBT_PROJECT_DIR, Settings, get_settings
from oncopipe.quality.marts_gate import GATE_FILE, run_marts_gate
from oncopipe.quality.outcomes import GateReport

LIFE_TABLE = "french_life_tables"
LIFE_TABLE_KEY = ("sex", "age", "year")
PUBLISHED_TABLES: tuple[str, ...] = (*(m.name for m in MARTS), LIFE_TABLE)
CURRENT = "CURRENT"
CANDIDATES = ".candidates"
VERSION_FILE = "version.json"


class PublishError(RuntimeError):
    """The candidate cannot be exported or published (message names the table or file)."""


@dataclass(frozen=True)
class PublishedVersion:
    """One published version, as recorded in its ``version.json``."""

    version: str
    extraction: str
    path: Path
    created_at: str
    content_sha256: str
    dbt_invocation_id: str | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    gates: dict[str, Any] = field(default_factory=dict)
    gx_validations: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> PublishedVersion:
        data = json.loads((folder / VERSION_FILE).read_text(encoding="utf-8"))
        known = {f for f in cls.__dataclass_fields__ if f != "path"}
        return cls(path=folder, **{k: v for k, v in data.items() if k in known})

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return data


@dataclass(frozen=True)
class Candidate:
    """Candidate marts exported from the warehouse into ``path`` (not yet published)."""

    path: Path
    content_sha256: str
    row_counts: dict[str, int]
    files: dict[str, str]

    @property
    def gated(self) -> dict[str, Any] | None:
        """The passing marts-gate summary recorded for this exact content, if any."""
        gate = self.path / GATE_FILE
        return json.loads(gate.read_text(encoding="utf-8")) if gate.exists() else None

    def frame(self, table: str) -> pd.DataFrame:
        return pq.read_table(self.path / f"{table}.parquet").to_pandas()


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


def _life_table_seed() -> pa.Table:
    seed = DBT_PROJECT_DIR / "seeds" / f"{LIFE_TABLE}.csv"
    if not seed.exists():
        raise PublishError(f"life-table seed {LIFE_TABLE} is neither in the warehouse nor at {seed}")
    import pyarrow.csv as pacsv

    return pacsv.read_csv(seed)


def _read_warehouse(warehouse: Path) -> dict[str, pa.Table]:
    """Every published table from the warehouse, sorted by key; the connection is closed before returning."""
    import duckdb

    if not warehouse.exists():
        raise PublishError(f"warehouse {warehouse} does not exist: run dbt build first")
    tables: dict[str, pa.Table] = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        found = {(s, t) for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        for mart in MARTS:
            if ("marts", mart.name) not in found:
                raise PublishError(f"mart marts.{mart.name} is missing from {warehouse}: run dbt build first")
            order = ", ".join(f'"{k}"' for k in mart.key)
            tables[mart.name] = con.execute(f'select * from marts."{mart.name}" order by {order}').fetch_arrow_table()
        schema = next((s for s, t in sorted(found) if t == LIFE_TABLE), None)
        if schema is not None:
            order = ", ".join(f'"{k}"' for k in LIFE_TABLE_KEY)
            sql = f'select * from "{schema}"."{LIFE_TABLE}" order by {order}'
            tables[LIFE_TABLE] = con.execute(sql).fetch_arrow_table()
    finally:
        con.close()
    if LIFE_TABLE not in tables:
        tables[LIFE_TABLE] = _life_table_seed()
    return tables


def stage_tables(tables: Mapping[str, pa.Table], settings: Settings | None = None) -> Candidate:
    """Write ``tables`` (every name of ``PUBLISHED_TABLES``) as a staged candidate; idempotent by content."""
    settings = _settings(settings)
    missing = [t for t in PUBLISHED_TABLES if t not in tables]
    if missing:
        raise PublishError(f"candidate lacks {', '.join(missing)}")
    root = settings.published / CANDIDATES
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    files, rows = {}, {}
    for name in PUBLISHED_TABLES:
        path = tmp / f"{name}.parquet"
        # Schema metadata (pandas index info, writer details) is not content: drop it so equal data hashes equal.
        _write_parquet(tables[name].replace_schema_metadata(None), path)
        files[path.name] = _sha256(path)
        rows[name] = tables[name].num_rows
    content = hashlib.sha256("".join(f"{n}:{h}\n" for n, h in sorted(files.items())).encode()).hexdigest()
    final = root / content
    if final.exists():
        shutil.rmtree(tmp)
    else:
        os.rename(tmp, final)
    return Candidate(final, content, rows, files)


#: Column types of the life-table seed (dbt_project/seeds/_seeds.yml, column_types).
LIFE_TABLE_TYPES = {"sex": "varchar", "age": "integer", "year": "integer", "qx": "double", "hazard": "double"}


def _read_spark_warehouse(settings: Settings) -> dict[str, pa.Table]:
    """The published tables from the Spark engine's catalog, typed as DuckDB reads them (same Parquet bytes)."""
    from oncopipe.warehouse.spark_engine import read_tables

    wanted = {f"marts.{m.name}": (m.key, {c.name: c.data_type for c in m.columns}) for m in MARTS}
    wanted[f"reference.{LIFE_TABLE}"] = (LIFE_TABLE_KEY, LIFE_TABLE_TYPES)
    try:
        read = read_tables(settings, wanted)
    except KeyError as exc:
        raise PublishError(str(exc.args[0])) from exc
    return {name.split(".", 1)[1]: table for name, table in read.items()}


def stage_candidate(settings: Settings | None = None) -> Candidate:
    """Export the candidate marts and the life table from the warehouse (read-only) into a staged folder.

    The warehouse is the DuckDB file, or the Spark catalog with ONCOPIPE_ENGINE=spark: the staged Parquet is the
    same for equal marts, and the marts gate and publishing then read only these files.
    """
    settings = _settings(settings)
    if settings.engine == "spark":
        return stage_tables(_read_spark_warehouse(settings), settings)
    return stage_tables(_read_warehouse(settings.warehouse), settings)


def _dbt_invocation_id(settings: Settings) -> str | None:
    results = settings.dbt_target_dir / "run_results.json"
    if not results.exists():
        return None
    try:
        return json.loads(results.read_text(encoding="utf-8"))["metadata"]["invocation_id"]
    except (KeyError, ValueError):
        return None


def _read_current(published: Path) -> str | None:
    path = published / CURRENT
    if not path.exists():
        return None
    value = path.read_text(encoding="utf-8").strip()
    return value or None


def _switch_current(published: Path, version: str) -> None:
    tmp = published / f".{CURRENT}.tmp-{uuid.uuid4().hex}"
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, published / CURRENT)
    _fsync_dir(published)


def published_frames(settings: Settings | None = None) -> dict[str, pd.DataFrame] | None:
    """Every mart of the current published version by name (None when nothing is published yet)."""
    settings = _settings(settings)
    current = current_version(settings)
    if current is None:
        return None
    return {m.name: read_mart(m.name, current.version, settings) for m in MARTS}


def gate_candidate(settings: Settings | None = None, candidate: Candidate | None = None,
                   build_docs: bool = True) -> GateReport:
    """Run the marts gate on ``candidate`` (default: stage one from the warehouse now) against CURRENT.

    Raises:
        GateFailed: a critical expectation failed; the candidate has been dropped, nothing published changed.
    """
    settings = _settings(settings)
    candidate = candidate or stage_candidate(settings)
    return run_marts_gate(candidate, published_frames(settings), settings=settings, build_docs=build_docs)


def publish_candidate(candidate: Candidate | None = None, *, extraction_date: str | None = None,
                      settings: Settings | None = None, provenance: Mapping[str, Any] | None = None,
                      dbt_invocation_id: str | None = None, retention: int | None = None) -> PublishedVersion:
    """Publish the candidate marts as a version and make it current, atomically.

    The candidate must have passed the marts gate: if this exact content has no passing gate record, the
    marts gate runs here first (and raises ``GateFailed`` without touching anything published).

    Args:
        candidate: a staged candidate (default: export it from the warehouse now).
        extraction_date: the extraction the marts were built from (default: the last raw gate that passed,
            else the latest extraction in the landing).
        settings: locations (default: environment).
        provenance: extra facts to record in version.json (e.g. ``{"gates": {...}}`` from the DAG).
        dbt_invocation_id: the dbt run that built the marts (default: read from run_results.json).
        retention: how many versions to keep (default: the setting ``published_retention``, 10); CURRENT is
            never removed.

    Returns:
        The published (or already published, identical) version, now current.
    """
    from oncopipe.landing.layout import latest_extraction
    from oncopipe.quality import history

    settings = _settings(settings)
    settings.published.mkdir(parents=True, exist_ok=True)
    candidate = candidate or stage_candidate(settings)
    gate = candidate.gated
    if gate is None:
        gate_candidate(settings, candidate)
        gate = candidate.gated
    extraction = (extraction_date or history.last_passed_extraction(settings.quality)
                  or latest_extraction(settings.landing) or "unknown")
    version_id = f"{extraction}_{candidate.content_sha256[:12]}"
    final = settings.published / version_id
    if not final.exists():
        tmp = settings.published / f".tmp-{version_id}-{uuid.uuid4().hex[:8]}"
        shutil.copytree(candidate.path, tmp, ignore=shutil.ignore_patterns(GATE_FILE))
        provenance = dict(provenance or {})
        version = PublishedVersion(
            version=version_id, extraction=extraction, path=final,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            content_sha256=candidate.content_sha256,
            dbt_invocation_id=dbt_invocation_id or provenance.get("dbt_invocation_id") or _dbt_invocation_id(settings),
            row_counts=dict(candidate.row_counts), files=dict(candidate.files),
            gates={"raw": history.last_run_summary(settings.quality, "raw", extraction), "marts": gate,
                   **dict(provenance.pop("gates", {}) or {})},
            gx_validations=list((gate or {}).get("gx_validations", [])),
            provenance=provenance)
        with (tmp / VERSION_FILE).open("w", encoding="utf-8") as fh:
            json.dump(version.as_json(), fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(settings.published)
    if _read_current(settings.published) != version_id:
        _switch_current(settings.published, version_id)
    shutil.rmtree(candidate.path, ignore_errors=True)
    prune(settings, retention)
    return PublishedVersion.load(final)


def list_versions(settings: Settings | None = None) -> list[PublishedVersion]:
    """Every published version, oldest first (by creation time)."""
    published = _settings(settings).published
    if not published.is_dir():
        return []
    versions = [PublishedVersion.load(p) for p in published.iterdir()
                if p.is_dir() and not p.name.startswith(".") and (p / VERSION_FILE).exists()]
    return sorted(versions, key=lambda v: (v.created_at, v.version))


def current_version(settings: Settings | None = None) -> PublishedVersion | None:
    """The version CURRENT points to, or None when nothing is published."""
    published = _settings(settings).published
    version = _read_current(published)
    if version is None:
        return None
    folder = published / version
    if not (folder / VERSION_FILE).exists():
        raise PublishError(f"{published / CURRENT} names version {version!r} but {folder} has no {VERSION_FILE}")
    return PublishedVersion.load(folder)


def read_mart(name: str, version: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """Read a published table (a mart of contracts/marts.py or ``french_life_tables``) of ``version`` (default CURRENT).

    Raises:
        KeyError: ``name`` is not a published table.
        LookupError: nothing is published, or ``version`` does not exist.
    """
    if name not in MARTS_BY_NAME and name != LIFE_TABLE:
        raise KeyError(f"unknown published table {name!r}; known: {', '.join(PUBLISHED_TABLES)}")
    settings = _settings(settings)
    if version is None:
        current = current_version(settings)
        if current is None:
            raise LookupError(f"nothing is published yet in {settings.published}")
        version = current.version
    path = settings.published / version / f"{name}.parquet"
    if not path.exists():
        raise LookupError(f"published version {version!r} has no {path.name} (looked in {path.parent})")
    return pq.read_table(path).to_pandas()


def remove_temporary(settings: Settings | None = None) -> list[Path]:
    """Remove what an interrupted stage or publish left: ``.tmp-*`` folders and CURRENT's temporary files.

    Only one refresh runs at a time (the refresh DAG's ``max_active_runs=1``), and it calls this before it
    writes anything, so no temporary file removed here can belong to a live writer.

    Returns:
        The paths removed.
    """
    published = _settings(settings).published
    removed: list[Path] = []
    for folder, pattern in ((published, ".tmp-*"), (published / CANDIDATES, ".tmp-*"),
                            (published, f".{CURRENT}.tmp-*")):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def pinned_versions(settings: Settings | None = None) -> set[str]:
    """Mart versions named by an existing export (``mart_version`` of ``<exports>/<study>/<run>/manifest.json``).

    Read from the files, not through :mod:`oncopipe.delivery` (a higher layer): the manifest field is the
    contract between the two.
    """
    exports = _settings(settings).exports
    pinned: set[str] = set()
    if not exports.is_dir():
        return pinned
    for manifest in exports.glob("*/*/manifest.json"):
        if manifest.parent.name.startswith(".") or manifest.parent.parent.name.startswith((".", "_")):
            continue
        try:
            version = json.loads(manifest.read_text(encoding="utf-8")).get("mart_version")
        except (OSError, ValueError) as error:
            # An unreadable manifest might pin anything: keeping every version is the safe answer.
            raise PublishError(f"{manifest}: unreadable export manifest ({error}); retention cannot tell "
                               "which versions it pins") from error
        if version:
            pinned.add(str(version))
    return pinned


def prune(settings: Settings | None = None, retention: int | None = None) -> list[str]:
    """Remove the oldest versions beyond ``retention``, never CURRENT nor a version an export pins.

    ``retention`` counts the versions kept besides the pinned ones (CURRENT included); a pinned version is kept
    as long as an export names it (:func:`pinned_versions`), so ``oncopipe exports verify`` can re-read it.
    """
    settings = _settings(settings)
    keep = retention if retention is not None else settings.published_retention
    current = _read_current(settings.published)
    pinned = pinned_versions(settings)
    versions = [v for v in list_versions(settings) if v.version != current and v.version not in pinned]
    removed = []
    for version in versions[: max(len(versions) - max(keep - 1, 0), 0)]:
        shutil.rmtree(version.path)
        removed.append(version.version)
    return removed
