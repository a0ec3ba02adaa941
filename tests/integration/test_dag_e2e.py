"""End to end through Airflow: platform_refresh and the study DAGs with ``dag.test()`` on a small extraction.

Airflow reads its configuration once per process, so the scenario runs in a fresh interpreter with a temporary
AIRFLOW_HOME (SQLite metadata, migrated there) and ONCOPIPE_HOME; it writes what happened as JSON, and the
assertions below read that JSON and the files the platform wrote.

Scenario: (1) a first extraction lands -> refresh, then every approved study; the expired study's DAG is run
too and must stop at its first task. (2) a second extraction date lands -> one refresh, then the studies
scheduled on its Assets; one of them (``VICTIM``) dies in its export step, and its run is then put back to
``running``, what a kill mid-export leaves (issue #24, point 4: the Asset rule counted such a run as served and
the export was missing for good). (2b) the next ``oncopipe run``, with nothing new landed, marks that run failed,
runs that study alone again on the same version and exports it. (3) the refresh is re-run for the second
extraction -> nothing published changes, and no study is owed anything.

The retry scenario was tests/integration/test_study_retry.py, which built a platform of its own for it (~5
minutes of the suite); it rides on this platform's second round instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from oncopipe.studies.registry import load_registry

PATIENTS = 1_000
SEED = 7
FIRST = "2025-03-31"
SECOND = "2025-06-30"
VICTIM = "care_pathway_delays"

DRIVER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from oncopipe.orchestration import embedded
    from oncopipe.warehouse import refresh
    from oncopipe.contracts.settings import get_settings

    patients, seed, first, second, victim, out = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4],
                                                  sys.argv[5], sys.argv[6])
    log = lambda message: print(message, flush=True)
    result = {}
    one = embedded.run_platform(patients=patients, seed=seed, extraction_date=first, progress=log)
    result["round1"] = one.to_json()
    result["current_after_round1"] = (get_settings().published / "CURRENT").read_text().strip()
    dags = embedded.load_dags()
    expired = [d for d in dags if d.startswith("study_") and "approval-refused" in dags[d].tags]
    result["expired_runs"] = [embedded.test_dag(dags[d]).__dict__ for d in expired]

    from oncopipe.synth.extraction import generate
    generate(get_settings().landing, patients, seed, second)
    result["pending_before_round2"] = refresh.pending_extractions()
    from oncopipe.studies import steps
    real_export = steps.export

    def export_dies_for_the_victim(state_path):
        if steps.StudyRunState.load(state_path).study.id == victim:
            raise steps.NoPublishedMarts("simulated death of the export step")
        return real_export(state_path)

    steps.export = export_dies_for_the_victim
    two = embedded.run_platform(generate=False, progress=log)
    steps.export = real_export
    result["round2"] = two.to_json()

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select
    with create_session() as session:  # what a kill mid-export leaves: the run stays running
        run = session.scalars(select(DagRun).where(DagRun.dag_id == "study_" + victim,
                                                   DagRun.state == DagRunState.FAILED)).one()
        run.state = DagRunState.RUNNING
    result["retry"] = embedded.run_platform(generate=False, progress=log).to_json()

    import hashlib
    published = get_settings().published
    digest = lambda: {str(p.relative_to(published)): hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in sorted(published.rglob("*")) if p.is_file() and ".candidates" not in p.parts}
    result["published_before_rerun"] = digest()
    dags = embedded.load_dags()
    again = embedded.test_dag(dags[embedded.REFRESH_DAG_ID], run_conf={"extraction_date": second})
    result["published_after_rerun"] = digest()
    result["rerun"] = again.__dict__
    due, waiting = embedded.due_studies(dags)
    result["due_after_rerun"] = [d.dag_id for d, _ in due]
    Path(out).write_text(json.dumps(result, default=lambda o: getattr(o, "__dict__", str(o))))
""")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("dag_e2e")
    home = root / "oncopipe_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env.update({"ONCOPIPE_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow")})
    out = root / "result.json"
    log = root / "driver.log"
    with log.open("w") as sink:  # streamed, so a slow or failed run can be followed and diagnosed
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(PATIENTS), str(SEED), FIRST, SECOND, VICTIM,
                               str(out)],
                              env=env, stdout=sink, stderr=subprocess.STDOUT, text=True, timeout=3600)
    assert proc.returncode == 0 and out.exists(), f"driver failed, log in {log}:\n{log.read_text()[-4000:]}"
    return home, json.loads(out.read_text())


def _approved():
    today = dt.datetime.now(dt.UTC).date()
    return {s.dag_id: s for s in load_registry(check_kinds=False) if s.approval_problem(today) is None}


def _task_states(run: dict) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in run["tasks"]}


