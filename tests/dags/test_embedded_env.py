"""The embedded Airflow environment and the UI login (no Airflow process is started here)."""

from __future__ import annotations

import json

from oncopipe.commands.ui import UI_USER, ui_environment
from oncopipe.contracts.settings import DAGS_DIR, PLUGINS_DIR, get_settings
from oncopipe.orchestration.embedded import airflow_environment


def test_embedded_airflow_lives_under_the_oncopipe_home(oncopipe_home):
    env = airflow_environment(get_settings())
    assert env["AIRFLOW_HOME"] == str(oncopipe_home / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{oncopipe_home / 'airflow' / 'airflow.db'}"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_DIR)
    # The operator views' plugin (plugins/oncopipe_operator_views.py) is found by every embedded process.
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(PLUGINS_DIR)
    assert (PLUGINS_DIR / "oncopipe_operator_views.py").is_file()
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64
    # The secret is generated once and kept, so the UI and the runner agree across processes.
    assert airflow_environment(get_settings())["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_ui_binds_localhost_with_a_known_login(oncopipe_home):
    env, password = ui_environment(8765)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "8765"
    # Tasks started by the LocalExecutor reach the execution API on the UI's port (Airflow's default is 8080).
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8765/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{UI_USER}:admin"
    passwords = json.loads((oncopipe_home / "airflow" / "simple_auth_manager_passwords.json").read_text())
    assert passwords == {UI_USER: password} and len(password) >= 12
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].endswith("simple_auth_manager_passwords.json")
    assert ui_environment(8765)[1] == password  # the same login on every start
