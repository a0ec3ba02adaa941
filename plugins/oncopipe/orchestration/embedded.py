"""The embedded default: the whole platform in one process (SQLite metadata, DuckDB warehouse, local files).

:func:`run_platform` is what ``oncopipe run`` and ``oncopipe demo`` do:

1. point Airflow at ``<home>/airflow`` (SQLite) and this checkout's ``dags/``; migrate the metadata database
   if needed; create the pool ``duckdb_writer`` (size 1);
2. generate a synthetic extraction if none has landed (the generator, :mod:`oncopipe.synth`; ``oncopipe demo``
   lands it the real way: delivered CSV, then ``oncopipe import``);
3. parse the dbt project (the refresh DAG has one task per model, generated from the manifest) in a child
   process, overlapping steps 1-2 and the build of Airflow's in-process execution API;
4. mark failed the runs a killed earlier ``oncopipe run`` left ``running`` (everything runs in this one process,
   so no other process can be running them);
5. run ``platform_refresh`` with ``dag.test()`` once per new extraction, oldest first, each through its gates;
6. run, with ``dag.test()`` as well, every approved study DAG whose Assets were all updated since its last
   *successful* run (the rule the scheduler applies to an ``AssetAll`` schedule, except that a run that failed
   or died does not count as served), or that owes an export of the current published version;
7. report where the results are: published version, exports, the studies still owed an export, and the time
   each task took.

The same DAG files run unchanged under the production topology (docker-compose.yml); only the runner differs.
Airflow reads its configuration when first imported, so :func:`configure` must run before anything imports
``airflow`` (the CLI commands import it lazily).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oncopipe.contracts.settings import DAGS_DIR, PLUGINS_DIR, Settings, get_settings
from oncopipe.orchestration.alerts import task_log_path
from oncopipe.warehouse.lineage import JOB_NAMESPACE, events_file

log = logging.getLogger(__name__)

REFRESH_DAG_ID = "platform_refresh"
POOL = "duckdb_writer"
DEFAULT_PATIENTS = 2_000
DEFAULT_SEED = 42
DEFAULT_EXTRACTION_DATE = "2025-06-30"

Progress = Callable[[str], None]


@dataclass
class TaskTiming:
    dag_id: str
    run_id: str
    task_id: str
    state: str | None
    seconds: float
    inner: dict[str, Any] = field(default_factory=dict)


@dataclass
class DagRunOutcome:
    """One DAG run: ``failed_tasks`` failed themselves; ``skipped_tasks`` did not run because one upstream did."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: list[TaskTiming]
    failed_tasks: list[str] = field(default_factory=list)
    note: str = ""
    skipped_tasks: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """``<state> in <s>s``, the failed tasks, and how many were skipped because of them."""
        text = f"{self.state} in {self.seconds:.1f}s"
        if self.failed_tasks:
            text += f"; failed: {', '.join(self.failed_tasks)}"
        if self.skipped_tasks:
            text += f"; {len(self.skipped_tasks)} downstream task(s) skipped (upstream failed)"
        return text


def split_failures(tasks: list[TaskTiming]) -> tuple[list[str], list[str]]:
    """Tasks that failed, and tasks that never ran because an upstream task failed (Airflow's upstream_failed)."""
    failed = [t.task_id for t in tasks if t.state == "failed"]
    skipped = [t.task_id for t in tasks if t.state == "upstream_failed"]
    return failed, skipped


