"""The production topology as native processes: PostgreSQL metadata, Celery on Redis, a refresh, a crash.

One topology for the module (fresh PostgreSQL database, dedicated Redis database, demo-scale extraction):
scheduler + api-server + dag-processor + triggerer + one Celery worker, started by PID with the environment
of ``oncopipe.topology`` (the one docker-compose.yml is rendered from), stopped by PID at the end.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from oncopipe.native import AirflowApi, NativeTopology, ephemeral_topology

pytestmark = [pytest.mark.topology]

PASSWORD = "topology-admin-password"
DATABASE = "oncopipe_airflow_test"
REFRESH = "platform_refresh"


@pytest.fixture(scope="module")
def landing_root(tmp_path_factory) -> Path:
    from oncopipe.commands.demo import DEMO_EXTRACTION_DATE, DEMO_PATIENTS, DEMO_SEED
    from oncopipe.synth.extraction import generate

    root = tmp_path_factory.mktemp("topology")
    generate(root / "data" / "landing", DEMO_PATIENTS, DEMO_SEED, DEMO_EXTRACTION_DATE)
    return root


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
    controller = Controller(box, hostname="127.0.0.1", port=0)
    controller.start()
    box.port = controller.server.sockets[0].getsockname()[1]
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def airflow(landing_root, mailbox) -> Iterator[NativeTopology]:
    smtp = f"smtp://127.0.0.1:{mailbox.port}?disable_ssl=true&disable_tls=true&from_email=oncopipe%40localhost"
    with ephemeral_topology(landing_root, DATABASE, celery=True, admin_password=PASSWORD, smtp_url=smtp) as harness:
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


def test_refresh_through_the_rest_api_then_studies_run_on_their_assets(airflow, api):
    published = Path(airflow.environment["ONCOPIPE_PUBLISHED"])
    run_id = api.trigger(REFRESH)
    state = api.wait_run(REFRESH, run_id, timeout=420)
    assert state == "success", api.task_states(REFRESH, run_id)
    version, problems = published_state(published)
    assert version is not None and problems == []
    # Every approved, asset-scheduled study runs because its marts' Assets were updated (no trigger by us).
    studies = _study_dag_ids()
    assert studies, "the registry holds asset-scheduled studies"

    def finished() -> dict[str, dict] | None:
        runs = {d: api.runs(d) for d in studies}
        if all(r and r[0]["state"] in ("success", "failed") for r in runs.values()):
            return {d: r[0] for d, r in runs.items()}
        return None

    runs = _wait(finished, 420, f"asset-triggered runs of {sorted(studies)}", interval=2)
    for dag_id, run in runs.items():
        assert run["run_type"] == "asset_triggered", (dag_id, run["run_type"])
        assert run["state"] == "success", (dag_id, api.task_states(dag_id, run["dag_run_id"]))


def test_scheduler_killed_mid_refresh_leaves_published_marts_whole(airflow, api, landing_root):
    from oncopipe.commands.demo import DEMO_EXTRACTION_DATE, DEMO_PATIENTS, DEMO_SEED
    from oncopipe.synth.extraction import generate

    published = Path(airflow.environment["ONCOPIPE_PUBLISHED"])
    before, problems = published_state(published)
    assert before is not None and problems == [], "the previous test published a version"
    later = (dt.date.fromisoformat(DEMO_EXTRACTION_DATE) + dt.timedelta(days=92)).isoformat()
    generate(Path(airflow.environment["ONCOPIPE_LANDING"]), DEMO_PATIENTS, DEMO_SEED, later)

    # A reader polling the published folder all along must only ever see complete versions.
    seen: list[tuple[str | None, list[str]]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(published_state(published))
            stop.wait(0.2)

    watcher = threading.Thread(target=reader, daemon=True)
    watcher.start()
    try:
        run_id = api.trigger(REFRESH)
        running = _wait(lambda: [t for t, s in api.task_states(REFRESH, run_id).items() if s == "running"],
                        180, "a running task of the refresh", interval=0.5)
        airflow.kill("scheduler")
        assert airflow.alive()["scheduler"] is False
        airflow.start("scheduler")
        airflow.wait_healthy(180)
        state = api.wait_run(REFRESH, run_id, timeout=420)
    finally:
        stop.set()
        watcher.join()
    after, problems = published_state(published)
    assert problems == [], problems
    assert all(not p for _, p in seen), [p for _, p in seen if p][:3]
    assert {v for v, _ in seen} <= {before, after}
    if state == "success":
        assert after != before, "a successful refresh on a new extraction publishes a new version"
    else:
        assert after == before, "a failed refresh leaves the last published version current"
    print(f"scheduler killed while {running} ran; run ended {state}; CURRENT {before} -> {after}")


def test_a_failed_task_mails_a_link_to_its_log_on_the_api_server(airflow, api, mailbox):
    """The failure callback runs in the Celery worker and builds the log URL from the topology's base URL."""
    run_id = api.trigger(REFRESH, conf={"extraction_date": "1999-01-01"})  # never landed: find_extraction fails
    assert api.wait_run(REFRESH, run_id, timeout=180) == "failed"
    mail = mailbox.wait_for(f"{airflow.api_url}/dags/{REFRESH}/runs/", timeout=120)
    assert "find_extraction" in mail
