"""``oncopipe import`` on a table SAS wrote (tests/reference/sas: pyreadstat's sample.sas7bdat, made by SAS's PROC
IMPORT from sample.csv), checked against the text SAS imported, not against another reading of the file.

SAS stores every number as a double and dates as numbers with a date format: the contract's types decide what lands
(a whole double as an integer or a code, a SAS date or the date part of a SAS datetime as a date), and a value the
contract's type cannot hold is refused with the file, line and column. The file is read in chunks of a few lines
here, as a national table is read in chunks of ``SAS_CHUNK_ROWS``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from oncopipe.landing import importer
from oncopipe.landing.importer import ExtractImportError, import_extract

SAS_TABLE = Path(__file__).resolve().parents[2] / "reference" / "sas" / "sample.sas7bdat"
DATE = "2024-12-31"
# sample.csv, the text SAS imported into sample.sas7bdat.
CHARS = ["a", "b", "c", "d", "e"]
NUMBERS = [1.1, 1.2, -1000.3, -1.4, 1000.3]
DATES = [dt.date(2018, 5, 6), dt.date(1880, 5, 6), dt.date(1960, 1, 1), dt.date(1583, 1, 1), None]
LABELS, ORDERS = [1, 2, 1, 2, 1], [1, 2, 3, 1, 1]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(importer, "SAS_CHUNK_ROWS", 2)  # three chunks of the five lines


def _deliver(tmp_path: Path, name: str) -> Path:
    delivery = tmp_path / "delivery"
    delivery.mkdir(parents=True)
    shutil.copy(SAS_TABLE, delivery / name)
    return delivery


def _landed(landing: Path, source: str) -> dict[str, list]:
    parts = sorted((landing / source / f"extraction={DATE}").glob("part-*.parquet"))
    assert len(parts) == 1, parts
    return pq.read_table(parts[0]).to_pydict()


def test_a_sas_table_lands_with_the_contract_types(tmp_path):
    """Codes and a pseudonym from character and whole numeric columns, a SAS date as a date, missing as null."""
    delivery = _deliver(tmp_path, "ki_cci_r_2023.sas7bdat")
    report = import_extract(delivery, tmp_path / "landing", DATE, fmt="sas", mapping={
        "mychar": "BEN_NIR_ANO", "mydate": "BEN_DCD_DTE", "mylabl": "DCD_DPT_COD", "myord": "DCD_CIM_COD"})
    assert report.rows == {"ki_cci_r": 5} and report.files == {"ki_cci_r": ["ki_cci_r_2023.sas7bdat"]}
    assert _landed(tmp_path / "landing", "ki_cci_r") == {
        "BEN_NIR_ANO": CHARS, "BEN_DCD_DTE": DATES,
        "DCD_CIM_COD": [str(v) for v in ORDERS], "DCD_DPT_COD": [str(v) for v in LABELS]}


def test_numbers_land_as_decimals_and_integers_and_a_datetime_as_its_date(tmp_path):
    delivery = _deliver(tmp_path, "IR_GEO_FDEP.sas7bdat")
    import_extract(delivery, tmp_path / "landing", DATE, mapping={
        "mychar": "DPT_COD", "mylabl": "COM_COD", "mynum": "FDEP_IDX", "myord": "FDEP_QUINT"})
    assert _landed(tmp_path / "landing", "ir_geo_fdep") == {
        "DPT_COD": CHARS, "COM_COD": [str(v) for v in LABELS], "FDEP_IDX": NUMBERS, "FDEP_QUINT": ORDERS}
    # A SAS datetime (DATETIME format; the SNDS's SAS tables date care so) lands as its date, 10:10:10 dropped.
    again = _deliver(tmp_path / "again", "KI_CCI_R.sas7bdat")
    import_extract(again, tmp_path / "landing2", DATE, mapping={
        "mychar": "BEN_NIR_ANO", "dtime": "BEN_DCD_DTE", "mylabl": "DCD_DPT_COD", "myord": "DCD_CIM_COD"})
    assert _landed(tmp_path / "landing2", "ki_cci_r")["BEN_DCD_DTE"] == DATES


def test_a_sas_value_the_contract_type_cannot_hold_is_refused_by_file_line_and_column(tmp_path):
    delivery = _deliver(tmp_path, "IR_GEO_FDEP.sas7bdat")
    with pytest.raises(ExtractImportError,
                       match=r"IR_GEO_FDEP\.sas7bdat, line 1, column FDEP_QUINT: 1\.1 is not a whole number"):
        import_extract(delivery, tmp_path / "landing", DATE, mapping={
            "mychar": "DPT_COD", "mylabl": "COM_COD", "myord": "FDEP_IDX", "mynum": "FDEP_QUINT"})
    assert not (tmp_path / "landing" / "ir_geo_fdep").exists()