@dataclass
class PlatformRun:
    """What one embedded run did."""

    started_at: str
    seconds: float = 0.0
    generated: str | None = None
    refreshes: list[DagRunOutcome] = field(default_factory=list)
    studies: list[DagRunOutcome] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)
    published_version: str | None = None
    published_extraction: str | None = None
    published_path: str | None = None
    exports: dict[str, str] = field(default_factory=dict)
    owed: dict[str, str] = field(default_factory=dict)
    interrupted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.state == "success" for r in (*self.refreshes, *self.studies))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def airflow_environment(settings: Settings) -> dict[str, str]:
    """The environment the embedded Airflow runs with (metadata DB and logs under ``settings.airflow_home``)."""
    home = settings.airflow_home
    secret_file = home / "jwt_secret"
    if not secret_file.exists():
        home.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(64), encoding="utf-8")
        secret_file.chmod(0o600)
    lineage_file = events_file(settings)
    lineage_file.parent.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        # The project's plugins/ (the operator views: Plugins menu -> Quality gates, Data Docs, dbt docs, Exports);
        # Airflow's default, <AIRFLOW_HOME>/plugins, holds nothing here.
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text(encoding="utf-8").strip(),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # Airflow's OpenLineage provider reports each task run to the file the dbt model events go to
        # (oncopipe.warehouse.lineage), so the file holds the whole hierarchy: DAG run -> task -> dbt model.
        "AIRFLOW__OPENLINEAGE__TRANSPORT": os.environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(
            {"type": "file", "log_file_path": str(lineage_file), "append": True})),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": os.environ.get("AIRFLOW__OPENLINEAGE__NAMESPACE", JOB_NAMESPACE),
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|oncopipe)\..*",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "False",
        # No mail server in the embedded default: the notify task is skipped, saying so, instead of failing,
        # unless ONCOPIPE_MAIL_OPTIONAL says otherwise.
        "ONCOPIPE_MAIL_OPTIONAL": "0" if settings.mail_optional is False else "1",
    }


def configure(settings: Settings | None = None) -> Settings:
    """Set the embedded Airflow environment in this process; call it before importing ``airflow``."""
    import sys

    settings = (settings or get_settings()).ensure()
    env = airflow_environment(settings)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        raise RuntimeError(f"airflow was imported before the embedded configuration (AIRFLOW_HOME="
                           f"{os.environ.get('AIRFLOW_HOME')!r}, wanted {env['AIRFLOW_HOME']!r}): "
                           "run in a fresh process")
    os.environ.update(env)
    return settings


def prepare_metadata(progress: Progress = print) -> None:
    """Migrate the SQLite metadata database if needed, and create the pool ``duckdb_writer`` (size 1)."""
    from airflow.models.pool import Pool
    from airflow.utils import db

    try:
        db.check_migrations(timeout=1)
    except TimeoutError:
        progress("migrating the Airflow metadata database (first run)")
        db.upgradedb()
    from oncopipe.contracts.settings import warehouse_writer_slots

    slots = warehouse_writer_slots()
    Pool.create_or_update_pool(POOL, slots=slots, include_deferred=False,
                               description="one writer of the DuckDB warehouse at a time" if slots == 1
                               else f"warehouse tasks on a Spark server: {slots} at a time")


def ensure_extraction(settings: Settings, *, patients: int, seed: int, extraction_date: str,
                      progress: Progress = print, delivered: bool = False) -> str | None:
    """Generate one synthetic extraction if nothing has landed yet; returns its date (None if not needed).

    With ``delivered``, the extraction takes the real path: generated aside, written as the insurer delivers it
    (``<home>/deliveries/synthetic-<date>/``, CSV, :mod:`oncopipe.synth.delivered`, kept for a look) and landed by
    ``oncopipe import``, every source of the contract.
    """
    from oncopipe.warehouse import refresh

    if refresh.landed_extractions(settings):
        return None
    from oncopipe.synth.extraction import generate

    progress(f"no extraction has landed: generating {patients:,} synthetic people at {extraction_date}")
    if not delivered:
        generate(settings.landing, patients, seed, extraction_date)
        return extraction_date
    land_delivered(settings, patients=patients, seed=seed, extraction_date=extraction_date, progress=progress)
    return extraction_date


