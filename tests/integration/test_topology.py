"""The production topology as native processes: PostgreSQL metadata, Celery on Redis, a refresh, a crash.

One topology for the module (fresh PostgreSQL database, dedicated Redis database, demo-scale extraction):
scheduler + api-server + dag-processor + triggerer + one Celery worker, started by PID with the environment
of ``oncopipe.topology`` (the one docker-compose.yml is rendered from), stopped by PID at the end.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from oncopipe.native import AirflowApi, NativeTopology, ephemeral_topology, free_port

pytestmark = [pytest.mark.topology]

PASSWORD = "topology-admin-password"
DATABASE = "oncopipe_airflow_test"
REFRESH = "platform_refresh"
OPERATORS = "ops@example.org"
#: One refresh is ~30 dbt tasks in a pool of one slot, each a process that loads dbt: minutes, not seconds.
REFRESH_TIMEOUT = 900.0


@pytest.fixture(scope="module")
def landing_root(tmp_path_factory) -> Path:
    """The topology's root, with the demo extraction generated aside (``staged/``), not yet landed.

    platform_refresh is hourly and DAGs are unpaused at creation, so its first scheduled run starts as soon
    as the DAG is parsed; the extraction lands only after that run found nothing new, so the run the test
    triggers through the REST API is the one that processes it.
    """
    from oncopipe.commands.demo import DEMO_EXTRACTION_DATE, DEMO_PATIENTS, DEMO_SEED
    from oncopipe.synth.extraction import generate

    root = tmp_path_factory.mktemp("topology")
    generate(root / "staged", DEMO_PATIENTS, DEMO_SEED, DEMO_EXTRACTION_DATE)
    return root


def land(staged: Path, landing: Path) -> None:
    """Move every staged ``<source>/extraction=<date>`` folder into the landing (a rename: atomic per folder)."""
    for source in sorted(p for p in staged.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for extraction in source.iterdir():
            (landing / source.name).mkdir(parents=True, exist_ok=True)
            extraction.rename(landing / source.name / extraction.name)


class Mailbox:
    """An SMTP server on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's handler protocol)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        with self.arrived:
            self.messages.append(f"Subject: {message['subject']}\n{body.get_content() if body else ''}")
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, text: str, timeout: float) -> str:
        with self.arrived:
            found = self.arrived.wait_for(lambda: next((m for m in self.messages if text in m), None), timeout)
        assert found, f"no mail containing {text!r} within {timeout:.0f} s; got {len(self.messages)} other(s)"
        return found


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def airflow(landing_root, mailbox) -> Iterator[NativeTopology]:
    smtp = f"smtp://127.0.0.1:{mailbox.port}?disable_ssl=true&disable_tls=true&from_email=oncopipe%40localhost"
    with ephemeral_topology(landing_root, DATABASE, celery=True, admin_password=PASSWORD, smtp_url=smtp,
                            operator_emails=OPERATORS) as harness:
        yield harness
    assert not harness.forced, f"needed SIGKILL to stop: {harness.forced}"
    assert not any(harness.alive().values())


@pytest.fixture(scope="module")
def api(airflow) -> AirflowApi:
    return AirflowApi(airflow.api_url, "admin", PASSWORD)


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _study_dag_ids() -> set[str]:
    from oncopipe.studies import scan_registry

    return {e.study.dag_id for e in scan_registry(check_kinds=False)
            if e.study and e.study.schedule.assets and e.study.approval_problem() is None}


