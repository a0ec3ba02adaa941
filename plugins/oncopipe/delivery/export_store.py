"""Researcher exports: ``<exports>/<study_id>/<run>/`` with tables, figures, report, manifest; audit; index.

The study DAG calls :func:`publish_export` with the *raw* analysis result: disclosure control always runs
here, so no code path can write an uncontrolled table. An export folder holds::

    tables/<name>.csv            masked cells empty with <column>__masked = true, missing values empty with
                                 false (numeric columns hold numbers only); numbers rounded as codebook.csv states
    tables/<name>.parquet        masked cells null, plus a boolean <column>__masked column
    codebook.csv                 every column: label, unit, type, role, precision, how masked/missing are written
    figures/<name>.png|.svg      drawn by each ResultFigure.draw from the controlled tables
    report.html                  self-contained (oncopipe.delivery.report)
    disclosure.json              every masked cell / dropped row and its rule (never the hidden value)
    manifest.json                provenance and the sha256 of every other file

Publication is atomic: the folder is built in a hidden sibling (``.tmp-<run>-<random>``) and renamed into
place (an existing folder of the same run is swapped with ``renameat2(RENAME_EXCHANGE)`` on Linux), so a
failure at any step leaves no partial folder and every earlier export untouched. It is idempotent: figures
have fixed metadata and ``svg.hashsalt``, Parquet/CSV/JSON are written deterministically, the report holds
no clock time, and disclosure control of a re-run sees the same history; only ``created_at`` in the
manifest changes.

The run folder is named by a readable run id, ``2026-12-02T1306-<study>`` (the minute of Airflow's logical
date, UTC; ``-2``, ``-3`` ... when two runs share a minute); the manifest maps it to Airflow's run id
(``run_id`` and ``airflow_run_id``), and a re-run of one Airflow run finds and rewrites its folder.

Study metadata (``study`` argument) may be the registry's pydantic ``Study`` or any mapping/object with:

| key                           | meaning                                                          |
|-------------------------------|------------------------------------------------------------------|
| ``id`` (or ``study_id``)      | study id, also the export folder name                            |
| ``title``                     | report title                                                     |
| ``approval.reference`` (or ``approval_reference``) | named by the report, manifest, audit, email |
| ``approval.committee``        | optional                                                         |
| ``principal_investigator``    | optional: a name, or ``{name, email}``                           |
| ``recipients``                | email addresses (strings, or ``{email}`` mappings)               |
| ``export.formats``            | table formats, subset of ``csv``, ``parquet`` (default both)     |
| ``export.figures``            | figure formats, subset of ``png``, ``svg`` (default both)        |
| ``export.report``             | ``html`` (default), ``markdown`` (report.md) or ``none``         |
| ``export.keep_last``          | optional: run folders kept per study (older ones are removed)    |

Provenance (``provenance`` argument) keys, all optional: ``extraction_date``, ``mart_version``,
``dbt_invocation_id``, ``gx_validations`` (list of ``{id, name, success, evaluated, passed}``; GX names
``evaluated_expectations``/``successful_expectations`` are accepted), ``code_lists`` (name -> version or
``{version, source, file, sha256}``; default: every dbt seed, :func:`oncopipe.delivery.provenance.code_lists`),
``row_counts`` (input table -> rows read), ``code_version`` (a commit string or ``{commit, dirty, diff_sha256}``;
overrides the git lookup, :func:`oncopipe.delivery.provenance.code_state`). Other keys are kept under
``provenance_extra`` in the manifest.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import hashlib
import io
import json
import os
import platform
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from oncopipe.contracts.results import ResultFigure, ResultTable, StudyResult
from oncopipe.contracts.settings import PROJECT_ROOT, get_settings
from oncopipe.delivery import codebook
from oncopipe.delivery.audit import EXPORT, REFUSED, AuditLog
from oncopipe.delivery.disclosure import (
    DROPPED_ROW_RULES,
    MASK_MARKER,
    MASK_SUFFIX,
    ControlledResult,
    DisclosureViolation,
    audit_published,
    control,
    disclosure_threshold,
)
from oncopipe.delivery.metadata import (
    ExportError,
    ExportInfo,
    StudyInfo,
)
from oncopipe.delivery.output_check import (
    OutputCheckFailed,
    check_export,
    check_exports_root,
    raise_if_unsafe,
)
from oncopipe.delivery.provenance import ProvenanceError, code_lists, code_state, describe_code, readable_run_id
from oncopipe.delivery.report import GateSummary, environment, render_markdown_report, render_report

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2
PACKAGES = ("apache-airflow", "dbt-core", "dbt-duckdb", "duckdb", "great-expectations", "jinja2", "matplotlib",
            "numpy", "oncopipe", "pandas", "pyarrow", "scikit-learn", "scikit-survival", "scipy", "statsmodels")


def run_folder_name(run_id: str, study_id: str) -> str:
    """The readable id of a run, its folder name: ``2026-01-01T0000-<study>`` for
    ``scheduled__2026-01-01T00:00:00+00:00`` (see :func:`oncopipe.delivery.provenance.readable_run_id`)."""
    try:
        return readable_run_id(run_id, study_id)
    except ProvenanceError as error:
        raise ExportError(str(error)) from None


def _airflow_run_id(manifest: Mapping[str, Any]) -> str:
    return str(manifest.get("airflow_run_id") or manifest.get("run_id", ""))


def _run_folder(study_dir: Path, run_id: str, study_id: str) -> Path:
    """The folder of Airflow run ``run_id``: its existing folder on a re-run, else its readable id, suffixed
    when another run of the same minute holds that name."""
    base = run_folder_name(run_id, study_id)
    for folder in run_dirs(study_dir):
        if _airflow_run_id(_read_manifest_or_empty(folder)) == run_id:
            return folder
    candidate, n = study_dir / base, 1
    while candidate.exists():
        n += 1
        candidate = study_dir / f"{base}-{n}"
    return candidate


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version() -> str:
    """The code version as the report prints it: the commit, and the checksum of uncommitted changes."""
    return describe_code(code_state(PROJECT_ROOT))


def _code(provenance: Mapping[str, Any]) -> dict[str, Any]:
    given = provenance.get("code_version")
    if isinstance(given, Mapping):
        return {"commit": str(given.get("commit", "unknown")), "dirty": given.get("dirty"),
                "diff_sha256": given.get("diff_sha256")}
    if given:
        return {"commit": str(given), "dirty": None, "diff_sha256": None}
    return code_state(PROJECT_ROOT)


def _code_lists(provenance: Mapping[str, Any]) -> dict[str, Any]:
    if provenance.get("code_lists"):
        return dict(provenance["code_lists"])
    try:
        return code_lists()
    except ProvenanceError as error:
        raise ExportError(f"cannot pin the code lists: {error}") from None


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages the results depend on."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# --- files -------------------------------------------------------------------------------------------------


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.write_bytes(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="zstd")


#: Print resolution of the PNG files; the report embeds a lighter copy (its files link to the full one).
PNG_DPI = 300
PREVIEW_DPI = 150


def render_figure(figure: ResultFigure, controlled: ControlledResult, study_id: str) -> dict[str, bytes]:
    """Draw a figure from the controlled tables it names, in the house style (:data:`figures.STYLE`).

    Returns:
        ``png`` (:data:`PNG_DPI`), ``svg`` and ``preview`` (a :data:`PREVIEW_DPI` PNG for the report), each with
        fixed metadata so a re-run writes the same bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oncopipe.delivery.figures import STYLE

    names = {t.name for t in controlled.result.tables}
    unknown = [t for t in figure.tables if t not in names]
    if unknown:
        raise ExportError(f"study {study_id}: figure {figure.name!r} is drawn from unknown table(s) {unknown}")
    frames = {name: controlled.result.table(name).frame.copy() for name in figure.tables}
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": f"oncopipe-{figure.name}", "svg.fonttype": "path"}):
        try:
            fig = figure.draw(frames)
        except Exception as error:
            raise ExportError(f"study {study_id}: figure {figure.name!r}: draw failed: {error}") from error
        try:
            out = {}
            for key, fmt, dpi, meta in (("png", "png", PNG_DPI, {"Software": "oncopipe"}),
                                        ("preview", "png", PREVIEW_DPI, {"Software": "oncopipe"}),
                                        ("svg", "svg", PNG_DPI, {"Creator": "oncopipe", "Date": None})):
                buffer = io.BytesIO()
                fig.savefig(buffer, format=fmt, dpi=dpi, metadata=meta, bbox_inches="tight", pad_inches=0.1)
                out[key] = buffer.getvalue()
        finally:
            plt.close(fig)
    return out


