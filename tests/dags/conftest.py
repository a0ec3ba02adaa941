"""DAG tests parse the real dags/ folder against a private ONCOPIPE_HOME (the dbt manifest is parsed there)."""

from __future__ import annotations

import os
import tempfile

import pytest

# Airflow reads its home when first imported: keep it out of ~/airflow and the checkout.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="oncopipe-dags-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture(scope="session")
def dag_home(tmp_path_factory):
    """A private ONCOPIPE_HOME holding the dbt manifest the refresh DAG is generated from."""
    from oncopipe.warehouse import dbt_nodes

    home = tmp_path_factory.mktemp("dags_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONCOPIPE_HOME", str(home))
        for var in ("ONCOPIPE_LANDING", "ONCOPIPE_QUARANTINE", "ONCOPIPE_WAREHOUSE", "ONCOPIPE_PUBLISHED",
                    "ONCOPIPE_EXPORTS", "ONCOPIPE_QUALITY"):
            mp.delenv(var, raising=False)
        dbt_nodes.parse()
        yield home


@pytest.fixture(scope="session")
def dagbag(dag_home):
    from airflow.dag_processing.dagbag import DagBag
    from oncopipe.contracts.settings import DAGS_DIR

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONCOPIPE_HOME", str(dag_home))
        return DagBag(dag_folder=str(DAGS_DIR))
