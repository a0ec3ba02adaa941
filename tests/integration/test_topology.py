"""The production topology as native processes: PostgreSQL metadata, Celery on Redis, a refresh, a crash.

The session's topology (tests/native_topology.py: fresh PostgreSQL database, dedicated Redis database,
scheduler + api-server + dag-processor + triggerer + one Celery worker, started by PID with the environment
of ``oncopipe.orchestration.deployment``, the one docker-compose.yml is rendered from, and stopped by PID at the end).
These tests run last, after the live-UI browser test, in file order: the first checks the processes and the DAGs,
the second lands a small extraction and refreshes it through the REST API with the scheduler SIGKILLed in the
middle, the third lands a faulty extraction, whose raw gate fails, and reads the failure mail.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

pytestmark = [pytest.mark.topology]

REFRESH = "platform_refresh"
#: The smallest extraction every approved study runs on (tests/integration/test_dag_e2e.py uses the same).
PATIENTS = 1_000
SEED = 7
EXTRACTION_DATE = "2025-03-31"
#: A later extraction with a critical fault: its refresh stops at the raw gate (the failure mail's test).
FAULTY = "2025-09-30"
FAULT = "null_mandatory"
#: One refresh is ~30 dbt tasks in a pool of one slot, each a process that loads dbt: minutes, not seconds.
REFRESH_TIMEOUT = 900.0


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """The extraction, generated aside (not yet landed) on the landing's file system.

    platform_refresh is hourly and DAGs are unpaused at creation, so its first scheduled run starts as soon
    as the DAG is parsed; the extraction lands only after that run found nothing new, so the run the test
    triggers through the REST API is the one that processes it.
    """
    from oncopipe.synth.extraction import generate

    root = tmp_path_factory.mktemp("staged")
    generate(root, PATIENTS, SEED, EXTRACTION_DATE)
    return root


def land(staged: Path, landing: Path) -> None:
    """Move every staged ``<source>/extraction=<date>`` folder into the landing (a rename: atomic per folder)."""
    for source in sorted(p for p in staged.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for extraction in source.iterdir():
            (landing / source.name).mkdir(parents=True, exist_ok=True)
            extraction.rename(landing / source.name / extraction.name)


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _study_dag_ids() -> set[str]:
    from oncopipe.studies.registry import scan_registry

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
    checksums = manifest.get("files") or {}  # file name -> sha256 (oncopipe.warehouse.versions's version.json)
    if not checksums:
        problems.append(f"{manifest_path}: no file checksums")
    for relative, expected in checksums.items():
        path = folder / relative
        if not path.exists():
            problems.append(f"{name}/{relative} missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            problems.append(f"{name}/{relative} checksum differs from version.json")
    return name, problems


def test_processes_run_on_postgres_and_celery(native_airflow, airflow_api):
    airflow, api = native_airflow, airflow_api
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
    first = _wait(lambda: [r for r in api.runs(REFRESH)
                           if r["run_type"] == "scheduled" and r["state"] in ("success", "failed")], 300,
                  "the first scheduled run of platform_refresh")[-1]
    assert first["state"] == "success"
    assert api.task_states(REFRESH, first["dag_run_id"])["find_extraction"] == "skipped"


def test_refresh_survives_a_scheduler_kill_and_studies_run_on_their_assets(native_airflow, airflow_api, staged):
    """One refresh, triggered through the REST API, with the scheduler SIGKILLed while a dbt task runs.

    A reader polls the published folder all along: it must only ever see no version or a complete one
    (CURRENT names a version whose files match version.json). After the restart the run finishes (Celery
    tasks kept running in the worker; the new scheduler adopts them), the marts are published, and every
    approved study DAG runs because the Assets of its marts were updated (nobody triggers them).
    """
    airflow, api = native_airflow, airflow_api
    published = Path(airflow.environment["ONCOPIPE_PUBLISHED"])
    assert not [r for r in api.runs(REFRESH) if r["state"] not in ("success", "failed")], "no refresh pending"
    land(staged, Path(airflow.environment["ONCOPIPE_LANDING"]))
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

    runs = _wait(finished, REFRESH_TIMEOUT, f"asset-triggered runs of {sorted(studies)}", interval=2)
    for dag_id, run in runs.items():
        assert run["run_type"] == "asset_triggered", (dag_id, run["run_type"])
        assert run["state"] == "success", (dag_id, api.task_states(dag_id, run["dag_run_id"]))


def test_a_failed_gate_mails_its_message_and_a_link_to_its_log_on_the_api_server(native_airflow, airflow_api, mailbox,
                                                                                tmp_path):
    """A faulty extraction lands: the refresh stops at the raw gate, and the failure callback (in the Celery worker)
    mails the gate's message with links to the task log built from the topology's base URL (its own port).

    The links must resolve: the REST one, with a token, answers 200 with the log, whose first lines are the gate's
    message (tests/e2e/test_topology_browser.py opens the UI one).
    """
    from oncopipe.synth.extraction import generate

    airflow, api = native_airflow, airflow_api
    generate(tmp_path, PATIENTS, SEED, FAULTY, faults=FAULT)
    land(tmp_path, Path(airflow.environment["ONCOPIPE_LANDING"]))
    run_id = api.trigger(REFRESH)
    assert api.wait_run(REFRESH, run_id, timeout=REFRESH_TIMEOUT) == "failed"
    states = api.task_states(REFRESH, run_id)
    assert states["raw_gate"] == "failed" and states["find_extraction"] == "success", states
    mail = mailbox.wait_for(f"FAILED {REFRESH}.raw_gate", timeout=120)
    message = f"raw gate failed for extraction {FAULTY}"
    assert f"Error: {message}" in mail and "BEN_NIR_PSA" in mail, mail
    ui_link = f"{airflow.api_url}/dags/{REFRESH}/runs/{quote(run_id, safe='')}/tasks/raw_gate?try_number=1"
    assert f"Log: {ui_link}" in mail, mail
    api_link = re.search(r"Log through the REST API \(with a token\): (\S+)", mail).group(1)
    assert api_link.startswith(f"{airflow.api_url}/api/v2/"), api_link
    assert airflow.api_url != "http://127.0.0.1:8080"
    request = urllib.request.Request(api_link, headers={"Authorization": f"Bearer {api.token}",
                                                        "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        content = json.load(response)["content"]
    events = [str(line.get("event", "")) for line in content]
    assert not [e for e in events if "Could not read" in e], events[:10]
    body = [e for e in events if not e.startswith("::") and not e.startswith("/")]
    assert body and body[0].startswith(f"Task failed: {message} (run "), body[:5]
    assert any("BEN_NIR_PSA" in e for e in body[:6]), body[:6]