def land_delivered(settings: Settings, *, patients: int, seed: int, extraction_date: str,
                   progress: Progress = print) -> Path:
    """Generate an extraction, deliver it as CSV and land it with ``oncopipe import``; returns the delivery folder."""
    import shutil

    from oncopipe.landing.importer import import_extract
    from oncopipe.synth.delivered import write_delivered
    from oncopipe.synth.extraction import TRUTH_DIR, generate

    scratch = settings.home / "deliveries" / f".generated-{extraction_date}"
    delivery = settings.home / "deliveries" / f"synthetic-{extraction_date}"
    for folder in (scratch, delivery):
        shutil.rmtree(folder, ignore_errors=True)
    try:
        generate(scratch, patients, seed, extraction_date)
        written = write_delivered(scratch, extraction_date, delivery)
        progress(f"delivered {len(written.files)} CSV files in {delivery}; oncopipe import")
        report = import_extract(delivery, settings.landing, extraction_date)
        progress(f"imported {sum(report.rows.values()):,} lines of {len(report.rows)} sources")
        truth = settings.landing / TRUTH_DIR / f"extraction={extraction_date}"
        shutil.rmtree(truth, ignore_errors=True)
        truth.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(scratch / TRUTH_DIR / f"extraction={extraction_date}", truth)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return delivery


def manifest_is_stale(settings: Settings) -> bool:
    """Whether the dbt manifest is missing or older than a file of the dbt project."""
    from oncopipe.contracts.settings import DBT_PROJECT_DIR
    from oncopipe.warehouse import dbt_nodes

    manifest = dbt_nodes.manifest_path(settings)
    newest = max((p.stat().st_mtime for p in DBT_PROJECT_DIR.rglob("*")
                  if p.is_file() and "target" not in p.parts and "logs" not in p.parts), default=0.0)
    return not manifest.exists() or manifest.stat().st_mtime < newest


def ensure_manifest(settings: Settings, progress: Progress = print) -> Path:
    """Parse the dbt project when its manifest is missing or older than any project file."""
    from oncopipe.warehouse import dbt_nodes

    if manifest_is_stale(settings):
        progress("parsing the dbt project (one refresh task per model)")
        dbt_nodes.parse(settings)
    return dbt_nodes.manifest_path(settings)


def start_manifest_parse(settings: Settings, progress: Progress = print) -> subprocess.Popen | None:
    """Start ``dbt parse`` in a child process when the manifest is stale (None when it is up to date).

    The parse (20 to 35 s on this machine) then overlaps Airflow's start-up in this process (import, metadata
    migration, :func:`warm_execution_api`) and the generation of a first extraction, on the second core.
    """
    from oncopipe.warehouse.dbt_runner import dbt_args, dbt_environment

    if not manifest_is_stale(settings):
        return None
    progress("parsing the dbt project in the background (one refresh task per model)")
    settings.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.Popen([str(dbt), *dbt_args("parse", settings, quiet=True)],
                            env={**os.environ, **dbt_environment(settings)})


def finish_manifest_parse(child: subprocess.Popen | None, settings: Settings) -> None:
    """Wait for :func:`start_manifest_parse`; raises naming the dbt log when the parse failed."""
    if child is None:
        return
    code = child.wait()
    if code != 0:
        raise RuntimeError(f"dbt parse failed (exit {code}): see {settings.dbt_log_dir / 'dbt.log'}")


def warm_execution_api() -> float:
    """Build Airflow's in-process execution API now; returns the seconds it took.

    ``dag.test()`` runs each task through this API and builds it on the first task (FastAPI routes, then
    cadwyn's versioned routers on the first request: about 12 s unloaded, 26 s at a load of 10). Built here,
    it overlaps the background dbt parse instead of adding to the first task. Best effort: on any error the
    first task builds it as before.
    """
    started = time.perf_counter()
    try:
        import httpx
        from airflow.sdk.execution_time.supervisor import in_process_api_server

        api = in_process_api_server()
        with httpx.Client(transport=api.transport, base_url="http://in-process.invalid./") as client:
            client.get("health")
    except Exception:  # noqa: BLE001 - an optimisation only
        log.debug("could not warm the in-process execution API", exc_info=True)
    return time.perf_counter() - started


