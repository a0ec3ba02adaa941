"""The raw gate: check one landed extraction, every source, before dbt reads it.

Per source: the extraction suite (files, schema, volumes, keys, cross-source rules) runs first; when one
of its critical expectations on the files themselves fails (unreadable file, bad encoding, missing
column, wrong type, no line), the line-level suite is skipped, because its checks would only echo that
failure. A critical failure anywhere quarantines the whole extraction (every source) and raises
:class:`GateFailed`; nothing downstream runs, so nothing published changes. The lines an exclusion rule
(:mod:`oncopipe.quality.exclusions`) finds are counted in the ledger of excluded lines, whatever the verdict.

The facts and line rules run on the engine of the settings: DuckDB in memory, or with ``ONCOPIPE_ENGINE=spark`` the
same SQL translated to Spark SQL on the platform's Spark session or through its Spark Thrift server
(:mod:`oncopipe.quality.spark_sql`); GX judges the same small frames either way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from oncopipe.contracts.settings import Settings, get_settings
from oncopipe.contracts.sources import SOURCES
from oncopipe.landing.layout import extraction_dir, part_files
from oncopipe.quality import deliveries, exclusions, history, raw_frames
from oncopipe.quality.frames import raw_suite_name
from oncopipe.quality.outcomes import GateFailed, GateReport
from oncopipe.quality.quarantine import quarantine_extraction
from oncopipe.quality.runner import SuiteRunner
from oncopipe.quality.spark_sql import GateConnection, SparkConnection

BLOCKING = {"file_readable", "encoding_utf8", "column_set", "column_types", "row_count_nonzero"}


@dataclass(frozen=True)
class QualityConfig:
    """Knobs of the raw gate.

    Attributes:
        memory_limit: DuckDB memory limit for the aggregate queries (they spill to ``<quality>/tmp``); on Spark,
            the session's own settings apply.
        quarantine: move a failed extraction to the quarantine (off only for dry runs).
        build_docs: rebuild the Data Docs site after the run.
    """

    memory_limit: str = "3GB"
    quarantine: bool = True
    build_docs: bool = True


def run_raw_gate(extraction_date: str, settings: Settings | None = None,
                 config: QualityConfig | None = None, sources: Iterable[str] | None = None,
                 spark: Any = None) -> GateReport:
    """Validate the extraction ``extraction_date`` of every source in the landing.

    Args:
        extraction_date: ``YYYY-MM-DD`` of the ``extraction=`` folders to check.
        settings: locations (default: :func:`oncopipe.contracts.settings.get_settings`).
        config: gate knobs (default :class:`QualityConfig`).
        sources: check only these sources (default: all); a failure still quarantines every source.
        spark: what the facts and line rules run on when ``settings.engine`` is ``spark``: the Spark session, or
            a DB-API connection to a Spark Thrift server (:func:`oncopipe.warehouse.spark_engine.gate_engine`,
            which the warehouse layer passes; the gate, a layer below it, starts or opens none); ignored on DuckDB.

    Returns:
        The report (no critical failure).

    Raises:
        GateFailed: a critical expectation failed; the extraction has been quarantined and the
            message names each failure (source, expectation, observed value, sample rows).
        FileNotFoundError: no source has a folder for this extraction.
        ValueError: the engine is Spark and no session was given.
    """
    settings = settings or get_settings()
    config = config or QualityConfig()
    present = [s for s in SOURCES if extraction_dir(settings.landing, s.name, extraction_date).is_dir()]
    if not present:
        raise FileNotFoundError(f"no extraction={extraction_date} folder under {settings.landing}")
    if settings.engine == "spark" and spark is None:
        raise ValueError("the raw gate on Spark (ONCOPIPE_ENGINE=spark) needs the Spark session or Thrift connection: "
                         "with oncopipe.warehouse.spark_engine.gate_engine(settings) as e: run_raw_gate(..., spark=e)")
    runner = SuiteRunner(settings, "raw", extraction_date)
    con: GateConnection = (SparkConnection(spark) if settings.engine == "spark"
                           else raw_frames.connect(config.memory_limit, settings.quality / "tmp"))
    profiles: list[deliveries.Profile] = []
    rules_by_source: dict = {}  # source -> its rules frame (the ledger reads the exclusion rules)
    try:
        for src in SOURCES:
            if sources is not None and src.name not in set(sources):
                continue
            folder = extraction_dir(settings.landing, src.name, extraction_date)
            extraction_suite, rows_suite = raw_suite_name(src.name, "extraction"), raw_suite_name(src.name, "rows")
            with _timed(runner.report, src.name, "facts"):
                frames = raw_frames.extraction_frame(con, settings.landing, src.name, extraction_date,
                                                     settings.quality)
            if not part_files(folder):
                frames.extraction.loc[len(frames.extraction)] = ["file_readable", f"{folder}", 0.0,
                                                                 "no part file in the extraction folder"]
            with _timed(runner.report, src.name, "gx"):
                outcomes = runner.run(extraction_suite, src.name, frames.extraction)
            blocked = [o.expectation for o in outcomes
                       if not o.success and o.severity == "critical" and o.expectation in BLOCKING]
            if blocked:
                runner.skip(rows_suite, f"files of {src.name} failed {', '.join(blocked)}")
                continue
            with _timed(runner.report, src.name, "line_rules"):
                rules = raw_frames.rules_frame(con, frames)
            rules_by_source[src.name] = rules
            with _timed(runner.report, src.name, "gx"):
                runner.run(rows_suite, src.name, rules)
            if frames.profile is not None:
                profiles.append(frames.profile)
    finally:
        con.close()
    report = runner.report
    if report.passed:
        # Accepted: later deliveries are compared with these (duplicates, staleness, drift, volumes).
        for profile in profiles:
            deliveries.save(settings.quality, profile)
    if not report.passed and config.quarantine:
        quarantine_extraction(report, settings.landing, settings.quarantine)
    runner.finish(build_docs=config.build_docs)
    # The ledger of excluded lines: what staging leaves out of an accepted extraction (or would have).
    history.record_exclusions(report, settings.quality, [
        row for name, rules in rules_by_source.items()
        for row in exclusions.ledger_rows(name, rules, "excluded" if report.passed else "quarantined")])
    if not report.passed:
        raise GateFailed(report)
    return report


@contextmanager
def _timed(report: GateReport, source: str, phase: str) -> Iterator[None]:
    """Add the wall time of the block to ``report.durations_s["<source>:<phase>"]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        key = f"{source}:{phase}"
        report.durations_s[key] = round(report.durations_s.get(key, 0.0) + time.perf_counter() - start, 3)
