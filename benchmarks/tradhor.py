"""TRADHOR scale run: group-based trajectory model selection (2..7 groups) on simulated monthly PDC.

Simulates ``--patients`` people x 60 months of monthly PDC from a 5-group censored-normal mixture
(a fifth of people followed for fewer months: death or end of data), then runs the selection of the
study with the study's fitting options (2..7 groups, cubic trajectories, one sigma per group, k-means starts
over the observed months on a subsample plus the split groups of the model with one group fewer, EM on
everyone) and writes wall time, CPU time and peak RSS of the process tree, with the machine's load average,
to ``benchmarks/results/tradhor-<date>.json``.

    nice -n 10 .venv/bin/python benchmarks/tradhor.py --patients 300000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
from measure import measure, write_results
from oncopipe.methods.trajectories import panel_from_long, select_gbtm, simulate_panel
from oncopipe.studies.kinds.tradhor import DEFAULTS
from sklearn.metrics import adjusted_rand_score

RESULTS = Path(__file__).resolve().parent / "results"


def planted_trajectories(months: int = 60) -> np.ndarray:
    """Five adherence patterns: high, slowly declining, late drop, early drop, early non-persistence."""
    t = np.arange(months) / 12
    return np.stack([
        np.full(months, 1.15),
        1.05 - 0.12 * t,
        1.1 - 0.5 * np.clip(t - 2.5, 0, None),
        1.0 - 0.9 * t,
        0.8 - 0.6 * t**0.5 * 2,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300_000)
    parser.add_argument("--months", type=int, default=60)
    parser.add_argument("--min-groups", type=int, default=2)
    parser.add_argument("--max-groups", type=int, default=7)
    parser.add_argument("--degree", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]

    with measure("simulate") as sim:
        frame, truth = simulate_panel(args.patients, planted_trajectories(args.months),
                                      shares=[0.45, 0.2, 0.15, 0.12, 0.08], sigma=0.25, seed=args.seed)
        sim.rows = len(frame)
    with measure("panel") as pan:
        panel = panel_from_long(frame, n_months=args.months)
        pan.rows = panel.n_observations
    del frame
    timings: dict[int, float] = {}
    with measure("select_gbtm") as sel:
        import time

        last = time.perf_counter()

        def progress(k: int, fit) -> None:
            nonlocal last
            now = time.perf_counter()
            timings[k] = round(now - last, 2)
            last = now
            print(f"k={k}: logL={fit.loglik:.1f} BIC={fit.bic:.1f} iterations={fit.n_iter} {timings[k]} s", flush=True)

        selection = select_gbtm(panel, min_groups=args.min_groups, max_groups=args.max_groups,
                                degree=args.degree, seed=args.seed, progress=progress,
                                n_starts=DEFAULTS["n_starts"], common_sigma=DEFAULTS["common_sigma"])
        sel.rows = panel.n_observations
    ari = adjusted_rand_score(truth, selection.chosen.assignment)
    sel.extra = {"seconds_per_k": timings, "chosen_k": selection.chosen_k, "planted_k": 5, "ari": ari,
                 "table": selection.table.to_dict(orient="records")}
    print(selection.table.to_string())
    print(f"chosen k={selection.chosen_k} ARI={ari:.3f} wall={sel.wall_s:.1f}s cpu={sel.cpu_s:.1f}s "
          f"peak={sel.peak_rss_mb:.0f} MB")
    out = args.out or RESULTS / f"tradhor-{dt.date.today().isoformat()}.json"
    write_results(out, [sim, pan, sel], patients=args.patients, months=args.months,
                  groups=f"{args.min_groups}..{args.max_groups}", degree=args.degree,
                  n_starts=DEFAULTS["n_starts"], common_sigma=DEFAULTS["common_sigma"],
                  load_average_before=load_before, load_average_after=[round(x, 2) for x in os.getloadavg()])
    print(f"written {out}")


if __name__ == "__main__":
    main()
