"""The production topology, described once: its environment and its processes.

Two deployments read this module and nothing else, so they cannot drift apart:

- ``docker-compose.yml`` is *rendered* from it (``oncopipe topology render``; a test checks that the committed
  file equals the render);
- the native harness (:mod:`oncopipe.orchestration.native`, ``oncopipe topology up``) starts the same processes with the
  same environment against a PostgreSQL and a Redis reachable from the machine.

The environment is a set of templates over a few *placeholders* (database host, paths, secrets, ...); a
:class:`Target` gives each placeholder its value for one deployment. For compose the secrets are
``${VAR:?...}`` interpolations that docker compose fills from the git-ignored ``.env`` file (see
``.env.example``); for the native harness they are read from the same file.

Processes: a one-shot ``init`` (data folders, owner, the auth manager's passwords file), a one-shot
``migrate`` (metadata database schema, the DuckDB writer pool), then ``api-server``, ``scheduler``,
``dag-processor`` and ``triggerer``; the ``celery`` profile adds Redis and ``worker`` (scale it with
``docker compose --profile celery up --scale worker=N``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from oncopipe.contracts.settings import PROJECT_ROOT, get_settings, warehouse_writer_slots

AIRFLOW_IMAGE = "apache/airflow:3.3.2-python3.11"
POSTGRES_IMAGE = "postgres:15-bookworm"
REDIS_IMAGE = "redis:7.2-bookworm"
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_FILE = PROJECT_ROOT / ".env"
ENV_EXAMPLE_FILE = PROJECT_ROOT / ".env.example"

#: The Airflow pool every task that writes the DuckDB warehouse runs in (DuckDB has one writer at a time).
DUCKDB_WRITER_POOL = "duckdb_writer"
#: Its size follows the engine (oncopipe.contracts.settings.warehouse_writer_slots): 1 for DuckDB and a local
#: Spark session, ONCOPIPE_WAREHOUSE_WRITERS for a Spark server.
POOLS: Mapping[str, tuple[int, str]] = {
    DUCKDB_WRITER_POOL: (warehouse_writer_slots(),
                         "DuckDB warehouse writers: one at a time (DuckDB takes a file lock)"
                         if warehouse_writer_slots() == 1 else "warehouse tasks on a Spark server"),
}

ADMIN_USER = "admin"
HEALTH_PATH = "/api/v2/monitor/health"

#: Secrets: never committed. ``.env`` (git-ignored) holds them; ``.env.example`` documents them.
SECRETS: Mapping[str, str] = {
    "ONCOPIPE_FERNET_KEY": "Fernet key that encrypts connections and variables in the metadata database",
    "ONCOPIPE_JWT_SECRET": "signs the JWT tokens of the REST and execution APIs (64 random bytes, hex)",
    "ONCOPIPE_API_SECRET_KEY": "signs the api-server's session data and log-server requests",
    "POSTGRES_PASSWORD": "password of the metadata database user (URL-safe: letters, digits, - and _)",
    "ONCOPIPE_ADMIN_PASSWORD": "password of the 'admin' user of the Airflow UI",
}

#: Optional settings with their compose default; the native harness takes them from its :class:`Target`.
OPTIONS: Mapping[str, tuple[str, str]] = {
    "ONCOPIPE_EXECUTOR": ("LocalExecutor", "CeleryExecutor with the celery profile (COMPOSE_PROFILES=celery)"),
    "ONCOPIPE_BASE_URL": ("http://localhost:8080", "URL operators reach the UI at; failure mails link there"),
    "ONCOPIPE_API_PORT": ("8080", "host port the api-server is published on"),
    "ONCOPIPE_WORKER_CONCURRENCY": ("4", "task slots per Celery worker"),
    "ONCOPIPE_SMTP_URL": ("smtp://mail.example.org:587?disable_ssl=true&from_email=oncopipe%40example.org",
                          "connection 'smtp_default' (failure and export mails; see oncopipe/notify.py)"),
    "ONCOPIPE_OPERATOR_EMAILS": ("", "comma-separated addresses that get task-failure mails (empty: log only)"),
    "AIRFLOW_UID": ("50000", "uid the Airflow containers run as (owner of the data volumes)"),
}

#: The environment every Airflow process gets, as templates over the placeholders of a :class:`Target`.
AIRFLOW_ENVIRONMENT: Mapping[str, str] = {
    "AIRFLOW_HOME": "{airflow_home}",
    "AIRFLOW__CORE__EXECUTOR": "{executor}",
    "AIRFLOW__CORE__DAGS_FOLDER": "{dags}",
    "AIRFLOW__CORE__PLUGINS_FOLDER": "{plugins}",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__FERNET_KEY": "{fernet_key}",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "{api_url}/execution/",
    "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "{data}/auth/simple_auth_manager_passwords.json",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
        "postgresql+psycopg2://{postgres_user}:{postgres_password}@{postgres_host}:{postgres_port}/{postgres_db}",
    "AIRFLOW__CELERY__BROKER_URL": "{redis_url}",
    "AIRFLOW__CELERY__RESULT_BACKEND":
        "db+postgresql://{postgres_user}:{postgres_password}@{postgres_host}:{postgres_port}/{postgres_db}",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "{worker_concurrency}",
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "oncopipe.orchestration.celery_config.CELERY_CONFIG",
    "AIRFLOW__API__HOST": "{api_host}",
    "AIRFLOW__API__PORT": "{api_port}",
    "AIRFLOW__API__WORKERS": "{api_workers}",
    "AIRFLOW__API__BASE_URL": "{base_url}",
    "AIRFLOW__API__SECRET_KEY": "{api_secret_key}",
    "AIRFLOW__API_AUTH__JWT_SECRET": "{jwt_secret}",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": "{airflow_home}/logs",
    "AIRFLOW_CONN_SMTP_DEFAULT": "{smtp_url}",
    "ONCOPIPE_OPERATOR_EMAILS": "{operator_emails}",
    "PYTHONPATH": "{plugins}",
    "ONCOPIPE_HOME": "{data}",
    "ONCOPIPE_LANDING": "{data}/landing",
    "ONCOPIPE_QUARANTINE": "{data}/quarantine",
    "ONCOPIPE_WAREHOUSE": "{data}/warehouse/oncopipe.duckdb",
    "ONCOPIPE_PUBLISHED": "{data}/published",
    "ONCOPIPE_EXPORTS": "{data}/exports",
    "ONCOPIPE_QUALITY": "{data}/quality",
    "GX_ANALYTICS_ENABLED": "False",
    "DO_NOT_TRACK": "1",
}

#: What the native *test* harness adds to :data:`AIRFLOW_ENVIRONMENT` (never compose, never ``topology up``):
#: how often Airflow looks, not what runs or where. The DAG files do not change during a test, so re-parsing
#: them every 30 s only competes for a loaded machine's CPU, which in turn needs longer parse timeouts; and a
#: restarted scheduler adopts a killed one's tasks within 15 s rather than at the 5-minute default check.
#: The harness refuses a tuning key that the topology sets (tests/integration/test_compose.py checks it).
TEST_TUNING: Mapping[str, str] = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "900",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
}

#: Data folders under ``ONCOPIPE_HOME``; each is its own named volume in compose.
DATA_FOLDERS = ("landing", "quarantine", "warehouse", "published", "exports", "quality", "auth")

#: Project folders the containers mount read-only, at the path ``oncopipe.contracts.settings`` expects them.
PROJECT_MOUNTS = ("dags", "plugins", "dbt_project", "expectations")

#: What the ``init`` service needs to prepare the volumes (plus the admin password).
INIT_ENVIRONMENT = ("PYTHONPATH", "ONCOPIPE_HOME", "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")

#: Variables only the container image needs (the image installs the project's dependencies at start).
COMPOSE_ONLY_ENVIRONMENT = ("_PIP_ADDITIONAL_REQUIREMENTS",)


@dataclass(frozen=True)
class Process:
    """One Airflow process of the topology.

    Attributes:
        name: service name (compose) and log-file stem (native).
        args: arguments of the ``airflow`` command.
        profile: compose profile that enables it (``None``: always on).
        health: compose healthcheck command.
        ready_log: native harness: a line the process logs once it is ready (``None``: the api-server's
            health endpoint tells).
        health_component: key of the process in the api-server's health report, if it has one.
        needs_api: start only once the api-server is healthy (tasks, triggers and callbacks talk to its
            execution API: a task started before it listens fails at once).
    """

    name: str
    args: tuple[str, ...]
    profile: str | None = None
    health: tuple[str, ...] = ()
    ready_log: str | None = None
    health_component: str | None = None
    needs_api: bool = True

    def native_command(self, airflow_bin: Path) -> list[str]:
        """The command line the native harness runs."""
        return [str(airflow_bin), *self.args]


def _jobs_check(job_type: str) -> tuple[str, ...]:
    return ("CMD-SHELL", f'airflow jobs check --job-type {job_type} --hostname "$${{HOSTNAME}}"')


#: One-shot setup before the processes start (the compose ``migrate`` service): metadata schema, the pools, and
#: the dbt manifest the refresh DAG's tasks are generated from. Programs: ``airflow`` or ``python``.
MIGRATE_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("airflow", "db", "migrate"),
    *(("airflow", "pools", "set", name, str(slots), description) for name, (slots, description) in POOLS.items()),
    ("python", "-m", "oncopipe.orchestration.deployment", "dbt-parse"),
)

PROCESSES: tuple[Process, ...] = (
    Process("api-server", ("api-server",),
            health=("CMD", "curl", "--fail", f"http://localhost:8080{HEALTH_PATH}"),
            health_component="metadatabase", needs_api=False),
    Process("scheduler", ("scheduler", "--skip-serve-logs"), health=_jobs_check("SchedulerJob"),
            health_component="scheduler"),
    Process("dag-processor", ("dag-processor",), health=_jobs_check("DagProcessorJob"),
            health_component="dag_processor"),
    Process("triggerer", ("triggerer", "--skip-serve-logs"), health=_jobs_check("TriggererJob"),
            health_component="triggerer"),
    Process("worker", ("celery", "worker", "--skip-serve-logs"), profile="celery",
            health=("CMD-SHELL", "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping "
                    '-d "celery@$${HOSTNAME}"'),
            ready_log=" ready."),
)


def processes(*, celery: bool) -> tuple[Process, ...]:
    """The long-running processes of the topology, with the Celery worker or without it."""
    return tuple(p for p in PROCESSES if p.profile is None or (celery and p.profile == "celery"))


@dataclass(frozen=True)
class Target:
    """The values of the placeholders of :data:`AIRFLOW_ENVIRONMENT` for one deployment."""

    name: str
    values: Mapping[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The environment of every Airflow process of this deployment."""
        missing = sorted(_placeholders() - set(self.values))
        if missing:
            raise ValueError(f"topology target {self.name!r}: no value for placeholder(s) {', '.join(missing)}")
        return {key: template.format(**self.values) for key, template in AIRFLOW_ENVIRONMENT.items()}


