"""A tiny-scale run of the benchmark harness, so it cannot rot: every stage runs and is recorded.

One scale (each scale is a whole platform: ~1 minute of the suite), landed as the 1,000,000-people run is: through the
insurer's delivered CSV and ``oncopipe import``; the exponent between scales and the table are tested on known results
in tests/benchmarks/test_run_table.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from oncopipe.contracts.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_harness_measures_every_stage_at_a_tiny_scale(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / "run.py"), "--scales", "1000",
         "--pandas-patients", "1000", "--delivered", "--results", str(results), "--bench-dir", str(tmp_path / "bench")],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    files = sorted(results.glob("*-1000.json"))
    assert files, list(results.iterdir())
    data = json.loads(files[-1].read_text())
    stages = {s["stage"]: s for s in data["stages"]}
    expected = {"generate", "deliver", "import", "import_to_exports",
                "scan_floor", "copy_floor", "raw_gate", "dbt_seeds", "dbt_staging", "dbt_intermediate",
                "dbt_marts", "dbt_build", "marts_gate", "publish", "end_to_end", "pandas_adherence_mart",
                "pandas_straightforward_adherence_mart", "dbt_parse", "dbt_adherence_mart",
                "pandas_straightforward_adherence_step", "dbt_adherence_step"}
    assert expected <= set(stages), sorted(stages)
    assert any(name.startswith("study_") and name.endswith("_export") for name in stages)
    for stage in expected - {"dbt_build"}:
        assert stages[stage]["wall_s"] > 0 and stages[stage]["peak_rss_mb"] > 0, stages[stage]
    assert stages["scan_floor"]["rows"] > 500
    assert stages["copy_floor"]["rows"] == stages["scan_floor"]["rows"]
    # The platform read what the import landed, every delivered line of every source.
    assert stages["import"]["rows"] == stages["deliver"]["rows"] == stages["scan_floor"]["rows"]
    assert stages["import"]["extra"]["seconds_per_100M_lines"] > 0
    assert stages["import_to_exports"]["wall_s"] > stages["end_to_end"]["wall_s"]
    assert data["landing"] == "delivered CSV through oncopipe import"
    ratios = stages["dbt_adherence_mart"]["extra"]
    assert ratios["ratio_straightforward_pandas_over_dbt"] > 0 and ratios["ratio_vectorised_pandas_over_dbt"] > 0
    # The mart step compares the same work: dbt and the pandas walk agree on every month (the run stops if not).
    step = stages["dbt_adherence_step"]["extra"]
    assert step["ratio_straightforward_pandas_over_dbt"] > 0
    assert step["rows_dbt"] == step["rows_pandas"] == step["rows_in_both"] == step["days_covered_equal"] > 0
    table = (results / "latest.md").read_text()
    assert "| 1,000: wall s |" in table and "| end_to_end |" in table
