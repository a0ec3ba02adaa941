"""The dags/ folder: imports cleanly, every DAG is documented and owned, and the wiring holds the rules."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from oncopipe.contracts.settings import STUDIES_DIR
from oncopipe.orchestration.alerts import on_task_failure
from oncopipe.orchestration.dag_factory import DUCKDB_POOL, STUDY_TASKS, build_study_dags
from oncopipe.orchestration.notifiers import FailureMailNotifier
from oncopipe.studies.registry import ApprovalError, asset_uri, load_registry, load_study
from oncopipe.warehouse import dbt_nodes
from oncopipe.warehouse.refresh import PUBLISHED_TABLES

# Tasks whose failure re-running cannot fix (a refusal, a gate): no retry, on purpose.
NO_RETRY = {"check_approval", "disclosure_control", "find_extraction", "raw_gate", "source_freshness", "marts_gate"}


def test_no_import_errors_or_warnings(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.captured_warnings == {}
    studies = load_registry(check_kinds=False)
    assert set(dagbag.dags) == {"platform_refresh", *(s.dag_id for s in studies)}


def test_every_dag_is_owned_tagged_documented_and_retried(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert dag.catchup is False, dag_id
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.owner not in ("", "airflow"), where
            # The log head and log line, then the operators' mail through the SMTP provider (a notifier).
            assert task.on_failure_callback[0] is on_task_failure, where
            assert any(isinstance(c, FailureMailNotifier) for c in task.on_failure_callback), where
            if task.task_id.split(".")[-1] in NO_RETRY:
                assert task.retries == 0, where
            else:
                assert task.retries >= 1, where
                assert task.retry_exponential_backoff > 0, where
            assert task.doc_md, where


def test_study_dags_have_the_expected_chain(dagbag):
    for study in load_registry(check_kinds=False):
        dag = dagbag.dags[study.dag_id]
        assert [t.task_id for t in dag.topological_sort()] == list(STUDY_TASKS)
        for upstream, downstream in zip(STUDY_TASKS, STUDY_TASKS[1:], strict=False):
            assert dag.task_dict[upstream].downstream_task_ids == {downstream}
        assert dag.task_dict[STUDY_TASKS[-1]].downstream_task_ids == set()


def test_study_dags_are_scheduled_on_their_mart_assets(dagbag):
    for study in load_registry(check_kinds=False):
        dag = dagbag.dags[study.dag_id]
        condition = dag.timetable.asset_condition
        uris = {a.uri for a in getattr(condition, "objects", ())}
        if study.schedule.assets:
            assert type(condition).__name__ == "AssetAll", study.dag_id
        assert uris == {asset_uri(m) for m in study.schedule.assets or ()}
        assert uris <= {asset_uri(m) for m in study.approval.marts}


def test_refresh_wiring(dagbag, dag_home):
    dag = dagbag.dags["platform_refresh"]
    assert dag.deadline, "the refresh has a deadline alert"
    publish = dag.task_dict["publish"]
    assert {a.uri for a in publish.outlets} == {asset_uri(t) for t in PUBLISHED_TABLES}
    # The raw gate, then the candidate (roll back, bound the landing to this extraction), then dbt's source freshness
    # on that landing, before any dbt build.
    assert [t.task_id for t in dag.topological_sort()][:4] == ["find_extraction", "raw_gate", "begin_candidate",
                                                                "source_freshness"]
    # Every task that opens the DuckDB warehouse goes through the pool of size 1.
    warehouse_tasks = [t for t in dag.tasks if t.task_id.startswith(("transform.", "marts_candidate."))]
    for task in [*warehouse_tasks, *(dag.task_dict[t] for t in ("begin_candidate", "source_freshness", "marts_gate")),
                 publish]:
        assert task.pool == DUCKDB_POOL, task.task_id
    for task_id in ("find_extraction", "raw_gate"):
        assert dag.task_dict[task_id].pool != DUCKDB_POOL
    # One task per dbt model and seed, following the dbt graph; marts are the candidate group.
    nodes = dbt_nodes.read_nodes(dbt_nodes.manifest_path())
    by_id = {n.unique_id: n for n in nodes}
    task_of = {n.unique_id: ("marts_candidate." if n.layer == "marts" else "transform.") + n.task_id for n in nodes}
    assert sorted(t.task_id for t in warehouse_tasks) == sorted(task_of.values())
    assert {n.name for n in nodes if n.layer == "marts"} >= {"poor_prognosis_cases", "care_pathway_delays"}
    for uid, task_id in task_of.items():
        upstream = dag.task_dict[task_id].upstream_task_ids
        assert {task_of[p] for p in by_id[uid].depends_on} <= upstream, task_id
    for task in warehouse_tasks:
        if not task.upstream_task_ids & {t.task_id for t in warehouse_tasks}:
            assert "source_freshness" in task.upstream_task_ids or task.task_id.startswith("marts_candidate."), \
                task.task_id
    before_gate = dag.task_dict["marts_gate"].get_flat_relative_ids(upstream=True)
    assert before_gate >= set(task_of.values()) | {"raw_gate", "find_extraction", "begin_candidate", "source_freshness"}
    assert dag.task_dict["publish"].get_flat_relative_ids(upstream=True) >= before_gate | {"marts_gate"}


def _expired_study():
    today = dt.datetime.now(dt.UTC).date()
    studies = [s for s in load_registry(check_kinds=False) if s.approval_problem(today)]
    assert studies, "the registry ships an expired example"
    return studies[0]


def test_expired_approval_fails_the_first_task(dagbag):
    from airflow.sdk.exceptions import AirflowFailException

    study = _expired_study()
    first = dagbag.dags[study.dag_id].task_dict["check_approval"]
    with pytest.raises(AirflowFailException, match=rf"{study.approval.reference} .*expired on "
                                                   rf"{study.approval.expires.isoformat()}"):
        first.python_callable(params={}, triggering_asset_events={})
    assert "approval-refused" in dagbag.dags[study.dag_id].tags


def test_mart_outside_approval_is_refused_at_run_time():
    from oncopipe.studies.steps import load_inputs

    study = load_study(STUDIES_DIR / "care_pathway_delays.yml", check_kinds=False)
    # Refused before anything is read: no published version needs to exist.
    with pytest.raises(ApprovalError, match=r"\['endocrine_adherence_monthly'\] are outside approval "
                                            + study.approval.reference):
        load_inputs(study, ["poor_prognosis_cases", "endocrine_adherence_monthly"], "no-such-version")


def test_check_refuses_a_study_whose_yaml_now_reads_outside_its_approval(tmp_path, monkeypatch):
    from oncopipe.studies import kinds
    from oncopipe.studies.steps import check

    monkeypatch.setitem(kinds._REGISTRY, "tradhor_adherence", lambda *a, **k: None)
    data = yaml.safe_load((STUDIES_DIR / "tradhor.yml").read_text())
    data["reads"].append("poor_prognosis_cases")
    (tmp_path / "tradhor.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(Exception, match=r"field 'reads'.*poor_prognosis_cases.*outside approval CESREES-2024-0412"):
        check("tradhor", registry_dir=tmp_path)


def test_adding_a_study_is_one_yaml_and_a_broken_one_is_skipped_with_its_field(tmp_path):
    data = yaml.safe_load((STUDIES_DIR / "poor_prognosis_survival.yml").read_text())
    data["id"] = "pancreas_followup"
    (tmp_path / "pancreas_followup.yml").write_text(yaml.safe_dump(data))
    broken = dict(data, id="broken_study")
    broken["approval"] = dict(data["approval"], expires="not a date")
    (tmp_path / "broken_study.yml").write_text(yaml.safe_dump(broken))
    with pytest.warns(UserWarning, match=r"broken_study\.yml: field 'approval\.expires'"):
        dags = build_study_dags(tmp_path)
    assert list(dags) == ["study_pancreas_followup"]
    assert [t.task_id for t in dags["study_pancreas_followup"].topological_sort()] == list(STUDY_TASKS)


def test_triggering_asset_events_pin_the_version(dagbag):
    from oncopipe.orchestration.dag_factory import _triggering_extras

    study = load_study(STUDIES_DIR / "tradhor.yml", check_kinds=False)

    class Event:
        def __init__(self, extra):
            self.extra = extra

    class A:
        def __init__(self, uri):
            self.uri = uri

    events = {A(asset_uri("breast_cancer_endocrine_cohort")): [Event({"version": "v1", "extraction": "2025-01-31"})],
              A(asset_uri("poor_prognosis_cases")): [Event({"version": "v9"})]}
    assert _triggering_extras(events, study) == [{"version": "v1", "extraction": "2025-01-31"}]
    assert json.dumps(_triggering_extras(None, study)) == "[]"


def test_study_dag_docs_show_the_effective_parameters(tmp_path):
    data = yaml.safe_load((STUDIES_DIR / "poor_prognosis_survival.yml").read_text())
    data["analysis"]["parameters"] = {"years": [1, 2, 3]}
    (tmp_path / "poor_prognosis_survival.yml").write_text(yaml.safe_dump(data))
    doc = build_study_dags(tmp_path)["study_poor_prognosis_survival"].doc_md
    assert "| `years` | `[1, 2, 3]` | study YAML |" in doc
    assert "| `curve_grid_months` | `1` | default |" in doc
    assert "parameters: {}" not in doc and "parameters `{" not in doc