def _placeholders() -> set[str]:
    names: set[str] = set()
    for template in AIRFLOW_ENVIRONMENT.values():
        names.update(re.findall(r"{(\w+)}", template))
    return names


def _required(var: str) -> str:
    return "${" + var + ":?set " + var + " in .env (see .env.example)}"


def _optional(var: str) -> str:
    return "${" + var + ":-" + OPTIONS[var][0] + "}"


CONTAINER_PROJECT = "/opt/airflow"
CONTAINER_DATA = "/opt/oncopipe"

COMPOSE_TARGET = Target("compose", {
    "airflow_home": CONTAINER_PROJECT,
    "dags": f"{CONTAINER_PROJECT}/dags",
    "plugins": f"{CONTAINER_PROJECT}/plugins",
    "data": CONTAINER_DATA,
    "executor": _optional("ONCOPIPE_EXECUTOR"),
    "postgres_user": "airflow",
    "postgres_password": _required("POSTGRES_PASSWORD"),
    "postgres_host": "postgres",
    "postgres_port": "5432",
    "postgres_db": "airflow",
    "redis_url": "redis://redis:6379/0",
    "worker_concurrency": _optional("ONCOPIPE_WORKER_CONCURRENCY"),
    "api_host": "0.0.0.0",
    "api_port": "8080",
    "api_workers": "2",
    "api_url": "http://api-server:8080",
    "base_url": _optional("ONCOPIPE_BASE_URL"),
    "fernet_key": _required("ONCOPIPE_FERNET_KEY"),
    "jwt_secret": _required("ONCOPIPE_JWT_SECRET"),
    "api_secret_key": _required("ONCOPIPE_API_SECRET_KEY"),
    "smtp_url": _optional("ONCOPIPE_SMTP_URL"),
    "operator_emails": _optional("ONCOPIPE_OPERATOR_EMAILS"),
})