def _table_metadata(table: ResultTable, files: list[str]) -> dict[str, Any]:
    return {"name": table.name, "description": table.description, "files": files, "rows": len(table.frame),
            "columns": [str(c) for c in table.frame.columns], "count_columns": list(table.count_columns),
            "statistic_columns": dict(table.statistic_columns), "group_columns": list(table.group_columns),
            "total_value": table.total_value, "at_risk_column": table.at_risk_column}


def _build(folder: Path, controlled: ControlledResult, info: StudyInfo, provenance: Mapping[str, Any],
           run_id: str, readable: str, code: Mapping[str, Any]) -> dict[str, Any]:
    """Write every file of the export into ``folder``; returns the manifest."""
    (folder / "tables").mkdir()
    tables_meta = []
    for table in controlled.result.tables:
        written = []
        if "csv" in info.table_formats:
            _write_csv(codebook.csv_frame(controlled, table.name), folder / "tables" / f"{table.name}.csv")
            written.append(f"tables/{table.name}.csv")
        if "parquet" in info.table_formats:
            _write_parquet(controlled.parquet_frame(table.name), folder / "tables" / f"{table.name}.parquet")
            written.append(f"tables/{table.name}.parquet")
        tables_meta.append(_table_metadata(table, written))
    _write_csv(codebook.frame(controlled), folder / codebook.CODEBOOK)
    report_figures = []
    if controlled.result.figures:
        (folder / "figures").mkdir()
    # The Markdown report links to the PNG files, so it needs them whatever the figure formats.
    formats = {*info.figure_formats, *(("png",) if info.report == "markdown" else ())}
    for figure in controlled.result.figures:
        images = render_figure(figure, controlled, info.study_id)
        for fmt in sorted(formats):
            (folder / "figures" / f"{figure.name}.{fmt}").write_bytes(images[fmt])
        report_figures.append((figure.name, figure.title, images["preview"]))
    (folder / "disclosure.json").write_bytes(_json_bytes({
        "threshold": controlled.threshold, "marker": MASK_MARKER, "flag_suffix": MASK_SUFFIX,
        "counts_by_rule": controlled.report.counts_by_rule(), "cells": controlled.report.to_records()}))
    if info.report == "html":
        html = render_report(controlled, info, provenance, code_version=describe_code(code),
                             figures=report_figures)
        (folder / "report.html").write_bytes(html.encode("utf-8"))
    elif info.report == "markdown":
        text = render_markdown_report(controlled, info, provenance, code_version=describe_code(code),
                                      figure_names=[(name, title) for name, title, _ in report_figures])
        (folder / "report.md").write_bytes(text.encode("utf-8"))
    files = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    known = {"extraction_date", "mart_version", "dbt_invocation_id", "gx_validations", "code_lists", "row_counts",
             "code_version"}
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "study": {"id": info.study_id, "title": info.title, "principal_investigator": info.principal_investigator},
        "approval": {"reference": info.approval_reference, "committee": info.approval_committee},
        "run_id": readable,
        "airflow_run_id": run_id,
        "analysis": controlled.result.analysis,
        "parameters": dict(controlled.result.parameters),
        "extraction_date": provenance.get("extraction_date"),
        "mart_version": provenance.get("mart_version"),
        "dbt_invocation_id": provenance.get("dbt_invocation_id"),
        "gx_validations": [asdict(GateSummary.of(g)) for g in provenance.get("gx_validations") or ()],
        "code_version": dict(code),
        "package_versions": package_versions(),
        "code_lists": _code_lists(provenance),
        "row_counts": {"inputs": dict(provenance.get("row_counts") or {}),
                       "tables": {t.name: len(t.frame) for t in controlled.result.tables}},
        "provenance_extra": {k: v for k, v in provenance.items() if k not in known},
        "disclosure": {"threshold": controlled.threshold, "marker": MASK_MARKER,
                       "counts_by_rule": controlled.report.counts_by_rule()},
        "tables": tables_meta,
        "figures": [{"name": f.name, "title": f.title, "tables": list(f.tables)} for f in controlled.result.figures],
        "recipients": list(info.recipients),
        "files": files,
    }
    (folder / MANIFEST).write_bytes(_json_bytes(manifest))
    return manifest


