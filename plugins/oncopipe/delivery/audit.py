"""The export audit log: an append-only SQLite file under ``<exports>/_audit/audit.sqlite3``.

What a data-protection officer reads: every export (when, which study and run, which approval, every file
and its checksum, who it went to), every export refused by disclosure control (and why), every delivery
of a notification. Triggers make the ``events`` and ``published_cells`` tables append-only: an UPDATE or
DELETE aborts.

``published_cells`` keeps, for every run of every study, the counts it made visible, keyed by a stable cell
name (:meth:`oncopipe.delivery.disclosure.ControlledResult.published_cells`). Disclosure control of a later run reads
them to mask counts that differ from an earlier publication by 1 to 9 (the cross-run rule).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncopipe.contracts.settings import get_settings

_SCHEMA = """
create table if not exists events (
    id integer primary key autoincrement,
    at text not null,
    kind text not null,
    study_id text not null,
    run_id text,
    approval_reference text,
    path text,
    operator text,
    recipients text,
    files text,
    detail text
);
create table if not exists published_cells (
    study_id text not null,
    run_id text not null,
    event_id integer not null,
    cell text not null,
    value real not null,
    primary key (study_id, run_id, cell)
);
create trigger if not exists events_no_update before update on events
    begin select raise(abort, 'the audit log is append-only'); end;
create trigger if not exists events_no_delete before delete on events
    begin select raise(abort, 'the audit log is append-only'); end;
create trigger if not exists cells_no_update before update on published_cells
    begin select raise(abort, 'the audit log is append-only'); end;
create trigger if not exists cells_no_delete before delete on published_cells
    begin select raise(abort, 'the audit log is append-only'); end;
"""

EXPORT = "export"
REFUSED = "refused"
DELIVERY = "delivery"
DELIVERY_FAILED = "delivery_failed"


def audit_dir(exports: Path | None = None) -> Path:
    """Folder of the audit log (``<exports>/_audit``)."""
    return (exports or get_settings().exports) / "_audit"


@dataclass(frozen=True)
class AuditEvent:
    """One line of the audit log."""

    id: int
    at: str
    kind: str
    study_id: str
    run_id: str | None
    approval_reference: str | None
    path: str | None
    operator: str | None
    recipients: list[str]
    files: dict[str, str]
    detail: dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class AuditLog:
    """The audit log of one exports folder.

    Args:
        exports: the exports folder (default: ``get_settings().exports``).
    """

    def __init__(self, exports: Path | None = None) -> None:
        self.path = audit_dir(exports) / "audit.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction: committed on success, rolled back on error."""
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:
                yield con
        finally:
            con.close()

    def record(self, con: sqlite3.Connection, kind: str, study_id: str, *, run_id: str | None = None,
               approval_reference: str | None = None, path: str | None = None,
               recipients: Sequence[str] = (), files: Mapping[str, str] | None = None,
               detail: Mapping[str, Any] | None = None) -> int:
        """Append one event inside the caller's transaction; returns its id."""
        cursor = con.execute(
            "insert into events (at, kind, study_id, run_id, approval_reference, path, operator, recipients, "
            "files, detail) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), kind, study_id, run_id, approval_reference, path, _operator(), json.dumps(list(recipients)),
             json.dumps(dict(files or {}), sort_keys=True), json.dumps(dict(detail or {}), sort_keys=True)),
        )
        return int(cursor.lastrowid)

    def append(self, kind: str, study_id: str, **fields: Any) -> int:
        """Append one event in its own transaction."""
        with self.connect() as con:
            return self.record(con, kind, study_id, **fields)

    def store_published_cells(self, con: sqlite3.Connection, study_id: str, run_id: str, event_id: int,
                              cells: Mapping[str, float]) -> None:
        """Keep the visible counts of a run (a re-run of the same run keeps the first ones)."""
        con.executemany(
            "insert or ignore into published_cells (study_id, run_id, event_id, cell, value) values (?, ?, ?, ?, ?)",
            [(study_id, run_id, event_id, cell, float(value)) for cell, value in cells.items()],
        )

    def history(self, study_id: str, run_id: str) -> list[dict[str, float]]:
        """Visible counts of every run of the study published before ``run_id`` was first published.

        A re-run of ``run_id`` therefore sees the same history as its first publication (idempotence), and
        a new run sees every earlier one.
        """
        with self.connect() as con:
            first = con.execute("select min(event_id) from published_cells where study_id = ? and run_id = ?",
                                (study_id, run_id)).fetchone()[0]
            rows = con.execute(
                "select run_id, cell, value from published_cells where study_id = ? and run_id != ? "
                "and (? is null or event_id < ?) order by event_id, cell",
                (study_id, run_id, first, first),
            ).fetchall()
        runs: dict[str, dict[str, float]] = {}
        for run, cell, value in rows:
            runs.setdefault(run, {})[cell] = value
        return list(runs.values())

    def events(self, study_id: str | None = None, run_id: str | None = None) -> list[AuditEvent]:
        """Events, oldest first, optionally for one study and run."""
        query = "select * from events where (? is null or study_id = ?) and (? is null or run_id = ?) order by id"
        with self.connect() as con:
            rows = con.execute(query, (study_id, study_id, run_id, run_id)).fetchall()
        return [AuditEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8] or "[]"),
                           json.loads(r[9] or "{}"), json.loads(r[10] or "{}")) for r in rows]


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
