"""The same dbt project on Spark (``ONCOPIPE_ENGINE=spark``, dbt-spark session mode) gives DuckDB's marts.

One generated extraction (PEOPLE people, as few as keep every mart non-empty) is built by DuckDB, then by a local
Spark (``local[2]``, UI off, 2 shuffle partitions; one Spark session for the module, started by the first build)
from the same landing. Every mart is compared row for row: both sorted on every column, integers, text, booleans
and dates exactly, floats within 1e-12. The seed with apostrophes (department_regions, "Côte d'Azur") loads the
same on both. A landing source whose extraction reads no line makes the Spark build refuse to start. The same
landing registered and built through a Spark Thrift server started by the project's script
(``scripts/spark_thrift_server.sh``, as the README's walkthrough of a cluster does) reads back the same tables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.marts import MARTS
from oncopipe.contracts.settings import Settings, get_settings
from oncopipe.contracts.sources import SOURCES
from oncopipe.warehouse.dbt_runner import run_dbt

pytestmark = [pytest.mark.slow, pytest.mark.spark]

EXTRACTION = "2024-12-31"
SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "spark_thrift_server.sh"
PEOPLE = 1_500


def _java() -> None:
    if shutil.which("java") is None:
        pytest.fail("java is missing: `make system-deps` installs openjdk-17-jre-headless (the Spark engine needs it)")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Settings]]:
    _java()
    generate = pytest.importorskip("oncopipe.synth.extraction").generate
    home = tmp_path_factory.mktemp("spark_engine") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONCOPIPE_HOME", str(home))
        for var in ("ONCOPIPE_LANDING", "ONCOPIPE_WAREHOUSE", "ONCOPIPE_SPARK_WAREHOUSE"):
            mp.delenv(var, raising=False)
        mp.setenv("ONCOPIPE_SPARK_SHUFFLE_PARTITIONS", "2")
        mp.setenv("ONCOPIPE_ENGINE", "duckdb")
        duck = get_settings()
        generate(duck.landing, PEOPLE, 11, EXTRACTION, workers=1)
        run = run_dbt("build", quiet=True)
        assert run.success, run.summary()
        mp.setenv("ONCOPIPE_ENGINE", "spark")
        spark = get_settings()
        # Models and seeds only: the data and unit tests are the same SQL as on DuckDB (built just above), and
        # equal marts are the claim here; they would triple the cost (217 nodes instead of 70).
        run = run_dbt("build", exclude=["resource_type:test", "resource_type:unit_test"], quiet=True)
        assert run.success, run.summary()
        yield duck, spark


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="first", kind="mergesort").reset_index(drop=True)


def _duckdb_table(settings: Settings, name: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.sql(f"select * from {name}").df()


def _spark_table(settings: Settings, name: str) -> pd.DataFrame:
    from oncopipe.warehouse.spark_engine import read_table

    return read_table(settings, name)


def _assert_equal(name: str, duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(duck.columns), name
    assert len(duck) > 0, f"{name} is empty on DuckDB: the extraction is too small to compare it"
    assert len(spark) == len(duck), f"{name}: {len(spark)} rows on Spark, {len(duck)} on DuckDB"
    floats = [c for c in duck.columns if pd.api.types.is_float_dtype(duck[c])]
    duck, spark = _sorted(duck), _sorted(spark)
    for column in duck.columns:
        left, right = duck[column], spark[column]
        assert (left.isna() == right.isna()).all(), f"{name}.{column}: nulls differ"
        present = ~left.isna()
        if column in floats:
            assert np.allclose(left[present].astype(float), right[present].astype(float), rtol=0, atol=1e-12), \
                f"{name}.{column}: floats differ by more than 1e-12"
        else:
            as_text = left[present].map(str).tolist(), right[present].map(str).tolist()
            if pd.api.types.is_numeric_dtype(left) or pd.api.types.is_numeric_dtype(right):
                # An integer column with nulls comes back from Spark as float64: compare the integers exactly.
                for side in (left[present], right[present]):
                    assert (side.astype(float) % 1 == 0).all(), f"{name}.{column}: a non-integer value"
                as_text = (left[present].astype("int64").map(str).tolist(),
                           right[present].astype("int64").map(str).tolist())
            elif pd.api.types.is_datetime64_any_dtype(left) or pd.api.types.is_datetime64_any_dtype(right):
                as_text = (pd.to_datetime(left[present]).dt.date.map(str).tolist(),
                           pd.to_datetime(right[present]).dt.date.map(str).tolist())
            mismatched = [i for i, (a, b) in enumerate(zip(*as_text, strict=True)) if a != b]
            assert not mismatched, (f"{name}.{column}: {len(mismatched)} values differ, first at sorted row "
                                    f"{mismatched[0]}: {as_text[0][mismatched[0]]!r} != {as_text[1][mismatched[0]]!r}")


@pytest.mark.parametrize("mart", [m.name for m in MARTS])
def test_marts_equal_duckdb(homes, mart: str) -> None:
    duck, spark = homes
    _assert_equal(mart, _duckdb_table(duck, f"marts.{mart}"), _spark_table(spark, f"marts.{mart}"))


def test_seed_with_apostrophes_loads(homes) -> None:
    duck, spark = homes
    regions = _spark_table(spark, "reference.department_regions")
    assert regions.map(lambda v: "'" in str(v)).to_numpy().any(), "the seed has no apostrophe: nothing tested"
    _assert_equal("department_regions", _duckdb_table(duck, "reference.department_regions"), regions)


def test_refuses_a_source_whose_partitions_are_not_registered(homes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trial port's trap: a table over the landing whose extraction= folders are not registered reads empty."""
    from oncopipe.warehouse import spark_engine

    _, spark = homes
    registered = spark_engine._add_partitions
    monkeypatch.setattr(spark_engine, "_add_partitions",
                        lambda session, table, extractions: None if table == "landing.ir_geo_fdep"
                        else registered(session, table, extractions))
    run = run_dbt("compile", select=["stg_fdep__communes"], quiet=True)
    assert not run.success
    assert "refusing to build on Spark: landing.ir_geo_fdep does not read the lines of its landed files" \
        in (run.error or ""), run.summary()
    assert f"extraction={EXTRACTION}: 0 read of" in run.error


