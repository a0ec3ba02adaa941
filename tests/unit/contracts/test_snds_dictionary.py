"""The landing contract held against the SNDS data dictionary (schema-snds, vendored in contracts/reference/snds).

Every column the platform reads from an SNDS source must exist in the SNDS table the source names, with a type
the dictionary's type can be read as without loss. The registry and FDep tables are not SNDS tables and keep
their own documented shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import oncopipe.contracts
import pytest
from oncopipe.contracts.sources import DCIR_KEY, DCIR_LINE, SOURCES, Source, source

REFERENCE = Path(oncopipe.contracts.__file__).parent / "reference" / "snds"
NOT_SNDS = {"registry_cases", "ir_geo_fdep"}

# Dictionary type (Table Schema) -> contract types that read it without loss. An integer code or identifier may
# be read as text (FINESS and RSA numbers are integers in T_MCOaaB/C, text in T_MCOaaA/D); a month-only "date"
# (format %m) is text; a datetime is read as its date.
_READS_AS: dict[str, set[str]] = {
    "string": {"string"},
    "integer": {"int", "string"},
    "number": {"float"},
    "boolean": {"int", "string"},
    "year": {"int", "string"},
    "yearmonth": {"string"},
    "date": {"date"},
    "datetime": {"date"},
}


def _dictionary() -> dict[str, dict[str, dict]]:
    tables = {}
    for path in sorted(REFERENCE.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        tables[schema["name"]] = {f["name"]: f for f in schema["fields"]}
    return tables


def _readable_as(field: dict) -> set[str]:
    if field["type"] == "date" and "%d" not in field.get("format", "default") and field.get("format") != "default":
        return {"string"}
    return _READS_AS.get(field["type"], set())


def departures(src: Source) -> list[str]:
    """Every way the landing source ``src`` departs from the dictionary, one line each."""
    tables = _dictionary()
    found = []
    fields = tables.get(src.snds_table)
    table = src.snds_table
    if fields is None:
        found.append(f"{src.name}: {src.snds_table!r} is not an SNDS table of the dictionary")
        # Still check the columns against the table the name starts with, so the report says all it can.
        table = src.snds_table.split()[0]
        fields = tables.get(table)
        if fields is None:
            return found
    for col in src.columns:
        field = fields.get(col.name)
        if col.name == src.year_column:  # the platform's own column (the year in the file name)
            if field is not None:
                found.append(f"{src.name}.{col.name}: the platform's year column shadows a column of {table}")
            continue
        if field is None:
            found.append(f"{src.name}.{col.name}: no such column in {table}")
        elif col.type not in _readable_as(field):
            found.append(f"{src.name}.{col.name}: contract type {col.type} cannot read {table} "
                         f"type {field['type']} (format {field.get('format', 'default')})")
    return found


def test_vendored_dictionary_has_the_tables_and_its_licence():
    assert {"IR_BEN_R", "IR_PHA_R", "ER_PRS_F", "ER_PHA_F", "T_MCOaaA", "T_MCOaaB", "T_MCOaaC", "T_MCOaaD",
            "KI_CCI_R"} <= set(_dictionary())
    assert "Mozilla Public License" in (REFERENCE / "LICENSE").read_text()
    assert "fe17ef8348aeb74f38c29016f49e65f82a6168b6" in (REFERENCE / "README.md").read_text()


def test_the_dcir_tables_carry_the_nine_join_keys():
    dictionary = _dictionary()
    for src in (source("er_prs_f"), source("er_pha_f")):
        assert src.key == DCIR_KEY and set(DCIR_KEY) <= set(src.column_names) <= set(dictionary[src.snds_table])
    assert len(DCIR_KEY) == 9 and set(DCIR_LINE) == set(DCIR_KEY) - {"FLX_DIS_DTD", "FLX_TRT_DTD"}


def test_the_checker_sees_a_wrong_column_and_a_wrong_type():
    fields = _dictionary()["ER_PHA_F"]
    assert "PHA_ACT_QSN" in fields and "ASS_NUM" not in fields
    assert "int" in _readable_as(fields["PHA_ACT_QSN"]) and "date" not in _readable_as(fields["PHA_ACT_QSN"])
    assert _readable_as(_dictionary()["IR_BEN_R"]["BEN_NAI_MOI"]) == {"string"}


@pytest.mark.parametrize("src", [s for s in SOURCES if s.name not in NOT_SNDS], ids=lambda s: s.name)
def test_every_column_the_platform_reads_is_in_the_dictionary_with_a_compatible_type(src):
    assert departures(src) == []
