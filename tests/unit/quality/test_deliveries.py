"""Delivery profiles: an order-free fingerprint that Parquet and CSV agree on, PSI on known distributions."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from oncopipe.contracts.sources import source
from oncopipe.quality import deliveries

SRC = source("ir_geo_fdep")


def _table(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table({"DPT_COD": list(cols[0]), "COM_COD": list(cols[1]), "FDEP_IDX": list(cols[2]),
                     "FDEP_QUINT": list(cols[3])})


ROWS = [("075", "001", 0.5, 1), ("075", "002", -1.25, 2), ("013", "001", 2.0, 5), ("02A", "003", 0.0, 3)]


def _profile(paths: list[Path]) -> deliveries.Profile:
    return deliveries.compute_profile(duckdb.connect(), paths, SRC, "2024-01-01", None)


def test_fingerprint_ignores_line_order_and_files_and_format(tmp_path):
    pq.write_table(_table(ROWS), tmp_path / "a.parquet")
    pq.write_table(_table(ROWS[2:]), tmp_path / "b1.parquet")
    pq.write_table(_table(ROWS[:2][::-1]), tmp_path / "b2.parquet")
    pacsv.write_csv(_table(ROWS), tmp_path / "c.csv", pacsv.WriteOptions(delimiter=";", quoting_style="none"))
    one = _profile([tmp_path / "a.parquet"])
    assert one.fingerprint == _profile([tmp_path / "b1.parquet", tmp_path / "b2.parquet"]).fingerprint
    assert one.fingerprint == _profile([tmp_path / "c.csv"]).fingerprint
    assert one.lines == 4 and one.values["FDEP_QUINT"] == {"1": 1, "2": 1, "3": 1, "5": 1}


def test_fingerprint_changes_with_one_value_and_a_line_twice_does_not_cancel(tmp_path):
    pq.write_table(_table(ROWS), tmp_path / "a.parquet")
    pq.write_table(_table([*ROWS[:3], ("02A", "003", 0.0, 4)]), tmp_path / "b.parquet")
    pq.write_table(_table([*ROWS, ROWS[0], ROWS[0]]), tmp_path / "c.parquet")
    pq.write_table(_table(ROWS), tmp_path / "d.parquet")
    fingerprints = {_profile([tmp_path / f"{x}.parquet"]).fingerprint for x in "abc"}
    assert len(fingerprints) == 3
    # The same lines as a plus two copies of a line: not equal to a (a xor would cancel the pair).
    assert _profile([tmp_path / "c.parquet"]).fingerprint.split(":")[1] != \
        _profile([tmp_path / "d.parquet"]).fingerprint.split(":")[1]


def test_psi_of_known_shares():
    same, _ = deliveries.psi({"1": 50, "2": 50}, {"1": 500, "2": 500})
    assert same == 0
    value, moved = deliveries.psi({"1": 70, "2": 30}, {"1": 50, "2": 50})
    assert value == pytest.approx((0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5))
    assert {m["value"] for m in moved} == {"1", "2"}
    # A column swapped with another: disjoint values, far above the critical threshold.
    swapped, moved = deliveries.psi({"6": 40, "14": 60}, {"1": 90, "2": 10})
    assert swapped > 10 and {m["value"] for m in moved if m["share_previous"] == 0} == {"6", "14"}


def test_stale_profiles_are_recomputed_when_files_change(tmp_path):
    landing, quality = tmp_path / "landing", tmp_path / "quality"
    folder = landing / SRC.name / "extraction=2024-01-01"
    folder.mkdir(parents=True)
    pq.write_table(_table(ROWS), folder / "part-00000.parquet")
    con = duckdb.connect()
    first = deliveries.accepted_profiles(con, landing, quality, SRC, "2024-04-01", None)["2024-01-01"]
    pq.write_table(_table(ROWS[:3]), folder / "part-00000.parquet")
    again = deliveries.accepted_profiles(con, landing, quality, SRC, "2024-04-01", None)["2024-01-01"]
    assert (first.lines, again.lines) == (4, 3)
    # A later extraction with no saved profile is pending, not accepted: not compared.
    later = landing / SRC.name / "extraction=2024-07-01"
    later.mkdir()
    pq.write_table(_table(ROWS), later / "part-00000.parquet")
    assert set(deliveries.accepted_profiles(con, landing, quality, SRC, "2024-04-01", None)) == {"2024-01-01"}


def test_a_profile_made_by_the_other_engines_hash_is_recomputed_not_compared(tmp_path):
    """Spark's xxhash64 and DuckDB's hash give the same lines different fingerprints: never compare across them."""
    landing, quality = tmp_path / "landing", tmp_path / "quality"
    for date in ("2024-01-01", "2024-07-01"):  # earlier and later than the extraction checked
        folder = landing / SRC.name / f"extraction={date}"
        folder.mkdir(parents=True)
        pq.write_table(_table(ROWS), folder / "part-00000.parquet")
        made_on_spark = _profile([folder / "part-00000.parquet"])
        made_on_spark.extraction, made_on_spark.fingerprint, made_on_spark.line_hash = date, "4:1", "xxhash64"
        deliveries.save(quality, made_on_spark)
    accepted = deliveries.accepted_profiles(duckdb.connect(), landing, quality, SRC, "2024-04-01", None)
    assert {d: (p.line_hash, p.fingerprint) for d, p in accepted.items()} == {
        d: ("duckdb", _profile([landing / SRC.name / f"extraction={d}" / "part-00000.parquet"]).fingerprint)
        for d in ("2024-01-01", "2024-07-01")}
    assert '"line_hash": "duckdb"' in (quality / "deliveries" / SRC.name / "extraction=2024-07-01.json").read_text()