def platform_dag_ids() -> list[str]:
    """The refresh DAG and every study DAG of the registry (read from the YAML; nothing is imported)."""
    from oncopipe.studies.registry import scan_registry

    return [REFRESH_DAG_ID, *(e.study.dag_id for e in scan_registry(check_kinds=False) if e.study)]


def load_dags() -> dict[str, Any]:
    """Parse the dags folder; raises naming every file that failed to import."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    if bag.import_errors:
        raise RuntimeError("DAG import errors:\n" + "\n".join(f"{f}: {e}" for f, e in bag.import_errors.items()))
    return dict(bag.dags)


#: Task-id prefixes reported as one stage (one line when the whole group has finished).
STAGE_GROUPS = {"transform.": "dbt seeds, staging, intermediate", "marts_candidate.": "dbt marts (candidate)"}
_CALLBACKS = ("on_success_callback", "on_failure_callback", "on_skipped_callback", "on_retry_callback")


class StageReporter:
    """Progress lines while ``dag.test()`` runs: one per task, or one per group for the dbt task groups.

    Attached to the tasks as extra state-change callbacks (which ``dag.test()`` runs in this process, after each
    task), so the operator of an embedded run sees each stage as it ends, with its time and, for a failure, why.
    """

    def __init__(self, dag: Any, progress: Progress) -> None:
        self.dag_id = dag.dag_id
        self.progress = progress
        self.group_size = {p: sum(t.task_id.startswith(p) for t in dag.tasks) for p in STAGE_GROUPS}
        self.group_done: dict[str, list[str]] = {p: [] for p in STAGE_GROUPS}
        self.group_started: dict[str, float] = {}
        self.last = time.perf_counter()

    def __call__(self, context: dict[str, Any]) -> None:
        ti = context["ti"]
        state = str(getattr(ti.state, "value", ti.state) or "")
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        group = next((p for p in STAGE_GROUPS if ti.task_id.startswith(p)), None)
        if group is None:
            detail = ""
            if state in ("failed", "up_for_retry", "skipped") and context.get("exception") is not None:
                detail = f": {context['exception']}"
            warned = gate_warnings(self.dag_id, ti.run_id, ti.task_id) if state == "success" else 0
            if warned:
                state = f"success with {warned} warning(s) (Airflow UI: Plugins -> Quality gates)"
            self.progress(f"  {ti.task_id} {state} ({seconds:.1f} s){detail}")
            return
        self.group_started.setdefault(group, now - seconds)
        done = self.group_done[group]
        done.append(state)
        if state != "success":
            self.progress(f"  {ti.task_id} {state}: {context.get('exception') or ''}")
        if len(done) == self.group_size[group]:
            ok = done.count("success")
            self.progress(f"  {STAGE_GROUPS[group]}: {ok}/{len(done)} models and seeds built with their tests "
                          f"({now - self.group_started[group]:.1f} s)")

    def attach(self, dag: Any) -> list[tuple[Any, str, Any]]:
        saved = []
        for task in dag.tasks:
            for kind in _CALLBACKS:
                current = getattr(task, kind, None)
                saved.append((task, kind, current))
                listed = list(current) if isinstance(current, list | tuple) else ([current] if current else [])
                setattr(task, kind, [*listed, self])
        return saved


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s*")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _output_file() -> Path | None:
    """The regular file this process's stdout goes to (``oncopipe run`` sends it to its run log), else None."""
    try:
        if not stat.S_ISREG(os.fstat(1).st_mode):
            return None
        return Path(os.readlink("/proc/self/fd/1"))
    except OSError:
        return None


