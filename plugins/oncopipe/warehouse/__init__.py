"""Warehouse (layer 3): the dbt project run in process, and the published mart versions.

- ``dbt_runner``: run dbt with the platform's paths and report what happened;
- ``dbt_nodes``: the dbt manifest's models and seeds, and building one of them (a task each in Airflow);
- ``versions``: stage the candidate marts, gate them, publish them atomically, read them back;
- ``refresh``: what the platform refresh does, without Airflow (find, gate, build, gate, publish).

May import: ``oncopipe.quality`` and the layers below it (landing, synth, contracts, methods).
"""