def published_state(published: Path) -> tuple[str | None, list[str]]:
    """The version CURRENT points to and every inconsistency found (empty: complete and intact).

    A reader sees a complete version or the previous one, never a half-written one: CURRENT names a
    version folder whose ``version.json`` lists files that all exist with the recorded checksums.
    """
    current = published / "CURRENT"
    if not current.exists() and not current.is_symlink():
        return None, []
    name = current.resolve().name if current.is_symlink() else current.read_text(encoding="utf-8").strip()
    folder = published / name
    manifest_path = folder / "version.json"
    if not manifest_path.exists():
        return name, [f"CURRENT -> {name} has no version.json"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    checksums = manifest.get("files") or {}  # file name -> sha256 (oncopipe.publish's version.json)
    if not checksums:
        problems.append(f"{manifest_path}: no file checksums")
    for relative, expected in checksums.items():
        path = folder / relative
        if not path.exists():
            problems.append(f"{name}/{relative} missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            problems.append(f"{name}/{relative} checksum differs from version.json")
    return name, problems


def test_processes_run_on_postgres_and_celery(airflow, api):
    health = airflow.health()
    assert {k: v["status"] for k, v in health.items()} == {
        "metadatabase": "healthy", "scheduler": "healthy", "triggerer": "healthy", "dag_processor": "healthy"}
    env = airflow.environment
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert set(airflow.started) == {"api-server", "scheduler", "dag-processor", "triggerer", "worker"}
    expected = {REFRESH} | _study_dag_ids()

    def parsed() -> dict[str, dict] | None:
        dags = api.dags()
        return dags if expected <= set(dags) else None

    dags = _wait(parsed, 180, f"DAGs {sorted(expected)}")
    assert api.import_errors() == []
    assert not any(dags[d]["is_paused"] for d in expected)
    # The hourly refresh ran on its own as soon as it was parsed; with nothing landed it skips, cheaply.
    first = _wait(lambda: [r for r in api.runs(REFRESH) if r["state"] in ("success", "failed")], 300,
                  "the first scheduled run of platform_refresh")[0]
    assert first["run_type"] == "scheduled" and first["state"] == "success"
    assert api.task_states(REFRESH, first["dag_run_id"])["find_extraction"] == "skipped"


def test_refresh_survives_a_scheduler_kill_and_studies_run_on_their_assets(airflow, api, landing_root):
    """One refresh, triggered through the REST API, with the scheduler SIGKILLed while a dbt task runs.

    A reader polls the published folder all along: it must only ever see no version or a complete one
    (CURRENT names a version whose files match version.json). After the restart the run finishes (Celery
    tasks kept running in the worker; the new scheduler adopts them), the marts are published, and every
    approved study DAG runs because the Assets of its marts were updated (nobody triggers them).
    """
    published = Path(airflow.environment["ONCOPIPE_PUBLISHED"])
    assert not [r for r in api.runs(REFRESH) if r["state"] not in ("success", "failed")], "no refresh pending"
    land(landing_root / "staged", Path(airflow.environment["ONCOPIPE_LANDING"]))
    seen: list[tuple[str | None, list[str]]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(published_state(published))
            stop.wait(0.5)

    watcher = threading.Thread(target=reader, daemon=True)
    watcher.start()
    try:
        run_id = api.trigger(REFRESH)

        def dbt_running() -> list[str]:
            return [t for t, s in api.task_states(REFRESH, run_id).items()
                    if s == "running" and t.startswith(("transform.", "marts_candidate."))]

        running = _wait(dbt_running, REFRESH_TIMEOUT, "a running dbt task of the refresh", interval=2)
        airflow.kill("scheduler")
        assert airflow.alive()["scheduler"] is False
        killed_at = time.monotonic()
        airflow.start("scheduler")
        airflow.wait_healthy(180)
        state = api.wait_run(REFRESH, run_id, timeout=REFRESH_TIMEOUT)
    finally:
        stop.set()
        watcher.join()
    print(f"scheduler SIGKILLed while {running} ran; run {state} {time.monotonic() - killed_at:.0f} s later")
    assert state == "success", api.task_states(REFRESH, run_id)
    version, problems = published_state(published)
    assert version is not None and problems == [], problems
    assert all(not p for _, p in seen), [p for _, p in seen if p][:3]
    assert {v for v, _ in seen} <= {None, version}

    studies = _study_dag_ids()
    assert studies, "the registry holds approved, asset-scheduled studies"

    def finished() -> dict[str, dict] | None:
        runs = {d: api.runs(d) for d in studies}
        if all(r and r[0]["state"] in ("success", "failed") for r in runs.values()):
            return {d: r[0] for d, r in runs.items()}
        return None

    runs = _wait(finished, REFRESH_TIMEOUT, f"asset-triggered runs of {sorted(studies)}", interval=5)
    for dag_id, run in runs.items():
        assert run["run_type"] == "asset_triggered", (dag_id, run["run_type"])
        assert run["state"] == "success", (dag_id, api.task_states(dag_id, run["dag_run_id"]))


def test_a_failed_task_mails_a_link_to_its_log_on_the_api_server(airflow, api, mailbox):
    """The failure callback runs in the Celery worker and builds the log URL from the topology's base URL."""
    run_id = api.trigger(REFRESH, conf={"extraction_date": "1999-01-01"})  # never landed: find_extraction fails
    assert api.wait_run(REFRESH, run_id, timeout=180) == "failed"
    mail = mailbox.wait_for(f"{airflow.api_url}/dags/{REFRESH}/runs/", timeout=120)
    assert "find_extraction" in mail
