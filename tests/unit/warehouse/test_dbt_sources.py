"""The committed dbt source YAML is what dbt_project/scripts/generate_source_yaml.py makes from contracts/sources.py."""

from __future__ import annotations

import importlib.util

import pytest
import yaml
from oncopipe.contracts.settings import DBT_PROJECT_DIR
from oncopipe.contracts.sources import SOURCES

SCRIPT = DBT_PROJECT_DIR / "scripts" / "generate_source_yaml.py"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("generate_source_yaml", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_landing_source_has_exactly_one_dbt_source_table(generator):
    tables = [t for _, names in generator.SYSTEMS.values() for t in names]
    assert sorted(tables) == sorted(s.name for s in SOURCES)


def test_committed_yaml_is_up_to_date_with_schema_py(generator):
    for system in generator.SYSTEMS:
        path = DBT_PROJECT_DIR / "models" / "staging" / system / f"_{system}__sources.yml"
        assert yaml.safe_load(path.read_text()) == generator.source_yaml(system), (
            f"{path} is stale: run .venv/bin/python {SCRIPT.relative_to(DBT_PROJECT_DIR.parent)}")


def test_every_source_column_is_described_with_the_dictionary_text(generator):
    by_name = {s.name: s for s in SOURCES}
    for system in generator.SYSTEMS:
        path = DBT_PROJECT_DIR / "models" / "staging" / system / f"_{system}__sources.yml"
        for table in yaml.safe_load(path.read_text())["sources"][0]["tables"]:
            columns = {c["name"]: c["description"] for c in table["columns"]}
            for column in by_name[table["name"]].columns:
                assert columns[column.name].startswith(column.description)


def test_flux_lag_of_the_dbt_project_is_the_python_rule():
    """The cohort's end of data (dbt var pharmacy_flux_lag_months) and
    oncopipe.methods.adherence.end_of_complete_data use
    the same number of months, so the SQL and pandas follow-ups end on the same day."""
    from oncopipe.methods.adherence import PHARMACY_FLUX_LAG_MONTHS

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"]["pharmacy_flux_lag_months"] == PHARMACY_FLUX_LAG_MONTHS