# --- atomic publication ------------------------------------------------------------------------------------


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def _move_into_place(built: Path, target: Path) -> None:
    """Rename ``built`` to ``target``; if ``target`` exists (re-run), swap and drop the old one."""
    if not target.exists():
        os.rename(built, target)
        return
    if not _exchange(built, target):
        # No atomic exchange here: the old folder is renamed aside first, leaving a window of two
        # renames during which the run folder is absent (never partial).
        aside = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.rename(target, aside)
        os.rename(built, target)
        built = aside
    shutil.rmtree(built)


@contextlib.contextmanager
def _publish_lock(root: Path) -> Iterator[None]:
    lock = root / "_audit" / "publish.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish_export(result: StudyResult, study: Any, provenance: Mapping[str, Any], run_id: str, *,
                   exports: Path | None = None) -> ExportInfo:
    """Disclosure-control a result and publish it as ``<exports>/<study_id>/<run>/``, atomically.

    Args:
        result: the analysis result, before disclosure control.
        study: study metadata (pydantic ``Study``, mapping or :class:`StudyInfo`; keys in the module docstring).
        provenance: extraction date, mart version, dbt invocation, GX validations, code lists, row counts.
        run_id: the Airflow run id (re-running it rewrites the same files).
        exports: the exports folder (default: ``get_settings().exports``).

    Returns:
        Where the export is, its files and checksums.

    Raises:
        DisclosureViolation: the result cannot be made safe; nothing is written (the refusal is audited).
        OutputCheckFailed: the independent output checker (:mod:`oncopipe.delivery.output_check`) found a
            stated or recoverable small count in the built folder; nothing is written (the refusal is audited).
        ExportError: a figure failed to draw, bad metadata, ...; nothing is written.
    """
    info = StudyInfo.of(study)
    if result.study_id != info.study_id:
        raise ExportError(f"result of study {result.study_id!r} cannot be exported as study {info.study_id!r}")
    root = (exports or get_settings().exports).resolve()
    run_folder_name(run_id, info.study_id)  # an unusable run id fails before anything is controlled or written
    audit = AuditLog(root)
    with _publish_lock(root):
        target = _run_folder(root / info.study_id, run_id, info.study_id)
        try:
            controlled = control(result, history=audit.history(info.study_id, run_id))
        except DisclosureViolation as error:
            audit.append(REFUSED, info.study_id, run_id=run_id, approval_reference=info.approval_reference,
                         detail={"error": str(error), "rule": error.rule, "table": error.table, "row": error.row,
                                 "column": error.column})
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        built = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        built.mkdir()
        try:
            manifest = _build(built, controlled, info, provenance, run_id, target.name, _code(provenance))
            _check_before_publishing(built, target, audit, info, run_id, controlled.threshold)
            files = {**manifest["files"], MANIFEST: sha256_file(built / MANIFEST)}
            with audit.connect() as con:
                event = audit.record(con, EXPORT, info.study_id, run_id=run_id,
                                     approval_reference=info.approval_reference, path=str(target),
                                     recipients=info.recipients, files=files,
                                     detail={"mart_version": provenance.get("mart_version"),
                                             "masked_by_rule": controlled.report.counts_by_rule()})
                audit.store_published_cells(con, info.study_id, run_id, event, controlled.published_cells)
                _move_into_place(built, target)
        except BaseException:
            shutil.rmtree(built, ignore_errors=True)
            raise
        if info.keep_last:
            _prune(target.parent, info.keep_last, audit, info.study_id)
        write_index(root)
    report = {"html": target / "report.html", "markdown": target / "report.md"}.get(info.report)
    return ExportInfo(info.study_id, run_id, target, target / MANIFEST, report, files, info.recipients,
                      info.approval_reference, controlled.report.counts_by_rule(), event)


