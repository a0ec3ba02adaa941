"""Celery settings of the topology's workers: Airflow's defaults, plus what the tasks import, imported once.

Every oncopipe task imports what it needs when it runs: dbt and its DuckDB adapter for each of the ~30 dbt tasks
of a refresh, Great Expectations for the gates, pandas and the analyses for the studies. On this 2-core machine
that is 5-12 s per task (dbt 7 s, GX 12 s with bytecode at load ~12). A Celery worker imports the modules named
in ``imports`` before it forks its pool, and every Airflow task runner is a fork of a pool process, so the tasks
start with them in memory. Importing them starts no Python thread and no multiprocessing helper.
``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` points here (:data:`oncopipe.orchestration.deployment.AIRFLOW_ENVIRONMENT`).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

#: Modules a worker imports before it forks: what the refresh's and the studies' tasks import first.
WORKER_PRELOAD = (
    "dbt.cli.main", "dbt.adapters.duckdb", "oncopipe.warehouse.dbt_nodes", "oncopipe.warehouse.dbt_runner",
    "oncopipe.warehouse.refresh", "oncopipe.quality", "oncopipe.warehouse.versions", "oncopipe.studies.steps",
    "oncopipe.studies.kinds", "oncopipe.delivery.disclosure", "oncopipe.delivery.export_store",
    "oncopipe.delivery.report", "oncopipe.delivery.notify", "oncopipe.delivery.smtp_hook",
)

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *WORKER_PRELOAD),
}
