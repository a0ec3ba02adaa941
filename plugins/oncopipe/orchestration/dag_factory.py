"""One factory turns every study of the registry into an Airflow DAG.

Each study DAG is the same chain::

    check_approval -> run_analysis -> disclosure_control -> render_report -> publish_export -> notify_recipients

- ``check_approval`` re-reads the study's YAML (the registry is the source of truth at run time), refuses the
  run if the approval is not granted, not yet valid or expired, or if the study reads a mart its approval does
  not name, and pins the published mart version the run reads. A refusal fails the task without retry, naming
  the approval, and nothing downstream runs.
- The other tasks are thin wrappers over :mod:`oncopipe.studies.steps`, which holds what they do and passes the
  result between tasks through files in the run's work folder.

The schedule is either the Assets of the published marts the study waits for (``oncopipe://marts/<mart>``,
all of them updated since the last run) or a cron expression. Adding a study is one YAML file in
``dags/studies/``; a new kind of analysis is one function registered in :mod:`oncopipe.studies.kinds`.

Nothing here opens a database or reads a mart: building the DAGs reads the registry YAML only.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import warnings
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAll, Param, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from oncopipe.orchestration.alerts import on_task_failure
from oncopipe.orchestration.notifiers import FailureMailNotifier
from oncopipe.studies.registry import Study, StudyError, asset_uri, scan_registry

log = logging.getLogger(__name__)

START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
#: Airflow pool of size 1 for every task that opens the DuckDB warehouse file (one writer at a time).
DUCKDB_POOL = "duckdb_writer"
STUDY_TASKS = ("check_approval", "run_analysis", "disclosure_control", "render_report", "publish_export",
               "notify_recipients")

#: Retries for tasks that do I/O (published Parquet, export folders, mail): exponential backoff.
IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
}


def mart_asset(mart: str) -> Asset:
    """The Asset of a published mart; URIs are stable (``oncopipe://marts/<mart>``)."""
    return Asset(uri=asset_uri(mart), name=mart, group="marts")


def default_args(owner: str) -> dict[str, Any]:
    """Arguments shared by every oncopipe task: owner, I/O retries with backoff, failure log head and mail."""
    return {"owner": owner, "on_failure_callback": [on_task_failure, FailureMailNotifier()], **IO_RETRIES}


def _schedule(study: Study) -> Any:
    if study.schedule.assets:
        return AssetAll(*(mart_asset(m) for m in study.schedule.assets))
    return study.schedule.cron


def _doc(study: Study) -> str:
    a = study.approval
    problem = study.approval_problem()
    status = "may run" if problem is None else f"**refused: {problem}**"
    schedule = (", ".join(f"`{asset_uri(m)}`" for m in study.schedule.assets) if study.schedule.assets
                else f"cron `{study.schedule.cron}`")
    return "\n".join([
        f"# {study.title}",
        "",
        study.description.strip(),
        "",
        f"- principal investigator: {study.principal_investigator.name} ({study.principal_investigator.email})",
        f"- approval: {a.committee} {a.reference}, {a.status}, {a.granted} to {a.expires}; {status}",
        f"- approved marts: {', '.join(a.marts)}; reads: {', '.join(study.reads)}",
        f"- analysis: `{study.analysis.kind}`, with the effective parameters below",
        f"- schedule: {schedule}",
        f"- recipients: {', '.join(study.recipients)}",
        "",
        "| parameter | value | from |",
        "|---|---|---|",
        *(f"| `{key}` | `{value}` | {'study YAML' if key in study.analysis.parameters else 'default'} |"
          for key, value in study.analysis.effective_parameters.items()),
        "",
        "Chain: " + " -> ".join(STUDY_TASKS) + ". Defined by `dags/studies/" + study.id + ".yml`.",
    ])


def _fail_without_retry(fn):
    """Turn the expected, deterministic errors (refused approval, not enough data, disclosure violation...)
    into a failure without retry: retrying cannot fix them. Unexpected errors keep their retries."""
    from oncopipe.studies import steps

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except steps.expected_errors() as exc:
            raise AirflowFailException(str(exc)) from exc

    return run


def build_study_dag(study: Study, registry_dir: Path | None = None) -> DAG:
    """The DAG of one study (see the module docstring for its tasks)."""
    from oncopipe.studies import steps  # light: heavy modules are imported inside the task bodies

    problem = study.approval_problem()
    tags = ["study", study.analysis.kind, *study.tags]
    if problem is not None:
        tags.append("approval-refused")

    with DAG(
        dag_id=study.dag_id,
        description=study.title[:200],
        doc_md=_doc(study),
        schedule=_schedule(study),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,  # two runs would write the same export folder and audit history
        tags=sorted(set(tags)),
        default_args=default_args(study.owner),
        params={"mart_version": Param(None, type=["null", "string"],
                                      description="Published mart version to read (default: the one that "
                                                  "triggered the run, else the current one).")},
        owner_links={study.owner: f"mailto:{study.principal_investigator.email}"},
    ) as dag:

        @task(task_id="check_approval", retries=0,
              doc_md="Re-read the study YAML; refuse the run unless the approval is granted and unexpired "
                     "today and covers every mart the study reads; pin the mart version to read.")
        @_fail_without_retry
        def check_approval(params: dict[str, Any] | None = None, triggering_asset_events: Any = None
                           ) -> dict[str, Any]:
            return steps.check(
                study.id,
                requested_version=(params or {}).get("mart_version"),
                triggering_events=_triggering_extras(triggering_asset_events, study),
                registry_dir=registry_dir,
            )

        @task(task_id="run_analysis", retries=1,
              doc_md="Read the approved published marts and run the analysis kind (one retry: reading the "
                     "published Parquet is I/O; the computation itself is deterministic).")
        @_fail_without_retry
        def run_analysis(checked: dict[str, Any], run_id: str | None = None) -> str:
            return str(steps.analyse(checked, run_id=str(run_id)))

        @task(task_id="disclosure_control", retries=0,
              doc_md="Mask small counts (1..9) and what would reveal them; refuse identifiers.")
        @_fail_without_retry
        def disclosure_control(result_path: str) -> str:
            return str(steps.control(Path(result_path)))

        @task(task_id="render_report", doc_md="Draw figures from controlled tables and write the report.")
        @_fail_without_retry
        def render_report(controlled_path: str) -> str:
            return str(steps.report(Path(controlled_path)))

        @task(task_id="publish_export",
              doc_md="Write the export folder (tables, figures, report, manifest with checksums) and audit.")
        @_fail_without_retry
        def publish_export(report_path: str) -> str:
            return str(steps.export(Path(report_path)))

        @task(task_id="notify_recipients", doc_md="Tell the study's recipients where their export is.")
        def notify_recipients(export_path: str) -> dict[str, Any]:
            try:
                return steps.notify(Path(export_path))
            except steps.MailNotConfigured as exc:
                raise AirflowSkipException(str(exc)) from exc

        notify_recipients(publish_export(render_report(disclosure_control(run_analysis(check_approval())))))

    return dag


def _triggering_extras(events: Any, study: Study) -> list[dict[str, Any]]:
    """The ``extra`` of the asset events that triggered this run, for the study's own marts."""
    events = events or {}
    wanted = set(study.asset_uris)
    extras: list[dict[str, Any]] = []
    try:
        items = list(events.items())
    except AttributeError:
        return extras
    for asset, asset_events in items:
        uri = getattr(asset, "uri", str(asset))
        if uri in wanted:
            extras.extend(dict(e.extra or {}) for e in asset_events)
    return extras


def build_study_dags(registry_dir: Path | None = None) -> dict[str, DAG]:
    """One DAG per valid registry entry, keyed by dag_id.

    An invalid study file does not take the other studies down: it is skipped with a warning naming the
    file and field, which Airflow shows with the DAG file's warnings (and ``oncopipe studies validate`` fails).
    """
    dags: dict[str, DAG] = {}
    for entry in scan_registry(registry_dir, check_kinds=False):
        if entry.study is None:
            warnings.warn(f"study skipped: {entry.error}", UserWarning, stacklevel=2)
            continue
        try:
            dags[entry.study.dag_id] = build_study_dag(entry.study, registry_dir)
        except StudyError as exc:
            warnings.warn(f"study skipped: {entry.path}: {exc}", UserWarning, stacklevel=2)
    return dags


def dbt_task_groups(mode: str, manifest: Path) -> tuple[Any, Any]:
    """The dbt part of the refresh: a ``transform`` group (seeds, staging, intermediate) and a
    ``marts_candidate`` group (marts), one task per model and seed, following the dbt graph.

    Args:
        mode: ``manifest`` (default: one ``dbt build --select <node>`` task per node,
            :mod:`oncopipe.warehouse.dbt_nodes`) or one of :data:`COSMOS_MODES` (astronomer-cosmos
            ``DbtTaskGroup``s; ``benchmarks/dbt_tasks.py`` measures them against the default).
        manifest: the dbt manifest the tasks are generated from (``oncopipe dbt parse`` writes it).
    """
    if mode in COSMOS_MODES:
        return _cosmos_groups(manifest, *COSMOS_MODES[mode])
    if mode != "manifest":
        raise ValueError(f"ONCOPIPE_DBT_TASKS={mode!r}: use 'manifest' or one of {', '.join(COSMOS_MODES)}")
    from airflow.sdk import TaskGroup

    from oncopipe.warehouse import dbt_nodes

    if not manifest.exists():
        return _unparsed_groups(TaskGroup)
    nodes = dbt_nodes.read_nodes(manifest)
    transform = TaskGroup("transform", tooltip="dbt seeds, staging and intermediate models")
    marts = TaskGroup("marts_candidate", tooltip="dbt marts, built as the candidate (not yet published)")
    tasks: dict[str, Any] = {}
    for node in nodes:
        group = marts if node.layer == "marts" else transform
        with group:
            tasks[node.unique_id] = _dbt_node_task(node)
    for node in nodes:
        for parent in node.depends_on:
            tasks[parent] >> tasks[node.unique_id]
    return transform, marts


#: The dbt selection of each group when the refresh DAG is built without a manifest (one task per group).
UNPARSED_SELECTIONS = {
    "transform": "path:seeds path:models/staging path:models/intermediate",
    "marts_candidate": "path:models/marts",
}
UNPARSED_NOTE = (
    "**No dbt manifest yet** ({manifest} is missing: a fresh checkout, before any `dbt parse`), so the dbt part of "
    "this DAG is one `dbt build` task per group: `transform.build` (`{transform}`) and `marts_candidate.build` "
    "(`{marts}`). The first build parses the project; once the manifest exists, the DAG processor re-parses "
    "this file and it gets one task per model and seed. `oncopipe dbt parse` (or `oncopipe run` / `oncopipe ui`) "
    "writes it now."
)


def unparsed_note(manifest: Path) -> str | None:
    """What the refresh DAG's docs say when it was built without a manifest (None when the manifest exists)."""
    if manifest.exists():
        return None
    return UNPARSED_NOTE.format(manifest=manifest, transform=UNPARSED_SELECTIONS["transform"],
                                marts=UNPARSED_SELECTIONS["marts_candidate"])


def _unparsed_groups(task_group: Any) -> tuple[Any, Any]:
    """Without a manifest: one ``dbt build --select <selection>`` task in each group (the DAG still imports,
    on a fresh checkout, and still refreshes; see :data:`UNPARSED_NOTE`)."""
    from oncopipe.warehouse import dbt_nodes

    groups = []
    for group_id, tooltip in (("transform", "dbt seeds, staging and intermediate models (one task: no manifest)"),
                              ("marts_candidate", "dbt marts, built as the candidate (one task: no manifest)")):
        selection = UNPARSED_SELECTIONS[group_id]
        group = task_group(group_id, tooltip=tooltip)
        with group:
            @task(task_id="build", pool=DUCKDB_POOL,
                  doc_md=f"`dbt build --select {selection}` (no dbt manifest when the DAG was parsed).")
            def build(selection: str = selection, params: dict[str, Any] | None = None, ti: Any = None
                      ) -> dict[str, Any]:
                try:
                    return dbt_nodes.build_node(selection, full_refresh=bool((params or {}).get("full_refresh")),
                                                lineage_parent=lineage_parent(ti))
                except dbt_nodes.DbtNodeFailed as exc:
                    raise AirflowFailException(str(exc)) from exc

            build()
        groups.append(group)
    return groups[0], groups[1]


def lineage_parent(ti: Any) -> Any:
    """The OpenLineage run of a running task as Airflow's OpenLineage provider names it (None outside a task):
    the parent of the events emitted for the dbt nodes the task builds (:mod:`oncopipe.warehouse.lineage`)."""
    if ti is None:
        return None
    try:
        from airflow.providers.openlineage.plugins.macros import (
            lineage_job_name,
            lineage_job_namespace,
            lineage_run_id,
        )
    except ImportError:  # an image without the provider (compose pins leave Airflow's providers to the image)
        return None

    from oncopipe.warehouse.lineage import LineageParent

    return LineageParent(run_id=lineage_run_id(ti), job_name=lineage_job_name(ti),
                         job_namespace=lineage_job_namespace())


def _dbt_node_task(node: Any) -> Any:
    from oncopipe.warehouse import dbt_nodes

    tests = ", ".join(node.tests) or "none"

    @task(task_id=node.task_id, pool=DUCKDB_POOL,
          doc_md=f"`dbt build --select {node.name}`: the {node.resource_type} `{node.name}` ({node.layer}) and "
                 f"its tests: {tests}.")
    def build(name: str = node.name, params: dict[str, Any] | None = None, ti: Any = None) -> dict[str, Any]:
        try:
            return dbt_nodes.build_node(name, full_refresh=bool((params or {}).get("full_refresh")),
                                        lineage_parent=lineage_parent(ti))
        except dbt_nodes.DbtNodeFailed as exc:
            raise AirflowFailException(str(exc)) from exc

    return build()


#: Cosmos renderings of the dbt part: mode -> (cosmos ``TestBehavior``, ``ExecutionMode``), all invoking dbt in
#: the task's process (``InvocationMode.DBT_RUNNER``). ``cosmos``: a run task and a test task per model;
#: ``cosmos-build``: one ``dbt build`` task per model; ``cosmos-watcher``: one ``dbt build`` of the whole group
#: (the producer) that a run sensor and a test sensor per model follow (Cosmos refuses ``build`` with the watcher).
COSMOS_MODES = {"cosmos": ("after_each", "local"), "cosmos-build": ("build", "local"),
                "cosmos-watcher": ("after_each", "watcher")}


def _cosmos_groups(manifest: Path, test_behavior: str, execution_mode: str) -> tuple[Any, Any]:
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

    from oncopipe.contracts.settings import DBT_PROJECT_DIR, get_settings
    from oncopipe.warehouse.dbt_runner import dbt_environment

    common = {
        "project_config": ProjectConfig(DBT_PROJECT_DIR, manifest_path=manifest, install_dbt_deps=False,
                                        env_vars=dbt_environment(get_settings())),
        "profile_config": ProfileConfig(profile_name="oncopipe", target_name="local",
                                        profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml"),
        # Tests with several parents (relationships) run once all their parents are built, as in the per-node
        # tasks: Cosmos' default (eager) runs them with their first parent, before the others exist.
        "execution_config": ExecutionConfig(execution_mode=ExecutionMode(execution_mode),
                                            invocation_mode=InvocationMode.DBT_RUNNER,
                                            test_indirect_selection=TestIndirectSelection.BUILDABLE),
        "operator_args": {"pool": DUCKDB_POOL, "install_deps": False,
                          # Cosmos 1.15's watcher producer leaves test_indirect_selection out of its dbt build
                          **({"dbt_cmd_flags": ["--indirect-selection", "buildable"]}
                             if execution_mode == "watcher" else {})},
    }

    def render(*select: str) -> Any:
        return RenderConfig(load_method=LoadMode.DBT_MANIFEST, select=list(select),
                            test_behavior=TestBehavior(test_behavior))

    transform = DbtTaskGroup(group_id="transform", render_config=render(
        "path:seeds", "path:models/staging", "path:models/intermediate"), **common)
    marts = DbtTaskGroup(group_id="marts_candidate", render_config=render("path:models/marts"), **common)
    return transform, marts