def _check_before_publishing(built: Path, target: Path, audit: AuditLog, info: StudyInfo, run_id: str,
                             threshold: int) -> None:
    """The last step before publication: the independent output checker reads the built folder as a
    researcher would, with the study's other published runs beside it, at the threshold the masking used; any
    finding refuses the export."""
    others = [p for p in run_dirs(target.parent) if p.name != target.name]
    try:
        raise_if_unsafe(built, other_runs=others, threshold=threshold)
    except OutputCheckFailed as error:
        audit.append(REFUSED, info.study_id, run_id=run_id, approval_reference=info.approval_reference,
                     detail={"error": str(error), "rule": "output_check",
                             "findings": [str(f) for f in error.findings]})
        raise


def remove_temporary(study_id: str, exports: Path | None = None) -> list[Path]:
    """Remove what an interrupted export of ``study_id`` left: its ``.tmp-*`` build and ``.old-*`` aside folders.

    A study DAG runs one run at a time (``max_active_runs=1``) and calls this in its first task, before any
    export of the run is built, so no folder removed here belongs to a live export.

    Returns:
        The folders removed.
    """
    study_dir = (exports or get_settings().exports) / study_id
    if not study_dir.is_dir():
        return []
    removed = sorted(p for p in study_dir.iterdir() if p.is_dir() and p.name.startswith((".tmp-", ".old-")))
    for folder in removed:
        shutil.rmtree(folder)
    return removed