class TaskLogWriter(logging.Handler):
    """Each task try of a ``dag.test()`` run gets its log file where the Airflow UI reads it.

    ``dag.test()`` runs every task in this process and everything a task prints (Airflow's task logger, dbt,
    GX, oncopipe) goes to this process's output, one ``logs/embedded/run-*.log`` per ``oncopipe run``: the UI's
    log view found nothing for any task. Started by the task's ``on_execute_callback`` and finished by its
    end-of-try callback, this writer copies what the task printed to :func:`task_log_path`, as Airflow's
    structured JSON lines (one per line printed, with its time). When this process's output is not a file
    (``--verbose``: a terminal), it collects what the task logs through Python's logging instead. A try that
    failed starts with the reason (the gate's or dbt's message), so the operator reads it first.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[dict[str, Any]] = []
        self.started: dt.datetime | None = None
        self.output: Path | None = None
        self.offset = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted record must not fail the task
            event = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            event += "\n" + logging.Formatter().formatException(record.exc_info)
        self.records.append({"timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
                             "event": event, "level": record.levelname.lower(), "logger": record.name})

    def start(self, context: dict[str, Any]) -> None:
        self.records, self.started = [], dt.datetime.now(dt.UTC)
        sys.stdout.flush()
        sys.stderr.flush()
        self.output = _output_file()
        if self.output is not None:
            self.offset = self.output.stat().st_size
        else:
            logging.getLogger().addHandler(self)

    def _printed(self) -> list[dict[str, Any]]:
        """What the task printed to the output file since :meth:`start`, one entry per line."""
        sys.stdout.flush()
        sys.stderr.flush()
        with self.output.open("rb") as out:
            out.seek(self.offset)
            text = out.read().decode("utf-8", errors="replace")
        entries, when = [], (self.started or dt.datetime.now(dt.UTC)).isoformat()
        for raw in text.splitlines():
            line = _ANSI.sub("", raw).rstrip()
            if not line:
                continue
            found = _TIMESTAMP.match(line)
            if found:
                when, line = found.group(1), line[found.end():]
            entries.append({"timestamp": when, "event": line})
        return entries

    def finish(self, context: dict[str, Any]) -> None:
        logging.getLogger().removeHandler(self)
        ti = context["ti"]
        state = str(getattr(ti.state, "value", ti.state) or "")
        started = (self.started or dt.datetime.now(dt.UTC)).isoformat()
        head = [{"timestamp": started, "event": f"oncopipe embedded run (dag.test): {ti.dag_id} / {ti.run_id} / "
                                               f"{ti.task_id}, try {ti.try_number}", "level": "info",
                 "logger": __name__}]
        error = context.get("exception")
        if state in ("failed", "up_for_retry") and error is not None:
            # First, under the same time as the head: the reader orders lines by time, then by line.
            head = [{"timestamp": started, "event": f"Task failed: {line}", "level": "error", "logger": __name__}
                    for line in str(error).splitlines() or [type(error).__name__]] + head
        body = self._printed() if self.output is not None else self.records
        tail = [{"timestamp": dt.datetime.now(dt.UTC).isoformat(), "event": f"task ended: {state}",
                 "level": "error" if state in ("failed", "up_for_retry") else "info", "logger": __name__}]
        map_index = getattr(ti, "map_index", None)
        path = task_log_path(ti.dag_id, ti.run_id, ti.task_id, int(ti.try_number),
                             -1 if map_index is None else int(map_index))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for line in (*head, *body, *tail):
                out.write(json.dumps(line, default=str) + "\n")
        self.records, self.output = [], None

    def attach(self, dag: Any) -> list[tuple[Any, str, Any]]:
        saved = []
        for task in dag.tasks:
            for kind in ("on_execute_callback", *_CALLBACKS):
                current = getattr(task, kind, None)
                saved.append((task, kind, current))
                listed = list(current) if isinstance(current, list | tuple) else ([current] if current else [])
                added = self.start if kind == "on_execute_callback" else self.finish
                # First to start, last to finish: the log holds what the other callbacks (the failure mail) said.
                setattr(task, kind, [added, *listed] if kind == "on_execute_callback" else [*listed, added])
        return saved


def test_dag(dag: Any, *, run_conf: dict[str, Any] | None = None, progress: Progress | None = None
             ) -> DagRunOutcome:
    """Run one DAG run in this process with ``dag.test()`` and collect its task timings.

    A DAG's deadline alerts are dropped for the test run: they need a scheduler to be evaluated, and
    ``dag.test()`` in Airflow 3.3.2 fails at the end of a run of a DAG that has one (it looks the alerts up by
    id in a DAG that was never written by the DAG processor). With ``progress``, a line is reported as each
    stage ends (:class:`StageReporter`). Each task try's log is written where the UI reads it
    (:class:`TaskLogWriter`).
    """
    dag.deadline = None
    saved = StageReporter(dag, progress).attach(dag) if progress is not None else []
    saved += TaskLogWriter().attach(dag)
    started = time.perf_counter()
    try:
        dag_run = dag.test(run_conf=run_conf)
    finally:
        for task, kind, value in reversed(saved):  # the values saved first are the originals
            setattr(task, kind, value)
    seconds = time.perf_counter() - started
    tasks = task_timings(dag.dag_id, dag_run.run_id)
    failed, skipped = split_failures(tasks)
    return DagRunOutcome(dag.dag_id, dag_run.run_id, str(getattr(dag_run.state, "value", dag_run.state)), seconds,
                         tasks, failed, skipped_tasks=skipped)


def return_value(dag_id: str, run_id: str, task_id: str) -> Any:
    """The decoded XCom ``return_value`` of one task instance, or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id,
            XComModel.key == "return_value"))
    try:
        return json.loads(value) if isinstance(value, str) else value
    except (TypeError, ValueError):
        return None


