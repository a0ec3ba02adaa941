"""What the platform refresh does, without Airflow: find a new extraction, gate it, gate the marts, versions.

``dags/platform_refresh.py`` wires these functions (and one dbt task per model, :mod:`oncopipe.warehouse.dbt_nodes`)
into the refresh DAG; the embedded runner and the tests call the same functions through it.

Which extraction a run takes: the oldest extraction folder of the landing (``<landing>/<source>/extraction=
<date>/``) that is newer than the extraction of the current published version. A refused extraction is moved
to the quarantine by the raw gate, so it is never found again; an accepted one is published, so older ones are
never taken again. A run for an extraction that is already published (``extraction_date`` given explicitly)
rebuilds and re-gates, and publishes nothing new when the marts are unchanged.

What a run builds from: only accepted extractions, up to the one it processes (:func:`begin_candidate` writes
the landing views with that bound once its raw gate passed), never a newer one still waiting for its gate.

Candidate and rollback: the warehouse a run builds in starts from the state the last accepted run left
(``<warehouse>.accepted``, saved by :func:`accept_candidate` after each publish). A run whose marts gate
refused it, or that died, leaves its lines in the working warehouse only: the next run restores the accepted
copy first, so the incremental models (dispensings, stays) hold no line of a refused delivery, and a corrected
delivery re-landed under the same date is loaded as if the refused attempt never happened.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from oncopipe.contracts.marts import MARTS, REFERENCE_TABLES
from oncopipe.contracts.settings import Settings, get_settings
from oncopipe.contracts.sources import SOURCES

#: Every published table announced by the refresh: the marts and the life-table seed published with them.
PUBLISHED_TABLES: tuple[str, ...] = (*(m.name for m in MARTS), *REFERENCE_TABLES)
_EXTRACTION = re.compile(r"^extraction=(\d{4}-\d{2}-\d{2})$")


def landed_extractions(settings: Settings | None = None) -> list[str]:
    """Extraction dates with a folder in the landing for at least one source, oldest first."""
    landing = (settings or get_settings()).landing
    dates: set[str] = set()
    for source in SOURCES:
        folder = landing / source.name
        if folder.is_dir():
            for child in folder.iterdir():
                match = _EXTRACTION.match(child.name)
                if match and child.is_dir():
                    dates.add(match.group(1))
    return sorted(dates)


def published_extraction(settings: Settings | None = None) -> str | None:
    """The extraction of the current published version, or None if nothing is published."""
    from oncopipe.warehouse import versions

    current = versions.current_version(settings)
    return None if current is None else str(current.extraction)


def pending_extractions(settings: Settings | None = None) -> list[str]:
    """Landed extractions newer than the published one, oldest first."""
    last = published_extraction(settings)
    return [d for d in landed_extractions(settings) if last is None or d > last]


def choose_extraction(requested: str | None = None, settings: Settings | None = None) -> str | None:
    """The extraction this run processes: ``requested`` if given (it must have landed), else the oldest pending.

    Raises:
        ValueError: ``requested`` is not a date, or has no folder in the landing.
    """
    if requested:
        try:
            dt.date.fromisoformat(requested)
        except ValueError:
            raise ValueError(f"extraction_date {requested!r} is not a YYYY-MM-DD date") from None
        if requested not in landed_extractions(settings):
            landing = (settings or get_settings()).landing
            raise ValueError(f"extraction {requested} has no folder in {landing} (quarantined, or never landed)")
        published = published_extraction(settings)
        if published is not None and requested < published:
            # The accepted warehouse holds the newer extraction's lines: rebuilding an older label is not possible.
            raise ValueError(f"extraction {requested} is older than the published extraction {published}; "
                             "only the published or a newer extraction can be (re)processed")
        older = [d for d in pending_extractions(settings) if d < requested]
        if older:
            # Each extraction goes through its own gates, in date order: skipping one would build on lines
            # that no gate accepted (or publish the newer one without them).
            raise ValueError(f"extraction {requested} cannot be processed before the pending extraction(s) "
                             f"{', '.join(older)}: they are taken in date order")
        return requested
    pending = pending_extractions(settings)
    return pending[0] if pending else None


def recover(settings: Settings | None = None) -> list[str]:
    """Remove what an interrupted refresh left (temporary published folders, warehouse copies); run first.

    Returns:
        The paths removed.
    """
    from oncopipe.warehouse import versions

    settings = settings or get_settings()
    removed = versions.remove_temporary(settings)
    if settings.warehouse.parent.is_dir():
        for stale in sorted(settings.warehouse.parent.glob(f".{settings.warehouse.name}*.tmp-*")):
            stale.unlink()
            removed.append(stale)
    return [str(p) for p in removed]


def raw_gate(extraction_date: str, settings: Settings | None = None) -> dict[str, Any]:
    """Run the raw gate on one extraction (a failure quarantines it and raises ``GateFailed``), on the engine."""
    from oncopipe import quality
    from oncopipe.warehouse.spark_engine import gate_engine

    settings = settings or get_settings()
    with gate_engine(settings) as engine:
        report = quality.run_raw_gate(extraction_date, settings=settings, spark=engine)
    return gate_summary(report)


def _accepted_path(settings: Settings) -> Path:
    return settings.warehouse.with_name(settings.warehouse.name + ".accepted")


def _state_path(settings: Settings) -> Path:
    return settings.warehouse.with_name(settings.warehouse.name + ".state.json")


def _write_state(settings: Settings, state: str, extraction_date: str, current: str | None) -> None:
    path = _state_path(settings)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps({"state": state, "extraction": extraction_date, "current": current}),
                   encoding="utf-8")
    os.replace(tmp, path)


def _current_id(settings: Settings) -> str | None:
    from oncopipe.warehouse import versions

    current = versions.current_version(settings)
    return None if current is None else current.version


def warehouse_state(settings: Settings | None = None) -> dict[str, Any] | None:
    """``{"state": "accepted" | "candidate", "extraction": date}`` of the working warehouse (None if unknown)."""
    path = _state_path(settings or get_settings())
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _copy_database(source: Path, target: Path) -> None:
    """Copy a DuckDB file (and its write-ahead log, if any) through a temporary name and an atomic rename."""
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    wal_from, wal_to = Path(f"{source}.wal"), Path(f"{target}.wal")
    if wal_from.exists():
        shutil.copyfile(wal_from, wal_to)
    else:
        wal_to.unlink(missing_ok=True)


def begin_candidate(extraction_date: str, settings: Settings | None = None) -> dict[str, Any]:
    """Start the build of ``extraction_date`` (its raw gate passed) from the last accepted warehouse.

    When the working warehouse is not in the accepted state (a refused or interrupted candidate, or a
    warehouse of unknown history), it is restored from ``<warehouse>.accepted``, or removed when nothing was
    accepted yet (the build then starts empty). The landing views are then written to read the accepted
    extractions up to ``extraction_date`` only.

    Returns:
        What was done (``restored``: the warehouse was rolled back or removed) and the formats read per source.
    """
    from oncopipe.warehouse.dbt_runner import prepare_landing

    settings = (settings or get_settings()).ensure()
    state = warehouse_state(settings)
    accepted = _accepted_path(settings)
    restored = False
    current = _current_id(settings)
    if state is not None and state.get("state") == "candidate" and state.get("current") != current:
        # CURRENT changed during that candidate: it was published, and the run died before recording it as
        # accepted. The working warehouse is what was published: accept it rather than roll it back.
        accept_candidate(str(state.get("extraction")), settings)
        state = warehouse_state(settings)
    if settings.engine == "spark":
        # Spark rebuilds every table from the accepted extractions at each run (no incremental table keeps the
        # lines of a refused candidate; see stay_incremental_config): there is no warehouse file to roll back.
        pass
    elif state is None or state.get("state") != "accepted":
        restored = True
        if accepted.exists():
            _copy_database(accepted, settings.warehouse)
        else:
            settings.warehouse.unlink(missing_ok=True)
            Path(f"{settings.warehouse}.wal").unlink(missing_ok=True)
    _write_state(settings, "candidate", extraction_date, current)
    formats = prepare_landing(settings, extraction_date=extraction_date)
    return {"extraction": extraction_date, "restored": restored,
            "formats": {source: sorted({f for fs in dates.values() for f in fs}) for source, dates in formats.items()}}


def source_freshness(extraction_date: str, settings: Settings | None = None) -> dict[str, Any]:
    """``dbt source freshness`` at ``extraction_date`` over the landing views :func:`begin_candidate` bounded
    (:func:`oncopipe.warehouse.dbt_nodes.source_freshness`).

    dbt judges each source against the ``warn_after`` / ``error_after`` of the sources YAML; the results
    (``<dbt target>/sources.json``) are recorded in the quality history, which the quality view shows.

    Returns:
        The report as a dict (sources, errors, warnings), when no source errors.

    Raises:
        FreshnessFailed: a source is older than its ``error_after``, could not be checked, or dbt wrote no results
            (the message lists each failing source with its age and thresholds).
    """
    from oncopipe.quality import history
    from oncopipe.quality.freshness import FreshnessError, FreshnessFailed, read_sources_json
    from oncopipe.warehouse import dbt_nodes

    settings = settings or get_settings()
    invocation_id, error = dbt_nodes.source_freshness(extraction_date, settings)
    results = settings.dbt_target_dir / "sources.json"
    try:
        report = read_sources_json(results, extraction_date)
    except FreshnessError as exc:
        raise FreshnessFailed(f"dbt source freshness wrote no results: {error or exc}") from exc
    if report.run_id != invocation_id:  # a file left by an earlier invocation: this one stopped before writing
        raise FreshnessFailed(f"dbt source freshness wrote no results ({results} is from invocation "
                              f"{report.run_id}, not {invocation_id}): {error or 'see the dbt log'}")
    history.record_freshness(report, settings.quality)
    if not report.passed:
        raise FreshnessFailed(report.summary())
    return report.as_dict()


def accept_candidate(extraction_date: str, settings: Settings | None = None) -> None:
    """Record the working warehouse as accepted (its marts are published): the next run starts from it."""
    settings = settings or get_settings()
    if settings.engine != "spark":  # Spark: nothing to keep (see begin_candidate)
        _copy_database(settings.warehouse, _accepted_path(settings))
    _write_state(settings, "accepted", extraction_date, _current_id(settings))


def marts_gate(settings: Settings | None = None) -> dict[str, Any]:
    """Run the marts gate on the candidate marts in the warehouse (raises ``GateFailed``)."""
    from oncopipe.warehouse import versions

    return gate_summary(versions.gate_candidate(settings))


def gate_summary(report: Any) -> dict[str, Any]:
    """A JSON-able summary of a gate report (for XCom and the export provenance)."""
    outcomes = list(getattr(report, "outcomes", []) or [])
    return {
        "run_id": getattr(report, "run_id", None),
        "stage": getattr(report, "stage", None),
        "extraction": getattr(report, "extraction", None),
        "passed": bool(getattr(report, "passed", True)),
        "evaluated": len(outcomes),
        "failed_warnings": len(getattr(report, "warnings", []) or []),
        "validation_ids": dict(getattr(report, "validation_ids", {}) or {}),
    }


def publish(extraction_date: str, *, gates: dict[str, Any] | None = None,
            settings: Settings | None = None) -> dict[str, Any]:
    """Publish the candidate marts; returns the version and whether anything new was published."""
    from oncopipe.warehouse import versions as publisher

    before = publisher.current_version(settings)
    version = publisher.publish_candidate(extraction_date=extraction_date, settings=settings,
                                          provenance={"gates": gates or {}})
    accept_candidate(extraction_date, settings)
    described = describe_publication(before, version, extraction_date)
    described["dbt_docs"] = publish_dbt_docs(Path(version.path), extraction_date, settings)
    return described


#: Where the dbt docs of a published version lie, inside the version's folder (the dbt docs view serves them).
DBT_DOCS_FOLDER = "dbt_docs"
DBT_DOCS_FILES = ("static_index.html", "index.html", "manifest.json", "catalog.json")


def publish_dbt_docs(version_path: Path, extraction_date: str, settings: Settings | None = None) -> str:
    """``dbt docs generate --static`` (manifest + catalog, and one self-contained page) of the version just
    published, saved as ``<version>/dbt_docs/`` (written aside, then renamed in: never half there).

    Done once per version (a re-run that publishes nothing new keeps the docs it has). Documentation is not a
    gate: a failure is returned (and logged by the task) instead of undoing a publication the gates accepted.

    Returns:
        The docs folder, or ``failed: <dbt's error>``.
    """
    import logging

    from oncopipe.warehouse.dbt_runner import run_dbt

    settings = settings or get_settings()
    final = version_path / DBT_DOCS_FOLDER
    if (final / "static_index.html").exists():
        return str(final)
    run = run_dbt("docs", vars={"extraction_date": extraction_date}, settings=settings, quiet=True)
    if not run.success:
        logging.getLogger(__name__).error("dbt docs of %s not generated: %s", version_path.name, run.error)
        return f"failed: {run.error}"
    tmp = version_path / f".{DBT_DOCS_FOLDER}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    for name in DBT_DOCS_FILES:
        shutil.copy2(settings.dbt_target_dir / name, tmp / name)
    os.rename(tmp, final)
    logging.getLogger(__name__).info("dbt docs of version %s: %s (%.1f s)", version_path.name, final, run.elapsed_s)
    return str(final)


def run_refresh(requested: str | None = None, *, full_refresh: bool = False,
                settings: Settings | None = None) -> dict[str, Any] | None:
    """One refresh without Airflow: the same steps as the refresh DAG, dbt as one ``build``.

    Returns:
        The publication (:func:`publish`), or None when no extraction is pending.

    Raises:
        GateFailed: the raw gate (the extraction is quarantined) or the marts gate refused it.
        oncopipe.quality.freshness.FreshnessFailed: a source is older than its ``error_after``.
        oncopipe.warehouse.dbt_runner.DbtRunError: the dbt build failed.
    """
    from oncopipe.warehouse.dbt_runner import run_dbt

    settings = settings or get_settings()
    recover(settings)
    chosen = choose_extraction(requested, settings)
    if chosen is None:
        return None
    raw = raw_gate(chosen, settings)
    begin_candidate(chosen, settings)
    source_freshness(chosen, settings)
    run_dbt("build", full_refresh=full_refresh, vars={"extraction_date": chosen}, settings=settings,
            quiet=True).raise_for_failure()
    marts = marts_gate(settings)
    return publish(chosen, gates={"raw": raw, "marts": marts}, settings=settings)


def describe_publication(before: Any, after: Any, extraction_date: str) -> dict[str, Any]:
    new = before is None or str(getattr(before, "version", "")) != str(after.version)
    return {"version": str(after.version), "extraction": str(getattr(after, "extraction", extraction_date)),
            "new": new, "path": str(getattr(after, "path", "")), "tables": list(PUBLISHED_TABLES)}


def published_path(version: dict[str, Any]) -> Path:
    return Path(version["path"])