@pytest.mark.slow
def test_first_extraction_is_published_and_every_approved_study_exports(scenario):
    home, result = scenario
    one = result["round1"]
    assert one["generated"] == FIRST
    assert [r["state"] for r in one["refreshes"]] == ["success"]
    assert _task_states(one["refreshes"][0])["publish"] == "success"
    assert one["published_extraction"] == FIRST
    version = Path(one["published_path"])
    # CURRENT as round 1 left it (round 2 publishes a newer version before these assertions run).
    assert result["current_after_round1"] == one["published_version"] == version.name
    for table in ("breast_cancer_endocrine_cohort", "endocrine_adherence_monthly", "poor_prognosis_cases",
                  "care_pathway_delays", "french_life_tables"):
        assert (version / f"{table}.parquet").stat().st_size > 0, table
    approved = _approved()
    ran = {r["dag_id"]: r for r in one["studies"]}
    assert set(ran) == set(approved)
    for dag_id, run in ran.items():
        assert run["state"] == "success", (dag_id, run["failed_tasks"])
        study = approved[dag_id]
        manifest = json.loads((Path(one["exports"][study.id]) / "manifest.json").read_text())
        assert manifest["approval"]["reference"] == study.approval.reference
        assert manifest["mart_version"] == one["published_version"]
        assert manifest["extraction_date"] == FIRST


@pytest.mark.slow
def test_expired_study_stops_at_its_first_task(scenario):
    home, result = scenario
    refused = {s.dag_id: s for s in load_registry(check_kinds=False) if s.dag_id not in _approved()}
    assert refused and set(refused) <= set(result["round1"]["not_run"])
    assert {r["dag_id"] for r in result["expired_runs"]} == set(refused)
    for run in result["expired_runs"]:
        states = _task_states(run)
        assert run["state"] == "failed"
        assert states["check_approval"] == "failed"
        assert {s for t, s in states.items() if t != "check_approval"} == {"upstream_failed"}
        assert not (home / "exports" / run["dag_id"].removeprefix("study_")).exists()


@pytest.mark.slow
def test_second_extraction_triggers_one_refresh_and_the_studies_on_its_assets(scenario):
    _, result = scenario
    assert result["pending_before_round2"] == [SECOND]
    two = result["round2"]
    assert [(r["note"], r["state"]) for r in two["refreshes"]] == [(SECOND, "success")]
    assert two["published_extraction"] == SECOND
    assert two["published_version"] != result["round1"]["published_version"]
    assert {r["dag_id"] for r in two["studies"]} == set(_approved())
    victim = f"study_{VICTIM}"
    assert victim in _approved()
    assert all(r["state"] == "success" for r in two["studies"] if r["dag_id"] != victim)
    for dag_id, why in two["not_run"].items():
        assert dag_id not in _approved(), why


@pytest.mark.slow
def test_a_study_killed_after_a_publish_is_retried_and_exported(scenario):
    _, result = scenario
    two, retry = result["round2"], result["retry"]
    victim = f"study_{VICTIM}"
    killed = {r["dag_id"]: r for r in two["studies"]}[victim]
    assert killed["state"] == "failed" and killed["failed_tasks"] == ["publish_export"]
    assert killed["skipped_tasks"] == ["notify_recipients"]
    assert VICTIM not in two["exports"]
    assert two["owed"] == {victim: f"owes an export of mart version {two['published_version']}"}
    # The next run: the killed run is marked failed, the study runs again on the same version and exports.
    assert f"{victim}/{killed['run_id']}" in retry["interrupted"]
    assert retry["refreshes"][0]["state"] in ("success", "skipped")
    again = {r["dag_id"]: r for r in retry["studies"]}
    assert set(again) == {victim}, "only the study that owed an export runs again"
    assert again[victim]["state"] == "success"
    manifest = json.loads((Path(retry["exports"][VICTIM]) / "manifest.json").read_text())
    assert manifest["mart_version"] == two["published_version"] == retry["published_version"]
    assert retry["owed"] == {}


@pytest.mark.slow
def test_rerunning_a_refresh_changes_nothing_published(scenario):
    home, result = scenario
    rerun = result["rerun"]
    states = _task_states(rerun)
    assert rerun["state"] == "success"
    assert states["raw_gate"] == "success" and states["marts_gate"] == "success"
    assert states["publish"] == "skipped"  # same content: no new version, no Asset event
    published = home / "published"
    assert (published / "CURRENT").read_text().strip() == result["round2"]["published_version"]
    versions = sorted(p.name for p in published.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert versions == sorted([result["round1"]["published_version"], result["round2"]["published_version"]])
    assert result["published_after_rerun"] == result["published_before_rerun"]
    assert any(name.endswith("version.json") for name in result["published_before_rerun"])
    assert result["due_after_rerun"] == []
