"""Planted parameters of the synthetic population, calibrated to published French figures.

Sources of the figures: Santé publique France / INCa cancer incidence estimates 2023 (site, sex, age mix),
FRANCIM net-survival report 2021 (5-year net survival per site), the French SNDS study of adherence
trajectories to adjuvant endocrine therapy (six groups, about 69 % continuously adherent and 7 % immediate
discontinuation; the small groups are planted a little larger, see TRAJECTORY_GROUPS), the INCa fast-track
(parcours rapide) evaluation (about 20 days shorter).
Every value here is written to truth.json so tests and studies compare against what was planted.
"""

from __future__ import annotations

import numpy as np

from oncopipe.synth.clinical_codes import POOR_PROGNOSIS_SITES, SITES
from oncopipe.synth.dates import day

HISTORY_START = day("2010-01-01")   # first day of simulated care (washout before the first diagnoses)
HISTORY_END = day("2027-12-31")     # last simulated day: histories never depend on the extraction date
DIAGNOSIS_START = day("2012-01-01")
DIAGNOSIS_END = day("2026-12-31")
CHUNK_SIZE = 25_000                 # people per chunk (and per part file)

# Who is in the extract: breast-cancer women, poor-prognosis cancers, other beneficiaries.
COHORT_SHARES = {"breast": 0.35, "poor_prognosis": 0.35, "other": 0.30}

# Poor-prognosis incidence mix (France 2023, thousands of new cases) and share of men.
SITE_INCIDENCE = {"lung": 52.8, "pancreas": 16.0, "liver": 11.0, "oesophagus": 5.4, "stomach": 6.8, "cns": 6.0}
SITE_MALE_SHARE = {"lung": 0.63, "pancreas": 0.51, "liver": 0.79, "oesophagus": 0.72, "stomach": 0.66,
                   "cns": 0.55}
# Age at diagnosis: (mean, sd), truncated to 20..98.
SITE_AGE = {"breast": (62.0, 13.0), "lung": (67.0, 10.0), "pancreas": (71.0, 11.0), "liver": (69.0, 10.0),
            "oesophagus": (68.0, 10.0), "stomach": (71.0, 12.0), "cns": (60.0, 15.0)}
OTHER_AGE_2010 = (50.0, 18.0)  # other beneficiaries: age on 2010-01-01, truncated to 18..95

STAGES = ("I", "II", "III", "IV", "X")
STAGE_MIX = {
    "breast": (0.45, 0.33, 0.12, 0.05, 0.05),
    "lung": (0.18, 0.08, 0.22, 0.45, 0.07),
    "pancreas": (0.08, 0.15, 0.17, 0.50, 0.10),
    "liver": (0.25, 0.20, 0.20, 0.25, 0.10),
    "oesophagus": (0.15, 0.20, 0.25, 0.30, 0.10),
    "stomach": (0.18, 0.17, 0.22, 0.35, 0.08),
    "cns": (0.0, 0.0, 0.0, 0.0, 1.0),  # no TNM stage for CNS tumours
}

# Excess hazard model: H_excess(t) = k_site * t**shape_site * HR_stage * HR_age * HR_deprivation (t in years).
NET_SURVIVAL_5Y = {"breast": 0.88, "lung": 0.20, "pancreas": 0.11, "liver": 0.18, "oesophagus": 0.17,
                   "stomach": 0.30, "cns": 0.26}
WEIBULL_SHAPE = {"breast": 1.0, "lung": 0.75, "pancreas": 0.75, "liver": 0.75, "oesophagus": 0.75,
                 "stomach": 0.75, "cns": 0.8}
HR_STAGE = {"I": 0.25, "II": 0.5, "III": 1.0, "IV": 2.2, "X": 1.2}
AGE_BANDS = (("<50", 0, 50), ("50-64", 50, 65), ("65-74", 65, 75), ("75+", 75, 200))
HR_AGE = {"<50": 0.8, "50-64": 1.0, "65-74": 1.25, "75+": 1.6}
HR_DEPRIVATION = {1: 1.0, 2: 1.04, 3: 1.08, 4: 1.13, 5: 1.2}

# First treatment after diagnosis, poor-prognosis sites: share untreated and mix of first treatment.
UNTREATED_SHARE = {"lung": 0.15, "pancreas": 0.30, "liver": 0.30, "oesophagus": 0.15, "stomach": 0.15,
                   "cns": 0.10}
