"""Which study DAGs the embedded runner starts after a refresh (oncopipe.orchestration.embedded.due_studies).

The rule is the scheduler's for an ``AssetAll`` schedule: a study runs when every Asset it is scheduled on has an
event since its last run, and only then. A study waiting on a mart the refresh did not announce, a study on a cron
schedule and a refused study are not started. The Asset events are given here; the end-to-end test
(tests/integration/test_dag_e2e.py) checks the same rule against real events in the Airflow metadata.
"""

from __future__ import annotations

import datetime as dt

import yaml
from oncopipe.contracts.settings import STUDIES_DIR
from oncopipe.orchestration import embedded
from oncopipe.studies import registry
from oncopipe.studies.registry import asset_uri


def _write(folder, study_id: str, **changes) -> None:
    data = yaml.safe_load((STUDIES_DIR / "poor_prognosis_survival.yml").read_text())
    data["id"] = study_id
    for key, value in changes.items():
        data[key] = value
    (folder / f"{study_id}.yml").write_text(yaml.safe_dump(data))


def test_only_studies_whose_assets_all_have_new_events_are_due(tmp_path, monkeypatch):
    base = yaml.safe_load((STUDIES_DIR / "poor_prognosis_survival.yml").read_text())
    wider = dict(base["approval"], marts=[*base["approval"]["marts"], "care_pathway_delays"])
    _write(tmp_path, "on_cases")
    _write(tmp_path, "on_cases_and_delays", approval=wider, reads=wider["marts"],
           schedule={"assets": ["poor_prognosis_cases", "care_pathway_delays"]})
    _write(tmp_path, "monthly", schedule={"cron": "0 6 1 * *"})
    _write(tmp_path, "expired", approval=dict(base["approval"], granted=dt.date(2019, 6, 1),
                                              expires=dt.date(2022, 5, 31)))
    entries = registry.scan_registry(tmp_path, check_kinds=False)
    assert all(entry.study for entry in entries), [entry.error for entry in entries]
    monkeypatch.setattr(registry, "scan_registry", lambda *args, **kwargs: entries)

    # The refresh announced poor_prognosis_cases only (version v2); care_pathway_delays has no new event.
    events = {asset_uri("poor_prognosis_cases"): {"version": "v2", "extraction": "2025-06-30"}}
    asked = []

    def updated(uris, since):
        asked.append((tuple(uris), since))
        return {uri: extra for uri, extra in events.items() if uri in uris}

    last_runs = {"study_on_cases": dt.datetime(2025, 4, 1, tzinfo=dt.UTC)}
    monkeypatch.setattr(embedded, "updated_assets_since", updated)
    monkeypatch.setattr(embedded, "last_success_start", lambda dag_id: last_runs.get(dag_id))
    monkeypatch.setattr(embedded, "owed_exports", lambda settings=None: {})
    dags = {f"study_{name}": object() for name in ("on_cases", "on_cases_and_delays", "monthly", "expired")}

    due, waiting = embedded.due_studies(dags)

    assert due == [(dags["study_on_cases"], {"mart_version": "v2"})]
    # Events are counted since each study's last successful run.
    assert ((asset_uri("poor_prognosis_cases"),), last_runs["study_on_cases"]) in asked
    assert set(waiting) == {"study_on_cases_and_delays", "study_monthly", "study_expired"}
    assert waiting["study_on_cases_and_delays"].startswith("waiting for Asset events")
    assert asset_uri("care_pathway_delays") in waiting["study_on_cases_and_delays"]
    assert "cron" in waiting["study_monthly"]
    assert waiting["study_expired"].startswith("refused: approval CESREES-2023-1187 (CESREES) expired on 2022-05-31")

    # No new event at all (a re-run that published nothing): nothing is due.
    events.clear()
    assert embedded.due_studies(dags)[0] == []


def _registry(tmp_path, monkeypatch, *names):
    for name in names:
        _write(tmp_path, name)
    entries = registry.scan_registry(tmp_path, check_kinds=False)
    monkeypatch.setattr(registry, "scan_registry", lambda *args, **kwargs: entries)
    return {f"study_{name}": object() for name in names}


def test_a_study_that_owes_an_export_is_due_without_new_events(tmp_path, monkeypatch):
    # Its run died mid-export (or failed) after the publish: no new Asset event, but no export of CURRENT.
    dags = _registry(tmp_path, monkeypatch, "served", "killed")
    monkeypatch.setattr(embedded, "updated_assets_since", lambda uris, since: {})
    monkeypatch.setattr(embedded, "last_success_start", lambda dag_id: None)
    monkeypatch.setattr(embedded, "owed_exports", lambda settings=None: {
        "study_killed": "owes an export of mart version v2"})

    class Current:
        version = "v2"

    from oncopipe.warehouse import versions

    monkeypatch.setattr(versions, "current_version", lambda settings=None: Current())
    due, waiting = embedded.due_studies(dags)
    assert due == [(dags["study_killed"], {"mart_version": "v2"})]
    assert waiting["study_served"].startswith("waiting for Asset events")


def test_owed_exports_are_the_studies_without_an_export_of_the_current_version(tmp_path, monkeypatch,
                                                                                 oncopipe_home):
    import json

    registry_dir = tmp_path / "registry"
    registry_dir.mkdir()
    _registry(registry_dir, monkeypatch, "served", "killed", "stale")
    published = oncopipe_home / "published"
    assert embedded.owed_exports() == {}  # nothing published: nothing owed
    for version in ("v1", "v2"):
        (published / version).mkdir(parents=True)
        (published / version / "version.json").write_text(json.dumps({
            "version": version, "extraction": "2025-06-30", "created_at": "", "content_sha256": ""}))
    (published / "CURRENT").write_text("v2\n")
    for study, version in (("served", "v2"), ("stale", "v1")):
        run = oncopipe_home / "exports" / study / "run_1"
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(json.dumps({"mart_version": version, "run_id": "run_1"}))
    # A folder an export killed mid-way left is not an export.
    (oncopipe_home / "exports" / "killed" / ".tmp-run_2-0000").mkdir(parents=True)
    assert embedded.owed_exports() == {"study_killed": "owes an export of mart version v2",
                                       "study_stale": "owes an export of mart version v2"}
    from oncopipe.cli import app
    from typer.testing import CliRunner

    listed = CliRunner().invoke(app, ["studies", "owed"])
    assert listed.exit_code == 1
    assert "study_killed: owes an export of mart version v2" in listed.output and "study_served" not in listed.output
