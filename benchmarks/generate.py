"""Benchmark ``oncopipe generate`` at scale: wall time, CPU time and peak RSS of the process tree.

Usage: ``nice -n 10 .venv/bin/python benchmarks/generate.py [--patients 1000000] [--out DIR]``.
Writes ``benchmarks/results/generate-<date>-<N>.json`` (the generated data goes to a temporary folder under
var/ and is deleted afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from measure import measure, write_results
from oncopipe.contracts.settings import get_settings
from oncopipe.synth.extraction import generate

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extraction-date", default="2025-12-31")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="where to generate (default var/bench-generate)")
    parser.add_argument("--keep", action="store_true", help="keep the generated extraction")
    args = parser.parse_args(argv)
    out = args.out or get_settings().home / "bench-generate"
    if out.exists():
        shutil.rmtree(out)

    def progress(done: int, total: int) -> None:
        print(f"\rchunks {done}/{total}", end="", file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    with measure("generate") as m:
        report = generate(out, args.patients, args.seed, args.extraction_date, workers=args.workers,
                          on_chunk=progress)
        m.rows = sum(report.rows.values())
    print(file=sys.stderr)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    m.extra = {"rows_per_source": report.rows, "files_per_source": report.files, "bytes_on_disk": size,
               "dispensing_lines_per_patient": report.rows.get("er_pha_f", 0) / args.patients,
               # The machine is shared: the load average says how much of it the run actually had.
               "load_average_before": load_before, "load_average_after": os.getloadavg()}
    path = write_results(RESULTS / f"generate-{dt.date.today().isoformat()}-{args.patients}.json", [m],
                        patients=args.patients, seed=args.seed, extraction_date=args.extraction_date,
                        workers=args.workers)
    print(f"wall {m.wall_s:.1f} s, cpu {m.cpu_s:.1f} s, peak RSS {m.peak_rss_mb:.0f} MB, "
          f"{m.rows:,} rows ({report.rows.get('er_pha_f', 0):,} dispensing lines) -> {path}")
    if not args.keep:
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