def native_target(
    *,
    secrets: Mapping[str, str],
    data: Path,
    airflow_home: Path,
    postgres_db: str,
    api_port: int,
    redis_db: int = 0,
    celery: bool = True,
    dags: Path | None = None,
    plugins: Path | None = None,
    postgres_host: str = "127.0.0.1",
    postgres_port: int = 5432,
    postgres_user: str = "postgres",
    redis_host: str = "127.0.0.1",
    redis_port: int = 6379,
    worker_concurrency: int = 2,
    smtp_url: str = "smtp://127.0.0.1:25?disable_ssl=true&disable_tls=true&from_email=oncopipe%40localhost",
    operator_emails: str = "",
) -> Target:
    """The target of the native harness: processes on this machine, bound to 127.0.0.1.

    Args:
        secrets: the values of :data:`SECRETS` (see :func:`read_env_file`).
        data: ``ONCOPIPE_HOME`` of the deployment.
        airflow_home: ``AIRFLOW_HOME`` (logs).
        postgres_db: metadata database (it must exist).
        api_port: port of the api-server on 127.0.0.1.
        redis_db: Redis database number of the Celery broker.
        celery: CeleryExecutor (True) or LocalExecutor.
        dags: DAGs folder (default: the project's ``dags/``).
        plugins: plugins folder (default: the project's ``plugins/``).
        postgres_host: PostgreSQL host.
        postgres_port: PostgreSQL port.
        postgres_user: PostgreSQL user.
        redis_host: Redis host.
        redis_port: Redis port.
        worker_concurrency: task slots of the Celery worker.
        smtp_url: the ``smtp_default`` connection, as a URI.
        operator_emails: comma-separated addresses that get task-failure mails.

    Returns:
        The target.
    """
    missing = sorted(set(SECRETS) - set(secrets))
    if missing:
        raise ValueError(f"missing secret(s) {', '.join(missing)} (see {ENV_EXAMPLE_FILE.name})")
    api_url = f"http://127.0.0.1:{api_port}"
    return Target("native", {
        "airflow_home": str(airflow_home),
        "dags": str(dags or PROJECT_ROOT / "dags"),
        "plugins": str(plugins or PROJECT_ROOT / "plugins"),
        "data": str(data),
        "executor": "CeleryExecutor" if celery else "LocalExecutor",
        "postgres_user": postgres_user,
        "postgres_password": secrets["POSTGRES_PASSWORD"],
        "postgres_host": postgres_host,
        "postgres_port": str(postgres_port),
        "postgres_db": postgres_db,
        "redis_url": f"redis://{redis_host}:{redis_port}/{redis_db}",
        "worker_concurrency": str(worker_concurrency),
        "api_host": "127.0.0.1",
        "api_port": str(api_port),
        "api_workers": "1",
        "api_url": api_url,
        "base_url": api_url,
        "fernet_key": secrets["ONCOPIPE_FERNET_KEY"],
        "jwt_secret": secrets["ONCOPIPE_JWT_SECRET"],
        "api_secret_key": secrets["ONCOPIPE_API_SECRET_KEY"],
        "smtp_url": smtp_url,
        "operator_emails": operator_emails,
    })


