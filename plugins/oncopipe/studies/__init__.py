"""Studies (layer 5): the approved studies and what a study run does.

- ``registry``: one validated YAML file per study under ``dags/studies/``, approvals and what they allow;
- ``kinds``: the analysis kinds a study can name (TRADHOR, poor-prognosis survival, care-pathway delays);
- ``cases``: the poor-prognosis case table as the survival analyses need it;
- ``steps``: what each task of a study DAG does, without Airflow (check, analyse, control, report, export, notify).

May import: ``oncopipe.delivery`` and the layers below it.
"""