def gate_warnings(dag_id: str, run_id: str, task_id: str) -> int:
    """How many warnings a passed gate task recorded (its summary's ``failed_warnings``); 0 for other tasks."""
    if not task_id.endswith("_gate"):
        return 0
    summary = return_value(dag_id, run_id, task_id)
    return int(summary.get("failed_warnings") or 0) if isinstance(summary, dict) else 0


def task_timings(dag_id: str, run_id: str) -> list[TaskTiming]:
    """State, duration and (for dbt and gate tasks) the XCom summary of every task of a run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    out = []
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                                         TaskInstance.run_id == run_id)).all()
        for ti in sorted(tis, key=lambda t: (t.start_date or dt.datetime.max.replace(tzinfo=dt.UTC))):
            seconds = (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else 0.0
            inner: dict[str, Any] = {}
            value = session.scalar(select(XComModel.value).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == ti.task_id,
                XComModel.key == "return_value"))
            if value is not None:
                try:
                    decoded = json.loads(value) if isinstance(value, str) else value
                except (TypeError, ValueError):
                    decoded = None
                if isinstance(decoded, dict) and "dbt_seconds" in decoded:
                    inner = {"dbt_seconds": decoded["dbt_seconds"], "wall_seconds": decoded["wall_seconds"]}
            state = getattr(ti.state, "value", ti.state)
            out.append(TaskTiming(dag_id, run_id, ti.task_id, state, round(seconds, 3), inner))
    return out


def updated_assets_since(uris: list[str], since: dt.datetime | None) -> dict[str, dict[str, Any]]:
    """For each URI, the extra of its newest Asset event after ``since`` (absent if none)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    out: dict[str, dict[str, Any]] = {}
    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.timestamp, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri.in_(uris))
            .order_by(AssetEvent.timestamp)
        ).all()
    for uri, timestamp, extra in rows:
        if since is None or timestamp > since:
            out[uri] = dict(extra or {})
    return out


