"""Source freshness as the refresh reads it: dbt's ``sources.json`` (``dbt source freshness``) per source.

dbt judges freshness itself, from the ``loaded_at_field`` and the ``warn_after`` / ``error_after`` of each source in
the sources YAML (``dbt_project/models/staging/*/_*__sources.yml``); this module reads what dbt wrote, so the
thresholds shown are those dbt applied (``criteria`` of each result). An ``error`` (or a source dbt could not query,
``runtime error``) stops the refresh before publishing; a ``warn`` is recorded and shown on the quality view.
dbt-duckdb measures the age at the processed extraction (``dbt_project/macros/freshness.sql`` says why).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

#: dbt's FreshnessStatus values that stop the refresh.
FAILING = frozenset({"error", "runtime error"})


class FreshnessError(ValueError):
    """A ``sources.json`` that cannot be read as dbt's freshness results (the message names the file)."""


class FreshnessFailed(RuntimeError):
    """A source is older than its ``error_after`` (or could not be checked): the refresh stops before publishing."""


@dataclass(frozen=True)
class SourceFreshness:
    """dbt's verdict on one source: its newest ``loaded_at_field``, its age and the thresholds dbt applied."""

    source: str
    status: str
    max_loaded_at: str | None
    snapshotted_at: str | None
    age_days: float | None
    warn_after: str | None
    error_after: str | None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def describe(self) -> str:
        """One line: source, status, newest extraction, age and the thresholds."""
        if self.age_days is None:
            return f"{self.source} [{self.status}]: {self.message or 'no freshness measured'}"
        limits = ", ".join(f"{k} after {v}" for k, v in (("warn", self.warn_after), ("error", self.error_after)) if v)
        return (f"{self.source} [{self.status}]: newest extraction {self.max_loaded_at}, {self.age_days:g} days old "
                f"at {self.snapshotted_at} ({limits or 'no threshold'})")


@dataclass(frozen=True)
class FreshnessReport:
    """One ``dbt source freshness`` invocation (``run_id``: dbt's invocation id) for one extraction."""

    run_id: str
    extraction: str | None
    generated_at: str
    sources: tuple[SourceFreshness, ...]

    @property
    def errors(self) -> list[SourceFreshness]:
        return [s for s in self.sources if s.failed]

    @property
    def warnings(self) -> list[SourceFreshness]:
        return [s for s in self.sources if s.status == "warn"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """A head line with the counts, then every error and warning."""
        head = (f"source freshness, extraction {self.extraction or '-'} (dbt invocation {self.run_id}): "
                f"{'PASSED' if self.passed else 'FAILED'} ({len(self.sources)} sources, {len(self.errors)} errors, "
                f"{len(self.warnings)} warnings)")
        return "\n".join([head, *(f"  {s.describe()}" for s in [*self.errors, *self.warnings])])

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (the task's XCom)."""
        return {"run_id": self.run_id, "extraction": self.extraction, "passed": self.passed,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "sources": [asdict(s) for s in self.sources]}


def _period(criterion: dict[str, Any] | None) -> str | None:
    if not criterion or criterion.get("count") is None or criterion.get("period") is None:
        return None
    return f"{criterion['count']} {criterion['period']}{'s' if criterion['count'] != 1 else ''}"


def _day(value: str | None) -> str | None:
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()


def read_sources_json(path: Path, extraction: str | None = None) -> FreshnessReport:
    """The freshness results dbt wrote in ``path`` (``<target>/sources.json``).

    Raises:
        FreshnessError: the file is missing, not JSON, or holds no dbt freshness results (naming the file and the
            result at fault).
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FreshnessError(f"{path}: not dbt's freshness results ({type(exc).__name__}: {exc})") from exc
    schema = str(document.get("metadata", {}).get("dbt_schema_version", "")) if isinstance(document, dict) else ""
    if "/sources/" not in schema or not isinstance(document.get("results"), list):
        raise FreshnessError(f"{path}: not dbt's freshness results (dbt_schema_version {schema or 'missing'})")
    sources = []
    for index, result in enumerate(document["results"]):
        try:
            unique_id, status = result["unique_id"], result["status"]
            criteria = result.get("criteria") or {}
            age = result.get("max_loaded_at_time_ago_in_s")
            sources.append(SourceFreshness(
                source=unique_id.removeprefix("source.").split(".", 1)[-1], status=status,
                max_loaded_at=_day(result.get("max_loaded_at")), snapshotted_at=_day(result.get("snapshotted_at")),
                age_days=None if age is None else round(float(age) / 86400, 2),
                warn_after=_period(criteria.get("warn_after")), error_after=_period(criteria.get("error_after")),
                message=None if result.get("error") is None else str(result["error"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FreshnessError(f"{path}: results[{index}] is not a freshness result "
                                 f"({type(exc).__name__}: {exc})") from exc
    return FreshnessReport(run_id=str(document["metadata"].get("invocation_id", "")), extraction=extraction,
                           generated_at=str(document["metadata"].get("generated_at", "")),
                           sources=tuple(sorted(sources, key=lambda s: s.source)))
