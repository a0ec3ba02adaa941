"""Benchmark the two dbt engines side by side: DuckDB (embedded) and Spark (dbt-spark session, local[cores]).

Usage::

    nice -n 10 .venv/bin/python benchmarks/engines.py [--patients 2000 20000 100000] [--cores 2] [--stage build]
    nice -n 10 .venv/bin/python benchmarks/engines.py --stage raw_gate --patients 8000 100000

``--stage raw_gate`` measures the raw gate instead (every source of the extraction, GX included, no Data Docs, no
quarantine): its facts and line rules in DuckDB, or the same SQL translated to Spark SQL on a local Spark session
(``oncopipe.quality.spark_sql``), with the time of each phase (facts, line rules, GX) summed over the sources.
Results: ``benchmarks/results/engines-raw_gate-<date>.json`` and ``engines-raw_gate-latest.md``.

For each size, one cached extraction (``benchmarks/dbt_build.extraction``) is built from an empty warehouse by
each engine in its own process (a Spark session and the DuckDB file each belong to one process): seeds and
models only (``--exclude resource_type:test resource_type:unit_test``: the data tests are the same SQL on both and
are measured by ``dbt_build.py``), timed for wall time, CPU time and peak RSS (the JVM is a child of the process
only in session mode: its RSS is the child's, reported as ``children_peak_rss_mb``). The summed model time per
layer comes from dbt's own node timings.

The scaling exponent of an engine between two sizes n1 < n2 is b = log(t2 / t1) / log(n2 / n1) (t ~ n^b); with
a fixed cost per node (Spark: planning, a job per statement, metastore calls) b is well below 1 at small n and
tends to the engine's data-bound exponent as n grows. Writes ``benchmarks/results/engines-<date>.json`` and
``benchmarks/results/engines-latest.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
EXTRACTION = "2024-12-31"


def _one_build(engine: str, home: Path, landing: Path, cores: int) -> dict[str, Any]:
    """Run one build in a child process (fresh engine, empty warehouse) and return its measures."""
    env = {**os.environ, "ONCOPIPE_HOME": str(home), "ONCOPIPE_LANDING": str(landing), "ONCOPIPE_ENGINE": engine,
           "ONCOPIPE_SPARK_CORES": str(cores), "ONCOPIPE_DUCKDB_THREADS": str(cores)}
    env.pop("ONCOPIPE_WAREHOUSE", None)
    env.pop("ONCOPIPE_SPARK_WAREHOUSE", None)
    code = (
        "import json, time\n"
        "from oncopipe.warehouse.dbt_runner import run_dbt\n"
        "t = time.perf_counter()\n"
        "r = run_dbt('build', exclude=['resource_type:test', 'resource_type:unit_test'], quiet=True)\n"
        "layers = {}\n"
        "for n in r.nodes:\n"
        "    layers[n.layer] = layers.get(n.layer, 0.0) + n.execution_time_s\n"
        "print('RESULT ' + json.dumps({'success': r.success, 'wall_s': time.perf_counter() - t,"
        " 'layers_s': layers, 'nodes': len(r.nodes), 'summary': r.summary()[:2000]}))\n"
    )
    out = _measured(code, env, f"{engine} build")
    if not out["success"]:
        raise RuntimeError(f"{engine} build failed: {out['summary']}")
    return out


# Where a run reads and writes (GX's quality folder is set by the gate itself), not how its engine runs.
_LOCATIONS = ("ONCOPIPE_HOME", "ONCOPIPE_LANDING", "ONCOPIPE_ENV_FILE", "ONCOPIPE_GX_QUALITY_DIR")


def _measured(code: str, env: dict[str, str], what: str) -> dict[str, Any]:
    """:func:`_child`'s measures, with the ``ONCOPIPE_`` settings the child ran with (not the caller's)."""
    out = _child(code, env, what)
    out["settings"] = {k: env[k] for k in sorted(env) if k.startswith("ONCOPIPE_") and k not in _LOCATIONS}
    return out


def settings_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per run: the settings of its process."""
    return ["Settings of each run (those of its process):"] + [
        f"- {r['engine']} {r['patients']:,}: " + (", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "defaults")
        for r in rows]


def _child(code: str, env: dict[str, str], what: str) -> dict[str, Any]:
    """Run ``code`` in a child Python and return its ``RESULT`` line with wall, CPU and peak RSS of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{what} failed to run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    out = json.loads(line[len("RESULT "):])
    out.update(process_wall_s=wall, cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
               children_peak_rss_mb=after.ru_maxrss / 1024)
    return out


_GATE_CODE = (
    "import json, time\n"
    "from oncopipe.contracts.settings import get_settings\n"
    "from oncopipe.quality import GateFailed, QualityConfig, run_raw_gate\n"
    "from oncopipe.warehouse.spark_engine import gate_engine\n"
    "s = get_settings().ensure()\n"
    "t = time.perf_counter()\n"
    "with gate_engine(s) as spark:\n"
    "    started = time.perf_counter() - t\n"
    "    try:\n"
    "        config = QualityConfig(quarantine=False, build_docs=False)\n"
    "        r = run_raw_gate('" + EXTRACTION + "', s, config, spark=spark)\n"
    "    except GateFailed as exc:\n"
    "        r = exc.report\n"
    "phases = {}\n"
    "for key, v in r.durations_s.items():\n"
    "    phases[key.split(':')[1]] = phases.get(key.split(':')[1], 0.0) + v\n"
    "print('RESULT ' + json.dumps({'success': r.passed, 'wall_s': time.perf_counter() - t, 'session_start_s': started,"
    " 'phases_s': phases, 'outcomes': len(r.outcomes), 'summary': r.summary()[:2000]}))\n"
)


def _one_gate(engine: str, home: Path, landing: Path, cores: int) -> dict[str, Any]:
    """Run the raw gate once in a child process (fresh engine, empty quality folder) and return its measures."""
    env = {**os.environ, "ONCOPIPE_HOME": str(home), "ONCOPIPE_LANDING": str(landing), "ONCOPIPE_ENGINE": engine,
           "ONCOPIPE_SPARK_CORES": str(cores), "ONCOPIPE_SPARK_SHUFFLE_PARTITIONS": str(2 * cores)}
    for var in ("ONCOPIPE_WAREHOUSE", "ONCOPIPE_SPARK_WAREHOUSE", "ONCOPIPE_QUALITY"):
        env.pop(var, None)
    return _measured(_GATE_CODE, env, f"{engine} raw gate")


def exponent(n1: int, t1: float, n2: int, t2: float) -> float:
    """b in t ~ n^b from two sizes."""
    return math.log(t2 / t1) / math.log(n2 / n1)


NATIONAL = 67_000_000
"""People in the whole SNDS (the issue's figure): where the model is read."""


def fit(rows: list[dict[str, Any]], engine: str) -> tuple[float, float] | None:
    """``(F, w)`` of t = F + w * n through the two largest sizes of ``engine`` (fixed cost, cost per person)."""
    mine = sorted((r["patients"], r["process_wall_s"]) for r in rows if r["engine"] == engine)
    if len(mine) < 2:
        return None
    (n1, t1), (n2, t2) = mine[-2:]
    w = (t2 - t1) / (n2 - n1)
    return t1 - w * n1, w


def model_lines(rows: list[dict[str, Any]], cores: int) -> list[str]:
    """Where Spark starts to pay, read off a stated model fitted to the measures (not assumed).

    Each engine: t(n) = F + w * n on ``cores`` cores (F: fixed cost per build, w: seconds per person), through the
    two largest sizes. Spark on C cores (any number of nodes): t = F + w * n * cores / C, the data-bound part shared
    perfectly (an optimistic bound for Spark: shuffles and stragglers only add). DuckDB is held to one machine
    (here, ``cores`` cores). Spark beats it at n people from C* = cores * w_spark * n / (t_duckdb(n) - F_spark) cores;
    for large n (fixed costs negligible) against DuckDB on a machine of M cores, from (w_spark / w_duckdb) * M cores.
    """
    duck, spark = fit(rows, "duckdb"), fit(rows, "spark")
    if duck is None or spark is None:
        return []
    out = ["", f"Model t = F + w*n (two largest sizes, local[{cores}]):"]
    for name, (f, w) in (("duckdb", duck), ("spark", spark)):
        out.append(f"- {name}: F = {f:.1f} s, w = {w * 1e5:.2f} s per 100,000 people")
    for n in (max(r["patients"] for r in rows), NATIONAL):
        t_duck = duck[0] + duck[1] * n
        if t_duck <= spark[0] or spark[1] <= 0:
            out.append(f"- {n:,} people: DuckDB {t_duck:,.0f} s; Spark's fixed cost alone ({spark[0]:.0f} s) is more: "
                       "no core count makes it pay")
            continue
        needed = cores * spark[1] * n / (t_duck - spark[0])
        out.append(f"- {n:,} people: DuckDB {t_duck:,.0f} s on {cores} cores; Spark pays from {needed:,.0f} cores "
                   f"({needed / cores:,.1f}x this machine)")
    ratio = spark[1] / duck[1] if duck[1] > 0 else float("inf")
    out.append(f"- per core, once fixed costs are paid: Spark needs {ratio:.1f}x DuckDB's cores for the same time, so "
               f"against DuckDB on one machine of M cores (its data part scaling the same way) Spark pays from "
               f"{ratio:.1f} * M cores: a cluster of more cores than that, or data a single machine cannot hold")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stage", choices=("build", "raw_gate"), default="build")
    args = parser.parse_args()
    measure, prefix = (_one_build, "engines") if args.stage == "build" else (_one_gate, "engines-raw_gate")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from dbt_build import BENCH, extraction

    rows: list[dict[str, Any]] = []
    for patients in sorted(args.patients):
        landing = extraction(patients, args.seed, EXTRACTION, [])
        for engine in ("duckdb", "spark"):
            home = BENCH / f"{prefix}-{engine}-{patients}"
            if home.exists():
                import shutil

                shutil.rmtree(home)
            measured = measure(engine, home, landing, args.cores)
            rows.append({"engine": engine, "patients": patients, "load_average_after": os.getloadavg(), **measured})
            print(f"{engine:6} {patients:>9,} people: {measured['process_wall_s']:7.1f} s wall, "
                  f"{measured['cpu_s']:7.1f} s CPU", file=sys.stderr)
            # Each build is kept as soon as it is measured: a later, longer one may not finish.
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{prefix}-partial.json").write_text(json.dumps(rows, indent=2, default=str))
    exponents = {}
    for engine in ("duckdb", "spark"):
        mine = sorted((r["patients"], r["process_wall_s"]) for r in rows if r["engine"] == engine)
        exponents[engine] = [{"from": a[0], "to": b[0], "b": exponent(a[0], a[1], b[0], b[1])}
                             for a, b in zip(mine, mine[1:], strict=False)]
    load = os.getloadavg()
    result = {"date": dt.date.today().isoformat(), "stage": args.stage, "cores": args.cores, "load_average": load,
              "builds": rows, "scaling_exponents": exponents}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{prefix}-{result['date']}.json").write_text(json.dumps(result, indent=2, default=str))
    what = "dbt build (seeds + models)" if args.stage == "build" else "raw gate (every source, GX included)"
    lines = [f"# {what} by engine, {result['date']}, local[{args.cores}], "
             f"load average at the end {load[0]:.1f}", "",
             *settings_lines(rows), "",
             "| people | DuckDB wall s | Spark wall s | Spark / DuckDB |", "|---:|---:|---:|---:|"]
    for patients in sorted(args.patients):
        d = next(r for r in rows if r["engine"] == "duckdb" and r["patients"] == patients)
        s = next(r for r in rows if r["engine"] == "spark" and r["patients"] == patients)
        lines.append(f"| {patients:,} | {d['process_wall_s']:.1f} | {s['process_wall_s']:.1f} | "
                     f"{s['process_wall_s'] / d['process_wall_s']:.1f} |")
    lines += ["", "Scaling exponents b (t ~ n^b):"]
    for engine, pairs in exponents.items():
        lines += [f"- {engine}: " + ", ".join(f"{p['from']:,} -> {p['to']:,}: {p['b']:.2f}" for p in pairs)]
    lines += model_lines(rows, args.cores)
    if args.stage == "raw_gate":
        lines += ["", "Phases, summed over the sources (s): facts / line rules / GX; session start (s); passed:"]
        lines += [f"- {r['engine']} {r['patients']:,}: " + " / ".join(
            f"{r['phases_s'].get(p, 0.0):.1f}" for p in ("facts", "line_rules", "gx"))
            + f"; {r['session_start_s']:.1f}; {r['success']}" for r in rows]
    (RESULTS / f"{prefix}-latest.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{prefix}-partial.json").unlink(missing_ok=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
