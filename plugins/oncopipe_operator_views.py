"""Airflow plugin: the oncopipe operator views (quality gates, Data Docs, dbt docs, exports) in the Airflow UI.

Thin on purpose: the views live in :mod:`oncopipe.orchestration.operator_views`. The api-server mounts the FastAPI
app under
``/oncopipe``; ``external_views`` puts the four pages in the UI's "Plugins" menu.
"""

from airflow.plugins_manager import AirflowPlugin
from oncopipe.orchestration.operator_views import EXTERNAL_VIEWS, URL_PREFIX, create_app


class OncopipeOperatorViews(AirflowPlugin):
    """The operator's views of oncopipe."""

    name = "oncopipe_operator_views"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "oncopipe operator views"}]
    external_views = EXTERNAL_VIEWS
