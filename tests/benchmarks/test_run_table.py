"""The benchmark table, from results written by benchmarks/run.py: one column group per scale, the scaling
exponent between consecutive scales (the smoke test, tests/integration/test_bench_smoke.py, runs one scale only,
so the exponent is checked here on results of known times)."""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import run  # noqa: E402  (a benchmark script, not part of the package)


def _result(patients: int, end_to_end_s: float, generate_s: float) -> dict:
    stage = lambda name, wall: {"stage": name, "wall_s": wall, "cpu_s": wall, "peak_rss_mb": 100.0,  # noqa: E731
                                "rows_per_s": None, "extra": {}}
    return {"patients": patients, "stages": [stage("generate", generate_s), stage("end_to_end", end_to_end_s)],
            "machine": {"cpu_count": 2, "memory_gb": 24, "processor": "x86_64", "python": "3.11"},
            "load_average": [1.0, 1.0, 1.0]}


def test_exponent_is_the_log_ratio_of_times_over_sizes():
    small, large = _result(1_000, 10.0, 2.0), _result(10_000, 40.0, 20.0)
    assert math.isclose(run.exponent(small, large, "end_to_end"), math.log(4) / math.log(10))
    assert math.isclose(run.exponent(small, large, "generate"), 1.0)
    assert run.exponent(small, large, "no_such_stage") is None
    assert run.exponent(small, small, "end_to_end") is None


def test_table_has_a_column_group_per_scale_and_the_exponents():
    table = run.markdown([_result(10_000, 40.0, 20.0), _result(1_000, 10.0, 2.0)])  # sorted by size
    header = table.splitlines()[0]
    assert header.index("1,000: wall s") < header.index("10,000: wall s")
    assert "exponent 1,000->10,000" in header
    end_to_end = next(line for line in table.splitlines() if line.startswith("| end_to_end |"))
    assert end_to_end.rstrip(" |").endswith(f"{math.log(4) / math.log(10):.2f}")
    assert "| generate |" in table and table.rstrip().endswith("1.0, 1.0, 1.0.")
