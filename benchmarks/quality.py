"""Benchmark the raw quality gate on one extraction: wall time, CPU time, peak RSS of the process tree.

Usage::

    nice -n 10 .venv/bin/python benchmarks/quality.py --landing DIR --extraction 2025-12-31
    nice -n 10 .venv/bin/python benchmarks/quality.py --patients 100000      # generate first (var/bench-quality)

The gate runs as in production except that a failure does not quarantine (the benchmark must not move the
data it measures). Writes ``benchmarks/results/quality-<extraction>-<lines>.json`` with the stage measures,
line counts per source and the gate's pass counts.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from oncopipe.benchmarking import measure, write_results
from oncopipe.quality import GateFailed, QualityConfig, run_raw_gate
from oncopipe.quality.landing import extraction_dir, latest_extraction, part_files
from oncopipe.schema import SOURCES
from oncopipe.settings import Settings, get_settings

RESULTS = Path(__file__).resolve().parent / "results"


def _lines(landing: Path, extraction: str) -> dict[str, int]:
    import pyarrow.parquet as pq

    out = {}
    for src in SOURCES:
        files = part_files(extraction_dir(landing, src.name, extraction))
        out[src.name] = sum(pq.ParquetFile(f).metadata.num_rows for f in files if f.suffix == ".parquet")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, default=None, help="landing folder holding the extraction")
    parser.add_argument("--extraction", default=None, help="extraction date (default: latest in the landing)")
    parser.add_argument("--patients", type=int, default=None, help="generate this many patients first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--row-sample", type=int, default=QualityConfig.row_sample)
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
    config = QualityConfig(row_sample=args.row_sample, quarantine=False, build_docs=args.docs)
    with measure("raw_gate") as m:
        m.rows = sum(lines.values())
        try:
            report = run_raw_gate(extraction, settings, config)
        except GateFailed as exc:
            report = exc.report
    measures.append(m)
    path = write_results(RESULTS / f"quality-{extraction}-{sum(lines.values())}.json", measures,
                         landing=str(landing), extraction=extraction, lines=lines, row_sample=args.row_sample,
                         passed=report.passed, pass_counts=report.pass_counts,
                         critical_failures=[o.message[:500] for o in report.critical_failures])
    print(f"raw gate on {sum(lines.values()):,} lines: {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, "
          f"peak RSS {m.peak_rss_mb:,.0f} MB, passed={report.passed} -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
