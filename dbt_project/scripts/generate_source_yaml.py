"""Write one ``_<source>__sources.yml`` per staging folder from the landing contract (oncopipe.contracts.sources).

The YAML is committed; rerun this script when contracts/sources.py changes and review the diff:

    .venv/bin/python dbt_project/scripts/generate_source_yaml.py

A unit test (tests/unit/warehouse/test_dbt_sources.py) fails when the committed YAML and contracts/sources.py disagree.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from oncopipe.contracts.sources import SOURCES_BY_NAME

STAGING = Path(__file__).resolve().parents[1] / "models" / "staging"

# dbt source (one per producing system, one staging folder each) -> landing sources it holds.
SYSTEMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "snds": ("SNDS DCIR and referentials (CNAM): beneficiaries, drug referential, claim lines and their drug lines.",
             ("ir_ben_r", "ir_pha_r", "er_prs_f", "er_pha_f")),
    "pmsi_mco": ("PMSI MCO (ATIH): acute-care hospital stays, their patients, diagnoses and CCAM acts.",
                 ("t_mco_b", "t_mco_c", "t_mco_d", "t_mco_a")),
    "registry": ("French cancer registries (FRANCIM network), linked to the SNDS pseudonym.",
                 ("registry_cases",)),
    "cepidc": ("CepiDc (Inserm) causes of death, linked to the SNDS pseudonym.", ("ki_cci_r",)),
    "fdep": ("French deprivation index (FDep) by commune, with its national quintile.", ("ir_geo_fdep",)),
}

_TYPES = {"string": "varchar", "int": "bigint", "float": "double", "date": "date"}

# Delta sources receive a flux every month: warn after a missed month, error after a quarter.
_DELTA_FRESHNESS = {"warn_after": {"count": 45, "period": "day"}, "error_after": {"count": 120, "period": "day"}}
# Snapshots are refreshed yearly or so: warn only.
_SNAPSHOT_FRESHNESS = {"warn_after": {"count": 400, "period": "day"}, "error_after": None}


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True


def source_yaml(system: str) -> dict:
    description, tables = SYSTEMS[system]
    out_tables = []
    for name in tables:
        src = SOURCES_BY_NAME[name]
        # No data tests on sources: the raw gate (Great Expectations) owns raw quality; staging is tested.
        columns = [{"name": c.name,
                    "description": c.description + ("" if not c.nullable else " (nullable)"),
                    "data_type": _TYPES[c.type]} for c in src.columns]
        columns.append({"name": "extraction",
                        "description": "Extraction date, from the hive partition folder extraction=YYYY-MM-DD.",
                        "data_type": "date"})
        out_tables.append({
            "name": name,
            "description": f"{src.description} Mirrors {src.snds_table}; delivery: {src.delivery}; "
                           f"key within an extraction: {', '.join(src.key)}.",
            "config": {
                "meta": {"delivery": src.delivery, "key": list(src.key), "snds_table": src.snds_table},
                "loaded_at_field": "cast(extraction as timestamp)",
                "freshness": dict(_DELTA_FRESHNESS if src.delivery == "delta" else _SNAPSHOT_FRESHNESS),
            },
            "columns": columns,
        })
    return {"version": 2, "sources": [{
        "name": system,
        # The landing.<table> views are written by oncopipe.warehouse.dbt_runner.prepare_landing before each
        # build: they read, in place, the accepted extractions up to the one being processed, in the format
        # each extraction landed in (Parquet and/or CSV), so no project setting decides what is read.
        "description": description + " Read in place from the landing folder through the view landing.<table>: "
                                     "the accepted extractions up to the one being processed (refused ones are "
                                     "quarantined, newer ones have not passed their raw gate yet).",
        "schema": "landing",
        "tables": out_tables,
    }]}


def main() -> None:
    for system in SYSTEMS:
        folder = STAGING / system
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"_{system}__sources.yml"
        header = "# Generated from plugins/oncopipe/contracts/sources.py by dbt_project/scripts/generate_source_yaml.py.\n"
        path.write_text(header + yaml.dump(source_yaml(system), Dumper=_NoAliasDumper, sort_keys=False,
                                           width=110, allow_unicode=True))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
