"""Assemble truth.json: every planted parameter and the figures implied by the generated case mix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from oncopipe.synth import clinical_codes as C
from oncopipe.synth import parameters as P
from oncopipe.synth.chunk import CANCEL_LINE_OFFSET, INFO_LINE_OFFSET, SPURIOUS_LINE_OFFSET
from oncopipe.synth.deaths import excess_scale
from oncopipe.synth.drugs import HORMONE_CLASS, HORMONE_MOLECULES, catalogue
from oncopipe.synth.faults import FAULTS_BY_KIND
from oncopipe.synth.geography import DEPARTMENT_CODES, REGISTRIES
from oncopipe.synth.hospitals import Hospitals
from oncopipe.synth.population import COHORTS

GENERATOR_VERSION = "1"


def _survival(cases: pd.DataFrame) -> dict[str, Any]:
    sites = {}
    for site in C.SITES:
        sub = cases[cases["site"] == site]
        implied = sub["expected_population_survival_5y"] * sub["expected_net_survival_5y"]
        sites[site] = {
            "planted_net_survival_5y": P.NET_SURVIVAL_5Y[site],
            "weibull_shape": P.WEIBULL_SHAPE[site],
            "excess_scale_k": excess_scale(site),
            "n_cases": int(len(sub)),
            "case_mix_net_survival_5y": float(sub["expected_net_survival_5y"].mean()) if len(sub) else None,
            "implied_observed_survival_5y": float(implied.mean()) if len(sub) else None,
            "expected_population_survival_5y": float(sub["expected_population_survival_5y"].mean())
            if len(sub) else None,
        }
    return {
        "model": "death = min(T_population (French life table), T_excess); H_excess(t) = k_site * t**shape "
                 "* HR_stage * HR_age * HR_deprivation, t in years from diagnosis; k_site calibrated so that the "
                 "mean 5-year net survival over the planted case mix equals planted_net_survival_5y. "
                 "implied_observed_survival_5y = mean over the extraction's cases of S_population(5) * S_excess(5).",
        "hazard_ratios": {"stage": P.HR_STAGE, "age_band": P.HR_AGE,
                          "age_bands": {b[0]: [b[1], b[2]] for b in P.AGE_BANDS},
                          "deprivation_quintile": {str(k): v for k, v in P.HR_DEPRIVATION.items()}},
        "sites": sites,
    }


def _care_pathways(cases: pd.DataFrame, hospitals: Hospitals) -> dict[str, Any]:
    poor = cases[cases["site"].isin(C.POOR_PROGNOSIS_SITES)]
    per_hospital = poor.groupby("hospital_id")["planted_delay_days"].agg(["count", "mean"])
    rows = []
    for i, finess in enumerate(hospitals.finess):
        rows.append({"hospital_id": finess, "department": DEPARTMENT_CODES[hospitals.dept[i]],
                     "effect_days": float(hospitals.effect[i]), "fast_track": bool(hospitals.fast_track[i]),
                     "n_cases": int(per_hospital["count"].get(finess, 0)),
                     "mean_planted_delay_days": float(per_hospital["mean"].get(finess, np.nan))})
    treated = poor[poor["first_treatment_kind"].notna()]
    return {
        "model": "delay = base_site + effect_hospital - reduction * fast_track + Gamma(2, 6) - 12 days, >= 3; "
                 "first treatment on the diagnosing hospital; untreated or dead before treatment -> none.",
        "base_delay_days": P.BASE_DELAY_DAYS, "fast_track_reduction_days": P.FAST_TRACK_REDUCTION_DAYS,
        "untreated_share": P.UNTREATED_SHARE,
        "treatment_mix": {s: dict(zip(P.TREATMENTS, v, strict=True)) for s, v in P.TREATMENT_MIX.items()},
        "fast_track_hospitals": [str(f) for f in hospitals.finess[hospitals.fast_track]],
        "hospitals": rows,
        "observed_treated_cases": int(len(treated)),
        "observed_first_treatment_share": {k: float(v) for k, v in
                                           treated["first_treatment_kind"].value_counts(normalize=True).items()},
    }


def _adherence(groups: pd.DataFrame, mean_pdc: np.ndarray) -> dict[str, Any]:
    counts = groups["group"].value_counts()
    total = max(len(groups), 1)
    out = []
    for g, (name, share) in enumerate(P.TRAJECTORY_GROUPS):
        out.append({
            "group": g + 1, "name": name, "planted_share": share, "n": int(counts.get(g + 1, 0)),
            "observed_share": float(counts.get(g + 1, 0) / total),
            "planted_profile": [round(float(x), 4) for x in P.trajectory_profile(g, np.arange(60))],
            "realised_mean_pdc": [None if np.isnan(x) else round(float(x), 4) for x in mean_pdc[g]],
        })
    return {
        "groups_file": "trajectory_groups.parquet",
        "model": "per woman: group profile shifted by N(0, 1.5) months (declining groups), no person-level offset; "
                 "next refill = end of supply + supply * (1 - p) / p + N(0, 2 + 0.04 * supply) days; stop when "
                 "p < 0.12, at death or 5 years. realised_mean_pdc: monthly PDC by the carry-over rule without "
                 "hospital days, over each woman's full follow-up (min(death, index + 60 months - 1 day, 2027-12-31)), "
                 "not cut at the extraction date, measured on the women of the first 100,000 people.",
        "hormone_therapy_share": P.HORMONE_THERAPY_SHARE, "switch_share": P.SWITCH_SHARE,
        "groups": out,
    }


def build_truth(*, seed: int, patients: int, date: str, fmt: str, dirt_rate: float, previous: dict,
                report, cohort: np.ndarray, cases: pd.DataFrame, groups: pd.DataFrame, mean_pdc: np.ndarray,
                dirt: dict[str, int], hospitals: Hospitals) -> dict[str, Any]:
    """The truth.json document of one extraction."""
    cat = catalogue()
    return {
        "generator": {"version": GENERATOR_VERSION, "seed": seed, "patients": patients, "extraction_date": date,
                      "format": fmt, "previous_extraction": previous, "chunk_size": P.CHUNK_SIZE,
                      "history": ["2010-01-01", "2027-12-31"], "diagnoses": ["2012-01-01", "2026-12-31"]},
        "sources": {s: {"files": report.files.get(s, 0), "rows": report.rows.get(s, 0)} for s in report.files},
        "population": {"cohorts": {COHORTS[i]: int(cohort[i]) for i in range(len(COHORTS))},
                       "cohort_shares_planted": P.COHORT_SHARES,
                       "cases_diagnosed_by_extraction": {k: int(v) for k, v in cases["site"].value_counts().items()},
                       "cases_in_registry": int(cases["registry_id"].notna().sum()),
                       "cases_file": "cases.parquet"},
        "survival": _survival(cases),
        "care_pathways": _care_pathways(cases, hospitals),
        "adherence": _adherence(groups, mean_pdc),
        "registries": [{"reg_id": r.reg_id, "name": r.name, "departments": list(r.departments), "sites": list(r.sites)}
                       for r in REGISTRIES],
        "dirt": {"rate": dirt_rate, "er_pha_f_lines": dirt,
                 "rules": {"information_line": f"DPN_QLF = 71, PRS_ORD_NUM + {INFO_LINE_OFFSET}",
                           "exact_duplicate": "the same line twice",
                           "late_resent": "same ORG_CLE_NUM, DCT_ORD_NUM, PRS_ORD_NUM, later FLX_DIS_DTD (1-6 months),"
                                          " true quantity; on 30 % the first version's was wrong (one box"
                                          " more or less)",
                           "spurious_line": f"a line that never happened, PRS_ORD_NUM + {SPURIOUS_LINE_OFFSET}",
                           "cancellation": f"cancels the spurious line: PRS_ORD_NUM + {CANCEL_LINE_OFFSET}, same "
                                           "BEN_NIR_PSA, EXE_SOI_DTD, PHA_PRS_C13, DCT_ORD_NUM, negative "
                                           "PHA_ACT_QSN, next flux",
                           "late_death": "death date reaches IR_BEN_R / KI_CCI_R 60-400 days late",
                           "out_of_range_codes": "DGN_PAL 'ZZZ9' on background stays at dirt_rate / 2"}},
        "faults": [{**f, "caught_by": FAULTS_BY_KIND[f["kind"]].caught_by} for f in report.faults],
        "code_lists": {
            "icd10": {s: [c for c, _ in v] for s, v in C.ICD10.items()},
            "surgery_ccam": C.SURGERY_ACTS, "diagnostic_ccam": C.DIAGNOSTIC_ACTS,
            "chemotherapy": {"dgn_pal": C.CHEMOTHERAPY_DGN, "first_session_ccam": C.CHEMOTHERAPY_PORT_ACT},
            "radiotherapy": {"dgn_pal": C.RADIOTHERAPY_DGN, "ccam": list(C.RADIOTHERAPY_ACTS)},
            "hormone_therapy": [{"cip13": p.cip13, "atc": p.atc, "molecule": HORMONE_MOLECULES[p.atc],
                                 "class": HORMONE_CLASS[p.atc], "units": p.units}
                                for p in cat.presentations if p.atc in HORMONE_MOLECULES],
        },
    }
