"""Parameter schemas of the analysis kinds, approval references and duplicate study files (issues #19, #24)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from oncopipe.cli import app
from oncopipe.contracts.settings import STUDIES_DIR
from oncopipe.studies import kinds, parameters
from oncopipe.studies.registry import StudyError, get_study, load_registry, load_study, scan_registry
from typer.testing import CliRunner


def _study(kind: str = "poor_prognosis_survival", params: dict | None = None, **approval) -> dict:
    return {
        "id": "demo_study",
        "title": "A demo study",
        "principal_investigator": {"name": "Dr A", "email": "a@example.org"},
        "approval": {"committee": "CESREES", "reference": "CESREES-2024-0001", "granted": dt.date(2024, 1, 1),
                     "expires": dt.date(2030, 1, 1), "marts": ["poor_prognosis_cases", "french_life_tables"],
                     **approval},
        "reads": ["poor_prognosis_cases"],
        "analysis": {"kind": kind, "parameters": params or {}},
        "schedule": {"assets": ["poor_prognosis_cases"]},
        "recipients": ["a@example.org"],
    }


def _write(tmp_path, data, name="demo_study.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(tmp_path, data, **kw) -> str:
    path = _write(tmp_path, data, **kw)
    with pytest.raises(StudyError) as caught:
        load_study(path, check_kinds=False)
    assert str(path) in str(caught.value)
    return str(caught.value)


def test_every_registered_kind_declares_a_schema():
    assert set(kinds.kinds()) <= set(parameters.declared_kinds())
    with pytest.raises(ValueError, match="declares no parameter schema"):
        kinds.register("kind_without_schema")(lambda inputs, params, *, study_id: None)


def test_a_typo_in_a_parameter_name_is_refused_with_the_close_match(tmp_path):
    message = _error(tmp_path, _study(params={"curve_grid_month": 3}))
    assert "field 'analysis'" in message
    assert "unknown parameter 'curve_grid_month' (did you mean 'curve_grid_months'?)" in message
    assert "kind poor_prognosis_survival accepts: conf_type, years, curve_grid_months" in message


@pytest.mark.parametrize(
    ("kind", "params", "words"),
    [
        ("poor_prognosis_survival", {"curve_grid_months": 5}, "'curve_grid_months' = 5: Input should be 1, 2, 3, 4, "
                                                             "6 or 12"),
        ("poor_prognosis_survival", {"conf_type": "logit"}, "Input should be 'log-log', 'log' or 'plain'"),
        ("poor_prognosis_survival", {"years": [3, 1]}, "years must be increasing whole years between 1 and 15"),
        ("poor_prognosis_survival", {"ph_alpha": 1.5}, "'ph_alpha' = 1.5: Input should be less than 1 (allowed: "),
        ("tradhor_adherence", {"min_groups": 5, "max_groups": 3}, "min_groups (5) must not exceed max_groups (3)"),
        ("tradhor_adherence", {"common_sigma": "yes"}, "'common_sigma' = 'yes': Input should be a valid boolean"),
        ("tradhor_adherence", {"degree": {2: [1]}}, "degree for k = 2 must list 2 degrees"),
        ("tradhor_adherence", {"pdc_threshold": 0}, "'pdc_threshold' = 0: Input should be greater than 0"),
        ("care_pathway_delays", {"min_treated_per_hospital": 5}, "greater than or equal to 10"),
    ],
)
def test_an_invalid_value_is_refused_naming_key_and_allowed_values(tmp_path, kind, params, words):
    assert words in _error(tmp_path, _study(kind, params))


def test_effective_parameters_fill_defaults_and_keep_the_study_values(tmp_path):
    study = load_study(_write(tmp_path, _study(params={"years": [1, 2, 3]})), check_kinds=False)
    assert study.analysis.effective_parameters == {"conf_type": "log-log", "years": [1, 2, 3],
                                                   "curve_grid_months": 1, "min_site_cases_model": 50,
                                                   "ph_alpha": 0.05}
    assert study.analysis.parameters == {"years": [1, 2, 3]}


def test_the_kind_checks_parameters_when_called_directly():
    from oncopipe.contracts.results import InputValidationError

    with pytest.raises(InputValidationError, match="unknown parameter 'landmark'"):
        kinds.run("care_pathway_delays", {}, {"landmark": 30}, study_id="s")


def test_shipped_studies_are_valid_with_their_parameters():
    for study in load_registry(check_kinds=False):
        assert study.analysis.effective_parameters == parameters.effective(study.analysis.kind,
                                                                           study.analysis.parameters)


@pytest.mark.parametrize(
    ("approval", "words"),
    [
        ({"reference": "   "}, "field 'approval.reference': must not be blank"),
        ({"reference": " CESREES-2024-0001"}, "has leading or trailing spaces"),
        ({"reference": "2024-117"}, "not a CESREES decision reference"),
        ({"committee": "CPP Ile-de-France", "reference": "pending"}, "at least one digit"),
        ({"committee": " "}, "field 'approval.committee': must not be blank"),
    ],
)
def test_approval_reference_must_follow_the_committee_pattern(tmp_path, approval, words):
    assert words in _error(tmp_path, _study(**approval))


def test_other_committees_and_cnil_references_are_accepted(tmp_path):
    load_study(_write(tmp_path, _study(committee="CNIL", reference="DR-2021-118")), check_kinds=False)
    load_study(_write(tmp_path, _study(committee="CPP Sud-Est", reference="CPP-SE/2023-41")), check_kinds=False)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("a@localhost", "It should have a period"),  # email-validator's rule; a regex of the shape x@y accepts it
        ("a..b@example.org", "two periods in a row"),
        ("a@-example.org", "hyphen immediately after the @-sign"),
        ("a b@example.org", "invalid characters"),
        ("a@example.invalid", "special-use or reserved name"),
    ],
)
def test_email_addresses_are_checked_by_email_validator_naming_field_value_and_reason(tmp_path, address, reason):
    data = _study()
    data["principal_investigator"]["email"] = address
    message = _error(tmp_path, data)
    assert f"field 'principal_investigator.email': {address!r} is not an email address" in message
    assert reason in message
    data = _study()
    data["recipients"] = ["b@example.org", address]
    assert f"field 'recipients.1': {address!r} is not an email address" in _error(tmp_path, data)


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("61 6 * * 1", "not a valid cron expression (minute hour day month weekday): '61 6 * * 1'"),
        ("0 24 * * *", "out of range"),
        ("* * * * mon-xyz", "not a valid cron expression (minute hour day month weekday): '* * * * mon-xyz'"),
        ("*/0 * * * *", "step '0'"),
        ("0 6 31 2 *", "never fires"),  # every field in range, no such day: croniter finds no date
        ("0 6 * *", "not a 5-field cron expression"),
        ("0 0 6 * * 1", "not a 5-field cron expression"),  # croniter's seconds field, which Airflow has not
    ],
)
def test_cron_is_parsed_by_croniter(tmp_path, cron, words):
    data = _study()
    data["schedule"] = {"cron": cron}
    assert "field 'schedule.cron': " in (message := _error(tmp_path, data))
    assert words in message


@pytest.mark.parametrize("cron", ["0 6 * * 1", "0 6 * * mon-fri", "30 2 1,15 * *", "0 0 29 2 *", "0 6 L * *",
                                  "@weekly"])
def test_valid_crons_are_accepted(tmp_path, cron):
    data = _study()
    data["schedule"] = {"cron": cron}
    assert load_study(_write(tmp_path, data), check_kinds=False).schedule.cron == cron


def test_studies_validate_refuses_bad_crons_and_addresses_naming_file_key_and_value(tmp_path):
    data = yaml.safe_load((STUDIES_DIR / "poor_prognosis_survival.yml").read_text())
    data["schedule"] = {"cron": "61 * * * *"}
    _write(tmp_path, data, name="poor_prognosis_survival.yml")
    data = yaml.safe_load((STUDIES_DIR / "tradhor.yml").read_text())
    data["schedule"] = {"cron": "* * * * mon-xyz"}
    _write(tmp_path, data, name="tradhor.yml")
    data = yaml.safe_load((STUDIES_DIR / "care_pathway_delays.yml").read_text())
    data["principal_investigator"]["email"] = "pi@example..org"
    _write(tmp_path, data, name="care_pathway_delays.yml")
    result = CliRunner().invoke(app, ["studies", "validate", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    for expected in ("poor_prognosis_survival.yml: field 'schedule.cron': not a valid cron expression "
                     "(minute hour day month weekday): '61 * * * *'",
                     "tradhor.yml: field 'schedule.cron': not a valid cron expression "
                     "(minute hour day month weekday): '* * * * mon-xyz'",
                     "care_pathway_delays.yml: field 'principal_investigator.email': 'pi@example..org' is not an "
                     "email address: An email address cannot have two periods in a row."):
        assert expected in result.output
    assert "3 of 3 study file(s) invalid" in result.output


def test_two_files_of_one_study_are_an_error_naming_both(tmp_path):
    yml = _write(tmp_path, _study(), name="demo_study.yml")
    yaml_file = _write(tmp_path, _study(reference="CESREES-2024-0002"), name="demo_study.yaml")
    entries = scan_registry(tmp_path, check_kinds=False)
    assert [e.study for e in entries] == [None, None]
    for entry in entries:
        assert str(yml) in entry.error and str(yaml_file) in entry.error
    with pytest.raises(StudyError, match="'demo_study' is defined by 2 files"):
        load_registry(tmp_path, check_kinds=False)
    with pytest.raises(StudyError, match="defined by 2 files"):
        get_study("demo_study", tmp_path, check_kinds=False)


def test_cli_validate_names_the_typo(tmp_path):
    data = yaml.safe_load((STUDIES_DIR / "poor_prognosis_survival.yml").read_text())
    data["analysis"]["parameters"] = {"curve_grid_month": 3}
    _write(tmp_path, data, name="poor_prognosis_survival.yml")
    result = CliRunner().invoke(app, ["studies", "validate", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "poor_prognosis_survival.yml: field 'analysis': parameters: unknown parameter 'curve_grid_month'" in (
        result.output)