def last_success_start(dag_id: str) -> dt.datetime | None:
    """When the latest successful run of ``dag_id`` started (None if none succeeded).

    A run that failed, or died and stays ``running``, did not serve the Asset events before it: they still
    make the study due.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.max(DagRun.start_date)).where(DagRun.dag_id == dag_id,
                                                                       DagRun.state == DagRunState.SUCCESS))


def fail_interrupted_runs() -> list[str]:
    """Mark failed every DAG run left ``running`` or ``queued`` (by a killed earlier embedded run).

    Only for the embedded runner: it runs every DAG run in its own process, so at its start no run can be
    live. Returns ``<dag_id>/<run_id>`` of each run marked.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    marked = []
    with create_session() as session:
        for run in session.scalars(select(DagRun).where(DagRun.state.in_([DagRunState.RUNNING,
                                                                            DagRunState.QUEUED]))).all():
            run.set_state(DagRunState.FAILED)
            marked.append(f"{run.dag_id}/{run.run_id}")
    return marked


def owed_exports(settings: Settings | None = None) -> dict[str, str]:
    """Approved, Asset-scheduled studies with no export of the current published mart version, and why.

    Every publish announces every table, so each such study owes one export per published version; one that
    failed, or died mid-export, still owes it until a run exports it.
    """
    from oncopipe.delivery import export_store
    from oncopipe.studies.registry import scan_registry
    from oncopipe.warehouse import versions

    settings = settings or get_settings()
    current = versions.current_version(settings)
    if current is None:
        return {}
    exported = {(e["study_id"], e["mart_version"]) for e in export_store.list_exports(settings.exports)}
    owed = {}
    for entry in scan_registry(check_kinds=False):
        study = entry.study
        if study is None or not study.asset_uris or study.approval_problem() is not None:
            continue
        if (study.id, current.version) not in exported:
            owed[study.dag_id] = f"owes an export of mart version {current.version}"
    return owed


WAITING = "waiting for Asset events"


def due_studies(dags: dict[str, Any]) -> tuple[list[tuple[Any, dict[str, Any]]], dict[str, str]]:
    """Study DAGs due to run, and why the others wait.

    Due: every scheduled Asset has an event since the study's last successful run, or the study owes an
    export of the current published version (:func:`owed_exports`: its run failed or died after a publish).
    """
    from oncopipe.studies.registry import scan_registry
    from oncopipe.warehouse import versions

    owed = owed_exports()
    due, waiting = [], {}
    for entry in scan_registry(check_kinds=False):
        study = entry.study
        if study is None:
            waiting[entry.path.stem] = f"invalid study file: {entry.error}"
            continue
        if study.dag_id not in dags:
            waiting[study.dag_id] = "no DAG"
            continue
        if not study.asset_uris:
            waiting[study.dag_id] = f"cron schedule {study.schedule.cron!r}: runs on its schedule, not on Assets"
            continue
        problem = study.approval_problem()
        if problem is not None:
            waiting[study.dag_id] = f"refused: {problem} (its DAG stops at check_approval; nothing is read)"
            continue
        updated = updated_assets_since(study.asset_uris, last_success_start(study.dag_id))
        missing = [u for u in study.asset_uris if u not in updated]
        if missing and study.dag_id in owed:
            due.append((dags[study.dag_id], {"mart_version": versions.current_version().version}))
            continue
        if missing:
            waiting[study.dag_id] = f"{WAITING} on {missing}"
            continue
        versions = sorted({str(e.get("version")) for e in updated.values() if e.get("version")})
        due.append((dags[study.dag_id], {"mart_version": versions[-1] if versions else None}))
    return due, waiting


def select_study(study_id: str, dags: dict[str, Any], due: list[tuple[Any, dict[str, Any]]],
                 waiting: dict[str, str]) -> tuple[list[tuple[Any, dict[str, Any]]], dict[str, str]]:
    """Only study ``study_id``: run it when due, or when it merely has no new Asset event (on the current
    version); a refused or invalid study stays refused.

    Raises:
        KeyError: no DAG of that study (the message names the known studies).
    """
    dag_id = f"study_{study_id}"
    if dag_id not in dags:
        known = sorted(d.removeprefix("study_") for d in dags if d.startswith("study_"))
        raise KeyError(f"no study {study_id!r}; studies: {', '.join(known)}")
    from oncopipe.warehouse import versions

    chosen = [(dag, conf) for dag, conf in due if dag.dag_id == dag_id]
    why = waiting.get(dag_id, "")
    if not chosen and why.startswith(WAITING):
        current = versions.current_version()
        chosen = [(dags[dag_id], {"mart_version": current.version if current is not None else None})]
    return chosen, ({dag_id: why} if not chosen and why else {})


