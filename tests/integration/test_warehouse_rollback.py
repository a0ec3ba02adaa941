"""The refresh's candidate warehouse (oncopipe.warehouse.refresh.begin_candidate / accept_candidate).

A run starts from the warehouse the last accepted run left: a refused or interrupted candidate is rolled back,
a warehouse of unknown history is rebuilt from nothing, and a candidate that was published before its run died
is kept (rolling it back would lose the published extraction's lines).
"""

from __future__ import annotations

import json

import duckdb
import pytest
from gates_landing import write_extraction
from gates_marts import settings_for
from oncopipe.warehouse import refresh

A, B = "2024-01-01", "2024-04-01"


@pytest.fixture()
def settings(tmp_path):
    s = settings_for(tmp_path / "home")
    write_extraction(s.landing, A, n=20)
    write_extraction(s.landing, B, n=20)
    return s


def _mark(settings, value: str) -> None:
    con = duckdb.connect(str(settings.warehouse))
    con.execute("create or replace table main.mark as select ? as value", [value])
    con.close()


def _read(settings) -> str | None:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        found = con.execute("select value from main.mark").fetchone()
    except duckdb.CatalogException:
        found = None
    con.close()
    return None if found is None else found[0]


def _publish(settings, version: str) -> None:
    (settings.published / version).mkdir(parents=True)
    (settings.published / version / "version.json").write_text(json.dumps(
        {"version": version, "extraction": version[:10], "created_at": "", "content_sha256": ""}))
    (settings.published / "CURRENT").write_text(version + "\n")


def test_a_warehouse_of_unknown_history_is_rebuilt_from_nothing(settings):
    _mark(settings, "built from every landed extraction")
    started = refresh.begin_candidate(A, settings)
    assert started["restored"] and _read(settings) is None
    assert started["formats"]["er_pha_f"] == ["parquet"]
    # The landing views read only the extractions up to the one processed.
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    dates = con.execute("select distinct cast(extraction as varchar) from landing.er_pha_f").fetchall()
    con.close()
    assert dates == [(A,)]


def test_a_refused_candidate_is_rolled_back_to_the_accepted_warehouse(settings):
    refresh.begin_candidate(A, settings)
    _mark(settings, "accepted A")
    _publish(settings, f"{A}_aaaaaaaaaaaa")
    refresh.accept_candidate(A, settings)
    assert refresh.warehouse_state(settings)["state"] == "accepted"
    assert not refresh.begin_candidate(B, settings)["restored"]
    _mark(settings, "candidate B, refused by the marts gate")
    started = refresh.begin_candidate(B, settings)
    assert started["restored"] and _read(settings) == "accepted A"
    assert refresh.warehouse_state(settings) == {"state": "candidate", "extraction": B,
                                                 "current": f"{A}_aaaaaaaaaaaa"}


def test_a_candidate_published_before_its_run_died_is_kept(settings):
    refresh.begin_candidate(A, settings)
    _mark(settings, "accepted A")
    _publish(settings, f"{A}_aaaaaaaaaaaa")
    refresh.accept_candidate(A, settings)
    refresh.begin_candidate(B, settings)
    _mark(settings, "candidate B, published")
    _publish(settings, f"{B}_bbbbbbbbbbbb")  # ... and the run was killed before accept_candidate
    started = refresh.begin_candidate(B, settings)
    assert not started["restored"] and _read(settings) == "candidate B, published"