def generate_secrets() -> dict[str, str]:
    """Fresh random values for every secret (what ``oncopipe topology secrets`` writes to ``.env``)."""
    import base64
    import secrets as random

    return {
        "ONCOPIPE_FERNET_KEY": base64.urlsafe_b64encode(random.token_bytes(32)).decode(),
        "ONCOPIPE_JWT_SECRET": random.token_hex(64),
        "ONCOPIPE_API_SECRET_KEY": random.token_hex(32),
        "POSTGRES_PASSWORD": random.token_urlsafe(24),
        "ONCOPIPE_ADMIN_PASSWORD": random.token_urlsafe(18),
    }


def read_env_file(path: Path) -> dict[str, str]:
    """Read a ``KEY=VALUE`` file (``#`` comments, optional quotes), as docker compose reads ``.env``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not ``KEY=VALUE``; the message names the file and line.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def env_example_text() -> str:
    """The text of ``.env.example``: every secret and option, with what it is for."""
    lines = [
        "# Copy to .env (git-ignored) and fill in; `oncopipe topology secrets > .env` generates fresh values.",
        "# docker compose reads .env for ${...} interpolation; the native harness (`oncopipe topology up`) too.",
        "",
        "# --- secrets (required) ---",
    ]
    for name, description in SECRETS.items():
        lines += [f"# {description}", f"{name}=change-me"]
    lines += ["", "# --- options (defaults shown) ---",
              "# Scale-out: COMPOSE_PROFILES=celery starts Redis and the workers;",
              "# it needs ONCOPIPE_EXECUTOR=CeleryExecutor.",
              "# COMPOSE_PROFILES=celery"]
    for name, (default, description) in OPTIONS.items():
        lines += [f"# {description}", f"# {name}={default}"]
    return "\n".join(lines) + "\n"


def pip_requirements(lock: Path = PROJECT_ROOT / "uv.lock", pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> str:
    """The project's direct dependencies pinned to the locked versions, for the image's pip install.

    Airflow and its providers are left out: the image already holds ``apache-airflow`` at the locked
    version and reinstalling them would fight the image's constraints.
    """
    import tomllib

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    locked = {pkg["name"]: pkg["version"] for pkg in tomllib.loads(lock.read_text(encoding="utf-8"))["package"]}
    pins = []
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        if name.startswith("apache-airflow"):
            continue
        if name not in locked:
            raise ValueError(f"{lock}: dependency {name!r} of {pyproject.name} is not locked")
        pins.append(f"{name}=={locked[name]}")
    return " ".join(sorted(pins))


class _Flow(list):
    """A short list rendered on one line (``[a, b]``): commands and healthchecks."""


def _service_volumes() -> list[str]:
    project = [f"./{folder}:{CONTAINER_PROJECT}/{folder}:ro" for folder in PROJECT_MOUNTS]
    data = [f"{folder}:{CONTAINER_DATA}/{folder}" for folder in DATA_FOLDERS]
    return [*project, f"home:{CONTAINER_DATA}", *data, f"logs:{CONTAINER_PROJECT}/logs"]


def compose_document() -> dict:
    """The docker compose document, as a Python structure (see :func:`render_compose` for the text)."""
    environment = {**COMPOSE_TARGET.environment(), "_PIP_ADDITIONAL_REQUIREMENTS": pip_requirements()}
    volumes = _service_volumes()
    image = "${ONCOPIPE_AIRFLOW_IMAGE:-" + AIRFLOW_IMAGE + "}"
    user = "${AIRFLOW_UID:-50000}:0"

    def healthcheck(test: tuple[str, ...]) -> dict:
        return {"test": _Flow(test), "interval": "30s", "timeout": "20s", "retries": 5, "start_period": "60s"}

    services: dict[str, dict] = {
        "postgres": {
            "image": POSTGRES_IMAGE,
            "environment": {"POSTGRES_USER": COMPOSE_TARGET.values["postgres_user"],
                            "POSTGRES_PASSWORD": _required("POSTGRES_PASSWORD"),
                            "POSTGRES_DB": COMPOSE_TARGET.values["postgres_db"]},
            "volumes": ["postgres:/var/lib/postgresql/data"],
            "healthcheck": {"test": _Flow(["CMD", "pg_isready", "-U", "airflow"]), "interval": "10s", "retries": 5},
            "restart": "always",
        },
        "redis": {
            "image": REDIS_IMAGE,
            "profiles": ["celery"],
            "healthcheck": {"test": _Flow(["CMD", "redis-cli", "ping"]), "interval": "10s", "retries": 5},
            "restart": "always",
        },
        "init": {
            "image": image,
            "user": "0:0",
            # Bypass the image's entrypoint: it would pip-install the requirements as root first.
            "entrypoint": _Flow(["python", "-m", "oncopipe.orchestration.deployment", "prepare", "--owner", user]),
            "environment": {**{key: environment[key] for key in INIT_ENVIRONMENT},
                            "ONCOPIPE_ADMIN_PASSWORD": _required("ONCOPIPE_ADMIN_PASSWORD")},
            "volumes": volumes,
        },
        "migrate": {
            "image": image,
            "user": user,
            "command": _Flow(["bash", "-c", " && ".join(shlex.join(c) for c in MIGRATE_COMMANDS)]),
            "environment": environment,
            "volumes": volumes,
            "depends_on": {"init": {"condition": "service_completed_successfully"},
                           "postgres": {"condition": "service_healthy"}},
        },
    }
    for process in PROCESSES:
        service: dict = {"image": image, "user": user}
        if process.profile:
            service["profiles"] = [process.profile]
        service["command"] = _Flow(process.args)
        if process.name == "api-server":
            service["ports"] = ["127.0.0.1:${ONCOPIPE_API_PORT:-8080}:8080"]
        service.update({
            "environment": environment,
            "volumes": volumes,
            "healthcheck": healthcheck(process.health),
            "restart": "always",
            "depends_on": {"migrate": {"condition": "service_completed_successfully"},
                           **({"api-server": {"condition": "service_healthy"}} if process.needs_api else {}),
                           **({"redis": {"condition": "service_healthy"}} if process.profile else {})},
        })
        services[process.name] = service
    return {
        "services": services,
        "volumes": {name: {} for name in ("postgres", "home", *DATA_FOLDERS, "logs")},
    }


_HEADER = """\
# GENERATED by `oncopipe topology render` from plugins/oncopipe/orchestration/deployment.py: do not edit by hand
# (tests/integration/test_compose.py fails when this file and the render differ).
#
#   cp .env.example .env                              # or: oncopipe topology secrets > .env
#   docker compose up -d                              # PostgreSQL + api-server, scheduler, dag-processor, triggerer
#   docker compose --profile celery up -d --scale worker=3  # scale-out: Redis + 3 Celery workers
#                                                     # (with ONCOPIPE_EXECUTOR=CeleryExecutor in .env)
#
# Image: the official apache/airflow image; the project's locked dependencies are pip-installed at start
# (_PIP_ADDITIONAL_REQUIREMENTS) and the project folders are mounted read-only at the paths
# oncopipe.contracts.settings expects (/opt/airflow/{dags,plugins,dbt_project,expectations}).
"""


def render_compose() -> str:
    """The text of ``docker-compose.yml``."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        """Names the anchors of the shared environment and volume list (the only shared objects)."""

        def generate_anchor(self, node: yaml.Node) -> str:
            if isinstance(node, yaml.MappingNode) and any(key.value == "AIRFLOW_HOME" for key, _ in node.value):
                return "airflow-env"
            if isinstance(node, yaml.SequenceNode):
                return "airflow-volumes"
            raise ValueError(f"unexpected shared object in the compose document: {node}")

    _Dumper.add_representer(
        _Flow, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))

    body = yaml.dump(compose_document(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=200)
    return _HEADER + "\n" + body


def write_passwords_file(path: Path, password: str, user: str = ADMIN_USER) -> Path:
    """Write the simple auth manager's passwords file (readable by its owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({user: password}) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def prepare(environment: Mapping[str, str], admin_password: str, owner: str | None = None) -> list[Path]:
    """Create the data folders and the passwords file of a deployment; optionally hand them to ``owner``.

    Args:
        environment: the Airflow processes' environment (from :meth:`Target.environment`).
        admin_password: password of the UI's admin user.
        owner: ``uid:gid`` to give the folders to (compose runs this as root for the uid of the image).

    Returns:
        The folders created.
    """
    data = Path(environment["ONCOPIPE_HOME"])
    folders = [data / name for name in DATA_FOLDERS] + [Path(environment["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    passwords = write_passwords_file(Path(environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]),
                                     admin_password)
    if owner:
        uid, _, gid = owner.partition(":")
        for path in _walk([data, *folders]):
            shutil.chown(path, int(uid), int(gid or 0))
        shutil.chown(passwords, int(uid), int(gid or 0))
    return folders


def _walk(roots: Iterable[Path]) -> Iterable[Path]:
    for root in roots:
        yield root
        yield from root.rglob("*")


def main(argv: list[str] | None = None) -> None:
    """``python -m oncopipe.orchestration.deployment prepare|dbt-parse``: the one-shot steps of the compose services."""
    parser = argparse.ArgumentParser(prog="python -m oncopipe.orchestration.deployment")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="create the data folders and the passwords file from the environment")
    prep.add_argument("--owner", help="uid:gid to give the folders to")
    sub.add_parser("dbt-parse", help="write the dbt manifest the refresh DAG is generated from")
    args = parser.parse_args(argv)
    if args.command == "dbt-parse":
        from oncopipe.warehouse.dbt_nodes import parse

        print(f"dbt manifest: {parse()}")
    if args.command == "prepare":
        settings = get_settings()
        if settings.admin_password is None or not settings.admin_password.get_secret_value():
            parser.error("ONCOPIPE_ADMIN_PASSWORD is not set (see .env.example)")
        # Airflow's own variables (log folder, passwords file) from the environment, the data root from the settings.
        environment = {**os.environ, "ONCOPIPE_HOME": str(settings.home)}
        for folder in prepare(environment, settings.admin_password.get_secret_value(), args.owner):
            print(f"ready: {folder}")


if __name__ == "__main__":
    main()
