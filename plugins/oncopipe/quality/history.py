"""Gate results as history: a SQLite table at ``<quality>/history.sqlite``.

SQLite, not DuckDB: the warehouse's DuckDB file lock would make an operator's query block a run. One row
per expectation outcome; ``sqlite3 <quality>/history.sqlite "select * from gate_results"`` reads it.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from oncopipe.quality.freshness import FreshnessReport
from oncopipe.quality.outcomes import GateReport

SCHEMA = """
create table if not exists gate_results (
    run_id text not null,
    extraction text,
    stage text not null,
    suite text not null,
    subject text not null,
    expectation text not null,
    expectation_type text,
    severity text not null,
    success integer not null,
    observed_value text,
    expected text,
    sample text,
    validation_id text,
    time text not null
);
create index if not exists gate_results_run on gate_results (run_id);
create table if not exists gate_runs (
    run_id text primary key,
    extraction text,
    stage text not null,
    passed integer not null,
    critical_failures integer not null,
    warnings integer not null,
    skipped text,
    quarantined_to text,
    started_at text not null,
    finished_at text not null
);
create table if not exists excluded_lines (
    run_id text not null,
    extraction text not null,
    source text not null,
    rule text not null,
    column_name text not null,
    lines integer not null,
    judged integer not null,
    share real not null,
    ceiling real not null,
    consequence text not null,
    sample_keys text,
    time text not null
);
create index if not exists excluded_lines_extraction on excluded_lines (extraction);
create table if not exists source_freshness (
    run_id text not null,
    extraction text,
    source text not null,
    status text not null,
    failed integer not null,
    max_loaded_at text,
    snapshotted_at text,
    age_days real,
    warn_after text,
    error_after text,
    message text,
    time text not null
);
"""


def history_path(quality: Path) -> Path:
    return quality / "history.sqlite"


def _connect(quality: Path) -> sqlite3.Connection:
    quality.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(history_path(quality), timeout=30)
    con.executescript(SCHEMA)
    return con


def record(report: GateReport, quality: Path) -> None:
    """Append the outcomes and the run summary of ``report`` (re-recording a run id replaces it)."""
    with closing(_connect(quality)) as con, con:
        con.execute("delete from gate_results where run_id = ?", (report.run_id,))
        con.executemany(
            "insert into gate_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(report.run_id, report.extraction, report.stage, o.suite, o.subject, o.expectation, o.expectation_type,
              o.severity, int(o.success), o.observed, o.expected, json.dumps(o.sample, default=str), o.validation_id,
              report.finished_at) for o in report.outcomes])
        con.execute("insert or replace into gate_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (report.run_id, report.extraction, report.stage, int(report.passed),
                     len(report.critical_failures), len(report.warnings), json.dumps(report.skipped),
                     report.quarantined_to, report.started_at, report.finished_at))


def record_exclusions(report: GateReport, quality: Path, rows: list[dict]) -> None:
    """Write the ledger of excluded lines of one raw-gate run (``exclusions.ledger_rows``; replaces the run's rows).

    One row per extraction, source and exclusion rule with breaking lines: the count, the judged lines, the
    share against the ceiling, what happened (``excluded``; ``quarantined``) and a few sample keys. The ledger is
    for operators (it holds line counts and keys): it stays in ``<quality>``, no export reads it.
    """
    with closing(_connect(quality)) as con, con:
        con.execute("delete from excluded_lines where run_id = ?", (report.run_id,))
        con.executemany(
            "insert into excluded_lines values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(report.run_id, report.extraction, r["source"], r["rule"], r["column"], r["lines"], r["judged"],
              r["share"], r["ceiling"], r["consequence"], json.dumps(r["sample"], default=str, ensure_ascii=False),
              report.finished_at) for r in rows])


def record_freshness(report: FreshnessReport, quality: Path) -> None:
    """Write one ``dbt source freshness`` of the refresh: a row per source (re-recording a run replaces it)."""
    with closing(_connect(quality)) as con, con:
        con.execute("delete from source_freshness where run_id = ?", (report.run_id,))
        con.executemany(
            "insert into source_freshness values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(report.run_id, report.extraction, s.source, s.status, int(s.failed), s.max_loaded_at, s.snapshotted_at,
              s.age_days, s.warn_after, s.error_after, s.message, report.generated_at) for s in report.sources])


def exclusions(quality: Path, extraction: str | None = None) -> list[dict]:
    """The ledger of excluded lines (of ``extraction``, or every one), newest first."""
    if not history_path(quality).exists():
        return []
    with closing(_connect(quality)) as con:
        con.row_factory = sqlite3.Row
        sql = "select * from excluded_lines" + (" where extraction = ?" if extraction else "")
        return [dict(r) for r in con.execute(sql + " order by time desc, source, rule",
                                             (extraction,) if extraction else ())]


def runs(quality: Path, stage: str | None = None) -> list[dict]:
    """Past gate runs, newest first."""
    if not history_path(quality).exists():
        return []
    with closing(_connect(quality)) as con:
        con.row_factory = sqlite3.Row
        sql = "select * from gate_runs" + (" where stage = ?" if stage else "") + " order by finished_at desc"
        return [dict(r) for r in con.execute(sql, (stage,) if stage else ())]


def results(quality: Path, run_id: str) -> list[dict]:
    """The outcomes recorded for one run."""
    with closing(_connect(quality)) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("select * from gate_results where run_id = ?", (run_id,))]


def last_passed_extraction(quality: Path) -> str | None:
    """The extraction of the most recent raw gate that passed."""
    passed = [r for r in runs(quality, "raw") if r["passed"]]
    return passed[0]["extraction"] if passed else None


def last_run_summary(quality: Path, stage: str, extraction: str | None = None) -> dict | None:
    """The most recent passed run of ``stage`` (for ``extraction`` if given): run id, counts, validation ids."""
    for run in runs(quality, stage):
        if run["passed"] and (extraction is None or run["extraction"] == extraction):
            rows = results(quality, run["run_id"])
            return {"run_id": run["run_id"], "extraction": run["extraction"], "finished_at": run["finished_at"],
                    "evaluated": len(rows), "successful": sum(r["success"] for r in rows),
                    "warnings": run["warnings"],
                    "validation_ids": dict(sorted({(r["suite"], r["validation_id"]) for r in rows}))}
    return None
