"""# Platform refresh (airflow DAG)

Turns a newly landed SNDS-shaped extraction into published marts:

    find_extraction -> raw_gate -> begin_candidate -> dbt: seeds, staging, intermediate (one task per model/seed)
        -> dbt: marts, built as the candidate -> marts_gate -> publish  ==> one Asset event per published table

- **find_extraction** first removes what an interrupted run left (temporary folders), then takes the oldest
  landed extraction newer than the published one (or the `extraction_date` parameter, which may not skip an
  older pending one); with nothing new the run is skipped, so the hourly schedule costs nothing.
- **raw_gate** (Great Expectations, per source): a critical failure quarantines the extraction and stops the run.
- **begin_candidate** starts from the warehouse the last accepted run left (a refused or interrupted candidate
  is rolled back) and points the dbt sources at the accepted extractions up to this one, in the format each
  landed in: nothing newer, whose raw gate has not run, reaches the warehouse.
- **dbt** tasks each run `dbt build --select <node>` (the node and its tests) on the DuckDB warehouse.
- **marts_gate**: dbt tests passed; Great Expectations on the candidate marts. A failure drops the candidate:
  nothing is published, the last published version stays current.
- **publish** copies the marts to a new Parquet version and switches `CURRENT` atomically, then announces each
  table as an Asset event (`oncopipe://marts/<table>`, extra = {version, extraction}); study DAGs wait on them.
  When the marts are unchanged (a re-run), nothing new is published and no event is sent.

Every task that opens the warehouse file runs in pool `duckdb_writer` (size 1): DuckDB has one writer at a time.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, Param, SyncCallback, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from oncopipe.contracts.settings import get_settings
from oncopipe.orchestration import dag_factory
from oncopipe.orchestration.alerts import refresh_deadline_missed
from oncopipe.orchestration.dag_factory import DUCKDB_POOL, START_DATE, dbt_task_groups, default_args, mart_asset
from oncopipe.warehouse import dbt_nodes, refresh

PUBLISHED_ASSETS = [mart_asset(name) for name in refresh.PUBLISHED_TABLES]
MANIFEST = dbt_nodes.manifest_path()
NO_MANIFEST = dag_factory.unparsed_note(MANIFEST)  # a fresh checkout: one dbt task per group, and the docs say so

with DAG(
    dag_id="platform_refresh",
    description="Landed extraction -> raw gate -> dbt -> marts gate -> publish -> Asset events",
    doc_md=__doc__ if NO_MANIFEST is None else f"{NO_MANIFEST}\n\n{__doc__}",
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # two refreshes would write the same warehouse and race on CURRENT
    tags=["platform", "refresh", "dbt", "quality"],
    default_args=default_args("data-team"),
    params={"extraction_date": Param(None, type=["null", "string"],
                                     description="Extraction to process (default: the oldest new one)."),
            "full_refresh": Param(False, type="boolean",
                                  description="Rebuild incremental models from every landed extraction "
                                              "(after a change of their columns).")},
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(hours=3),
                           callback=SyncCallback(refresh_deadline_missed), name="refresh within 3 hours"),
) as dag:

    @task(retries=0, doc_md="The extraction to process, or skip the run when nothing new has landed.")
    def find_extraction() -> str:
        refresh.recover()  # one refresh at a time: what a killed run left is nobody's now
        try:
            chosen = refresh.choose_extraction(get_current_context()["params"].get("extraction_date"))
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        if chosen is None:
            raise AirflowSkipException("no new extraction in the landing folder")
        return chosen

    @task(retries=0, doc_md="Great Expectations raw gate; a failure quarantines the extraction and stops here.")
    def raw_gate(extraction_date: str) -> dict:
        from oncopipe.quality import GateFailed

        try:
            return refresh.raw_gate(extraction_date)
        except (GateFailed, FileNotFoundError) as exc:
            raise AirflowFailException(str(exc)) from exc

    @task(pool=DUCKDB_POOL,
          doc_md="Roll back to the last accepted warehouse if needed; read only accepted extractions up to this one.")
    def begin_candidate(extraction_date: str, raw: dict) -> dict:
        from oncopipe.warehouse.dbt_runner import LandingError

        try:
            return refresh.begin_candidate(extraction_date)
        except LandingError as exc:
            raise AirflowFailException(str(exc)) from exc

    @task(retries=0, pool=DUCKDB_POOL, doc_md="Marts gate on the candidate; a failure drops the candidate.")
    def marts_gate() -> dict:
        from oncopipe.quality import GateFailed

        try:
            return refresh.marts_gate()
        except GateFailed as exc:
            raise AirflowFailException(str(exc)) from exc

    @task(pool=DUCKDB_POOL, outlets=PUBLISHED_ASSETS,
          doc_md="Publish the candidate as a new version (atomic switch of CURRENT) and send one Asset event "
                 "per table with extra = {version, extraction}; skipped when nothing changed.")
    def publish(extraction_date: str, raw: dict, marts: dict) -> dict:
        published = refresh.publish(extraction_date, gates={"raw": raw, "marts": marts})
        if not published["new"]:
            raise AirflowSkipException(f"marts unchanged: version {published['version']} stays current")
        events = get_current_context()["outlet_events"]
        for asset in PUBLISHED_ASSETS:
            events[asset].extra = {"version": published["version"], "extraction": published["extraction"]}
        return published

    extraction = find_extraction()
    raw = raw_gate(extraction)
    candidate = begin_candidate(extraction, raw)
    transform, marts_candidate = dbt_task_groups(get_settings().dbt_tasks, MANIFEST)
    checked = marts_gate()
    candidate >> transform >> marts_candidate >> checked
    publish(extraction, raw, checked)
