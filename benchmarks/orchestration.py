"""Benchmark the orchestration overhead of ``oncopipe run`` at the demo scale.

Usage::

    nice -n 10 .venv/bin/python benchmarks/orchestration.py [--patients 2000] [--dbt-tasks manifest|cosmos]
    .venv/bin/python benchmarks/orchestration.py --from-summary var/runs/last_run.json --wall 566

1. A fresh ONCOPIPE_HOME under ``var/bench/orchestration-<N>-<mode>/`` receives a generated extraction first
   (generation is not orchestration; it is timed apart), then ``oncopipe run`` runs in a subprocess
   (``ONCOPIPE_DBT_TASKS`` selects the dbt task mode of the refresh DAG) and its wall time, CPU time and peak
   RSS are measured (:mod:`oncopipe.benchmarking`).
2. From the run's JSON summary (task timings of every DAG run, from the Airflow metadata database):
   - ``dbt``: wall time of the dbt tasks, and inside them the execution time dbt reports per node (the SQL);
   - ``gx``: wall time of the raw and marts gate tasks;
   - ``analyses``: wall time of the analysis tasks; ``study_io``: disclosure control, report and export tasks.
3. Overhead = wall - (dbt task time + GX + analyses + study_io): Airflow start-up, metadata migration, DAG
   parsing, scheduling and task start-up in ``dag.test()``. A second figure also counts, as overhead, the part
   of the dbt tasks that is not dbt executing SQL (one dbt invocation per task: the price of per-model tasks).

Writes ``benchmarks/results/orchestration-<N>-<mode>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from measure import StageMeasure, measure, write_results
from oncopipe.contracts.settings import PROJECT_ROOT

RESULTS = Path(__file__).resolve().parent / "results"
BENCH = PROJECT_ROOT / "var" / "bench"
GX_TASKS = {"raw_gate", "marts_gate"}
ANALYSIS_TASKS = {"run_analysis"}
STUDY_IO_TASKS = {"disclosure_control", "render_report", "publish_export"}


def breakdown(summary: dict[str, Any], wall_s: float) -> dict[str, Any]:
    """Split the wall time of a run into dbt, GX, analyses, study I/O and orchestration overhead."""
    runs = [*summary["refreshes"], *summary["studies"]]
    tasks = [t for r in runs for t in r["tasks"]]
    dbt_tasks = [t for t in tasks if t["task_id"].startswith(("transform.", "marts_candidate."))]
    dbt_task_s = sum(t["seconds"] for t in dbt_tasks)
    dbt_sql_s = sum((t.get("inner") or {}).get("dbt_seconds", 0.0) for t in dbt_tasks)
    gx_s = sum(t["seconds"] for t in tasks if t["task_id"] in GX_TASKS)
    analyses_s = sum(t["seconds"] for t in tasks if t["task_id"] in ANALYSIS_TASKS)
    study_io_s = sum(t["seconds"] for t in tasks if t["task_id"] in STUDY_IO_TASKS)
    work_s = dbt_task_s + gx_s + analyses_s + study_io_s
    dag_runs_s = sum(r["seconds"] for r in runs)
    return {
        "wall_s": round(wall_s, 2),
        "dag_runs_s": round(dag_runs_s, 2),
        "outside_dag_runs_s": round(wall_s - dag_runs_s, 2),
        "tasks": len(tasks),
        "dbt_tasks": len(dbt_tasks),
        "dbt_task_s": round(dbt_task_s, 2),
        "dbt_sql_s": round(dbt_sql_s, 2),
        "gx_s": round(gx_s, 2),
        "analyses_s": round(analyses_s, 2),
        "study_io_s": round(study_io_s, 2),
        "overhead_s": round(wall_s - work_s, 2),
        "overhead_share": round((wall_s - work_s) / wall_s, 3),
        "overhead_incl_dbt_invocations_s": round(wall_s - (work_s - dbt_task_s + dbt_sql_s), 2),
        "overhead_incl_dbt_invocations_share": round((wall_s - (work_s - dbt_task_s + dbt_sql_s)) / wall_s, 3),
        "states": {r["dag_id"]: r["state"] for r in runs},
    }


def run(patients: int, seed: int, date: str, mode: str) -> tuple[list[StageMeasure], dict[str, Any]]:
    home = BENCH / f"orchestration-{patients}-{mode}"
    if home.exists():
        shutil.rmtree(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env.update({"ONCOPIPE_HOME": str(home), "ONCOPIPE_DBT_TASKS": mode})
    measures = []
    with measure("generate") as m:
        from oncopipe.synth.extraction import generate

        report = generate(home / "landing", patients, seed, date)
        m.rows = sum(report.rows.values())
    measures.append(m)
    summary_path = home / "runs" / "last_run.json"
    oncopipe = Path(sys.executable).with_name("oncopipe")
    with measure(f"oncopipe_run_{mode}") as m:
        proc = subprocess.run([str(oncopipe), "run", "--summary", str(summary_path)], env=env,
                              capture_output=True, text=True)
    measures.append(m)
    (home / "run.log").write_text(proc.stdout + proc.stderr)
    if not summary_path.exists():
        raise SystemExit(f"oncopipe run wrote no summary (exit {proc.returncode}); log: {home / 'run.log'}")
    summary = json.loads(summary_path.read_text())
    return measures, {"exit_code": proc.returncode, **breakdown(summary, m.wall_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--extraction-date", default="2025-06-30")
    parser.add_argument("--dbt-tasks", choices=("manifest", "cosmos"), default="manifest")
    parser.add_argument("--from-summary", type=Path, help="Only break down an existing run summary.")
    parser.add_argument("--wall", type=float, help="Wall time of that run (default: the summary's own).")
    args = parser.parse_args()
    if args.from_summary:
        summary = json.loads(args.from_summary.read_text())
        print(json.dumps(breakdown(summary, args.wall or summary["seconds"]), indent=2))
        return
    measures, figures = run(args.patients, args.seed, args.extraction_date, args.dbt_tasks)
    path = write_results(RESULTS / f"orchestration-{args.patients}-{args.dbt_tasks}.json", measures,
                         patients=args.patients, dbt_tasks=args.dbt_tasks, breakdown=figures)
    print(json.dumps(figures, indent=2))
    print(f"written {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
