"""The same dbt project on Spark (``ONCOPIPE_ENGINE=spark``, dbt-spark session mode) gives DuckDB's marts.

One generated extraction (PEOPLE people, as few as keep every mart non-empty) is built by DuckDB, then by a local
Spark (``local[2]``, UI off, 2 shuffle partitions; one Spark session for the module, started by the first build)
from the same landing. Every mart is compared row for row: both sorted on every column, integers, text, booleans
and dates exactly, floats within 1e-12. The seed with apostrophes (department_regions, "Côte d'Azur") loads the
same on both. A landing source whose extraction reads no line makes the Spark build refuse to start. The same
landing registered and built through a Spark Thrift server started by the project's script
(``scripts/spark_thrift_server.sh``, as the README's walkthrough of a cluster does) reads back the same tables.

The gates on Spark, in the same session: the raw gate's facts and line rules computed by Spark SQL (the DuckDB SQL
translated, oncopipe.quality.spark_sql) over a hard-linked copy of the landing give the same GX outcomes as on
DuckDB, for the clean extraction and for a later faulty one (a few generator faults covering line rules and
extraction facts), on the three sources the faults touch (DCIR's two tables, checked against each other, and the
beneficiaries); through the Thrift server too (ONCOPIPE_SPARK_METHOD=thrift: the same SQL run on the server, no
local session), on the faulty beneficiaries; the marts gate judges the Spark candidate as it judges DuckDB's.
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
from oncopipe.quality import GateFailed, GateReport, QualityConfig, run_raw_gate
from oncopipe.quality.suites import FAULT_EXPECTATIONS
from oncopipe.warehouse.dbt_runner import run_dbt

pytestmark = [pytest.mark.slow, pytest.mark.spark]

EXTRACTION = "2024-12-31"
SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "spark_thrift_server.sh"
PEOPLE = 1_500
FAULTY = "2025-03-31"
FAULTS = ("invalid_cip13", "invalid_dpn_qlf", "care_after_death", "duplicated_keys@ir_ben_r", "unknown_sex",
          "death_before_birth")
"""Line rules (CIP13 check digit per distinct value, a numeric value set, a value set, a date order) and extraction
facts (a cross-source fact, key uniqueness), on er_prs_f, er_pha_f and ir_ben_r; with the previous extraction, the
delivery profile, row count, flux and distribution facts run too."""
GATE = QualityConfig(quarantine=False, build_docs=False)


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


def test_marts_gate_passes_the_spark_candidate(homes) -> None:
    """The marts gate stages the candidate from the Spark catalog and its GX suites pass it (nothing published).

    Its verdict is DuckDB's: the staged Parquet is byte for byte DuckDB's (test_publish_stages_the_same_parquet),
    and the gate reads only those files.
    """
    from oncopipe.quality.marts_gate import GATE_FILE
    from oncopipe.warehouse.versions import current_version, gate_candidate, stage_candidate

    _, spark = homes
    report = gate_candidate(spark, build_docs=False)
    assert report.passed, report.summary()
    assert {o.suite for o in report.outcomes} >= {f"marts.{m.name}" for m in MARTS}
    assert (stage_candidate(spark).path / GATE_FILE).is_file()
    assert current_version(spark) is None


def _raw_gate(home: Path, engine: str, date: str, sources: list[str] | None = None) -> GateReport:
    """The raw gate of ``date`` in ``home`` on ``engine`` (one home for both: its profiles and history are shared)."""
    from oncopipe.warehouse.spark_engine import gate_engine

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONCOPIPE_HOME", str(home))
        mp.setenv("ONCOPIPE_ENGINE", engine)
        settings = get_settings()
        try:
            with gate_engine(settings) as engine:
                return run_raw_gate(date, settings, GATE, sources=sources, spark=engine)
        except GateFailed as exc:
            return exc.report


def _outcomes(report: GateReport) -> dict[tuple[str, str], tuple[bool, str, str]]:
    return {(o.suite, o.expectation): (o.success, o.severity, o.observed) for o in report.outcomes}


def _assert_same_outcomes(duck: GateReport, spark: GateReport) -> None:
    on_duckdb, on_spark = _outcomes(duck), _outcomes(spark)
    assert on_duckdb.keys() == on_spark.keys(), sorted(on_duckdb.keys() ^ on_spark.keys())
    differing = {k: (on_duckdb[k], on_spark[k]) for k in on_duckdb if on_duckdb[k] != on_spark[k]}
    assert not differing, f"{len(differing)} outcomes differ (DuckDB, Spark): {differing}"
    assert spark.passed == duck.passed and spark.skipped == duck.skipped


def test_raw_gate_on_spark_judges_as_on_duckdb(homes, tmp_path: Path) -> None:
    """A clean extraction passes on Spark as on DuckDB; a faulty one fails the same expectations on both.

    Each gate runs on the profiles the previous one saved, so for the faulty extraction each engine meets the
    accepted profile of the clean one made by the other engine's hash, and recomputes it.
    """
    from oncopipe.synth.extraction import generate

    duck, _ = homes
    home = tmp_path / "home"
    shutil.copytree(duck.landing, home / "landing", copy_function=os.link)
    # The sources the faults touch, the ones with the most rules (DCIR's two tables are also checked against each
    # other); every other source's SQL translates (tests/unit/quality/test_spark_sql.py) and is the same SQL.
    faulty_sources = ["er_prs_f", "er_pha_f", "ir_ben_r"]
    clean = {engine: _raw_gate(home, engine, EXTRACTION, faulty_sources) for engine in ("duckdb", "spark")}
    assert clean["duckdb"].passed, clean["duckdb"].summary()
    assert {o.suite for o in clean["spark"].outcomes} >= {f"raw.{s}.rows" for s in faulty_sources}
    _assert_same_outcomes(clean["duckdb"], clean["spark"])

    generate(home / "landing", PEOPLE, 11, FAULTY, sources=faulty_sources, faults=list(FAULTS), workers=1)
    faulty = {engine: _raw_gate(home, engine, FAULTY, faulty_sources) for engine in ("duckdb", "spark")}
    planted = {FAULT_EXPECTATIONS[f.split("@")[0]] for f in FAULTS}
    failed = {(o.suite.split(".")[1], o.expectation) for o in faulty["spark"].critical_failures}
    assert planted <= failed, f"planted faults the Spark gate missed: {sorted(planted - failed)}"
    _assert_same_outcomes(faulty["duckdb"], faulty["spark"])
    profile = (home / "quality" / "deliveries" / "er_pha_f" / f"extraction={EXTRACTION}.json").read_text()
    assert '"line_hash": "xxhash64"' in profile, "the Spark gate compared fingerprints made by DuckDB's hash"


def test_raw_gate_through_the_thrift_server_judges_as_on_duckdb(homes, thrift_server, tmp_path: Path) -> None:
    """The raw gate with ``ONCOPIPE_SPARK_METHOD=thrift`` runs its SQL on the server and judges as DuckDB does.

    The faulty extraction's beneficiaries (duplicated keys: a cached temp table; an unknown sex: a line rule with
    sample rows, nested values through HiveServer2; a death before birth: dates), no local Spark session allowed.
    """
    from oncopipe.synth.extraction import generate
    from oncopipe.warehouse import spark_engine

    home = tmp_path / "home"
    generate(home / "landing", PEOPLE, 11, FAULTY, sources=["er_prs_f", "ir_ben_r"], faults=list(FAULTS), workers=1)
    duck = _raw_gate(home, "duckdb", FAULTY, ["ir_ben_r"])
    with pytest.MonkeyPatch.context() as mp:
        for name, value in thrift_server.items():
            mp.setenv(name, value)

        def no_session(settings: Settings) -> None:
            raise AssertionError("the raw gate through the Thrift server started a local Spark session")

        mp.setattr(spark_engine, "session", no_session)
        thrift = _raw_gate(home, "spark", FAULTY, ["ir_ben_r"])
    planted = {FAULT_EXPECTATIONS[f.split("@")[0]] for f in FAULTS} & {
        ("ir_ben_r", e) for e in ("key_unique", "BEN_SEX_COD.sex_value_set", "death_after_birth")}
    assert len(planted) == 3, planted
    failed = {(o.suite.split(".")[1], o.expectation) for o in thrift.critical_failures}
    assert planted <= failed, f"planted faults the gate missed through the Thrift server: {sorted(planted - failed)}"
    _assert_same_outcomes(duck, thrift)