def _prune(study_dir: Path, keep: int, audit: AuditLog, study_id: str) -> None:
    runs = sorted(run_dirs(study_dir), key=lambda p: (_read_manifest(p).get("created_at", ""), p.name))
    for old in runs[:-keep]:
        shutil.rmtree(old)
        audit.append("pruned", study_id, run_id=_airflow_run_id(_read_manifest_or_empty(old)) or old.name,
                     path=str(old), detail={"keep_last": keep})


# --- reading exports ---------------------------------------------------------------------------------------


def run_dirs(study_dir: Path) -> list[Path]:
    """Published run folders of a study (hidden build/aside folders excluded)."""
    if not study_dir.is_dir():
        return []
    return sorted(p for p in study_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / MANIFEST).is_file())


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(f"{folder / MANIFEST}: unreadable manifest: {error}") from error


def _read_manifest_or_empty(folder: Path) -> dict[str, Any]:
    try:
        return _read_manifest(folder)
    except ExportError:
        return {}


def list_exports(exports: Path | None = None, study_id: str | None = None) -> list[dict[str, Any]]:
    """Every published run (optionally of one study): study, run, created_at, approval, path."""
    root = exports or get_settings().exports
    out = []
    if not root.is_dir():
        return out
    for study_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        if study_id and study_dir.name != study_id:
            continue
        for run in run_dirs(study_dir):
            m = _read_manifest_or_empty(run)
            out.append({"study_id": study_dir.name, "title": m.get("study", {}).get("title", ""),
                        "run_id": m.get("run_id", run.name), "airflow_run_id": _airflow_run_id(m) or run.name,
                        "created_at": m.get("created_at", ""),
                        "approval": m.get("approval", {}).get("reference", ""),
                        "mart_version": m.get("mart_version") or "", "path": run,
                        "report": next((name for name in ("report.html", "report.md") if (run / name).is_file()),
                                       None)})
    return out


def find_export(study_id: str, run_id: str, exports: Path | None = None) -> Path:
    """The folder of a published run, by its readable id, its folder name or Airflow's run id;
    ``ExportError`` names what is missing."""
    root = exports or get_settings().exports
    runs = list_exports(root, study_id)
    for e in runs:
        if run_id in (e["run_id"], e["airflow_run_id"], e["path"].name):
            return e["path"]
    known = [e["run_id"] for e in runs]
    raise ExportError(f"no export of study {study_id!r} run {run_id!r} under {root}; runs: {known or 'none'}")


def write_index(exports: Path | None = None) -> Path:
    """(Re)write ``<exports>/index.html`` listing every run of every study; atomic replace."""
    root = exports or get_settings().exports
    studies: dict[str, dict[str, Any]] = {}
    for e in list_exports(root):
        entry = studies.setdefault(e["study_id"], {"id": e["study_id"], "title": e["title"] or e["study_id"],
                                                   "runs": []})
        rel = e["path"].relative_to(root).as_posix()
        entry["runs"].append({**e, "report": f"{rel}/{e['report']}" if e["report"] else None,
                              "manifest": f"{rel}/{MANIFEST}"})
    html = environment().get_template("index.html.j2").render(studies=[studies[k] for k in sorted(studies)])
    index = root / "index.html"
    tmp = root / f".index-{uuid.uuid4().hex[:8]}.html"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, index)
    return index


