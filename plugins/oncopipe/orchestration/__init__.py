"""Orchestration (layer 6): Airflow and the processes around it.

- ``dag_factory``: one study DAG per registry entry, and the dbt task groups of the refresh DAG;
- ``embedded``: the embedded default (the whole platform in one process);
- ``deployment``: the production topology described once (compose file, environment, processes);
- ``native``: that topology run as native processes (hosts without Docker); ``processes``: finding and
  stopping the processes a session started;
- ``alerts`` (failure log head, deadline mail), ``notifiers`` (the failure mail, an Airflow notifier),
  ``operator_views`` (the Airflow UI plugin pages), ``celery_config``.

May import: every layer below (studies, delivery, warehouse, quality, landing, synth, contracts, methods).
"""
