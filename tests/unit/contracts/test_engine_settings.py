"""ONCOPIPE_ENGINE picks the dbt target and sizes the warehouse pool (issue #23)."""

from __future__ import annotations

import os

import pytest
from oncopipe.contracts.settings import DBT_PROJECT_DIR, get_settings, warehouse_writer_slots


def _target(monkeypatch: pytest.MonkeyPatch, engine: str | None) -> str:
    from dbt.config.profile import read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    if engine is None:
        monkeypatch.delenv("ONCOPIPE_ENGINE", raising=False)
    else:
        monkeypatch.setenv("ONCOPIPE_ENGINE", engine)
    set_invocation_context(os.environ)
    raw = read_profile(str(DBT_PROJECT_DIR))["oncopipe"]
    return ProfileRenderer({}).render_data({"target": raw["target"]})["target"]


@pytest.mark.parametrize(("engine", "target"), [(None, "local"), ("duckdb", "local"), ("spark", "spark"),
                                                ("Spark ", "spark")])
def test_engine_picks_the_profile_target(monkeypatch: pytest.MonkeyPatch, engine: str | None, target: str) -> None:
    assert _target(monkeypatch, engine) == target


def test_unknown_engine_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOPIPE_ENGINE", "postgres")
    with pytest.raises(ValueError, match=r"ONCOPIPE_ENGINE='postgres' \(from the environment\): "
                                         "must be one of duckdb, spark"):
        get_settings()


@pytest.mark.parametrize(("engine", "method", "slots"), [("duckdb", "thrift", 1), ("spark", "session", 1),
                                                         ("spark", "thrift", 8)])
def test_pool_serialises_only_single_writer_engines(monkeypatch: pytest.MonkeyPatch, engine: str, method: str,
                                                    slots: int) -> None:
    monkeypatch.setenv("ONCOPIPE_ENGINE", engine)
    monkeypatch.setenv("ONCOPIPE_SPARK_METHOD", method)
    monkeypatch.delenv("ONCOPIPE_WAREHOUSE_WRITERS", raising=False)
    assert warehouse_writer_slots() == slots