def _published_tables(folder: Path, manifest: Mapping[str, Any]) -> tuple[list[ResultTable], dict[str, pd.DataFrame]]:
    """The published tables with their masks; rows dropped as curves (listed in disclosure.json, which the
    reader also has) come back as fully masked rows, since the reader knows they exist."""
    dropped: dict[str, list[dict[str, str]]] = {}
    disclosure_file = folder / "disclosure.json"
    if disclosure_file.is_file():
        for cell in json.loads(disclosure_file.read_text(encoding="utf-8")).get("cells", []):
            if cell.get("rule") in DROPPED_ROW_RULES:
                dropped.setdefault(cell["table"], []).append(cell.get("labels", {}))
    tables, masks = [], {}
    for meta in manifest.get("tables", []):
        name = meta["name"]
        parquet, csv = folder / "tables" / f"{name}.parquet", folder / "tables" / f"{name}.csv"
        maskable = [*meta.get("count_columns", []), *meta.get("statistic_columns", {})]
        if meta.get("at_risk_column"):
            maskable.append(meta["at_risk_column"])
        maskable = list(dict.fromkeys(maskable))
        if parquet.is_file():
            frame = pd.read_parquet(parquet)
            flags = [c for c in frame.columns if str(c).endswith(MASK_SUFFIX)]
            mask = pd.DataFrame({c[: -len(MASK_SUFFIX)]: frame[c].astype(bool) for c in flags}, index=frame.index)
            frame = frame.drop(columns=flags)
        elif csv.is_file():
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
            flags = [c for c in frame.columns if str(c).endswith(MASK_SUFFIX)]
            mask = pd.DataFrame({c[: -len(MASK_SUFFIX)]: frame[c].str.strip().str.lower() == "true" for c in flags},
                                index=frame.index)
            frame = frame.drop(columns=flags)
            for c in maskable:
                if c in frame.columns:
                    frame[c] = pd.to_numeric(frame[c].where(frame[c].str.strip() != ""), errors="coerce")
        else:
            raise ExportError(f"{folder}: table {name!r} has neither a CSV nor a Parquet file")
        if dropped.get(name):
            extra = pd.DataFrame(dropped[name])
            frame = pd.concat([frame.astype({c: object for c in extra.columns if c in frame.columns}), extra],
                              ignore_index=True)
            mask = pd.concat([mask, pd.DataFrame(True, index=range(len(extra)), columns=mask.columns)],
                             ignore_index=True)
        tables.append(ResultTable(name, frame, meta.get("description", ""),
                                  count_columns=tuple(meta.get("count_columns", [])),
                                  statistic_columns=dict(meta.get("statistic_columns", {})),
                                  group_columns=tuple(meta.get("group_columns", [])),
                                  total_value=meta.get("total_value"), at_risk_column=meta.get("at_risk_column")))
        masks[name] = mask
    return tables, masks


def verify_export(folder: Path, *, exports: Path | None = None, published: Path | None = None) -> list[str]:
    """Re-check a published export: every checksum, no unlisted file, every disclosure rule, and that the mart
    version it pins is still published (reproducible from it).

    The disclosure check reads the published tables only (Parquet when present, else CSV) and, from the
    audit log, the counts that earlier runs of the study published.

    Args:
        folder: the export's run folder.
        exports: the exports root holding the audit log (default: the folder's grandparent).
        published: the published marts root (default: ``get_settings().published``).

    Returns:
        One message per problem; empty when the export is intact and safe.
    """
    problems: list[str] = []
    manifest = _read_manifest(folder)
    version = manifest.get("mart_version")
    published = published or get_settings().published
    if version and not (published / str(version) / "version.json").is_file():
        problems.append(f"manifest: pinned mart version {version} is not in {published} (removed or never "
                        "published): the export cannot be reproduced")
    listed = manifest.get("files", {})
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    for rel in sorted(set(listed) - present):
        problems.append(f"{rel}: listed in the manifest but missing")
    for rel in sorted(present - set(listed)):
        problems.append(f"{rel}: present but not listed in the manifest")
    for rel in sorted(set(listed) & present):
        if sha256_file(folder / rel) != listed[rel]:
            problems.append(f"{rel}: sha256 differs from the manifest")
    if not manifest.get("approval", {}).get("reference"):
        problems.append("manifest: no approval reference")
    tables, masks = _published_tables(folder, manifest)
    root = exports or folder.parent.parent
    history: list[dict[str, float]] = []
    if (root / "_audit" / "audit.sqlite3").is_file():
        history = AuditLog(root).history(manifest["study"]["id"], _airflow_run_id(manifest))
    # Judged by the threshold the export was controlled with (what its manifest promises), never below the floor.
    recorded = manifest.get("disclosure", {}).get("threshold")
    try:
        threshold = disclosure_threshold(None if recorded is None else int(recorded))
    except ValueError as error:
        problems.append(f"manifest: disclosure.threshold: {error}")
        threshold = disclosure_threshold()
    problems += audit_published(tables, masks, history=history, threshold=threshold)
    problems += [str(f) for f in check_export(folder, threshold=threshold).findings]
    problems += [str(f) for f in check_exports_root(root, threshold=threshold).findings]
    return problems
