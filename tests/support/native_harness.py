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
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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
    """A small client of the REST API v2, authenticated with a JWT token from ``/auth/token``.

    Args:
        base_url: the api-server's base URL.
        username: the user to log in as.
        password: its password.
        timeout: seconds to wait for one answer.
    """

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        token = self._call("POST", "/auth/token", {"username": username, "password": password}, token=None)
        self.token: str = token["access_token"]

    def _call(self, method: str, path: str, body: Mapping | None = None, *, token: str | None | bool = True) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        bearer = self.token if token is True else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = json.dumps(body).encode() if body is not None else None
        # A GET is retried when the api-server is too busy to answer in time (a loaded CI machine); a POST or
        # PATCH is not, since it may have taken effect.
        attempts = 3 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.load(response)
            except urllib.error.HTTPError as error:
                detail = error.read().decode(errors="replace")
                raise TopologyError(f"{method} {path}: HTTP {error.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt == attempts:
                    raise TopologyError(f"{method} {path}: no answer after {attempts} attempt(s): {error}") from None
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict:
        """GET an API path (``/api/v2/...``)."""
        return self._call("GET", path)

    def dags(self) -> dict[str, dict]:
        """Every DAG the api-server knows, by id."""
        return {d["dag_id"]: d for d in self.get("/api/v2/dags?limit=1000")["dags"]}

    def import_errors(self) -> list[dict]:
        """The DAG import errors (file and stack trace)."""
        return self.get("/api/v2/importErrors?limit=1000")["import_errors"]

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG."""
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping | None = None) -> str:
        """Trigger a run now; returns its run id."""
        run = self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf or {})})
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        """Runs of a DAG, newest first."""
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=100")["dag_runs"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        """State of one run (queued, running, success, failed)."""
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """State of each task instance of a run."""
        tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

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
