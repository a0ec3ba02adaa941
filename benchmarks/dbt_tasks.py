"""Benchmark the dbt part of the refresh DAG: the platform's per-node tasks against astronomer-cosmos renderings.

Usage::

    nice -n 10 .venv/bin/python benchmarks/dbt_tasks.py [--patients 300] [--modes manifest cosmos-build ...]

For each mode (``manifest``, the default, and the Cosmos modes of
:data:`oncopipe.orchestration.dag_factory.COSMOS_MODES`: ``cosmos`` = ``TestBehavior.AFTER_EACH``, the rendering
measured before; ``cosmos-build`` = ``TestBehavior.BUILD``; ``cosmos-watcher`` = ``ExecutionMode.WATCHER``, all
with ``InvocationMode.DBT_RUNNER``), in a fresh process and a fresh ``ONCOPIPE_HOME`` under
``var/bench/dbt-tasks-<N>-<mode>/`` holding the same generated extraction (generated once, copied):

1. untimed set-up: the Airflow metadata database, ``dbt parse`` (the manifest both renderings are generated
   from) and the landing views the dbt sources read;
2. **parse**: building a DAG holding only the two dbt groups of ``platform_refresh`` (``transform`` >>
   ``marts_candidate``), first in the process (imports included: what a DAG processor's fresh parse pays) and
   again (warm), with its number of tasks;
3. **build**: ``dag.test()`` of that DAG, the whole dbt project built and tested through the mode's tasks, in
   one process as the embedded default runs it; every task must succeed and the marts must hold rows.

Writes ``benchmarks/results/dbt-tasks-<N>.json`` (one entry per mode, with the load after it; a mode measured in
another invocation on the same extraction is kept).

The watcher mode does not finish under ``dag.test()``: Cosmos gives its consumer sensors ``trigger_rule="always"``
so they start beside their producer, and in one process the ``marts_candidate`` sensors defer and hold the only
thread while their producer waits for the ``transform`` group (no task had finished after 11 minutes; with a
scheduler and a triggerer, as in production, they would wait in the triggerer instead).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import machine_facts
from oncopipe.contracts.settings import PROJECT_ROOT

RESULTS = Path(__file__).resolve().parent / "results"
BENCH = PROJECT_ROOT / "var" / "bench"
MODES = ("manifest", "cosmos", "cosmos-build", "cosmos-watcher")


#: The benchmark's DAG file (``dag.test()`` runs DAGs found in the dags folder only); the dags folder skips files
#: without the word "airflow".
DAG_FILE = '''"""airflow DAG of the benchmark: the dbt groups of platform_refresh, nothing else."""
import os

from airflow.sdk import DAG
from oncopipe.orchestration.dag_factory import START_DATE, dbt_task_groups
from oncopipe.warehouse import dbt_nodes

with DAG(dag_id="bench_dbt", schedule=None, start_date=START_DATE, catchup=False) as dag:
    transform, marts = dbt_task_groups(os.environ["BENCH_DBT_TASKS"], dbt_nodes.manifest_path())
    transform >> marts
'''


def child(mode: str, extraction_date: str) -> dict[str, Any]:
    """Measure one mode in this process (``ONCOPIPE_HOME`` is set by the parent)."""
    from oncopipe.orchestration import embedded

    settings = embedded.configure()
    dags = settings.home / "bench_dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "bench_dbt.py").write_text(DAG_FILE)
    os.environ.update({"AIRFLOW__CORE__DAGS_FOLDER": str(dags), "BENCH_DBT_TASKS": mode})
    embedded.prepare_metadata(progress=lambda line: None)
    from airflow.dag_processing.dagbag import DagBag
    from oncopipe.warehouse import dbt_nodes, dbt_runner

    dbt_nodes.parse(settings)
    dbt_runner.prepare_landing(settings, extraction_date=extraction_date)

    def parse() -> tuple[float, Any]:
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(dags))
        seconds = time.perf_counter() - started
        if bag.import_errors:
            raise RuntimeError(f"benchmark DAG does not import: {bag.import_errors}")
        return seconds, bag.dags["bench_dbt"]

    parse_cold_s, _ = parse()
    parse_warm_s, dag = parse()
    outcome = embedded.test_dag(dag)
    import duckdb

    dbt_nodes.release_warehouse()
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        mart_rows = {name: con.execute(f'select count(*) from marts."{name}"').fetchone()[0]
                     for (name,) in con.execute("select table_name from information_schema.tables "
                                                "where table_schema = 'marts'").fetchall()}
    finally:
        con.close()
    return {"mode": mode, "tasks": len(dag.tasks), "parse_cold_s": round(parse_cold_s, 3),
            "parse_warm_s": round(parse_warm_s, 3), "build_wall_s": round(outcome.seconds, 2),
            "state": outcome.state, "failed_tasks": outcome.failed_tasks,
            "task_seconds": round(sum(t.seconds for t in outcome.tasks), 2), "mart_rows": mart_rows}


def run_mode(mode: str, landing: Path, patients: int, extraction_date: str, timeout_s: float) -> dict[str, Any]:
    """One mode in a fresh process and home, with the shared extraction copied in."""
    home = BENCH / f"dbt-tasks-{patients}-{mode}"
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree(landing, home / "landing")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env["ONCOPIPE_HOME"] = str(home)
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--extraction-date", extraction_date],
                              env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:  # subprocess.run killed the child
        (home / "bench.log").write_text(f"{exc.stdout or ''}{exc.stderr or ''}")
        return {"mode": mode, "error": f"no result within {timeout_s:.0f} s (killed)", "log": str(home / "bench.log")}
    (home / "bench.log").write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:  # recorded, and the other modes still run
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
        return {"mode": mode, "error": f"exit {proc.returncode}: {' '.join(tail)[:500]}",
                "log": str(home / "bench.log")}
    return {**json.loads(lines[-1]), "process_wall_s": round(time.perf_counter() - started, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--extraction-date", default="2025-06-30")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--timeout", type=float, default=900.0, help="Seconds a mode may take (set-up included).")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.extraction_date)))
        return
    landing = BENCH / f"dbt-tasks-{args.patients}-landing"
    if landing.exists():
        shutil.rmtree(landing)
    from oncopipe.synth.extraction import generate

    generate(landing, args.patients, args.seed, args.extraction_date)
    figures = []
    for mode in args.modes:
        figures.append(run_mode(mode, landing, args.patients, args.extraction_date, args.timeout))
        print(json.dumps(figures[-1]), file=sys.stderr)
    path = RESULTS / f"dbt-tasks-{args.patients}.json"
    # Modes measured in an earlier invocation on the same extraction are kept (a mode re-measured replaces its own).
    kept = json.loads(path.read_text())["modes"] if path.exists() else []
    measured = {f["mode"] for f in figures}
    path.write_text(json.dumps({"patients": args.patients, "seed": args.seed,
                                "extraction_date": args.extraction_date, "machine": machine_facts(),
                                "modes": [*(f for f in kept if f["mode"] not in measured), *figures]},
                               indent=2) + "\n")
    print(f"written {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
