"""End to end through Airflow: platform_refresh and the study DAGs with ``dag.test()`` on a small extraction.

The scenario (tests/support/embedded_scenario.py, built once a session and shared with the operator's browser
test) runs in a fresh interpreter and writes what happened as JSON; the assertions below read that JSON and the
files the platform wrote. Its rounds: (1) a first extraction -> refresh, then every approved study, and the
expired study's DAG stops at its first task; (2) a second extraction -> one refresh, then the studies on its
Assets, one of which dies in its export step and is left ``running``; (2b) the next run retries that study alone
(issue #24, point 4; this was tests/integration/test_study_retry.py, which built a platform of its own for it);
(3) the refresh re-run for the second extraction changes nothing published; (4) a faulty third extraction stops
at its raw gate.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from oncopipe.studies.registry import load_registry
from support.embedded_scenario import FIRST, SECOND, VICTIM


@pytest.fixture(scope="module")
def scenario(embedded_scenario):
    return embedded_scenario


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


@pytest.mark.slow
def test_a_faulty_extraction_stops_at_its_raw_gate_and_publishes_nothing(scenario):
    home, result = scenario
    faulty = result["faulty"]
    assert [r["state"] for r in faulty["refreshes"]] == ["failed"]
    assert "raw_gate" in faulty["refreshes"][0]["failed_tasks"]
    assert faulty["studies"] == []
    assert faulty["published_version"] == result["round2"]["published_version"]



@pytest.mark.slow
def test_lineage_names_each_dbt_model_run_under_its_refresh_task(scenario):
    """The file transport of the embedded default holds Airflow's task runs (OpenLineage provider) and the dbt
    model runs (oncopipe.warehouse.lineage), each model run naming the refresh task that built it as parent."""
    home, _ = scenario
    events = [json.loads(line) for line in (home / "lineage" / "openlineage.jsonl").read_text().splitlines()]
    tasks = {e["run"]["runId"]: e["job"]["name"] for e in events
             if e["job"]["name"].startswith("platform_refresh.") and e["eventType"] == "START"}
    models = [e for e in events if e["job"]["name"].endswith(".build.run") and e["eventType"] == "COMPLETE"]
    assert tasks and models
    built = set()
    for event in models:
        model = event["job"]["name"].split(".")[-3]
        parent = event["run"]["facets"]["parent"]
        assert tasks.get(parent["run"]["runId"]) == parent["job"]["name"], event["job"]["name"]
        assert parent["job"]["name"].rsplit(".", 1)[-1] == model
        built.add(model)
    marts = {e["outputs"][0]["name"].rsplit(".", 1)[-1] for e in models if ".marts." in e["outputs"][0]["name"]}
    assert {"breast_cancer_endocrine_cohort", "poor_prognosis_cases"} <= marts <= built
