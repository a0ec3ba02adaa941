"""The mart contracts: read from the dbt manifest (contracts_from_manifest), committed as contracts/marts.json.

That the committed file equals the manifest of the real project is checked where dbt parses it anyway
(tests/integration/test_dbt_fixture.py); these tests are on hand-made manifests and on the committed file.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from oncopipe.contracts import marts
from oncopipe.contracts.marts import MARTS, MARTS_BY_NAME, ContractError, contract_differences, contracts_from_manifest
from oncopipe.contracts.settings import DBT_PROJECT_DIR

MARTS_YAML = DBT_PROJECT_DIR / "models" / "marts" / "_marts__models.yml"


def _node(name: str, columns: dict[str, str], *, key: tuple[str, ...] = ("id",), published: bool = True,
          enforced: bool = True, package: str = "oncopipe") -> dict:
    return {"resource_type": "model", "name": name, "package_name": package,
            "original_file_path": f"models/marts/{name}.sql", "description": f"The {name}.\n",
            "meta": {"key": list(key), "published": published} if published else {},
            "config": {"contract": {"enforced": enforced, "alias_types": True}},
            "columns": {c: {"name": c, "data_type": t, "description": f"{c} column"} for c, t in columns.items()}}


def _manifest(*nodes: dict) -> dict:
    return {"metadata": {"project_name": "oncopipe"},
            "nodes": {f"model.{n['package_name']}.{n['name']}": n for n in nodes}}


MANIFEST = _manifest(_node("zeta", {"id": "varchar", "n": "INTEGER"}),
                     _node("alpha", {"id": "varchar", "d": "date"}),
                     _node("helper", {"id": "varchar"}, published=False, enforced=False),
                     _node("other_package", {"id": "varchar"}, package="elementary"))


def test_published_models_of_the_project_only_sorted_with_types_in_lower_case():
    got = contracts_from_manifest(MANIFEST)
    assert [m.name for m in got] == ["alpha", "zeta"]
    assert got[1] == marts.Mart("zeta", ("id",), "The zeta.", (marts.MartColumn("id", "varchar", "id column"),
                                                                marts.MartColumn("n", "integer", "n column")))


@pytest.mark.parametrize(("change", "message"), [
    (lambda n: n["config"]["contract"].update(enforced=False), "needs config contract: {enforced: true}"),
    (lambda n: n["columns"]["n"].update(data_type=None), "column n has no data_type"),
    (lambda n: n["meta"].update(key=[]), "needs meta.key"),
    (lambda n: n["meta"].update(key=["id", "missing"]), "meta.key names undeclared column(s) missing"),
])
def test_a_published_model_that_is_no_contract_is_named(change, message):
    manifest = copy.deepcopy(MANIFEST)
    change(manifest["nodes"]["model.oncopipe.zeta"])
    with pytest.raises(ContractError, match="dbt model zeta") as raised:
        contracts_from_manifest(manifest)
    assert message in str(raised.value) and "models/marts/zeta.sql" in str(raised.value)


def test_differences_name_the_mart_and_the_column():
    declared = contracts_from_manifest(MANIFEST)
    changed = copy.deepcopy(MANIFEST)
    changed["nodes"]["model.oncopipe.zeta"]["columns"]["n"]["data_type"] = "bigint"
    del changed["nodes"]["model.oncopipe.alpha"]
    assert contract_differences(declared, contracts_from_manifest(changed)) == [
        "alpha: in marts.json, not a published dbt mart", "zeta.n: data_type integer committed, bigint in dbt"]
    assert contract_differences(declared, declared) == []
    described = copy.deepcopy(MANIFEST)
    described["nodes"]["model.oncopipe.alpha"]["columns"]["d"]["description"] = "another text"
    assert contract_differences(declared, contracts_from_manifest(described)) == ["alpha: descriptions differ"]


def test_write_then_load_round_trips_and_a_broken_file_is_named(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(MANIFEST))
    path = tmp_path / "marts.json"
    assert marts.write_contracts(manifest, path) == ["new file"]
    assert marts.load_contracts(path) == contracts_from_manifest(MANIFEST)
    assert marts.write_contracts(manifest, path) == []
    path.write_text('{"marts": [{"name": "x"}]}')
    with pytest.raises(ContractError, match=r"marts\.json: not a mart contracts file \(KeyError"):
        marts.load_contracts(path)


def test_the_committed_file_is_the_document_of_its_contracts():
    assert marts.CONTRACTS_FILE.read_text(encoding="utf-8") == marts.contracts_document(MARTS)


@pytest.mark.parametrize("mart", MARTS, ids=lambda m: m.name)
def test_mart_sql_file_exists_and_every_column_is_described(mart):
    assert (DBT_PROJECT_DIR / "models" / "marts" / f"{mart.name}.sql").is_file()
    assert mart.description and all(c.description for c in mart.columns), mart.name


def test_every_kind_requirement_names_a_contract_column():
    for kind, required in marts.NOT_NULL_FOR_KINDS.items():
        for mart, columns in required.items():
            assert set(columns) <= set(MARTS_BY_NAME[mart].column_names), (kind, mart)


def test_the_marts_yaml_declares_the_committed_marts():
    """A cheap early warning (no dbt parse): the published models named in the YAML are the committed ones."""
    models = yaml.safe_load(MARTS_YAML.read_text())["models"]
    assert sorted(m["name"] for m in models if m["config"]["meta"].get("published")) == sorted(MARTS_BY_NAME)
