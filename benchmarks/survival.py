"""Survival scale run: both survival studies on ``--cases`` simulated poor-prognosis cases.

Simulates the ``poor_prognosis_cases`` and ``care_pathway_delays`` tables
(``tests/support/survival_simulation.py``, French life table), then runs the
``poor_prognosis_survival`` analysis (Kaplan-Meier by site and five factors, log-rank, Pohar-Perme net
survival, Cox + cox.zph + concordance, excess-hazard models) and the ``care_pathway_delays`` analysis
(delay summaries, case-mix-adjusted hospital comparison, landmark Cox), and writes wall time, CPU time and
peak RSS of each stage to ``benchmarks/results/survival-<date>.json``. Target: <= 5 minutes, <= 8 GB.

    nice -n 10 .venv/bin/python benchmarks/survival.py --cases 500000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from measure import measure, write_results
from oncopipe.landing.lifetables import build_life_table
from oncopipe.studies import kinds

# The simulated cohort (known parameters) is test support, shared with the unit tests; it is not shipped.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.survival_simulation import simulate_cohort  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500_000)
    parser.add_argument("--hospitals", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    kinds.kinds()  # import the analysis modules (matplotlib, ...) outside the measured stages
    life_table = build_life_table()
    with measure("simulate") as sim:
        cohort = simulate_cohort(args.cases, life_table, seed=args.seed, n_hospitals=args.hospitals)
        sim.rows = len(cohort.cases)
    with measure("all_survival_analyses") as total:
        with measure("poor_prognosis_survival") as pps:
            res = kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases,
                                                           "french_life_tables": life_table}, {}, study_id="bench")
            pps.rows = args.cases
        with measure("care_pathway_delays") as cpd:
            cp = kinds.run("care_pathway_delays", {"care_pathway_delays": cohort.delays,
                                                      "poor_prognosis_cases": cohort.cases}, {}, study_id="bench")
            cpd.rows = args.cases
        total.rows = args.cases
    comp = cp.table("hospital_comparison").frame
    found = set(comp.loc[comp["fast_track_candidate"], "hospital_id"])
    planted = set(cohort.truth["fast_track_hospitals"])
    total.extra = {
        "tables": len(res.tables) + len(cp.tables),
        "fast_track_planted": len(planted), "fast_track_found": len(found & planted),
        "fast_track_false": len(found - planted),
        "net_survival_5y": res.table("net_survival_site").frame.query("years == 5")
        .set_index("site")["net_survival"].round(4).to_dict(),
    }
    out = args.out or RESULTS / f"survival-{dt.date.today().isoformat()}.json"
    # The machine is shared: the load average says how much of the wall time was waiting for a core.
    write_results(out, [sim, pps, cpd, total], cases=args.cases, hospitals=args.hospitals, seed=args.seed,
                  target={"wall_s": 300, "peak_rss_mb": 8192}, load_average_1_5_15=os.getloadavg())
    for m in (sim, pps, cpd, total):
        print(f"{m.stage:26s} wall {m.wall_s:7.1f} s  cpu {m.cpu_s:7.1f} s  peak {m.peak_rss_mb:8.0f} MB")
    print(f"written {out}")


if __name__ == "__main__":
    main()
