"""The engines benchmark's model of where Spark pays (benchmarks/engines.py), on measures of known times."""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import engines  # noqa: E402  (a benchmark script, not part of the package)


def _rows(times: dict[str, dict[int, float]]) -> list[dict]:
    return [{"engine": e, "patients": n, "process_wall_s": t} for e, by_n in times.items() for n, t in by_n.items()]


def test_the_line_goes_through_the_two_largest_sizes():
    rows = _rows({"duckdb": {1_000: 99.0, 100_000: 40.0, 1_000_000: 310.0}, "spark": {100_000: 400.0}})
    fixed, per_person = engines.fit(rows, "duckdb")
    assert math.isclose(per_person, 270.0 / 900_000) and math.isclose(fixed, 40.0 - 30.0)
    assert engines.fit(rows, "spark") is None


def test_spark_pays_from_the_cores_where_its_time_meets_duckdb():
    # DuckDB: 10 s + 30 s per 100k; Spark: 200 s + 200 s per 100k, on 2 cores.
    rows = _rows({"duckdb": {100_000: 40.0, 1_000_000: 310.0}, "spark": {100_000: 400.0, 1_000_000: 2_200.0}})
    text = "\n".join(engines.model_lines(rows, 2))
    # At 1,000,000 people DuckDB takes 310 s: Spark needs 2 * 2,000 / (310 - 200) = 36.4 cores.
    assert "1,000,000 people: DuckDB 310 s on 2 cores; Spark pays from 36 cores" in text
    assert "Spark needs 6.7x DuckDB's cores" in text


def test_a_fixed_cost_above_duckdbs_whole_time_never_pays():
    rows = _rows({"duckdb": {100_000: 40.0, 200_000: 50.0}, "spark": {100_000: 400.0, 200_000: 410.0}})
    assert "no core count makes it pay" in "\n".join(engines.model_lines(rows, 2))


def test_the_settings_recorded_are_those_the_gate_ran_with(monkeypatch, tmp_path):
    """The raw-gate stage sets its own shuffle partitions (2 x cores): the results must say so, not repeat the
    caller's environment (a run with ONCOPIPE_SPARK_SHUFFLE_PARTITIONS=32 recorded 32 while its gates used 4)."""
    import os

    for var in [v for v in os.environ if v.startswith("ONCOPIPE_")]:  # what earlier tests of this process set
        monkeypatch.delenv(var)
    monkeypatch.setenv("ONCOPIPE_SPARK_SHUFFLE_PARTITIONS", "32")
    monkeypatch.setenv("ONCOPIPE_SPARK_DRIVER_MEMORY", "8g")
    seen = {}

    def fake_child(code, env, what):
        seen.update(env)
        return {"success": True}

    monkeypatch.setattr(engines, "_child", fake_child)
    out = engines._one_gate("spark", tmp_path / "home", tmp_path / "landing", 2)
    assert out["settings"]["ONCOPIPE_SPARK_SHUFFLE_PARTITIONS"] == seen["ONCOPIPE_SPARK_SHUFFLE_PARTITIONS"] == "4"
    assert out["settings"]["ONCOPIPE_SPARK_DRIVER_MEMORY"] == "8g"
    assert "ONCOPIPE_HOME" not in out["settings"]  # where it ran is not a setting of the engine
    lines = engines.settings_lines([{"engine": "spark", "patients": 100_000, **out}])
    assert lines == ["Settings of each run (those of its process):",
                     "- spark 100,000: ONCOPIPE_ENGINE=spark, ONCOPIPE_SPARK_CORES=2, ONCOPIPE_SPARK_DRIVER_MEMORY=8g, "
                     "ONCOPIPE_SPARK_SHUFFLE_PARTITIONS=4"]
