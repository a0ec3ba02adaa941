"""The mart contract: the published tables studies read, with their columns and types.

dbt enforces the same contracts (``contract: {enforced: true}`` in ``dbt_project/models/marts``); a test
checks that the two agree, so Python readers, the marts gate and the dbt models cannot drift.
Types are DuckDB type names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MartColumn:
    name: str
    data_type: str
    description: str


@dataclass(frozen=True)
class Mart:
    name: str
    key: tuple[str, ...]
    description: str
    columns: tuple[MartColumn, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _m(name: str, data_type: str, description: str) -> MartColumn:
    return MartColumn(name, data_type, description)


MARTS: tuple[Mart, ...] = (
    Mart(
        "breast_cancer_endocrine_cohort", ("person_id",),
        "Women with an incident breast cancer who start adjuvant hormone therapy within 12 months of "
        "diagnosis; one row per woman, followed from the first dispensing (index date) for up to 5 years.",
        (
            _m("person_id", "varchar", "Pseudonymised person identifier (never exported)."),
            _m("diagnosis_date", "date", "Date of diagnosis of the breast cancer."),
            _m("case_source", "varchar", "registry or claims: where the case was identified."),
            _m("stage", "varchar", "Stage at diagnosis (I, II, III, IV, X unknown)."),
            _m("index_date", "date", "Date of the first hormone-therapy dispensing."),
            _m("first_molecule", "varchar", "Molecule of the first dispensing (tamoxifen, anastrozole, ...)."),
            _m("first_class", "varchar", "Class of the first molecule: SERM or aromatase_inhibitor."),
            _m("age_at_index", "integer", "Age in whole years at the index date."),
            _m("birth_year", "integer", "Year of birth."),
            _m("department_code", "varchar", "Department of residence."),
            _m("region_code", "varchar", "INSEE region code of residence."),
            _m("deprivation_quintile", "integer", "FDep quintile of the commune of residence, 1..5 (null unknown)."),
            _m("death_date", "date", "Date of death, null if alive at the end of data."),
            _m("end_of_data_date", "date", "End of data: last day of the last complete pharmacy flux month."),
            _m("follow_up_end_date", "date", "min(death, end of data, index + 60 months - 1 day)."),
            _m("follow_up_end_reason", "varchar", "death, end_of_data or five_years."),
            _m("follow_up_days", "integer", "Days from index date to follow-up end, inclusive."),
            _m("follow_up_months", "integer", "Number of (possibly partial) follow-up months, 1..60."),
        ),
    ),
    Mart(
        "endocrine_adherence_monthly", ("person_id", "month_index"),
        "One row per woman of the endocrine cohort and month of follow-up (month k covers "
        "[index + k months, index + k+1 months), truncated at the follow-up end).",
        (
            _m("person_id", "varchar", "Pseudonymised person identifier."),
            _m("month_index", "integer", "0-based month of follow-up, 0..59."),
            _m("month_start", "date", "First day of the month window."),
            _m("month_end", "date", "Last day of the month window (inclusive), truncated at follow-up end."),
            _m("days_in_month", "integer", "Days of follow-up in the window."),
            _m("days_covered", "integer", "Days covered by supply (carry-over, hospital option applied)."),
            _m("days_hospitalised", "integer", "Days spent in hospital in the window."),
            _m("pdc", "double", "Proportion of days covered = days_covered / days_in_month, in [0, 1]."),
            _m("molecule", "varchar", "Molecule supplying most covered days in the window (null if none)."),
            _m("is_discontinued", "boolean", "True from the first day of a gap of >= discontinuation_gap_days."),
        ),
    ),
    Mart(
        "poor_prognosis_cases", ("case_id",),
        "One row per incident case of a poor-prognosis cancer (lung, pancreas, liver, oesophagus, stomach, "
        "central nervous system), with its first treatment and survival follow-up.",
        (
            _m("case_id", "varchar", "Stable case identifier (hash of person and site)."),
            _m("person_id", "varchar", "Pseudonymised person identifier (never exported)."),
            _m("site", "varchar", "lung, pancreas, liver, oesophagus, stomach or cns."),
            _m("icd10_code", "varchar", "ICD-10 code of the case, without dot."),
            _m("stage", "varchar", "Stage at diagnosis: I, II, III, IV or X (unknown)."),
            _m("sex", "varchar", "male or female."),
            _m("birth_year", "integer", "Year of birth."),
            _m("age_at_diagnosis", "integer", "Age in whole years at diagnosis."),
            _m("department_code", "varchar", "Department of residence."),
            _m("region_code", "varchar", "INSEE region code of residence."),
            _m("deprivation_quintile", "integer", "FDep quintile, 1..5 (null unknown)."),
            _m("hospital_id", "varchar", "FINESS of the diagnosing hospital (first stay with the diagnosis)."),
            _m("diagnosis_date", "date", "Date of diagnosis."),
            _m("diagnosis_year", "integer", "Calendar year of diagnosis."),
            _m("first_treatment_date", "date", "Date of the first cancer treatment, null if none."),
            _m("first_treatment_kind", "varchar", "surgery, chemotherapy, radiotherapy or null."),
            _m("death_date", "date", "Date of death, null if alive at the end of data."),
            _m("end_of_data_date", "date", "Last date covered by the data."),
            _m("follow_up_days", "integer", "Days from diagnosis to death or censoring (>= 0)."),
            _m("event", "integer", "1 if death observed, 0 if censored."),
            _m("case_source", "varchar", "registry or claims."),
        ),
    ),
    Mart(
        "care_pathway_delays", ("case_id",),
        "Diagnosis-to-first-treatment delay per poor-prognosis case and diagnosing hospital.",
        (
            _m("case_id", "varchar", "Case identifier (as in poor_prognosis_cases)."),
            _m("site", "varchar", "Cancer site."),
            _m("hospital_id", "varchar", "FINESS of the diagnosing hospital."),
            _m("diagnosis_date", "date", "Date of diagnosis."),
            _m("first_treatment_date", "date", "Date of the first treatment, null if none."),
            _m("first_treatment_kind", "varchar", "surgery, chemotherapy, radiotherapy or null."),
            _m("delay_days", "integer", "Days from diagnosis to first treatment (null if untreated), >= 0."),
            _m("treated", "boolean", "True if a first treatment was observed."),
            _m("stage", "varchar", "Stage at diagnosis."),
            _m("sex", "varchar", "male or female."),
            _m("age_at_diagnosis", "integer", "Age at diagnosis."),
            _m("deprivation_quintile", "integer", "FDep quintile."),
        ),
    ),
)

MARTS_BY_NAME: dict[str, Mart] = {m.name: m for m in MARTS}

#: Published tables a study may be approved to read: the marts plus the life-table seed published with them.
REFERENCE_TABLES: tuple[str, ...] = ("french_life_tables",)
READABLE_TABLES: tuple[str, ...] = (*MARTS_BY_NAME, *REFERENCE_TABLES)

#: What each analysis kind (oncopipe.studies.kinds) refuses to find null: kind -> mart -> columns. The kinds read
#: their checks from here and the marts gate turns every entry into a critical not-null expectation naming the
#: kinds, so the gate never publishes a version an approved study then refuses (a null ``sex`` decoded from
#: the contract's "unknown" codes 0/9, say).
_CASE_COLUMNS = ("site", "stage", "sex", "age_at_diagnosis", "diagnosis_date", "follow_up_days", "event")
NOT_NULL_FOR_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "poor_prognosis_survival": {"poor_prognosis_cases": _CASE_COLUMNS},
    "care_pathway_delays": {
        "poor_prognosis_cases": _CASE_COLUMNS,  # its cases go through the same preparation (studies.cases)
        "care_pathway_delays": ("site", "stage", "sex", "age_at_diagnosis"),
    },
    # Unless a study sets drop_missing_covariates (then it analyses complete cases only).
    "tradhor_adherence": {
        "breast_cancer_endocrine_cohort": ("age_at_index", "deprivation_quintile", "region_code", "first_molecule"),
    },
}


def not_null_requirements(mart: str) -> dict[str, tuple[str, ...]]:
    """For one mart: column -> the analysis kinds that refuse a null in it (sorted), from NOT_NULL_FOR_KINDS."""
    out: dict[str, list[str]] = {}
    for kind, marts in sorted(NOT_NULL_FOR_KINDS.items()):
        for column in marts.get(mart, ()):
            out.setdefault(column, []).append(kind)
    return {column: tuple(kinds) for column, kinds in out.items()}