def test_publish_stages_the_same_parquet(homes) -> None:
    """The candidate staged from the Spark catalog is byte for byte the one staged from DuckDB (same content id)."""
    from oncopipe.warehouse.versions import stage_candidate

    duck, spark = homes
    from_duckdb, from_spark = stage_candidate(duck), stage_candidate(spark)
    differing = sorted(f for f in from_duckdb.files if from_duckdb.files[f] != from_spark.files.get(f))
    assert not differing, f"staged files differ between engines: {differing}"
    assert from_spark.content_sha256 == from_duckdb.content_sha256
    assert from_spark.row_counts == from_duckdb.row_counts


@pytest.fixture(scope="module")
def thrift_server(homes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Spark Thrift server on 127.0.0.1 (its own warehouse and metastore), started and stopped by the script."""
    env = {**os.environ, "ONCOPIPE_HOME": str(tmp_path_factory.mktemp("thrift_home"))}
    started = subprocess.run(["bash", str(SERVER_SCRIPT), "start"], env=env, capture_output=True, text=True,
                             timeout=400)
    assert started.returncode == 0, started.stdout + started.stderr
    exports = dict(re.findall(r"(ONCOPIPE_\w+)=(\S+)", started.stdout.splitlines()[-1]))
    assert exports["ONCOPIPE_SPARK_METHOD"] == "thrift", started.stdout
    try:
        yield exports
    finally:
        stopped = subprocess.run(["bash", str(SERVER_SCRIPT), "stop"], env=env, capture_output=True, text=True,
                                 timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_a_thrift_server_registers_the_landing_builds_and_reads_back_the_same(homes, thrift_server,
                                                                                monkeypatch: pytest.MonkeyPatch):
    from oncopipe.warehouse.spark_engine import read_tables

    _, spark = homes
    ben = next(s for s in SOURCES if s.name == "ir_ben_r")
    types = {"string": "varchar", "int": "bigint", "float": "double", "date": "date"}
    wanted = {"landing.ir_ben_r": (ben.key, {**{c.name: types[c.type] for c in ben.columns}, "extraction": "date"}),
              "reference.department_regions": (("department_code",), dict.fromkeys(
                  ("department_code", "department_name", "region_code", "region_name"), "varchar"))}
    in_session = read_tables(spark, wanted)
    for name, value in thrift_server.items():
        monkeypatch.setenv(name, value)
    # The landing registered through the server (dbt's on-run-start then checks every source reads its lines),
    # the seed with apostrophes loaded through it and one model built on it.
    run = run_dbt("build", select=["department_regions", "stg_fdep__communes"], indirect_selection="cautious",
                  quiet=True)
    assert run.success, run.summary()
    through_server = read_tables(spark, wanted)
    for name, table in in_session.items():
        assert table.num_rows > 0, name
        assert through_server[name].equals(table), f"{name} differs through the Thrift server"