def up_to_date_line(waiting: dict[str, str], new_extractions: int) -> str | None:
    """One line instead of a "waiting" line per study, when no extraction came in and every study merely waits
    for one: ``no new extraction since <date>: studies are up to date``."""
    from oncopipe.warehouse import versions

    waits = [why for why in waiting.values() if why.startswith(WAITING)]
    if new_extractions or not waits:
        return None
    current = versions.current_version()
    since = f" since {current.extraction}" if current is not None else ""
    return f"no new extraction{since}: studies are up to date"


def run_platform(*, patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED,
                 extraction_date: str = DEFAULT_EXTRACTION_DATE, generate: bool = True,
                 progress: Progress = print, summary_path: Path | None = None,
                 study: str | None = None, delivered: bool = False) -> PlatformRun:
    """Run the platform end to end in this process (see the module docstring); ``study``: only that study;
    ``delivered``: a generated extraction lands through the delivered CSV and the import (:func:`land_delivered`)."""
    started = time.perf_counter()
    settings = configure()
    run = PlatformRun(started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    parsing = start_manifest_parse(settings, progress)
    try:
        prepare_metadata(progress)
        if generate:
            run.generated = ensure_extraction(settings, patients=patients, seed=seed,
                                              extraction_date=extraction_date, progress=progress,
                                              delivered=delivered)
        warm_execution_api()
    finally:
        finish_manifest_parse(parsing, settings)
    run.interrupted = fail_interrupted_runs()
    for marked in run.interrupted:
        progress(f"{marked}: left running by an interrupted run, marked failed")
    dags = load_dags()

    from oncopipe.warehouse import refresh

    new = refresh.pending_extractions(settings)
    for extraction in new or [None]:
        progress(f"platform_refresh: extraction {extraction or '(none new)'}")
        outcome = test_dag(dags[REFRESH_DAG_ID], progress=progress)
        outcome.note = extraction or "nothing new"
        run.refreshes.append(outcome)
        progress(f"  {outcome.describe()}")
        if outcome.state != "success":
            break

    due, waiting = due_studies(dags)
    if study is not None:
        due, waiting = select_study(study, dags, due, waiting)
    run.not_run = waiting
    summary_line = up_to_date_line(waiting, len(new))
    if summary_line:
        progress(summary_line)
    for dag_id, why in sorted(waiting.items()):
        if not (summary_line and why.startswith(WAITING)):
            progress(f"{dag_id}: {why}")
    for dag, conf in due:
        progress(f"{dag.dag_id}: mart version {conf['mart_version']}")
        outcome = test_dag(dag, run_conf=conf, progress=progress)
        run.studies.append(outcome)
        progress(f"  {outcome.describe()}")

    from oncopipe.delivery import export_store
    from oncopipe.warehouse import versions

    current = versions.current_version()
    if current is not None:
        run.published_version = str(current.version)
        run.published_extraction = str(current.extraction)
        run.published_path = str(getattr(current, "path", settings.published / str(current.version)))
    for outcome in run.studies:
        study_id = outcome.dag_id.removeprefix("study_")
        try:
            run.exports[study_id] = str(export_store.find_export(study_id, outcome.run_id, settings.exports))
        except export_store.ExportError:
            continue
    run.owed = owed_exports(settings)
    for dag_id, why in sorted(run.owed.items()):
        progress(f"{dag_id}: {why} (the next `oncopipe run` retries it)")
    run.seconds = round(time.perf_counter() - started, 3)
    if summary_path is not None:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(run.to_json(), indent=2, default=str), encoding="utf-8")
    return run
