"""Benchmark the raw quality gate on one extraction: wall time, CPU time, peak RSS of the process tree.

Usage::

    nice -n 10 .venv/bin/python benchmarks/quality.py --landing DIR --extraction 2025-12-31
    nice -n 10 .venv/bin/python benchmarks/quality.py --patients 100000      # generate first (var/bench-quality)

The gate runs as in production except that a failure does not quarantine, so ``--landing`` may point at an
existing extraction that must stay untouched (someone else's benchmark landing): the gate only reads it, history
and GX results go to ``<home>/bench-quality/quality``, and the benchmark fails if any file of the landing
changed (paths, sizes, modification times compared before and after). Writes
``benchmarks/results/quality-<extraction>-<lines>[-<label>].json`` with the stage measures, the load average
before and after, the gate's wall time per source and phase (facts, line_rules, gx), line counts per source
and the gate's pass counts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from measure import measure, write_results
from oncopipe.contracts.settings import Settings, get_settings
from oncopipe.contracts.sources import SOURCES
from oncopipe.landing.layout import extraction_dir, latest_extraction, part_files
from oncopipe.quality import GateFailed, QualityConfig, run_raw_gate

RESULTS = Path(__file__).resolve().parent / "results"


def _lines(landing: Path, extraction: str) -> dict[str, int]:
    import pyarrow.parquet as pq

    out = {}
    for src in SOURCES:
        files = part_files(extraction_dir(landing, src.name, extraction))
        out[src.name] = sum(pq.ParquetFile(f).metadata.num_rows for f in files if f.suffix == ".parquet")
    return out


def _listing(landing: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(landing)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(landing.rglob("*")) if p.is_file()}


def _phases(durations: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, seconds in durations.items():
        phase = key.split(":")[1]
        out[phase] = round(out.get(phase, 0.0) + seconds, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, default=None, help="landing folder holding the extraction")
    parser.add_argument("--extraction", default=None, help="extraction date (default: latest in the landing)")
    parser.add_argument("--patients", type=int, default=None, help="generate this many patients first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="", help="suffix of the results file (e.g. baseline)")
    parser.add_argument("--docs", action="store_true", help="also rebuild the Data Docs site")
    args = parser.parse_args(argv)
    base = get_settings()
    work = base.home / "bench-quality"
    landing = args.landing
    measures = []
    if landing is None:
        if not args.patients:
            parser.error("give --landing or --patients")
        from oncopipe.synth.extraction import generate

        landing = work / "landing"
        if landing.exists():
            shutil.rmtree(landing)
        extraction = args.extraction or "2025-12-31"
        with measure("generate") as m:
            generate(landing, args.patients, args.seed, extraction, workers=2)
        measures.append(m)
    extraction = args.extraction or latest_extraction(landing)
    if extraction is None:
        parser.error(f"no extraction under {landing}")
    quality = work / "quality"
    shutil.rmtree(quality, ignore_errors=True)
    settings = Settings(home=work, landing=landing, quarantine=work / "quarantine", warehouse=base.warehouse,
                        published=work / "published", exports=work / "exports", quality=quality,
                        airflow_home=base.airflow_home)
    lines = _lines(landing, extraction)
    config = QualityConfig(quarantine=False, build_docs=args.docs)
    before = _listing(landing)
    load_before = os.getloadavg()
    with measure("raw_gate") as m:
        m.rows = sum(lines.values())
        try:
            report = run_raw_gate(extraction, settings, config)
        except GateFailed as exc:
            report = exc.report
    load_after = os.getloadavg()
    measures.append(m)
    if _listing(landing) != before:
        print(f"the landing {landing} changed during the benchmark", file=sys.stderr)
        return 1
    name = f"quality-{extraction}-{sum(lines.values())}{'-' + args.label if args.label else ''}.json"
    path = write_results(RESULTS / name, measures,
                         landing=str(landing), extraction=extraction, lines=lines, sampled_rules="none",
                         load_average_1_5_15={"before": load_before, "after": load_after},
                         phases_wall_s=_phases(report.durations_s), durations_wall_s=report.durations_s,
                         passed=report.passed, pass_counts=report.pass_counts,
                         critical_failures=[o.message[:500] for o in report.critical_failures])
    print(f"raw gate on {sum(lines.values()):,} lines: {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, "
          f"peak RSS {m.peak_rss_mb:,.0f} MB, load {load_before[0]:.1f} -> {load_after[0]:.1f}, "
          f"phases {_phases(report.durations_s)}, passed={report.passed} -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
