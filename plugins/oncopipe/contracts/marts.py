"""The mart contract: the published tables studies read, with their columns and types, as dbt declares them.

dbt is the one source of truth: the contracts are the models of ``dbt_project/models/marts`` with
``meta: {published: true}`` (``contract: {enforced: true}``, a ``data_type`` on every column, ``meta.key``), read
from the dbt manifest by :func:`contracts_from_manifest` and committed as ``contracts/marts.json`` (``oncopipe dbt
contracts`` rewrites it). The committed copy, not the manifest, is what Python reads at run time: the manifest
exists only after a ``dbt parse`` (6.5 to 9.4 s, measured at a load of 15 on 2 cores), and the DAG files, the study
registry and the gates read the contracts when they are imported. tests/integration/test_dbt_fixture.py fails when
the committed copy and the manifest of the dbt build it runs disagree. Types are DuckDB type names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The committed contracts, generated from the dbt manifest (:func:`write_contracts`).
CONTRACTS_FILE = Path(__file__).with_name("marts.json")


class ContractError(ValueError):
    """A published mart of the dbt project (or the committed contracts file) does not make a contract."""


@dataclass(frozen=True)
class MartColumn:
    name: str
    data_type: str
    description: str


@dataclass(frozen=True)
class Mart:
    name: str
    key: tuple[str, ...]
    description: str
    columns: tuple[MartColumn, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _mart(node: Mapping[str, Any]) -> Mart:
    where = f"dbt model {node['name']} ({node.get('original_file_path', '?')}, meta.published)"
    if not node.get("config", {}).get("contract", {}).get("enforced"):
        raise ContractError(f"{where}: a published mart needs config contract: {{enforced: true}}")
    key = tuple(node.get("meta", {}).get("key") or ())
    if not key:
        raise ContractError(f"{where}: a published mart needs meta.key (its primary key columns)")
    columns = []
    for column in node.get("columns", {}).values():
        if not column.get("data_type"):
            raise ContractError(f"{where}: column {column['name']} has no data_type")
        columns.append(MartColumn(column["name"], str(column["data_type"]).lower(),
                                  " ".join(str(column.get("description", "")).split())))
    if not columns:
        raise ContractError(f"{where}: no column declared")
    missing = [k for k in key if k not in {c.name for c in columns}]
    if missing:
        raise ContractError(f"{where}: meta.key names undeclared column(s) {', '.join(missing)}")
    return Mart(node["name"], key, " ".join(str(node.get("description", "")).split()), tuple(columns))


def contracts_from_manifest(manifest: Mapping[str, Any]) -> tuple[Mart, ...]:
    """The published marts of a dbt manifest (``target/manifest.json``, parsed), sorted by name.

    Raises:
        ContractError: a published model has no enforced contract, no key, or a column without ``data_type``.
    """
    project = manifest.get("metadata", {}).get("project_name")
    nodes = [n for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and n.get("package_name") == project
             and n.get("meta", {}).get("published")]
    if not nodes:
        raise ContractError(f"no model of dbt project {project!r} has meta.published: true")
    return tuple(sorted((_mart(n) for n in nodes), key=lambda m: m.name))


def contracts_document(marts: tuple[Mart, ...]) -> str:
    """The text of ``contracts/marts.json`` for ``marts`` (stable: regenerating an unchanged project is no diff)."""
    return json.dumps({
        "generated_from": "dbt_project/models/marts: the dbt manifest's models with meta.published "
                          "(rewrite with `oncopipe dbt contracts`)",
        "marts": [{"name": m.name, "key": list(m.key), "description": m.description,
                   "columns": [{"name": c.name, "data_type": c.data_type, "description": c.description}
                               for c in m.columns]} for m in marts],
    }, indent=1, ensure_ascii=False) + "\n"


def load_contracts(path: Path = CONTRACTS_FILE) -> tuple[Mart, ...]:
    """The contracts committed in ``path``.

    Raises:
        ContractError: the file is missing or not a contracts document (naming the file and the entry).
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return tuple(Mart(m["name"], tuple(m["key"]), m["description"],
                          tuple(MartColumn(c["name"], c["data_type"], c["description"]) for c in m["columns"]))
                     for m in document["marts"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContractError(f"{path}: not a mart contracts file ({type(exc).__name__}: {exc}); "
                            "rewrite it with `oncopipe dbt contracts`") from exc


def contract_differences(committed: tuple[Mart, ...], declared: tuple[Mart, ...]) -> list[str]:
    """What differs between the committed contracts and those dbt declares, one line per mart or column."""
    out = []
    old, new = {m.name: m for m in committed}, {m.name: m for m in declared}
    out += [f"{name}: published in dbt, missing from {CONTRACTS_FILE.name}" for name in sorted(new.keys() - old)]
    out += [f"{name}: in {CONTRACTS_FILE.name}, not a published dbt mart" for name in sorted(old.keys() - new)]
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        found = []
        if a.key != b.key:
            found.append(f"{name}: key {list(a.key)} committed, {list(b.key)} in dbt")
        if a.column_names != b.column_names:
            found.append(f"{name}: columns {a.column_names} committed, {b.column_names} in dbt")
        types = {c.name: c.data_type for c in a.columns}
        found += [f"{name}.{c.name}: data_type {types[c.name]} committed, {c.data_type} in dbt"
                  for c in b.columns if c.name in types and types[c.name] != c.data_type]
        if a != b and not found:
            found.append(f"{name}: descriptions differ")
        out += found
    return out


def write_contracts(manifest_path: Path, path: Path = CONTRACTS_FILE) -> list[str]:
    """Rewrite ``path`` from a dbt manifest file; returns what changed (:func:`contract_differences`)."""
    declared = contracts_from_manifest(json.loads(manifest_path.read_text(encoding="utf-8")))
    changes = contract_differences(load_contracts(path), declared) if path.exists() else ["new file"]
    path.write_text(contracts_document(declared), encoding="utf-8")
    return changes


MARTS: tuple[Mart, ...] = load_contracts()
MARTS_BY_NAME: dict[str, Mart] = {m.name: m for m in MARTS}

#: Published tables a study may be approved to read: the marts plus the life-table seed published with them.
REFERENCE_TABLES: tuple[str, ...] = ("french_life_tables",)
READABLE_TABLES: tuple[str, ...] = (*MARTS_BY_NAME, *REFERENCE_TABLES)

#: What each analysis kind (oncopipe.studies.kinds) refuses to find null: kind -> mart -> columns. The kinds read
#: their checks from here and the marts gate turns every entry into a critical not-null expectation naming the
#: kinds, so the gate never publishes a version an approved study then refuses (a null ``sex`` decoded from
#: the contract's "unknown" codes 0/9, say).
_CASE_COLUMNS = ("site", "stage", "sex", "age_at_diagnosis", "diagnosis_date", "follow_up_days", "event")
NOT_NULL_FOR_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "poor_prognosis_survival": {"poor_prognosis_cases": _CASE_COLUMNS},
    "care_pathway_delays": {
        "poor_prognosis_cases": _CASE_COLUMNS,  # its cases go through the same preparation (studies.cases)
        "care_pathway_delays": ("site", "stage", "sex", "age_at_diagnosis"),
    },
    # Unless a study sets drop_missing_covariates (then it analyses complete cases only).
    "tradhor_adherence": {
        "breast_cancer_endocrine_cohort": ("age_at_index", "deprivation_quintile", "region_code", "first_molecule"),
    },
}


def not_null_requirements(mart: str) -> dict[str, tuple[str, ...]]:
    """For one mart: column -> the analysis kinds that refuse a null in it (sorted), from NOT_NULL_FOR_KINDS."""
    out: dict[str, list[str]] = {}
    for kind, marts in sorted(NOT_NULL_FOR_KINDS.items()):
        for column in marts.get(mart, ()):
            out.setdefault(column, []).append(kind)
    return {column: tuple(kinds) for column, kinds in out.items()}
