"""Clinical code lists the generator plants: ICD-10, ICD-O-3, CCAM acts and GHM per cancer site and care step.

These are the codes a claims algorithm (and the dbt code-list seeds) look for. ICD-10 codes are written
without a dot (PMSI style), ICD-O-3 topographies with a dot (registry style).
"""

from __future__ import annotations

SITES = ("breast", "lung", "pancreas", "liver", "oesophagus", "stomach", "cns")
POOR_PROGNOSIS_SITES = SITES[1:]

# ICD-10 codes per site with their relative frequency.
ICD10: dict[str, tuple[tuple[str, float], ...]] = {
    "breast": (("C504", 0.40), ("C508", 0.20), ("C502", 0.12), ("C509", 0.10), ("C505", 0.08), ("C501", 0.06),
               ("C503", 0.04)),
    "lung": (("C341", 0.45), ("C343", 0.30), ("C340", 0.07), ("C342", 0.05), ("C348", 0.03), ("C349", 0.10)),
    "pancreas": (("C250", 0.60), ("C251", 0.12), ("C252", 0.10), ("C259", 0.18)),
    "liver": (("C220", 0.80), ("C221", 0.15), ("C229", 0.05)),
    "oesophagus": (("C155", 0.45), ("C154", 0.25), ("C153", 0.10), ("C159", 0.20)),
    "stomach": (("C160", 0.30), ("C162", 0.20), ("C163", 0.20), ("C169", 0.30)),
    "cns": (("C711", 0.25), ("C712", 0.20), ("C713", 0.12), ("C719", 0.33), ("C710", 0.10)),
}

# ICD-O-3 morphology (with behaviour /3) per site with their relative frequency.
MORPHOLOGY: dict[str, tuple[tuple[str, float], ...]] = {
    "breast": (("8500/3", 0.75), ("8520/3", 0.15), ("8480/3", 0.05), ("8010/3", 0.05)),
    "lung": (("8140/3", 0.50), ("8070/3", 0.25), ("8041/3", 0.15), ("8012/3", 0.10)),
    "pancreas": (("8500/3", 0.85), ("8140/3", 0.10), ("8246/3", 0.05)),
    "liver": (("8170/3", 0.80), ("8160/3", 0.20)),
    "oesophagus": (("8070/3", 0.55), ("8140/3", 0.45)),
    "stomach": (("8140/3", 0.70), ("8490/3", 0.20), ("8144/3", 0.10)),
    "cns": (("9440/3", 0.55), ("9400/3", 0.20), ("9450/3", 0.10), ("9401/3", 0.15)),
}

# Diagnostic acts (first stay) per site: CCAM codes.
DIAGNOSTIC_ACTS: dict[str, tuple[str, ...]] = {
    "breast": ("QEHJ001", "QEQK001"),   # breast biopsy under imaging, mammography
    "lung": ("GEQE007", "ZBQK002"),     # bronchoscopy, chest CT
    "pancreas": ("HNQE001", "ZCQK002"),  # echo-endoscopy, abdominal CT
    "liver": ("HLHJ003", "ZCQK002"),    # liver biopsy, abdominal CT
    "oesophagus": ("HEQE002", "ZBQK002"),  # upper GI endoscopy, chest CT
    "stomach": ("HEQE002", "ZCQK002"),
    "cns": ("ACQN001", "ACHB001"),      # brain MRI, stereotactic biopsy
}

# Cancer surgery acts per site.
SURGERY_ACTS: dict[str, tuple[str, ...]] = {
    "breast_mastectomy": ("QEFA003", "QEFA013", "QEFA020"),
    "breast_lumpectomy": ("QEFA004", "QEFA012", "QEFA001"),
    "lung": ("GFFA013", "GFFA021", "GFFA031"),
    "pancreas": ("HNFA002", "HNFA004"),
    "liver": ("HLFA005", "HLFA007", "HLNM001"),
    "oesophagus": ("HEFA008", "HEFA013"),
    "stomach": ("HFFA011", "HFFA001"),
    "cns": ("ACFA007", "ACFA013"),
}
CHEMOTHERAPY_PORT_ACT = "EBLA003"      # implantable venous access port, first chemotherapy stay
RADIOTHERAPY_ACTS = ("ZZNL048", "ZZNL050")
CHEMOTHERAPY_DGN = "Z511"
RADIOTHERAPY_DGN = "Z510"
PALLIATIVE_DGN = "Z515"

# DRG (GHM) per kind of stay.
GHM = {
    "diagnosis": "04M09T", "surgery": "09C05J", "chemotherapy": "28Z07Z", "radiotherapy": "28Z11Z",
    "palliative": "23Z02T", "background": "05M09T",
}
SURGERY_GHM = {"breast": "09C05J", "lung": "04C02J", "pancreas": "07C09J", "liver": "07C14J",
               "oesophagus": "06C03J", "stomach": "06C04J", "cns": "01C04J"}

# Background (non-cancer) hospital stays: principal diagnosis, CCAM act (or None), GHM, weight.
BACKGROUND_STAYS: tuple[tuple[str, str | None, str, float], ...] = (
    ("H251", "BFGA004", "02C05J", 0.14),  # cataract
    ("K573", "HHQE005", "06K04J", 0.12),  # colonoscopy for diverticular disease
    ("M171", "NFKA007", "08C24J", 0.05),  # knee arthroplasty
    ("K409", "LMMA006", "06C12J", 0.06),  # inguinal hernia repair
    ("I214", "DDAF006", "05K06J", 0.05),  # myocardial infarction, angioplasty
    ("I48", None, "05M09T", 0.06),        # atrial fibrillation
    ("J189", None, "04M05T", 0.08),       # pneumonia
    ("I500", None, "05M09T", 0.06),       # heart failure
    ("S7200", "NBCA006", "08C47J", 0.05),  # femoral neck fracture
    ("N390", None, "11M04T", 0.05),       # urinary tract infection
    ("K802", "HMFC004", "07C14J", 0.06),  # cholecystectomy
    ("R074", None, "05M12T", 0.07),       # chest pain
    ("E119", None, "10M02T", 0.05),       # type 2 diabetes
    ("I639", "ACQN001", "01M30T", 0.04),  # stroke
    ("M5116", None, "08M07T", 0.06),      # disc disorder
)
ASSOCIATED_BACKGROUND = ("I10", "E119", "E785", "E660", "J449", "N183", "F329", "Z921")
# Underlying causes of death for deaths not due to the cancer.
OTHER_DEATH_CAUSES = (("I219", 0.10), ("I64", 0.08), ("I500", 0.10), ("J189", 0.07), ("F03", 0.10),
                      ("G309", 0.07), ("J449", 0.06), ("C189", 0.07), ("C61", 0.05), ("E149", 0.04),
                      ("N189", 0.03), ("R99", 0.05), ("X599", 0.04), ("I259", 0.08), ("K703", 0.06))