TREATMENT_MIX = {  # surgery, chemotherapy, radiotherapy
    "lung": (0.25, 0.55, 0.20), "pancreas": (0.15, 0.80, 0.05), "liver": (0.35, 0.50, 0.15),
    "oesophagus": (0.20, 0.50, 0.30), "stomach": (0.40, 0.55, 0.05), "cns": (0.60, 0.10, 0.30),
}
TREATMENTS = ("surgery", "chemotherapy", "radiotherapy")
BASE_DELAY_DAYS = {"lung": 38.0, "pancreas": 30.0, "liver": 40.0, "oesophagus": 35.0, "stomach": 32.0,
                   "cns": 20.0, "breast": 30.0}
N_HOSPITALS = 60
FAST_TRACK_SHARE = 0.20
FAST_TRACK_REDUCTION_DAYS = 20.0
HOSPITAL_EFFECT_SD = 6.0

# Breast cancer care.
BREAST_SURGERY_SHARE = 0.92
MASTECTOMY_SHARE = 0.30
BREAST_CHEMO_SHARE_BY_STAGE = {"I": 0.15, "II": 0.45, "III": 0.80, "IV": 0.70, "X": 0.30}
HORMONE_THERAPY_SHARE = 0.78  # hormone-receptor positive tumours that start adjuvant hormone therapy
TAMOXIFEN_SHARE_BY_AGE = ((50, 0.85), (55, 0.45), (200, 0.12))  # premenopausal women mostly tamoxifen
SWITCH_SHARE = 0.25            # tamoxifen -> aromatase inhibitor, after 2-3 years
AI_SPLIT = {"L02BG03": 0.35, "L02BG04": 0.50, "L02BG06": 0.15}
# A pharmacy line is reimbursed 0..REIMBURSEMENT_DELAY_MAX_DAYS days after the dispensing and enters the flux
# dated the first day of the month after the reimbursement (FLX_DIS_DTD); oncopipe.methods.adherence derives from it
# the months a dispensing month needs to be complete in an extraction (PHARMACY_FLUX_LAG_MONTHS).
REIMBURSEMENT_DELAY_MAX_DAYS = 20
BIG_BOX_SHARE = 0.30           # dispensings of 84/90-tablet boxes

# Adherence trajectory groups: share and monthly PDC profile over 60 months (see endocrine.py). The shape is
# the French nationwide study's (Memoli et al., Clin Breast Cancer 2021: six groups, 68.8 % continuous optimal
# adherence, 6.6 % immediate discontinuation, 8.3 % late, 6.3 % progressive and 5.7 % early nonadherence then
# discontinuation, 4.3 % continuous suboptimal adherence). The small groups are planted at 6.5 % or more (the
# adherent group gives up 2.8 points) so that a correctly recovered model clears the 5 % adequacy rule of
# trajectory selection with room for sampling error (a group planted at 5 % is assigned under 5 % half the time).
TRAJECTORY_GROUPS = (
    ("continuously_adherent", 0.66),
    ("immediate_discontinuation", 0.07),
    ("rapid_decline", 0.065),
    ("moderate_decline", 0.065),
    ("late_decline", 0.075),
    ("persistent_partial", 0.065),
)


def trajectory_profile(group: int, month: np.ndarray) -> np.ndarray:
    """Planted monthly PDC of trajectory ``group`` (0-based) at 0-based follow-up ``month`` (float allowed)."""
    m = np.asarray(month, dtype=float)
    if group == 0:
        return np.interp(m, [0, 1, 59], [0.98, 0.96, 0.925])
    if group == 1:  # one dispensing only: the 84/90-tablet boxes still cover months 1-2
        return np.interp(m, [0, 1, 2, 3], [0.98, 0.30, 0.28, 0.0])
    # Every declining group leaves the adherent one within the first year (a third of the women are followed
    # less than 4 years: index dates run up to the extraction date), each with its own level and slope, so a
    # woman's group shows in her first 1-2 years of follow-up.
    if group == 2:
        return np.interp(m, [0, 1, 12], [0.98, 0.85, 0.0])
    if group == 3:
        return np.interp(m, [0, 1, 4, 24], [0.98, 0.88, 0.82, 0.0])
    if group == 4:
        return np.interp(m, [0, 1, 18, 36], [0.98, 0.86, 0.76, 0.0])
    if group == 5:
        return np.interp(m, [0, 1, 59], [0.98, 0.60, 0.50])
    raise ValueError(f"unknown trajectory group {group}")


# Background care.
CHRONIC_DRUGS_PER_PERSON = {"intercept": -0.1, "per_decade": 0.28}  # Poisson mean = exp(a + b (age-50)/10)
ACUTE_DISPENSINGS_PER_YEAR = 2.2
BACKGROUND_STAYS_PER_YEAR = {"intercept": -2.6, "per_decade": 0.25}

SITE_INDEX = {s: i for i, s in enumerate(SITES)}
POOR_INDEX = np.array([SITE_INDEX[s] for s in POOR_PROGNOSIS_SITES])
