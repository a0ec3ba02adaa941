"""Run the dbt project (``dbt_project/``) in process, with the platform's paths, and report what happened.

The DAGs, the CLI (``oncopipe dbt ...``) and the tests all go through :func:`run_dbt`, so every dbt run reads the
same landing folder and writes the same warehouse as the rest of the platform: the settings of
:func:`oncopipe.contracts.settings.get_settings` are passed to dbt as the variables it reads (``DBT_SETTINGS``:
paths, engine, threads, Spark session, read by ``dbt_project/profiles.yml`` and the source definitions), the compiled
artifacts go to ``<home>/dbt/target`` and the logs to ``<home>/dbt/logs``, never into the checkout.

The result is structured: one :class:`NodeOutcome` per model, seed, test, snapshot or source freshness check,
with its status, timing and message, the dbt invocation id, and :attr:`DbtRun.failures` naming each failing
node. dbt runs in this process (``dbt.cli.main.dbtRunner``): two runs must not overlap in one process, and the
warehouse file has one writer at a time (DuckDB's lock), which the Airflow pool of size 1 guarantees.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from oncopipe.contracts.settings import DBT_PROJECT_DIR, Settings, get_settings, variable
from oncopipe.warehouse.lineage import LINEAGE_COMMANDS, LineageParent, emit_dbt_lineage

DbtCommand = Literal["build", "run", "test", "seed", "docs", "freshness", "compile", "parse"]

# Statuses of a node that make the run fail (dbt's RunStatus / TestStatus / FreshnessStatus values).
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
_DBT_ARGS: dict[str, list[str]] = {
    "build": ["build"], "run": ["run"], "test": ["test"], "seed": ["seed"], "compile": ["compile"],
    "parse": ["parse"], "docs": ["docs", "generate", "--static"], "freshness": ["source", "freshness"],
}
_SELECTABLE = {"build", "run", "test", "seed", "compile", "docs", "freshness"}
_FULL_REFRESH = {"build", "run", "seed"}


@dataclass(frozen=True)
class NodeOutcome:
    """What happened to one node (model, seed, test, snapshot, source) in a dbt invocation."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    execution_time_s: float
    message: str | None = None
    failures: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def layer(self) -> str:
        """staging, intermediate, marts, seeds, tests, sources or other (from the node id and type)."""
        if self.resource_type == "seed":
            return "seeds"
        if self.resource_type in ("test", "unit_test"):
            return "tests"
        if self.resource_type == "source":
            return "sources"
        if self.resource_type != "model":
            return "other"
        if self.name.startswith("stg_"):
            return "staging"
        if self.name.startswith("int_"):
            return "intermediate"
        return "marts"

    def describe(self) -> str:
        """One line naming the node, its status and its message (for logs, alerts and the CLI)."""
        detail = f": {self.message}" if self.message else ""
        count = f" ({self.failures} failing rows)" if self.failures else ""
        return f"{self.resource_type} {self.name} [{self.status}]{count}{detail}"


@dataclass(frozen=True)
class DbtRun:
    """The outcome of one dbt invocation: ``name`` is the logical command, ``args`` the dbt command line."""

    name: str
    args: tuple[str, ...]
    success: bool
    invocation_id: str | None
    elapsed_s: float
    nodes: tuple[NodeOutcome, ...] = ()
    error: str | None = None
    target_path: Path | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> tuple[NodeOutcome, ...]:
        """The nodes that failed (error, failing test, runtime error)."""
        return tuple(n for n in self.nodes if n.failed)

    @property
    def warnings(self) -> tuple[NodeOutcome, ...]:
        return tuple(n for n in self.nodes if n.status == "warn")

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts

    def summary(self) -> str:
        """A few lines: the command, the counts per status, then every failure with its message."""
        counts = ", ".join(f"{k}={v}" for k, v in sorted(self.by_status().items())) or "no nodes"
        head = (f"dbt {' '.join(self.args)}: {'success' if self.success else 'FAILED'} in {self.elapsed_s:.1f}s "
                f"({counts}; invocation {self.invocation_id})")
        lines = [head]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines.extend(f"  {n.describe()}" for n in self.failures)
        return "\n".join(lines)

    def raise_for_failure(self) -> DbtRun:
        """Return self, or raise :class:`DbtRunError` (with the summary) if the run failed."""
        if not self.success:
            raise DbtRunError(self)
        return self


class LandingError(ValueError):
    """The landing cannot be read as asked (no accepted extraction, or a format setting it contradicts)."""


#: Values of the ``landing_format`` var: ``auto`` reads each extraction in the format it landed in.
LANDING_FORMATS = ("auto", "parquet", "csv")


