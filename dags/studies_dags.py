"""Study DAGs (airflow): one DAG per study of the registry ``dags/studies/*.yml``.

Wiring only: :func:`oncopipe.orchestration.dag_factory.build_study_dags` reads the registry YAML and builds each DAG
(check_approval -> run_analysis -> disclosure_control -> render_report -> publish_export -> notify_recipients).
An invalid study file is skipped with a warning naming the file and the field.
"""

from oncopipe.orchestration.dag_factory import build_study_dags

globals().update(build_study_dags())
