"""The dbt mart contracts (dbt_project/models/marts/_marts__models.yml) equal plugins/oncopipe/contracts/marts.py."""

from __future__ import annotations

import pytest
import yaml
from oncopipe.contracts.marts import MARTS, MARTS_BY_NAME
from oncopipe.contracts.settings import DBT_PROJECT_DIR

MARTS_YAML = DBT_PROJECT_DIR / "models" / "marts" / "_marts__models.yml"


@pytest.fixture(scope="module")
def dbt_marts() -> dict[str, dict]:
    models = yaml.safe_load(MARTS_YAML.read_text())["models"]
    return {m["name"]: m for m in models}


def test_every_mart_of_the_contract_is_a_dbt_model_and_no_other(dbt_marts):
    assert sorted(dbt_marts) == sorted(MARTS_BY_NAME)


@pytest.mark.parametrize("mart", MARTS, ids=lambda m: m.name)
def test_columns_names_order_and_types_match(dbt_marts, mart):
    columns = dbt_marts[mart.name]["columns"]
    assert [c["name"] for c in columns] == mart.column_names
    assert [c["data_type"].lower() for c in columns] == [c.data_type.lower() for c in mart.columns]


@pytest.mark.parametrize("mart", MARTS, ids=lambda m: m.name)
def test_contract_is_enforced_and_every_column_described(dbt_marts, mart):
    model = dbt_marts[mart.name]
    assert model["config"]["contract"] == {"enforced": True}
    assert model.get("description", "").strip()
    undescribed = [c["name"] for c in model["columns"] if not str(c.get("description", "")).strip()]
    assert undescribed == []


@pytest.mark.parametrize("mart", MARTS, ids=lambda m: m.name)
def test_mart_sql_file_exists_and_key_is_declared(dbt_marts, mart):
    assert (DBT_PROJECT_DIR / "models" / "marts" / f"{mart.name}.sql").is_file()
    assert tuple(dbt_marts[mart.name]["config"]["meta"]["key"]) == mart.key
