"""What the platform refresh does, without Airflow: find a new extraction, gate it, gate the marts, versions.

``dags/platform_refresh.py`` wires these functions (and one dbt task per model, :mod:`oncopipe.warehouse.dbt_nodes`)
into the refresh DAG; the embedded runner and the tests call the same functions through it.

Which extraction a run takes: the oldest extraction folder of the landing (``<landing>/<source>/extraction=
<date>/``) that is newer than the extraction of the current published version. A refused extraction is moved
to the quarantine by the raw gate, so it is never found again; an accepted one is published, so older ones are
never taken again. A run for an extraction that is already published (``extraction_date`` given explicitly)
rebuilds and re-gates, and publishes nothing new when the marts are unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
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


def published_extraction() -> str | None:
    """The extraction of the current published version, or None if nothing is published."""
    from oncopipe.warehouse import versions

    current = versions.current_version()
    return None if current is None else str(current.extraction)


def pending_extractions(settings: Settings | None = None) -> list[str]:
    """Landed extractions newer than the published one, oldest first."""
    last = published_extraction()
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
        published = published_extraction()
        if published is not None and requested < published:
            # dbt builds from every landed extraction: the marts would hold the newer data under an older label.
            raise ValueError(f"extraction {requested} is older than the published extraction {published}; "
                             "only the published or a newer extraction can be (re)processed")
        return requested
    pending = pending_extractions(settings)
    return pending[0] if pending else None


def raw_gate(extraction_date: str, settings: Settings | None = None) -> dict[str, Any]:
    """Run the raw gate on one extraction (a failure quarantines it and raises ``GateFailed``)."""
    from oncopipe import quality

    report = quality.run_raw_gate(extraction_date, settings=settings)
    return gate_summary(report)


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

    before = publisher.current_version()
    version = publisher.publish_candidate(extraction_date=extraction_date, settings=settings,
                                          provenance={"gates": gates or {}})
    return describe_publication(before, version, extraction_date)


def describe_publication(before: Any, after: Any, extraction_date: str) -> dict[str, Any]:
    new = before is None or str(getattr(before, "version", "")) != str(after.version)
    return {"version": str(after.version), "extraction": str(getattr(after, "extraction", extraction_date)),
            "new": new, "path": str(getattr(after, "path", "")), "tables": list(PUBLISHED_TABLES)}


def published_path(version: dict[str, Any]) -> Path:
    return Path(version["path"])
