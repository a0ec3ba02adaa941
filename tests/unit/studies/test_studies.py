"""The study registry: validation of the YAML files and the approval rules."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest
import yaml
from oncopipe.cli import app
from oncopipe.contracts.settings import STUDIES_DIR
from oncopipe.studies import kinds
from oncopipe.studies.registry import (
    ApprovalError,
    StudyError,
    check_approval,
    check_reads,
    get_study,
    load_registry,
    load_study,
    scan_registry,
)
from typer.testing import CliRunner

KIND = "unit_test_kind"


def _study(**overrides) -> dict:
    base = {
        "id": "demo_study",
        "title": "A demo study",
        "principal_investigator": {"name": "Dr A", "email": "a@example.org"},
        "approval": {
            "committee": "CESREES",
            "reference": "CESREES-2099-0001",
            "granted": dt.date(2024, 1, 1),
            "expires": dt.date(2030, 1, 1),
            "marts": ["poor_prognosis_cases", "french_life_tables"],
        },
        "reads": ["poor_prognosis_cases"],
        "analysis": {"kind": KIND, "parameters": {"alpha": 0.05}},
        "schedule": {"assets": ["poor_prognosis_cases"]},
        "recipients": ["a@example.org"],
    }
    base.update(overrides)
    return base


@pytest.fixture()
def registered_kind(monkeypatch):
    """A registered analysis kind for the duration of one test (the registry dict is restored after)."""
    monkeypatch.setitem(kinds._REGISTRY, KIND, lambda inputs, params, *, study_id: None)
    return KIND


def _write(tmp_path, data, name="demo_study.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_valid_study_loads(tmp_path, registered_kind):
    study = load_study(_write(tmp_path, _study()))
    assert study.dag_id == "study_demo_study"
    assert study.asset_uris == ["oncopipe://marts/poor_prognosis_cases"]
    assert study.approval_problem(dt.date(2025, 6, 1)) is None


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"approval": None}, "approval", "dict"),
        ({"recipients": ["not-an-email"]}, "recipients.0", "'not-an-email' is not an email address"),
        ({"analysis": {"kind": "no_such_kind"}}, "analysis.kind", "no_such_kind"),
        ({"reads": ["care_pathway_delays"]}, "reads", "outside approval CESREES-2099-0001"),
        ({"schedule": {"assets": ["french_life_tables"]}}, "schedule", "does not read"),
        ({"reads": ["no_such_mart"]}, "reads", "no_such_mart"),
        ({"schedule": {"assets": ["poor_prognosis_cases"], "cron": "0 6 * * 1"}}, "schedule", "exactly one"),
        ({"schedule": {"cron": "every monday"}}, "schedule.cron", "cron"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
    ],
)
def test_broken_study_names_file_and_field(tmp_path, registered_kind, change, field, words):
    path = _write(tmp_path, _study(**change))
    with pytest.raises(StudyError) as caught:
        load_study(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert words in message


def test_missing_field_is_named(tmp_path, registered_kind):
    data = _study()
    del data["approval"]["expires"]
    with pytest.raises(StudyError, match=r"demo_study\.yml: field 'approval\.expires': Field required"):
        load_study(_write(tmp_path, data))


def test_expiry_before_grant_is_refused(tmp_path, registered_kind):
    data = _study()
    data["approval"]["expires"] = dt.date(2023, 1, 1)
    with pytest.raises(StudyError, match="field 'approval': .*expires .*before granted"):
        load_study(_write(tmp_path, data))


def test_id_must_match_file_name(tmp_path, registered_kind):
    with pytest.raises(StudyError, match="field 'id'.*must match the file name 'other'"):
        load_study(_write(tmp_path, _study(), name="other.yml"))


def test_not_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(StudyError, match=r"bad\.yml: not valid YAML"):
        load_study(path)


def test_registry_lists_every_file_and_refuses_as_a_whole(tmp_path, registered_kind):
    _write(tmp_path, _study())
    _write(tmp_path, _study(id="second", recipients=["x"]), name="second.yml")
    entries = scan_registry(tmp_path)
    assert [(e.path.name, e.study is not None) for e in entries] == [("demo_study.yml", True), ("second.yml", False)]
    with pytest.raises(StudyError, match=r"second\.yml: field 'recipients\.0': 'x' is not an email address"):
        load_registry(tmp_path)


@pytest.mark.parametrize(
    ("approval", "day", "words"),
    [
        ({"expires": dt.date(2024, 6, 30)}, dt.date(2024, 7, 1), "CESREES-2099-0001 .* expired on 2024-06-30"),
        ({"status": "suspended"}, dt.date(2025, 1, 1), "CESREES-2099-0001 .* is suspended"),
        ({}, dt.date(2023, 12, 31), "CESREES-2099-0001 .* granted only from 2024-01-01"),
    ],
)
def test_check_approval_refuses(tmp_path, registered_kind, approval, day, words):
    data = _study()
    data["approval"].update(approval)
    study = load_study(_write(tmp_path, data))
    with pytest.raises(ApprovalError, match=words):
        check_approval(study, day)


def test_check_approval_accepts_last_valid_day(tmp_path, registered_kind):
    study = load_study(_write(tmp_path, _study()))
    check_approval(study, dt.date(2030, 1, 1))


def test_check_reads_refuses_mart_outside_approval(tmp_path, registered_kind):
    study = load_study(_write(tmp_path, _study()))
    check_reads(study, ["poor_prognosis_cases", "french_life_tables"])
    with pytest.raises(ApprovalError, match=r"\['care_pathway_delays'\] are outside approval CESREES-2099-0001"):
        check_reads(study, ["poor_prognosis_cases", "care_pathway_delays"])


def test_shipped_registry_structure():
    studies = {s.id: s for s in load_registry(check_kinds=False)}
    assert set(studies) >= {"tradhor", "poor_prognosis_survival", "care_pathway_delays"}
    assert studies["tradhor"].reads == ["breast_cancer_endocrine_cohort", "endocrine_adherence_monthly"]
    assert studies["poor_prognosis_survival"].reads == ["poor_prognosis_cases", "french_life_tables"]
    assert studies["care_pathway_delays"].reads == ["care_pathway_delays", "poor_prognosis_cases"]
    today = dt.date.today()
    refused = [s.id for s in studies.values() if s.approval_problem(today)]
    assert refused, "the registry ships one expired example"
    assert all("expired" in studies[i].approval_problem(today) for i in refused)
    assert get_study("tradhor", check_kinds=False).approval.reference == "CESREES-2024-0412"


@pytest.mark.parametrize(
    ("module", "study"),
    [("tradhor", "tradhor"), ("poor_prognosis_survival", "poor_prognosis_survival"),
     ("care_pathways", "care_pathway_delays")],
)
def test_shipped_study_kinds_are_registered(module, study):
    if importlib.util.find_spec(f"oncopipe.studies.kinds.{module}") is None:
        pytest.skip(f"oncopipe.studies.kinds.{module} has not landed yet")
    assert load_study(STUDIES_DIR / f"{study}.yml").analysis.kind in kinds.kinds()


def test_cli_validate_reports_file_and_field(tmp_path, registered_kind):
    good = _write(tmp_path, _study())
    bad_data = _study()
    bad_data["approval"]["marts"] = ["no_such_mart"]
    bad = _write(tmp_path, {**bad_data, "id": "bad"}, name="bad.yml")
    runner = CliRunner()
    result = runner.invoke(app, ["studies", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert "bad.yml: field 'approval.marts'" in result.output
    assert "1 of 2 study file(s) invalid" in result.output
    result = runner.invoke(app, ["studies", "validate", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["studies", "validate", str(good)])
    assert result.exit_code == 0 and "1 study file(s) valid" in result.output


def test_cli_list_shows_expired_study(tmp_path, registered_kind):
    data = _study()
    data["approval"]["expires"] = dt.date(2024, 6, 30)
    _write(tmp_path, data)
    result = CliRunner().invoke(app, ["studies", "list", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "demo_study" in result.output and "expired" in result.output