def prepare_landing(settings: Settings | None = None, *, extraction_date: str | None = None,
                    landing_format: str = "auto") -> dict[str, dict[str, list[str]]]:
    """Write the views ``landing.<source>`` the dbt sources read, over the accepted extractions.

    Each view unions, by column name, the part files of every extraction of the source up to
    ``extraction_date`` (every landed one when None), Parquet and CSV alike: the format is read from the files
    that landed, so a CSV delivery is read as CSV whatever was delivered before. Extractions newer than the one
    being processed are left out: they have not passed their raw gate yet.

    Args:
        settings: where the landing and the warehouse are (default: environment).
        extraction_date: the newest extraction to read (the one the refresh processes).
        landing_format: ``auto`` (default), or ``parquet``/``csv`` to insist on one format: an extraction that
            landed in another format is then an error naming the setting, the source and the files.

    Returns:
        For each source, the formats of each extraction read (``{source: {date: [formats]}}``).

    Raises:
        LandingError: a source has no accepted extraction, or ``landing_format`` contradicts what landed.
    """
    import duckdb

    from oncopipe.contracts.sources import SOURCES
    from oncopipe.landing.layout import landed_parts, part_formats, relation_sql

    settings = settings or get_settings()
    if landing_format not in LANDING_FORMATS:
        raise LandingError(f"dbt var landing_format must be one of {', '.join(LANDING_FORMATS)}, "
                           f"got {landing_format!r}")
    bound = f" up to extraction {extraction_date}" if extraction_date else ""
    views: dict[str, str] = {}
    read: dict[str, dict[str, list[str]]] = {}
    missing = []
    for source in SOURCES:
        parts = landed_parts(settings.landing, source.name, extraction_date)
        files = [p for paths in parts.values() for p in paths]
        if not files:
            missing.append(source.name)
            continue
        read[source.name] = {d: part_formats(paths) for d, paths in parts.items()}
        if landing_format != "auto":
            other = {d: formats for d, formats in read[source.name].items() if formats not in ([], [landing_format])}
            if other:
                landed = ", ".join(sorted({f for formats in other.values() for f in formats}))
                raise LandingError(
                    f"dbt var landing_format={landing_format!r}, but {source.name} extraction(s) "
                    f"{', '.join(other)} landed as {landed} in {settings.landing / source.name}; "
                    "drop the setting (auto reads what landed)")
        views[source.name] = relation_sql(files, hive=True)
    if missing:
        raise LandingError(f"no accepted extraction{bound} in landing folder {settings.landing} for source(s): "
                           f"{', '.join(missing)} (expected <landing>/<source>/extraction=YYYY-MM-DD/"
                           "part-NNNNN.parquet or .csv; generate one with `oncopipe generate`)")
    if settings.engine == "spark":
        from oncopipe.warehouse.spark_engine import SparkLandingError, register_landing

        parts = {s.name: landed_parts(settings.landing, s.name, extraction_date) for s in SOURCES}
        try:
            register_landing(settings, parts)
        except SparkLandingError as exc:
            raise LandingError(str(exc)) from exc
        return read
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse))
    try:
        con.execute("create schema if not exists landing")
        for name, relation in views.items():
            con.execute(f'create or replace view landing."{name}" as select * from {relation}')
    finally:
        con.close()
    return read


#: The settings ``dbt_project/`` reads with ``env_var`` (a test checks that the list covers every one it reads).
DBT_SETTINGS = ("home", "landing", "warehouse", "engine", "dbt_threads", "duckdb_threads", "duckdb_memory_limit",
                "duckdb_storage_version", "duckdb_temp_directory", "spark_method", "spark_host", "spark_port",
                "spark_warehouse", "spark_cores", "spark_shuffle_partitions", "spark_driver_memory")


class DbtRunError(RuntimeError):
    """A dbt invocation failed; ``run`` holds the structured result."""

    def __init__(self, run: DbtRun) -> None:
        super().__init__(run.summary())
        self.run = run


def dbt_environment(settings: Settings) -> dict[str, str]:
    """The environment variables the dbt project reads (``env_var`` in ``profiles.yml`` and the sources), from the
    platform settings: a value that came from the ``.env`` file reaches dbt as well as one from the environment."""
    return {
        **{variable(name): str(getattr(settings, name)) for name in DBT_SETTINGS},
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
    }


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def dbt_args(
    command: DbtCommand,
    settings: Settings,
    *,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    full_refresh: bool = False,
    vars: Mapping[str, Any] | None = None,
    quiet: bool = False,
    indirect_selection: str | None = None,
    project_dir: Path = DBT_PROJECT_DIR,
) -> list[str]:
    """The dbt command line for ``command`` (without the leading ``dbt``)."""
    if command not in _DBT_ARGS:
        raise ValueError(f"unknown dbt command {command!r}; known: {', '.join(_DBT_ARGS)}")
    args = [*(["--quiet"] if quiet else []), *_DBT_ARGS[command],
            "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
            "--target-path", str(settings.dbt_target_dir), "--log-path", str(settings.dbt_log_dir)]
    if select:
        if command not in _SELECTABLE:
            raise ValueError(f"dbt {command} takes no --select")
        args += ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    if indirect_selection:
        args += ["--indirect-selection", indirect_selection]
    if full_refresh:
        if command not in _FULL_REFRESH:
            raise ValueError(f"dbt {command} takes no --full-refresh")
        args.append("--full-refresh")
    if vars:
        args += ["--vars", yaml.safe_dump(dict(vars), default_flow_style=True).strip()]
    return args


