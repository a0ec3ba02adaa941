"""The suites: generated from code, committed as JSON, one expectation meant for every generator fault."""

from __future__ import annotations

import json

import pytest
from oncopipe.contracts.settings import EXPECTATIONS_DIR
from oncopipe.contracts.sources import SOURCES
from oncopipe.quality import exclusions, formats, suites
from oncopipe.quality.frames import raw_suite_name
from oncopipe.synth.faults import FAULT_KINDS


@pytest.fixture(scope="module")
def all_suites() -> list:
    """Every suite, built once for the module (building them is GX object construction: ~10-25 s each time)."""
    return suites.all_suites()


@pytest.fixture(scope="module")
def raw_suites(all_suites) -> list:
    """The raw-gate suites, as ``suites.raw_suites()`` returns them (checked equal to it once, below)."""
    return [s for s in all_suites if s.name.startswith("raw.")]


def _committed(name: str) -> dict:
    path = EXPECTATIONS_DIR / "expectations" / (name.replace(".", "/") + ".json")
    assert path.exists(), f"{path} missing: run `oncopipe validate --write-suites` and commit expectations/"
    return json.loads(path.read_text(encoding="utf-8"))


def _comparable(suite_json: dict) -> dict:
    data = json.loads(json.dumps(suite_json, default=str))
    data.get("meta", {}).pop("great_expectations_version", None)
    data.pop("id", None)  # the suite's storage id is assigned by the GX store on first add, not by content
    data["expectations"] = sorted(data["expectations"], key=lambda e: e["id"])
    return data


def test_committed_suites_equal_what_the_code_writes(all_suites):
    for suite in all_suites:
        assert _comparable(_committed(suite.name)) == _comparable(suite.to_json_dict()), (
            f"{suite.name} differs from suites.py: run `oncopipe validate --write-suites` and commit expectations/")


def test_committed_checkpoints_exist_for_every_suite(all_suites):
    for suite in all_suites:
        assert (EXPECTATIONS_DIR / "checkpoints" / f"{suite.name}.json").exists()
        assert (EXPECTATIONS_DIR / "validation_definitions" / f"{suite.name}.json").exists()


def test_every_expectation_has_a_name_a_severity_and_a_rule(all_suites):
    for suite in all_suites:
        names = [e.meta["name"] for e in suite.expectations]
        assert len(names) == len(set(names)), suite.name
        for e in suite.expectations:
            # GX's own field holds the severity (the gates read it back from the results); meta does not repeat it.
            assert e.severity.value in ("critical", "warning"), (suite.name, e.meta)
            assert "severity" not in e.meta, (suite.name, e.meta)
            assert e.meta["rule"], (suite.name, e.meta)
            table = suites.MARTS_CONSEQUENCES if suite.name.startswith("marts.") else suites.CONSEQUENCES
            if e.meta["name"].endswith(exclusions.EXCLUDED_SUFFIX):  # an exclusion rule's warning twin
                assert (e.severity.value, e.meta["consequence"]) == ("warning", "exclude"), (suite.name, e.meta)
                continue
            assert e.meta["consequence"] == table[e.severity.value], (suite.name, e.meta)


def test_the_committed_suites_hold_both_severities_in_gx_s_field(all_suites):
    severities = {(e["severity"], "severity" in e["meta"]) for s in all_suites
                  for e in _committed(s.name)["expectations"]}
    assert severities == {("critical", False), ("warning", False)}


def test_every_raw_rule_names_the_reference_it_comes_from(raw_suites):
    for suite in raw_suites:
        for e in suite.expectations:
            assert e.meta.get("basis"), (suite.name, e.meta["name"])


def test_volume_tolerance_is_read_from_the_contract(raw_suites):
    by_name = {s.name: {e.meta["name"]: e for e in s.expectations} for s in raw_suites}
    for src in SOURCES:
        e = by_name[raw_suite_name(src.name, "extraction")].get("row_count_vs_previous")
        if e is not None:
            assert e.min_value == pytest.approx(1 - src.max_volume_drop), src.name


def test_every_generator_fault_has_the_expectation_meant_for_it(raw_suites):
    kinds = {f.kind for f in FAULT_KINDS}
    assert len(kinds) >= 15
    assert kinds <= set(suites.FAULT_EXPECTATIONS), kinds - set(suites.FAULT_EXPECTATIONS)
    by_name = {s.name: {e.meta["name"]: e for e in s.expectations} for s in raw_suites}
    for kind, (source, expectation) in suites.FAULT_EXPECTATIONS.items():
        found = [level for level in ("extraction", "rows") if expectation in by_name[raw_suite_name(source, level)]]
        assert found, f"{kind}: {source} has no expectation {expectation}"
        level = found[0]
        assert by_name[raw_suite_name(source, level)][expectation].severity.value == "critical", kind


def test_the_raw_suites_are_the_raw_part_of_all_suites(raw_suites):
    assert [s.name for s in suites.raw_suites()] == [s.name for s in raw_suites]


def test_every_source_has_both_raw_suites(raw_suites):
    names = {s.name for s in raw_suites}
    for src in SOURCES:
        assert {raw_suite_name(src.name, "extraction"), raw_suite_name(src.name, "rows")} <= names


@pytest.mark.parametrize(("code", "ok"), [
    ("3400935955838", True), ("3400935955839", False), ("340093595583", False), ("3500935955838", False),
    ("34009359558A8", False), (None, False),
])
def test_cip13_check_digit(code, ok):
    assert formats.is_valid_cip13(code) is ok


def test_department_value_set():
    assert {"075", "02A", "02B", "971", "976", "001", "095"} <= set(formats.DEPARTMENTS)
    assert not {"999", "XX", "020", "75", "977"} & set(formats.DEPARTMENTS)
