"""Test support for the native production topology: a throw-away topology and a small REST API client.

What the tests and trials need around :class:`oncopipe.orchestration.native.NativeTopology` (which the
``oncopipe topology up`` command uses for real deployments on hosts without Docker): a topology with a fresh
PostgreSQL and Redis database that is stopped and dropped however the block is left, and a client of Airflow's
REST API v2 to trigger and watch runs.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import urllib3
from oncopipe.orchestration import deployment
from oncopipe.orchestration.native import (
    NativeTopology,
    TopologyError,
    create_database,
    drop_database,
    free_port,
    stop_recorded,
)


class AirflowApi:
    """Airflow's REST API v2 through its official client (``apache-airflow-client``, the release matching Airflow),
    authenticated with a JWT token from the simple auth manager's ``/auth/token``.

    The methods return plain dicts (the client's models as JSON would carry them: states as strings), as the tests
    compare and print them.

    Args:
        base_url: the api-server's base URL.
        username: the user to log in as.
        password: its password.
        timeout: seconds to wait for one answer.
    """

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60.0) -> None:
        from airflow_client import client

        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # The token endpoint belongs to the auth manager, not to the API the client is generated from.
        http = urllib3.PoolManager(retries=False)
        answer = http.request("POST", f"{self.base_url}/auth/token", json={"username": username, "password": password},
                              timeout=timeout)
        if answer.status >= 300:
            raise TopologyError(f"POST /auth/token: HTTP {answer.status}: {answer.data.decode(errors='replace')}")
        self.token: str = answer.json()["access_token"]
        # A GET is retried when the api-server is too busy to answer in time (a loaded CI machine); a POST or
        # PATCH is not, since it may have taken effect (urllib3's default allowed_methods are the idempotent ones).
        retries = urllib3.Retry(total=3, connect=3, read=3, status=0, backoff_factor=0.5,
                                allowed_methods=frozenset({"GET"}))
        configuration = client.Configuration(host=self.base_url, access_token=self.token, retries=retries)
        self._client = client.ApiClient(configuration)
        self._dags = client.DAGApi(self._client)
        self._runs = client.DagRunApi(self._client)
        self._tasks = client.TaskInstanceApi(self._client)
        self._errors = client.ImportErrorApi(self._client)
        self._monitor = client.MonitorApi(self._client)
        self._models = client

    def _call(self, what: str, method: Callable, *args, **kwargs) -> dict:
        from airflow_client.client.exceptions import ApiException

        try:
            answer = method(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as error:
            raise TopologyError(f"{what}: HTTP {error.status}: {error.body}") from None
        except urllib3.exceptions.HTTPError as error:
            raise TopologyError(f"{what}: no answer: {error}") from None
        # to_dict() unwraps the client's oneOf models (a log's content); the JSON round trip turns its enums
        # (DagRunState...) and datetimes into the strings the API sent.
        return json.loads(json.dumps(answer.to_dict(), default=str)) if answer is not None else {}

    def health(self) -> dict:
        """The api-server's view of each component's health (``/api/v2/monitor/health``)."""
        return self._call("get_health", self._monitor.get_health)

    def dags(self) -> dict[str, dict]:
        """Every DAG the api-server knows, by id."""
        return {d["dag_id"]: d for d in self._call("get_dags", self._dags.get_dags, limit=1000)["dags"]}

    def import_errors(self) -> list[dict]:
        """The DAG import errors (file and stack trace)."""
        return self._call("get_import_errors", self._errors.get_import_errors, limit=1000)["import_errors"]

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG."""
        self._call(f"patch_dag {dag_id}", self._dags.patch_dag, dag_id, self._models.DAGPatchBody(is_paused=False))

    def trigger(self, dag_id: str, conf: Mapping | None = None) -> str:
        """Trigger a run now (no logical date); returns its run id."""
        body = self._models.TriggerDAGRunPostBody(logical_date=None, conf=dict(conf or {}))
        return self._call(f"trigger_dag_run {dag_id}", self._runs.trigger_dag_run, dag_id, body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        """Runs of a DAG, newest first."""
        return self._call(f"get_dag_runs {dag_id}", self._runs.get_dag_runs, dag_id, order_by=["-run_after"],
                          limit=100)["dag_runs"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        """State of one run (queued, running, success, failed)."""
        return self._call(f"get_dag_run {dag_id} {run_id}", self._runs.get_dag_run, dag_id, run_id)["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """State of each task instance of a run."""
        tis = self._call(f"get_task_instances {dag_id} {run_id}", self._tasks.get_task_instances, dag_id, run_id,
                         limit=1000)["task_instances"]
        return {ti["task_id"]: ti.get("state") for ti in tis}

    def log_events(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
        """The events of a task instance's whole log (structured lines as the api-server reads them back)."""
        from airflow_client.client.exceptions import ApiException

        try:
            answer = self._tasks.get_log(dag_id, run_id, task_id, try_number, full_content=True,
                                         accept="application/json", _request_timeout=self.timeout)
        except ApiException as error:
            raise TopologyError(f"get_log {dag_id} {run_id} {task_id}: HTTP {error.status}: {error.body}") from None
        # The content is a oneOf: structured messages (an ``event`` each) or plain lines.
        lines = answer.content.actual_instance or []
        return [line if isinstance(line, str) else str(line.event) for line in lines]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300.0, interval: float = 2.0) -> str:
        """Wait until a run finishes; returns its final state (success or failed).

        Raises:
            TimeoutError: still unfinished after ``timeout`` seconds (the message lists the task states).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(interval)
        raise TimeoutError(f"{dag_id} {run_id} unfinished after {timeout:.0f} s: {self.task_states(dag_id, run_id)}")


@contextmanager
def ephemeral_topology(
    root: Path,
    database: str,
    *,
    celery: bool = True,
    redis_db: int = 11,
    admin_password: str = "admin-password",
    dags: Path | None = None,
    smtp_url: str = "smtp://127.0.0.1:25?disable_ssl=true&disable_tls=true&from_email=oncopipe%40localhost",
    operator_emails: str = "",
    tuning: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> Iterator[NativeTopology]:
    """A throw-away topology for tests and trials: fresh database, fresh Redis db, everything under ``root``.

    However the block is left (normally, by an exception, by KeyboardInterrupt, or by SIGTERM, which is turned
    into KeyboardInterrupt while the block runs if nothing else handles it), every process is stopped by PID,
    then the database is dropped and the Redis database flushed. A run killed outright (SIGKILL) cannot clean
    up: the next one with the same ``database`` stops the airflow processes that run left (their PIDs are
    recorded) before it recreates the database.

    Args:
        root: folder for the data (``root/data``), Airflow logs (``root/airflow``) and state (``root/state``).
        database: PostgreSQL database to (re)create on 127.0.0.1.
        celery: CeleryExecutor with one worker, else LocalExecutor.
        redis_db: Redis database number, flushed before and after.
        admin_password: password of the UI's admin user.
        dags: DAGs folder (default: the project's).
        smtp_url: the ``smtp_default`` connection.
        operator_emails: comma-separated addresses that get task-failure mails.
        tuning: extra settings for the processes (default: :data:`oncopipe.orchestration.deployment.TEST_TUNING`).
        timeout: seconds to wait for health.

    Yields:
        The running topology (healthy).
    """
    secrets = {**deployment.generate_secrets(), "ONCOPIPE_ADMIN_PASSWORD": admin_password}
    port = free_port()
    target = deployment.native_target(secrets=secrets, data=root / "data", airflow_home=root / "airflow",
                                    postgres_db=database, api_port=port, redis_db=redis_db, celery=celery,
                                    dags=dags, smtp_url=smtp_url, operator_emails=operator_emails)
    harness = NativeTopology(target, root / "state", admin_password, celery=celery,
                             tuning=deployment.TEST_TUNING if tuning is None else tuning)
    marker = Path(tempfile.gettempdir()) / f"oncopipe-native-{database}.state"
    if marker.exists():  # a previous run with this database was killed before it could clean up
        stop_recorded(Path(marker.read_text(encoding="utf-8").strip()), timeout=10.0)
    marker.write_text(str(harness.state_dir) + "\n", encoding="utf-8")
    restore = sigterm_as_interrupt()
    try:
        create_database(database, recreate=True)
        if celery:
            _flush_redis(redis_db)
        harness.up(timeout)
        yield harness
    finally:
        try:
            harness.stop_all()
        finally:
            try:
                drop_database(database)
                if celery:
                    _flush_redis(redis_db)
                marker.unlink(missing_ok=True)
            finally:
                restore()


def sigterm_as_interrupt() -> Callable[[], None]:
    """Raise KeyboardInterrupt on SIGTERM (default: die without cleaning up); returns what restores the handler.

    Only in the main thread, and only when SIGTERM has its default handler (a caller's own handler is kept).
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return lambda: None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _flush_redis(db: int, host: str = "127.0.0.1", port: int = 6379) -> None:
    import redis

    redis.Redis(host=host, port=port, db=db).flushdb()
