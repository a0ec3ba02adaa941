"""The raw gate's DCIR join facts on a landing written by hand: drug lines without a claim line, drug lines on a
non-pharmacy claim line, and negative (regularisation) lines with no positive line they cancel.

Each case is a few lines of ER_PHA_F and ER_PRS_F (two extractions; the earlier one's claims as ``;`` CSV text, the
later's as typed Parquet), so a join that compares a key wrongly, or loses the earlier extraction, changes a count.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from oncopipe.contracts.sources import source
from oncopipe.landing.layout import extraction_dir
from oncopipe.quality import raw_frames

EARLIER, LATER = "2024-06-30", "2024-12-31"
ARROW = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32()}


def _claim(doc: int, nir: str = "A", nature: int = 3317, org: str = "01C000001", when=dt.date(2024, 3, 1)):
    return {"BEN_NIR_PSA": nir, "BEN_RNG_GEM": 1, "FLX_DIS_DTD": dt.date(2024, 4, 1),
            "FLX_TRT_DTD": dt.date(2024, 3, 20), "FLX_EMT_TYP": 1, "FLX_EMT_NUM": 7, "FLX_EMT_ORD": 0,
            "ORG_CLE_NUM": org, "DCT_ORD_NUM": doc,
            "PRS_ORD_NUM": 1, "REM_TYP_AFF": 0, "EXE_SOI_DTD": when, "PRS_NAT_REF": nature, "DPN_QLF": 0,
            "PSE_SPE_COD": 50}


def _drug(doc: int, quantity: int = 1, cip13: str = "3400930000001", org: str = "01C000001"):
    keys = {k: v for k, v in _claim(doc, org=org).items() if k in source("er_pha_f").column_names}
    return {**keys, "PHA_PRS_C13": cip13, "PHA_ACT_QSN": quantity, "PHA_ACT_PRU": 10.5}


def _write(landing: Path, name: str, date: str, rows: list[dict], csv: bool = False) -> None:
    src = source(name)
    table = pa.table({c.name: pa.array([r[c.name] for r in rows], ARROW[c.type]) for c in src.columns})
    folder = extraction_dir(landing, name, date)
    folder.mkdir(parents=True)
    if csv:
        pacsv.write_csv(table, folder / "part-00000.csv", pacsv.WriteOptions(delimiter=";", quoting_style="none"))
    else:
        pq.write_table(table, folder / "part-00000.parquet")


def _facts(landing: Path, date: str) -> dict[str, tuple[float, str]]:
    con = raw_frames.connect()
    try:
        rel = raw_frames.relation_sql(sorted(extraction_dir(landing, "er_pha_f", date).glob("part-*")))
        rows = raw_frames._claim_line_facts(con, landing, date, rel) + \
            raw_frames._regularisation_facts(con, landing, date, rel)
    finally:
        con.close()
    return {r["metric"]: (r["value"], r["subject"]) for r in rows}


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    # Earlier extraction (claims as CSV text): document 1 dispensed 2 boxes.
    _write(landing, "er_prs_f", EARLIER, [_claim(1)], csv=True)
    _write(landing, "er_pha_f", EARLIER, [_drug(1, 2)])
    # Later extraction: document 2 (2 boxes, cancelled by a -2 line of the same claim), document 3 (a -2 cancelling
    # document 1's boxes of the earlier extraction: same person, organisation, document? no: document 3's own
    # claim; unmatched), document 4 a -1 matching nothing, document 5 a drug line whose claim is a consultation,
    # document 6 a drug line with no claim line at all.
    _write(landing, "er_prs_f", LATER, [_claim(2), _claim(3), _claim(4), _claim(5, nature=1111)])
    _write(landing, "er_pha_f", LATER, [_drug(2, 2), _drug(2, -2), _drug(3, -2), _drug(4, -1), _drug(5), _drug(6)])
    return landing


def test_a_drug_line_without_its_claim_line_and_one_on_a_non_pharmacy_claim_are_counted(landing):
    facts = _facts(landing, LATER)
    assert facts["orphan_drug_line_share"] == (pytest.approx(1 / 6),
                                               "1 of 6 drug lines without a claim line in er_prs_f")
    assert facts["non_pharmacy_claim_share"][0] == pytest.approx(1 / 6)


def test_negative_lines_without_the_positive_line_they_cancel_are_counted(landing):
    # Document 2's -2 cancels its +2; documents 3 and 4 cancel nothing (document 1's +2 is another document).
    assert _facts(landing, LATER)["unmatched_regularisations"] == (2, "2 of 3 negative lines")


def test_a_regularisation_cancelling_a_line_of_an_earlier_extraction_is_matched(tmp_path):
    landing = tmp_path / "landing"
    _write(landing, "er_prs_f", EARLIER, [_claim(1)], csv=True)
    _write(landing, "er_pha_f", EARLIER, [_drug(1, 2)])
    # The -2 comes in a later flux, on a claim line of its own with the same person, document and care date.
    later_claim = {**_claim(1), "FLX_DIS_DTD": dt.date(2024, 9, 1), "FLX_TRT_DTD": dt.date(2024, 8, 20)}
    later_drug = {**_drug(1, -2), "FLX_DIS_DTD": dt.date(2024, 9, 1), "FLX_TRT_DTD": dt.date(2024, 8, 20)}
    _write(landing, "er_prs_f", LATER, [later_claim])
    _write(landing, "er_pha_f", LATER, [later_drug])
    facts = _facts(landing, LATER)
    assert facts["unmatched_regularisations"] == (0, "0 of 1 negative lines")
    assert facts["orphan_drug_line_share"][0] == 0


def test_a_clean_delivery_has_no_finding(tmp_path):
    landing = tmp_path / "landing"
    _write(landing, "er_prs_f", LATER, [_claim(1), _claim(2)])
    _write(landing, "er_pha_f", LATER, [_drug(1), _drug(2, 3), _drug(2, -3)])
    facts = _facts(landing, LATER)
    assert facts["orphan_drug_line_share"][0] == 0 and facts["non_pharmacy_claim_share"][0] == 0
    assert facts["unmatched_regularisations"] == (0, "0 of 1 negative lines")


def test_a_claim_line_delivered_twice_does_not_count_its_drug_lines_twice(tmp_path):
    landing = tmp_path / "landing"
    _write(landing, "er_prs_f", LATER, [_claim(1), _claim(1), _claim(2)])
    _write(landing, "er_pha_f", LATER, [_drug(1), _drug(2)])
    facts = _facts(landing, LATER)
    assert facts["orphan_drug_line_share"] == (0, "0 of 2 drug lines without a claim line in er_prs_f")
