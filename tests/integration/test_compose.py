"""docker-compose.yml: valid, equal to its render from oncopipe.orchestration.deployment, and no drift from the
native harness."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from oncopipe.contracts.settings import PROJECT_ROOT
from oncopipe.orchestration import deployment

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKER_COMPOSE = shutil.which("docker-compose")
AIRFLOW_SERVICES = ("migrate", *(p.name for p in deployment.PROCESSES))


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _config(*args: str, env_file: Path = deployment.ENV_EXAMPLE_FILE) -> subprocess.CompletedProcess:
    assert DOCKER_COMPOSE is not None
    return subprocess.run([DOCKER_COMPOSE, "--env-file", str(env_file), "-f", str(COMPOSE), *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_committed_compose_file_equals_the_render():
    assert COMPOSE.read_text(encoding="utf-8") == deployment.render_compose(), (
        "docker-compose.yml differs from its render: run `oncopipe topology render`")


def test_committed_env_example_equals_the_render():
    assert deployment.ENV_EXAMPLE_FILE.read_text(encoding="utf-8") == deployment.env_example_text()
    example = deployment.read_env_file(deployment.ENV_EXAMPLE_FILE)
    assert set(deployment.SECRETS) <= set(example), "every secret is documented in .env.example"


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose is not installed (make test installs it)")
@pytest.mark.parametrize("profile", [(), ("--profile", "celery")], ids=["default", "celery"])
def test_docker_compose_validates_the_file(profile):
    done = _config(*profile, "config")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    always = {"postgres", "init", "migrate", "api-server", "scheduler", "dag-processor", "triggerer"}
    assert always | {"redis", "worker"} == set(services)
    assert {name for name, s in services.items() if s.get("profiles") == ["celery"]} == {"redis", "worker"}
    assert not any(services[name].get("profiles") for name in always)


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose is not installed (make test installs it)")
def test_docker_compose_refuses_to_start_without_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("# no secrets\n")
    done = _config("config", env_file=empty)
    assert done.returncode != 0
    assert "in .env (see .env.example)" in done.stderr


def test_every_airflow_service_gets_the_same_environment_and_volumes():
    services = _compose()["services"]
    reference = services["api-server"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"] == reference["environment"], name
        assert services[name]["volumes"] == reference["volumes"], name
    mounted = {v.split(":")[1] for v in reference["volumes"]}
    for folder in ("dags", "plugins", "dbt_project", "expectations"):
        assert f"/opt/airflow/{folder}" in mounted
    for folder in ("landing", "warehouse", "published", "exports", "quality"):
        assert f"/opt/oncopipe/{folder}" in mounted
        assert reference["environment"][f"ONCOPIPE_{folder.upper()}"].startswith(f"/opt/oncopipe/{folder}")


def test_compose_runs_the_processes_of_the_topology():
    services = _compose()["services"]
    for process in deployment.PROCESSES:
        assert services[process.name]["command"] == list(process.args)
        assert services[process.name].get("profiles") == ([process.profile] if process.profile else None)
    assert services["worker"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    for name in ("scheduler", "dag-processor", "triggerer", "worker"):  # tasks need the execution API up
        assert services[name]["depends_on"]["api-server"] == {"condition": "service_healthy"}, name
    assert "ports" not in services["worker"], "a worker publishing a port could not be scaled"


def test_native_environment_equals_compose_environment_per_service(tmp_path):
    """No drift: per service, native and compose set the same variables from the same templates.

    Constant settings (executor-independent: auth manager, examples off, ...) are byte-equal; a setting that
    names a host, path or secret differs only by the value its target gives that placeholder.
    """
    from oncopipe.orchestration.native import NativeTopology

    secrets = deployment.generate_secrets()
    target = deployment.native_target(secrets=secrets, data=tmp_path / "data", airflow_home=tmp_path / "airflow",
                                    postgres_db="oncopipe_airflow_drift", api_port=28080, redis_db=11)
    harness = NativeTopology(target, tmp_path / "state", secrets["ONCOPIPE_ADMIN_PASSWORD"])
    services = _compose()["services"]
    native_env = harness.environment
    assert {k: v for k, v in harness.process_environment().items() if k in native_env} == native_env
    for process in harness.processes():
        compose_env = {k: str(v) for k, v in services[process.name]["environment"].items()
                       if k not in deployment.COMPOSE_ONLY_ENVIRONMENT}
        assert set(native_env) == set(compose_env) == set(deployment.AIRFLOW_ENVIRONMENT), process.name
        for key, template in deployment.AIRFLOW_ENVIRONMENT.items():
            assert compose_env[key] == template.format(**deployment.COMPOSE_TARGET.values), (process.name, key)
            assert native_env[key] == template.format(**target.values), (process.name, key)
            if "{" not in template:
                assert native_env[key] == compose_env[key], (process.name, key)
    # The native processes run exactly the compose services' commands.
    assert [p.args for p in harness.processes()] == [tuple(services[p.name]["command"]) for p in harness.processes()]


def test_native_harness_does_not_inherit_airflow_settings(tmp_path, monkeypatch):
    from oncopipe.orchestration.native import NativeTopology

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "True")
    monkeypatch.setenv("ONCOPIPE_WAREHOUSE", "/elsewhere.duckdb")
    secrets = deployment.generate_secrets()
    target = deployment.native_target(secrets=secrets, data=tmp_path / "data", airflow_home=tmp_path / "airflow",
                                    postgres_db="x", api_port=28080, celery=False)
    env = NativeTopology(target, tmp_path / "state", "pw", celery=False).process_environment()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["ONCOPIPE_WAREHOUSE"] == str(tmp_path / "data" / "warehouse" / "oncopipe.duckdb")


def test_native_target_refuses_missing_secrets(tmp_path):
    secrets = deployment.generate_secrets()
    del secrets["ONCOPIPE_JWT_SECRET"]
    with pytest.raises(ValueError, match="ONCOPIPE_JWT_SECRET"):
        deployment.native_target(secrets=secrets, data=tmp_path, airflow_home=tmp_path, postgres_db="x", api_port=1)


def test_env_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / ".env"
    bad.write_text("A=1\nnot a pair\n")
    with pytest.raises(ValueError, match=r"\.env:2"):
        deployment.read_env_file(bad)


def test_image_requirements_are_the_locked_versions():
    pins = dict(p.split("==") for p in deployment.pip_requirements().split())
    lock = {p["name"]: p["version"] for p in tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())["package"]}
    assert pins["dbt-core"] == lock["dbt-core"] and pins["great-expectations"] == lock["great-expectations"]
    assert not any(name.startswith("apache-airflow") for name in pins), "the image brings Airflow itself"


def test_topology_creates_the_pool_the_dags_use():
    from oncopipe.orchestration.dag_factory import DUCKDB_POOL

    assert deployment.POOLS[DUCKDB_POOL][0] == 1, "DuckDB has one writer at a time"
    pool = ("airflow", "pools", "set", DUCKDB_POOL, "1", deployment.POOLS[DUCKDB_POOL][1])
    assert pool in deployment.MIGRATE_COMMANDS


def test_test_tuning_only_adds_intervals_the_topology_does_not_set(tmp_path):
    """The test harness's TEST_TUNING may change how often Airflow looks, never what the topology configures."""
    from oncopipe.orchestration.native import NativeTopology

    compose_keys = set(_compose()["services"]["scheduler"]["environment"])
    assert not set(deployment.TEST_TUNING) & (set(deployment.AIRFLOW_ENVIRONMENT) | compose_keys)
    secrets = deployment.generate_secrets()
    target = deployment.native_target(secrets=secrets, data=tmp_path / "data", airflow_home=tmp_path / "airflow",
                                    postgres_db="x", api_port=28080)
    tuned = NativeTopology(target, tmp_path / "state", "pw", tuning=deployment.TEST_TUNING).process_environment()
    assert {k: tuned[k] for k in deployment.AIRFLOW_ENVIRONMENT} == target.environment()
    assert {k: tuned[k] for k in deployment.TEST_TUNING} == dict(deployment.TEST_TUNING)
    overriding = NativeTopology(target, tmp_path / "state", "pw", tuning={"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"})
    with pytest.raises(ValueError, match="AIRFLOW__CORE__EXECUTOR"):
        overriding.process_environment()


def test_celery_workers_use_airflow_defaults_plus_a_preload_of_existing_modules():
    import importlib.util

    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
    from oncopipe.orchestration.celery_config import CELERY_CONFIG, WORKER_PRELOAD

    module, _, name = deployment.AIRFLOW_ENVIRONMENT["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is CELERY_CONFIG
    assert {k: v for k, v in CELERY_CONFIG.items() if k != "imports"} == {
        k: v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"}
    assert set(WORKER_PRELOAD) <= set(CELERY_CONFIG["imports"])
    assert [m for m in WORKER_PRELOAD if importlib.util.find_spec(m) is None] == []