def _outcomes(result: Any) -> tuple[NodeOutcome, ...]:
    out = []
    for item in getattr(result, "results", None) or ():
        node = getattr(item, "node", None)
        execute = next((t for t in getattr(item, "timing", ()) or () if t.name == "execute"), None)
        status = getattr(item, "status", "")
        message = getattr(item, "message", None)
        if message is None and getattr(item, "max_loaded_at", None) is not None:
            message = f"latest extraction {item.max_loaded_at:%Y-%m-%d}, {item.age / 86400:.0f} days old"
        out.append(NodeOutcome(
            unique_id=getattr(node, "unique_id", getattr(item, "unique_id", "?")),
            name=getattr(node, "name", "?"),
            resource_type=str(getattr(node, "resource_type", "?")),
            status=str(getattr(status, "value", status)),
            execution_time_s=float(getattr(item, "execution_time", 0.0) or 0.0),
            message=message,
            failures=getattr(item, "failures", None),
            started_at=getattr(execute, "started_at", None),
            completed_at=getattr(execute, "completed_at", None),
        ))
    return tuple(out)


def _release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run.

    dbt-duckdb caches its database handle at class level (``DuckDBConnectionManager._ENV``) for the life of the
    process; left open, it holds DuckDB's file lock, so no other process (publish, the marts gate) and no
    read-only connection of this one could open the warehouse. There is no public API to release it.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
        if env is not None:
            env.close()


def run_dbt(
    command: DbtCommand,
    *,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    full_refresh: bool = False,
    vars: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    callbacks: Sequence[Callable[[Any], None]] = (),
    quiet: bool = False,
    indirect_selection: str | None = None,
    lineage_parent: LineageParent | None = None,
) -> DbtRun:
    """Run one dbt command on the platform's landing folder and warehouse.

    Args:
        command: ``build``, ``run``, ``test``, ``seed``, ``docs`` (docs generate), ``freshness`` (source
            freshness), ``compile`` or ``parse``.
        select: dbt node selection (``--select``), e.g. ``["marts"]`` or ``["+poor_prognosis_cases"]``.
        exclude: dbt node exclusion (``--exclude``).
        full_refresh: rebuild incremental models from all the landed extractions.
        vars: project variables (``hospital_days``, ``discontinuation_gap_days`` ...); ``extraction_date`` and
            ``landing_format`` also bound and check the landing views (:func:`prepare_landing`).
        settings: where to read and write (default: :func:`oncopipe.contracts.settings.get_settings`).
        callbacks: functions called with every dbt event (progress reporting).
        quiet: print only errors to the console (the full log still goes to ``<home>/dbt/logs``).
        indirect_selection: dbt's ``--indirect-selection`` (``cautious`` selects only the tests whose parents are
            all selected, to build one layer at a time).
        lineage_parent: the OpenLineage run of the Airflow task running dbt, named as the parent of the
            events emitted for the nodes of a build, run, test or seed (:mod:`oncopipe.warehouse.lineage`).

    Returns:
        The structured outcome; it does not raise on a failed run (see :meth:`DbtRun.raise_for_failure`).
    """
    from dbt.cli.main import dbtRunner
    from dbt_common.invocation import get_invocation_id

    settings = (settings or get_settings()).ensure()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    settings.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    args = dbt_args(command, settings, select=select, exclude=exclude, full_refresh=full_refresh, vars=vars,
                    quiet=quiet, indirect_selection=indirect_selection)
    started = time.perf_counter()
    if command != "parse":
        try:
            prepare_landing(settings, extraction_date=(vars or {}).get("extraction_date"),
                            landing_format=str((vars or {}).get("landing_format", "auto")))
        except LandingError as exc:
            return DbtRun(name=command, args=tuple(args), success=False, invocation_id=None,
                          elapsed_s=time.perf_counter() - started, error=str(exc),
                          target_path=settings.dbt_target_dir, vars=dict(vars or {}))
    with _environment(dbt_environment(settings)):
        try:
            outcome = dbtRunner(callbacks=list(callbacks)).invoke(args)
            invocation_id = get_invocation_id()
        finally:
            if settings.engine == "duckdb":
                _release_warehouse()
        if command in LINEAGE_COMMANDS:
            emit_dbt_lineage(settings, parent=lineage_parent)
    elapsed = time.perf_counter() - started
    nodes = _outcomes(outcome.result)
    error = None
    if outcome.exception is not None:
        error = f"{type(outcome.exception).__name__}: {outcome.exception}"
    success = bool(outcome.success) and outcome.exception is None and not any(n.failed for n in nodes)
    if not success and error is None and not any(n.failed for n in nodes):
        error = f"dbt reported a failure without a failing node (see the dbt log in {settings.dbt_log_dir})"
    return DbtRun(name=command, args=tuple(args), success=success, invocation_id=invocation_id, elapsed_s=elapsed,
                  nodes=nodes, error=error, target_path=settings.dbt_target_dir, vars=dict(vars or {}))
