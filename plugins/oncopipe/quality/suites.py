"""The expectation suites, built from the landing and mart contracts plus the rules below.

The committed JSON under ``expectations/`` is generated from this module (``oncopipe validate
--write-suites``) and a test checks that it matches, so a reviewer reads the rules here and the diff of
the JSON in review. Every expectation carries GX's own ``severity`` field (``critical`` stops the stage,
``warning`` is recorded and shown), ``meta.name`` (stable, what messages and tests use) and ``meta.rule``
(why it exists). Ids are derived from the suite and expectation names, so regeneration is byte-stable.

Tolerances: real extracts carry a little dirt (out-of-range codes, exact duplicates, ...) at about 1%.
A coded field therefore gets two expectations: a *critical* one that tolerates ``CODE_TOLERANCE`` and a
*warning* twin ``<name>.any`` that flags anything above ``DIRT_TOLERANCE``. Injected faults (about 5%
of lines) break the critical one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Literal

from oncopipe.contracts.marts import MARTS, Mart, not_null_requirements
from oncopipe.contracts.settings import get_settings
from oncopipe.contracts.sources import SOURCES, Source
from oncopipe.quality import exclusions, formats
from oncopipe.quality.frames import marts_suite_name, raw_suite_name
from oncopipe.quality.gxquiet import quiet_gx

quiet_gx()
import great_expectations as gx  # noqa: E402 (after quiet_gx)
import great_expectations.expectations as gxe  # noqa: E402

from oncopipe.quality.line_rules import BIRTH, LineRule  # noqa: E402

Severity = Literal["critical", "warning"]

CODE_TOLERANCE = 0.97
"""Critical: at most 3% of lines may break a code format or value set."""
DIRT_TOLERANCE = 0.999
"""Warning: more than 0.1% of lines breaking a format is reported."""
NULL_TOLERANCE = 0.99
"""Critical: at most 1% of nulls in a mandatory field."""
DATE_TOLERANCE = 0.99
"""Critical: at most 1% of unparsable or out-of-range dates."""
ORDER_TOLERANCE = 0.999
"""Critical: at most 0.1% of lines with impossible date order (death before birth, exit before entry)."""
# The volume, month and distribution thresholds are settings a deployment can change (``ONCOPIPE_GATE_*``,
# docs/settings.md): the growth of rows (per flux month for delta sources) relative to the previous accepted
# extraction, critical and warned (the lower bound is per source, ``Source.max_volume_drop`` in the contract, warned
# from a share of it); the least share of the median month a month of care may hold; the PSI of a coded column.
CONFLICTING_KEY_MAX = 0.001
"""Critical: share of keys carried by several different lines."""
CARE_AFTER_DEATH_MAX = 0.01
"""Critical: share of the dead with a dispensing more than ``CARE_AFTER_DEATH_LAG_DAYS`` after death."""
CARE_AFTER_DEATH_LAG_DAYS = 90
ORPHAN_STAY_MAX = 0.01
#: Drug lines with no claim line (or a non-pharmacy one): the two tables of one flux are extracted together, so
#: beyond a line or two of dirt this is a half-delivered or mis-keyed flux.
ORPHAN_DRUG_LINE_MAX = 0.01
"""Critical: share of PMSI stays (t_mco_b) without their linkage line (t_mco_c)."""
EARLIEST_DATE = "1900-01-01"
# PSI defaults: a warning above 0.25 (the conventional "significant shift"); critical above 1, when about half the
# lines carry values of other frequencies or never seen before, as when two columns are swapped or a column is
# shifted; between clean generated deliveries the largest PSI measured is below 0.05
# (``tests/unit/quality/test_deliveries.py``).
DRIFT_MIN_LINES = 200
"""Distributions are compared only when both extractions hold this many lines (below, PSI is mostly noise:
its expected value with no shift is about (values - 1) / lines)."""
FLUX_BEFORE_PREVIOUS_MAX = 0.01
"""Critical: share of a delta's lines whose flux date is not after the previous accepted extraction."""

CONSEQUENCES = {"critical": "quarantine", "warning": "warn"}
"""What a failed raw expectation does: ``quarantine`` moves the whole extraction out of the landing (nothing is
built from it), ``warn`` records the finding and shows it in the quality view. An exclusion rule's warning twin
says ``exclude`` instead: its lines are left out of staging and counted in the ledger (``exclusions.py``)."""
MARTS_CONSEQUENCES = {"critical": "drop_candidate", "warning": "warn"}
"""What a failed marts expectation does: ``drop_candidate`` deletes the candidate marts (nothing is published,
CURRENT is unchanged), ``warn`` records the finding."""

BASIS_CONTRACT = "landing contract (contracts/sources.py: files, columns, types, key)"
BASIS_DICTIONARY = "SNDS data dictionary (schema-snds), column definition"
BASIS_EXTRACT = "extract specification (contracts/sources.py: delivery mode and period)"
BASIS_IR_NAT_V = "SNDS nomenclature IR_NAT_V (PRS_NAT_REF natures)"
BASIS_IR_DPN_V = "SNDS nomenclature IR_DPN_V (DPN_QLF line qualifiers)"
BASIS_IR_SEX_V = "SNDS nomenclature IR_SEX_V (BEN_SEX_COD)"
BASIS_ICD10 = "ICD-10 (WHO / ATIH CIM-10 FR) code format, PMSI and CepiDc coding rules"
BASIS_CCAM = "CCAM (ATIH / CNAM) act code format"
BASIS_CIP = "CIP13 (ANSM / CIP-ACL): 13 digits, prefix 34009, EAN-13 check digit; IR_PHA_R referential"
BASIS_REGISTRY = "FRANCIM registry coding rules (ICD-O-3, stage, basis of diagnosis)"
BASIS_DCIR_JOIN = "DCIR: every ER_PHA_F drug line details an ER_PRS_F claim line with the same nine keys"
BASIS_DCIR = "DCIR regularisation rule: a negative line cancels a line of the same claim and presentation"
BASIS_LOGIC = "calendar logic: no event before birth, after death, or after the extraction date"
BASIS_DELIVERY = "delivery history: profiles of the accepted extractions (quality/deliveries.py)"

#: Fault kind of the generator -> (source, expectation name) meant to catch it (the brief's table).
FAULT_EXPECTATIONS: dict[str, tuple[str, str]] = {
    "missing_column": ("ir_ben_r", "column_set"),
    "wrong_type": ("er_pha_f", "column_types"),
    "unparsable_dates": ("er_prs_f", "EXE_SOI_DTD.date_parse"),
    "death_before_birth": ("ir_ben_r", "death_after_birth"),
    "duplicated_keys": ("ir_ben_r", "key_unique"),
    "unknown_codes": ("t_mco_b", "DGN_PAL.icd10_format"),
    "invalid_cip13": ("er_pha_f", "PHA_PRS_C13.cip13_format"),
    "invalid_atc": ("ir_pha_r", "PHA_ATC_C07.atc_format"),
    "invalid_ccam": ("t_mco_a", "CDC_ACT.ccam_format"),
    "invalid_department": ("ir_ben_r", "BEN_RES_DPT.department_value_set"),
    "unknown_sex": ("ir_ben_r", "BEN_SEX_COD.sex_value_set"),
    "invalid_dpn_qlf": ("er_prs_f", "DPN_QLF.dpn_qlf_value_set"),
    "negative_quantities": ("er_pha_f", "PHA_ACT_QSN.quantity_range"),
    "null_mandatory": ("er_prs_f", "BEN_NIR_PSA.not_null"),
    "future_dates": ("er_prs_f", "EXE_SOI_DTD.date_range"),
    "care_after_death": ("er_prs_f", "no_care_after_death"),
    "empty_file": ("er_pha_f", "row_count_nonzero"),
    "truncated_file": ("er_pha_f", "file_readable"),
    "bad_encoding": ("ir_pha_r", "encoding_utf8"),
    "row_count_collapse": ("er_pha_f", "row_count_vs_previous"),
    "month_gap": ("er_prs_f", "monthly_share"),
    "orphan_stays": ("t_mco_c", "stay_has_linkage"),
    "orphan_drug_lines": ("er_pha_f", "drug_line_has_claim_line"),
}

#: Sources with a person and a care date that cannot precede the person's birth month (ir_ben_r).
BIRTH_BOUND: dict[str, tuple[str, str]] = {"er_prs_f": ("BEN_NIR_PSA", "EXE_SOI_DTD"),
                                           "t_mco_c": ("NIR_ANO_17", "EXE_SOI_DTD"),
                                           "registry_cases": ("BEN_NIR_PSA", "DAT_DIAG")}

#: Delta sources: the date column whose month counts lines (flux month) and the month of care.
DELTA_FLUX_MONTH: dict[str, str] = {"er_prs_f": "FLX_DIS_DTD", "er_pha_f": "FLX_DIS_DTD", "t_mco_c": "EXE_SOI_DTF"}
CARE_MONTH: dict[str, str] = {"er_prs_f": "EXE_SOI_DTD"}


def _expectation(cls: type, name: str, severity: Severity, rule: str, basis: str = "", consequence: str = "",
                 **kwargs: Any) -> Any:
    meta = {"name": name, "rule": rule, "consequence": consequence or CONSEQUENCES[severity]}
    if basis:
        meta["basis"] = basis
    return cls(meta=meta, severity=severity, **kwargs)


def _metric(cls: type, name: str, severity: Severity, rule: str, metric: str, basis: str = "",
            consequence: str = "", **kwargs: Any) -> Any:
    """An expectation on the ``value`` of the extraction-frame rows whose ``metric`` is ``metric``."""
    return _expectation(cls, name, severity, rule, basis, consequence, column="value",
                        row_condition=f'metric=="{metric}"', condition_parser="pandas", **kwargs)


def _ensure_context() -> None:
    """GX builds suites only with an active context: start an ephemeral one if none is active."""
    from great_expectations.data_context.data_context.context_factory import project_manager

    try:
        project_manager.get_current_project()
    except Exception:  # noqa: BLE001 (GX raises its own DataContextRequiredError)
        gx.get_context(mode="ephemeral")


def _suite(name: str, expectations: Iterable[Any]) -> Any:
    _ensure_context()
    suite = gx.ExpectationSuite(name=name, id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"oncopipe:{name}")))
    seen: set[str] = set()
    for expectation in expectations:
        key = expectation.meta["name"]
        if key in seen:
            raise ValueError(f"suite {name}: expectation name {key!r} used twice")
        seen.add(key)
        suite.add_expectation(expectation)
    # Ids are derived, not random, so the committed JSON is stable (GX refuses ids set before adding).
    for expectation in suite.expectations:
        expectation.id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"oncopipe:{name}:{expectation.meta['name']}"))
    return suite


# --------------------------------------------------------------------------------------------- raw gate

def raw_extraction_expectations(src: Source) -> list[Any]:
    """Checks on the extraction frame of ``src``: files, schema, volumes, keys, cross-source rules."""
    between = gxe.ExpectColumnValuesToBeBetween
    gate = get_settings()
    out = [
        _metric(between, "file_readable", "critical", "every part file opens and reads to the end",
                "file_readable", BASIS_CONTRACT, min_value=1),
        _metric(between, "encoding_utf8", "critical", "every text value is valid UTF-8", "encoding_utf8",
                BASIS_CONTRACT, min_value=1),
        _metric(between, "column_set", "critical", "every contract column is present in every file",
                "column_present", BASIS_CONTRACT, min_value=1),
        _metric(between, "column_set.extra", "warning", "no column outside the contract", "column_expected",
                BASIS_CONTRACT, min_value=1),
        _metric(between, "column_types", "critical", "each column has its contract type (contracts/sources.py)",
                "column_type_ok", BASIS_CONTRACT, min_value=1),
        _metric(between, "row_count_nonzero", "critical", "the extraction holds at least one line", "rows_total",
                BASIS_CONTRACT, min_value=1),
        _metric(between, "key_unique", "critical",
                f"at most {CONFLICTING_KEY_MAX:.1%} of keys ({', '.join(src.key)}) carried by different lines",
                "conflicting_key_share", BASIS_CONTRACT, max_value=CONFLICTING_KEY_MAX),
        _metric(between, "exact_duplicates", "warning", "exact duplicated lines (staging dedupes them)",
                "exact_duplicate_share", BASIS_CONTRACT, max_value=0),
    ]
    if src.delivery == "snapshot" or src.name in DELTA_FLUX_MONTH:
        unit = "rows" if src.delivery == "snapshot" else f"rows per {DELTA_FLUX_MONTH[src.name]} month"
        low, warn_low = round(1 - src.max_volume_drop, 6), round(1 - gate.gate_volume_drop_warning_share
                                                                   * src.max_volume_drop, 6)
        out += [
            _metric(between, "row_count_vs_previous", "critical",
                    f"{unit} within [{low}, {gate.gate_row_ratio_critical_max}] x the previous accepted extraction "
                    "(a drop of "
                    f"more than {src.max_volume_drop:.0%} is a lost part of the delivery)", "row_count_ratio",
                    BASIS_DELIVERY, min_value=low, max_value=gate.gate_row_ratio_critical_max),
            # Warned from a share (default three quarters) of the tolerated drop.
            _metric(between, "row_count_vs_previous.drift", "warning",
                    f"{unit} within [{warn_low}, {gate.gate_row_ratio_warning_max}] x the previous accepted extraction",
                    "row_count_ratio", BASIS_DELIVERY, min_value=warn_low, max_value=gate.gate_row_ratio_warning_max),
        ]
    # A delta repeating an accepted delivery is refused; a snapshot of a referential may legitimately not change.
    repeat = "critical" if src.delivery == "delta" else "warning"
    out += [
        _metric(between, "delivery_fingerprint", repeat,
                "the delivery differs from every accepted extraction (same lines = a duplicated or stale delivery)",
                "fingerprint_repeats", BASIS_DELIVERY, max_value=0),
        _metric(between, "distribution_drift", "critical",
                f"each coded column's value distribution within PSI {gate.gate_psi_critical} of the previous accepted "
                "extraction (a swapped or shifted column moves it)", "column_psi", BASIS_DELIVERY,
                max_value=gate.gate_psi_critical),
        _metric(between, "distribution_drift.moderate", "warning",
                f"each coded column's value distribution within PSI {gate.gate_psi_warning} of the previous accepted "
                "extraction", "column_psi", BASIS_DELIVERY, max_value=gate.gate_psi_warning),
    ]
    if src.name in DELTA_FLUX_MONTH:
        flux = DELTA_FLUX_MONTH[src.name]
        out += [
            _metric(between, "flux_after_previous", "critical",
                    f"at most {FLUX_BEFORE_PREVIOUS_MAX:.0%} of lines with {flux} on or before the previous accepted "
                    "extraction (a delta brings only later flux)", "flux_not_after_previous_share", BASIS_EXTRACT,
                    max_value=FLUX_BEFORE_PREVIOUS_MAX),
            _metric(between, "flux_after_previous.any", "warning",
                    f"no line with {flux} on or before the previous accepted extraction",
                    "flux_not_after_previous_share", BASIS_EXTRACT, max_value=0),
            _metric(between, "new_flux_months", "critical",
                    f"the delta brings at least one {flux} month after the previous accepted extraction",
                    "new_flux_months", BASIS_EXTRACT, min_value=1),
        ]
    if src.name in BIRTH_BOUND:
        person, when = BIRTH_BOUND[src.name]
        out += [
            _metric(between, "care_after_birth", "critical",
                    f"at most {1 - ORDER_TOLERANCE:.1%} of lines with {when} before the birth month of {person} "
                    "(ir_ben_r)", "care_before_birth_share", BASIS_LOGIC, max_value=round(1 - ORDER_TOLERANCE, 10)),
            _metric(between, "care_after_birth.any", "warning", f"no line with {when} before the birth month",
                    "care_before_birth_share", BASIS_LOGIC, max_value=0),
        ]
    if src.name in CARE_MONTH:
        out.append(_metric(between, "monthly_share", "critical",
                           f"each month of {CARE_MONTH[src.name]} the extraction covers holds >= "
                           f"{gate.gate_month_volume_min} x the median month (no missing month)", "month_volume_ratio",
                           BASIS_EXTRACT, min_value=gate.gate_month_volume_min))
    if src.name == "er_prs_f":
        out += [
            _metric(between, "no_care_after_death", "critical",
                    f"at most {CARE_AFTER_DEATH_MAX:.0%} of the dead (ir_ben_r) with a claim line (EXE_SOI_DTD) > "
                    f"{CARE_AFTER_DEATH_LAG_DAYS} days after death", "care_after_death_share",
                    BASIS_LOGIC, max_value=CARE_AFTER_DEATH_MAX),
            _metric(between, "no_care_after_death.any", "warning", "no claim line beyond the flux lag after death",
                    "care_after_death_share", BASIS_LOGIC, max_value=0),
        ]
    if src.name == "er_pha_f":
        out += [
            _metric(between, "drug_line_has_claim_line", "critical",
                    f"at most {ORPHAN_DRUG_LINE_MAX:.0%} of drug lines with no ER_PRS_F claim line of the same nine "
                    "keys in the extraction", "orphan_drug_line_share", BASIS_DCIR_JOIN,
                    max_value=ORPHAN_DRUG_LINE_MAX),
            _metric(between, "drug_line_has_claim_line.any", "warning", "every drug line has its claim line",
                    "orphan_drug_line_share", BASIS_DCIR_JOIN, max_value=0),
            _metric(between, "drug_line_claim_is_pharmacy", "critical",
                    f"at most {ORPHAN_DRUG_LINE_MAX:.0%} of drug lines whose claim line is not a pharmacy service "
                    f"(PRS_NAT_REF not in {list(formats.PHARMACY_NATURES)})", "non_pharmacy_claim_share",
                    BASIS_IR_NAT_V, max_value=ORPHAN_DRUG_LINE_MAX),
            _metric(between, "drug_line_claim_is_pharmacy.any", "warning",
                    "every drug line's claim line is a pharmacy service", "non_pharmacy_claim_share", BASIS_IR_NAT_V,
                    max_value=0),
            _metric(between, "cip13_in_referential", "critical",
                    f"at most {1 - CODE_TOLERANCE:.0%} of dispensing lines with a PHA_PRS_C13 absent from IR_PHA_R",
                    "cip13_not_in_referential_share", BASIS_CIP, max_value=round(1 - CODE_TOLERANCE, 10)),
            _metric(between, "cip13_in_referential.any", "warning", "every PHA_PRS_C13 is in IR_PHA_R",
                    "cip13_not_in_referential_share", BASIS_CIP, max_value=0),
            _metric(between, "regularisation_matched", "critical",
                    "every negative PHA_ACT_QSN line cancels a positive line of the same person, claim, care date and "
                    "presentation with the opposite quantity (this or an accepted extraction)",
                    "unmatched_regularisations", BASIS_DCIR, max_value=0),
        ]
    if src.name == "t_mco_c":
        out += [
            _metric(between, "stay_has_linkage", "critical",
                    f"at most {ORPHAN_STAY_MAX:.0%} of t_mco_b stays without a t_mco_c linkage line",
                    "orphan_stay_share", "PMSI MCO: every RSA has its linkage line (T_MCOaaC)",
                    max_value=ORPHAN_STAY_MAX),
            _metric(between, "stay_has_linkage.any", "warning", "every t_mco_b stay has its linkage line",
                    "orphan_stay_share", "PMSI MCO: every RSA has its linkage line (T_MCOaaC)",
                    max_value=0),
        ]
    return out


def _twin(kind: str, column: str | tuple[str, ...], name: str, rule: str, critical: float,
          warning: float | None = DIRT_TOLERANCE, basis: str = "", **params: Any) -> list[LineRule]:
    """A critical line rule with a tolerance and its stricter warning twin ``<name>.any``."""
    columns = (column,) if isinstance(column, str) else column
    out = [LineRule(name, "critical", rule, kind, columns, critical, params, basis)]
    if warning is not None and warning > critical:
        out.append(LineRule(f"{name}.any", "warning", rule + " (any dirt above 0.1%)", kind, columns, warning,
                            params, basis))
    return out


def _regex(column: str, kind: str, regex: str, basis: str, critical: float = CODE_TOLERANCE) -> list[LineRule]:
    return _twin("regex", column, f"{column}.{kind}", f"{column} matches {regex}", critical, basis=basis, regex=regex)


def _in_set(column: str, kind: str, values: Iterable[Any], basis: str,
            critical: float = CODE_TOLERANCE) -> list[LineRule]:
    values = list(values)
    shown = values if len(values) <= 10 else f"{len(values)} codes (quality/formats.py)"
    return _twin("in_set", column, f"{column}.{kind}", f"{column} in {shown}", critical, basis=basis, values=values)


def _range(column: str, kind: str, low: float | None, high: float | None, basis: str,
           critical: float = CODE_TOLERANCE, warning: float | None = DIRT_TOLERANCE) -> list[LineRule]:
    return _twin("range", column, f"{column}.{kind}", f"{column} within [{low}, {high}]", critical, warning,
                 basis=basis, low=low, high=high)


def _cip13(column: str, critical: float = CODE_TOLERANCE) -> list[LineRule]:
    return _twin("cip13", column, f"{column}.cip13_format",
                 f"{column}: 13 digits, prefix 34009, valid EAN-13 check digit", critical, basis=BASIS_CIP)


def _pseudonym(column: str) -> list[LineRule]:
    # Zero tolerance: a malformed pseudonym is silently another person (a NUL byte, a space, a lower-case letter).
    return _regex(column, "pseudonym_format", formats.NIR_PSA, BASIS_DICTIONARY, critical=1.0)


def _date_order(name: str, later: str, earlier: str, rule: str, basis: str = BASIS_LOGIC,
                **params: Any) -> LineRule:
    return LineRule(name, "critical", rule, "date_order", (later, earlier), ORDER_TOLERANCE, params, basis)


def _source_rules() -> dict[str, list[LineRule]]:
    """The code rules of each source, each with the reference it comes from."""
    return {
        "ir_ben_r": [
            *_in_set("BEN_SEX_COD", "sex_value_set", formats.SEX_CODES, BASIS_IR_SEX_V),
            *_in_set("BEN_RES_DPT", "department_value_set", formats.DEPARTMENTS, "INSEE department codes (COG)"),
            *_regex("BEN_NAI_ANN", "year_format", formats.YEAR, BASIS_DICTIONARY),
            *_regex("BEN_NAI_MOI", "month_format", formats.MONTH, BASIS_DICTIONARY),
            *_regex("BEN_RES_COM", "commune_format", formats.COMMUNE, "INSEE commune codes (COG)"),
            *_pseudonym("BEN_NIR_PSA"),
            *_range("BEN_RNG_GEM", "twin_rank_range", 1, 9, BASIS_DICTIONARY),
            _date_order("death_after_birth", "BEN_DCD_DTE", BIRTH,
                        "no death before the month of birth (BEN_DCD_DTE >= BEN_NAI_ANN-BEN_NAI_MOI-01)"),
        ],
        "ir_pha_r": [
            # The referential is small and authoritative: no tolerance.
            *_cip13("PHA_CIP_C13", critical=1.0),
            *_regex("PHA_ATC_C07", "atc_format", formats.ATC7, "WHO ATC classification, level 5", critical=1.0),
            *_range("PHA_UNT_NBR_DSES", "units_range", 1, 1000, BASIS_DICTIONARY, critical=1.0),
        ],
        "er_pha_f": [
            *_cip13("PHA_PRS_C13"),
            # Regularisation lines are legitimately negative (about 1%); ~5% negatives is a fault.
            *_range("PHA_ACT_QSN", "quantity_range", 1, 100, BASIS_DICTIONARY, warning=None),
            *_range("PHA_ACT_PRU", "price_range", 0, 10000, BASIS_DICTIONARY),
        ],
        "er_prs_f": [
            *_in_set("DPN_QLF", "dpn_qlf_value_set", formats.DPN_QLF_CODES, BASIS_IR_DPN_V),
            *_in_set("PRS_NAT_REF", "nature_value_set", formats.DCIR_NATURES, BASIS_IR_NAT_V),
            *_pseudonym("BEN_NIR_PSA"),
            *_range("BEN_RNG_GEM", "twin_rank_range", 1, 9, BASIS_DICTIONARY),
            _date_order("flux_after_care", "FLX_DIS_DTD", "EXE_SOI_DTD",
                        "the flux month (FLX_DIS_DTD) is on or after the month of care (EXE_SOI_DTD), for care dates "
                        "up to the extraction date (a later one is excluded by EXE_SOI_DTD.not_after_extraction)",
                        BASIS_DICTIONARY, earlier_month=True, until_extraction=True),
        ],
        "t_mco_b": [
            *_regex("DGN_PAL", "icd10_format", formats.ICD10, BASIS_ICD10),
            *_regex("DGN_REL", "icd10_format", formats.ICD10, BASIS_ICD10),
            *_regex("ETA_NUM", "finess_format", formats.FINESS, "FINESS establishment number"),
            *_range("SEJ_NBJ", "length_of_stay_range", 0, 365, "PMSI MCO coding rules (ATIH)"),
            *_regex("SOR_ANN", "year_format", formats.YEAR, BASIS_DICTIONARY),
        ],
        "t_mco_c": [
            *_regex("ETA_NUM", "finess_format", formats.FINESS, "FINESS establishment number"),
            *_pseudonym("NIR_ANO_17"),
            _date_order("stay_dates_order", "EXE_SOI_DTF", "EXE_SOI_DTD",
                        "exit date on or after entry date"),
        ],
        "t_mco_d": [*_regex("ASS_DGN", "icd10_format", formats.ICD10, BASIS_ICD10)],
        "t_mco_a": [
            # 1%, not 3%: the ATIH grouping (GENRSA) puts a stay with an act outside the CCAM in error, so a
            # delivered PMSI holds almost none; a quarter's delta of a regional cohort is a few dozen acts.
            *_regex("CDC_ACT", "ccam_format", formats.CCAM, BASIS_CCAM, critical=0.99),
            *_range("ENT_DAT_DEL", "act_delay_range", 0, 365, "PMSI MCO coding rules (ATIH)"),
        ],
        "registry_cases": [
            *_regex("TOP_ICDO3", "icdo3_topography_format", formats.ICDO3_TOPOGRAPHY, BASIS_REGISTRY),
            *_regex("MOR_ICDO3", "icdo3_morphology_format", formats.ICDO3_MORPHOLOGY, BASIS_REGISTRY),
            *_regex("CIM10", "icd10_format", formats.ICD10, BASIS_ICD10),
            *_in_set("STADE", "stage_value_set", formats.STAGES, BASIS_REGISTRY),
            *_pseudonym("BEN_NIR_PSA"),
        ],
        "ki_cci_r": [
            *_regex("DCD_CIM_COD", "icd10_format", formats.ICD10, BASIS_ICD10),
            *_in_set("DCD_DPT_COD", "department_value_set", formats.DEPARTMENTS, "INSEE department codes (COG)"),
            *_pseudonym("BEN_NIR_ANO"),
        ],
        "ir_geo_fdep": [
            *_in_set("DPT_COD", "department_value_set", formats.DEPARTMENTS, "INSEE department codes (COG)"),
            *_regex("COM_COD", "commune_format", formats.COMMUNE, "INSEE commune codes (COG)"),
            *_range("FDEP_QUINT", "quintile_range", 1, 5, "FDep (Rey et al. 2009) national quintiles", critical=1.0),
        ],
    }


def raw_line_rules(src: Source) -> list[LineRule]:
    """Line-level rules of ``src``: mandatory fields, dates, the source's own code rules, then its exclusion rules.

    Every rule is checked on every line (:mod:`oncopipe.quality.line_rules`); none is sampled. A date after the
    extraction date has no tolerance (``<column>.not_after_extraction``): no line can describe what has not
    happened yet, and three such lines move a person's end of data years ahead. Where an exclusion rule of the
    same name exists (:mod:`oncopipe.quality.exclusions`: a dispensing's care date), such lines are excluded in
    staging and counted instead, up to the rule's ceiling.
    """
    out: list[LineRule] = []
    excluded = exclusions.exclusions(src.name)
    named = {e.name for e in excluded}
    for col in src.columns:
        if not col.nullable:
            out += _twin("not_null", col.name, f"{col.name}.not_null", f"{col.name} is mandatory", NULL_TOLERANCE,
                         basis=BASIS_DICTIONARY)
        if col.type == "date":
            out += _twin("date_parse", col.name, f"{col.name}.date_parse", f"{col.name} parses as an ISO date",
                         DATE_TOLERANCE, basis=BASIS_DICTIONARY)
            out += _twin("date_range", col.name, f"{col.name}.date_range",
                         f"{col.name} within [{EARLIEST_DATE}, extraction date]", DATE_TOLERANCE, basis=BASIS_LOGIC,
                         low=EARLIEST_DATE)
            if f"{col.name}.not_after_extraction" not in named:  # else an exclusion rule below
                out.append(LineRule(f"{col.name}.not_after_extraction", "critical",
                                    f"{col.name} on or before the extraction date", "date_range", (col.name,), 1.0,
                                    {"low": "0001-01-01"}, BASIS_LOGIC))
    return out + _source_rules().get(src.name, []) + [r for e in excluded for r in e.line_rules()]


def raw_rows_expectations(src: Source) -> list[Any]:
    """One expectation per line rule of ``src``, on the share of judged lines breaking it (rules frame)."""
    return [_metric(gxe.ExpectColumnValuesToBeBetween, r.name, r.severity, r.rule, r.name, r.basis, min_value=0,
                    max_value=r.max_share, consequence=r.consequence) for r in raw_line_rules(src)]


def raw_suites() -> list[Any]:
    """The two raw-gate suites of every landing source (extraction level, then line level)."""
    suites = []
    for src in SOURCES:
        suites.append(_suite(raw_suite_name(src.name, "extraction"), raw_extraction_expectations(src)))
        suites.append(_suite(raw_suite_name(src.name, "rows"), raw_rows_expectations(src)))
    return suites


# ------------------------------------------------------------------------------------------- marts gate

MART_RATIO_CRITICAL = (0.5, 2.0)
"""Critical band of a mart's rows relative to the previous published version (the largest change of an event rate,
death, treatment or discontinuation, is the setting ``gate_event_rate_max_shift``)."""


def _unique(mart: Mart) -> Any:
    name = "key_unique"
    rule = f"one row per ({', '.join(mart.key)})"
    if len(mart.key) == 1:
        return _expectation(gxe.ExpectColumnValuesToBeUnique, name, "critical", rule, column=mart.key[0])
    return _expectation(gxe.ExpectCompoundColumnsToBeUnique, name, "critical", rule, column_list=list(mart.key))


def _mart_between(column: str, kind: str, low: Any, high: Any, rule: str, **kwargs: Any) -> Any:
    return _expectation(gxe.ExpectColumnValuesToBeBetween, f"{column}.{kind}", "critical", rule, column=column,
                        min_value=low, max_value=high, **kwargs)


def _mart_set(column: str, kind: str, values: list[Any], rule: str, **kwargs: Any) -> Any:
    return _expectation(gxe.ExpectColumnValuesToBeInSet, f"{column}.{kind}", "critical", rule, column=column,
                        value_set=values, **kwargs)


def _when(condition: str) -> dict[str, str]:
    return {"row_condition": condition, "condition_parser": "pandas"}


SITES = ["lung", "pancreas", "liver", "oesophagus", "stomach", "cns"]
TREATMENTS = ["surgery", "chemotherapy", "radiotherapy"]

def _mart_rules() -> dict[str, list[Any]]:
    """The rules of each mart (fresh objects on every call)."""
    return {
        "breast_cancer_endocrine_cohort": [
            _mart_between("follow_up_days", "non_negative", 1, 1827, "follow-up of 1 day to 5 years"),
            _mart_between("follow_up_months", "range", 1, 60, "1..60 follow-up months"),
            _mart_set("follow_up_end_reason", "value_set", ["death", "end_of_data", "five_years"],
                      "known follow-up end reasons"),
            _mart_set("first_class", "value_set", ["SERM", "aromatase_inhibitor"], "hormone-therapy classes"),
            _mart_between("deprivation_quintile", "range", 1, 5, "FDep quintile 1..5"),
            _expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB, "index_after_diagnosis", "critical",
                         "index date on or after diagnosis", column_A="index_date", column_B="diagnosis_date",
                         or_equal=True),
            _expectation(gxe.ExpectColumnValuesToNotBeNull, "death_date.dead_have_date", "critical",
                         "a woman whose follow-up ends by death has a death date (not censored and dead at once)",
                         column="death_date", **_when('follow_up_end_reason=="death"')),
        ],
        "endocrine_adherence_monthly": [
            _mart_between("pdc", "unit_interval", 0, 1, "PDC within [0, 1]"),
            _mart_between("month_index", "range", 0, 59, "months 0..59"),
            _mart_between("days_in_month", "range", 1, 31, "1..31 days in a month window"),
            _mart_between("days_covered", "non_negative", 0, 31, "covered days within the month"),
            _mart_between("days_hospitalised", "non_negative", 0, 31, "hospital days within the month"),
            _mart_set("is_discontinued", "binary", [True, False], "discontinuation flag is binary"),
        ],
        "poor_prognosis_cases": [
            _expectation(gxe.ExpectCompoundColumnsToBeUnique, "person_site_unique", "critical",
                         "a person is counted once per cancer site", column_list=["person_id", "site"]),
            _mart_set("site", "value_set", SITES, "poor-prognosis sites"),
            _mart_set("event", "binary", [0, 1], "event flag is 0/1"),
            _mart_between("follow_up_days", "non_negative", 0, None, "follow-up >= 0 days"),
            _mart_set("sex", "value_set", ["male", "female"], "sex"),
            _mart_set("first_treatment_kind", "value_set", TREATMENTS, "treatment kinds"),
            _mart_between("deprivation_quintile", "range", 1, 5, "FDep quintile 1..5"),
            _expectation(gxe.ExpectColumnValuesToBeNull, "censored_not_dead", "critical",
                         "a censored case (event 0) has no death date", column="death_date", **_when("event==0")),
            _expectation(gxe.ExpectColumnValuesToNotBeNull, "dead_have_date", "critical",
                         "a case with event 1 has a death date", column="death_date", **_when("event==1")),
        ],
        "care_pathway_delays": [
            _mart_between("delay_days", "non_negative", 0, None, "delay >= 0 days"),
            _mart_set("treated", "binary", [True, False], "treated flag is binary"),
            _mart_set("site", "value_set", SITES, "poor-prognosis sites"),
            _expectation(gxe.ExpectColumnValuesToNotBeNull, "treated_have_delay", "critical",
                         "a treated case has a delay", column="delay_days", **_when("treated==True")),
        ],
    }


def mart_expectations(mart: Mart) -> list[Any]:
    """Checks of one candidate mart: contract columns, key, ranges, flags, exclusive groups."""
    return [
        _expectation(gxe.ExpectTableColumnsToMatchOrderedList, "column_list", "critical",
                     "columns exactly as the mart contract (contracts/marts.py)", column_list=mart.column_names),
        _unique(mart),
        *_mart_rules().get(mart.name, []),
        # What the studies refuse, the gate refuses, naming them (value-set checks ignore nulls).
        *(_expectation(gxe.ExpectColumnValuesToNotBeNull, f"{column}.required_by_studies", "critical",
                       f"{column} not null: analysis kind(s) {', '.join(kinds)} refuse a row without it",
                       column=column)
          for column, kinds in not_null_requirements(mart.name).items()),
    ]


def comparison_expectations() -> list[Any]:
    """Checks of the candidate against the published version and across marts (extraction-style frame)."""
    between = gxe.ExpectColumnValuesToBeBetween
    shift = get_settings().gate_event_rate_max_shift
    return [
        _metric(between, "cohort_size_vs_published", "critical",
                f"each mart's rows within {MART_RATIO_CRITICAL} x the published version", "mart_rows_ratio",
                min_value=MART_RATIO_CRITICAL[0], max_value=MART_RATIO_CRITICAL[1]),
        _metric(between, "event_rate_vs_published", "critical",
                f"event rates move by at most {shift} vs the published version", "event_rate_shift",
                max_value=shift),
        _metric(between, "mart_not_empty", "critical", "each mart has rows", "mart_rows", min_value=1),
        _metric(between, "exclusive_groups", "critical",
                "no person in two exclusive groups (censored and dead; a case counted twice)",
                "exclusive_group_violations", max_value=0),
        _metric(between, "referential_integrity", "critical",
                "monthly rows belong to cohort women; delays belong to poor-prognosis cases", "orphan_rows",
                max_value=0),
    ]


def marts_suites() -> list[Any]:
    """One suite per mart of contracts/marts.py plus ``marts.comparisons``."""
    suites = [(marts_suite_name(m.name), mart_expectations(m)) for m in MARTS]
    suites.append((marts_suite_name("comparisons"), comparison_expectations()))
    for _, expectations in suites:
        for expectation in expectations:
            expectation.meta["consequence"] = MARTS_CONSEQUENCES[expectation.severity.value]
    return [_suite(name, expectations) for name, expectations in suites]


def threshold_suites() -> list[Any]:
    """The suites whose bounds are deployment settings (``ONCOPIPE_GATE_*``): every raw extraction suite (volumes,
    months, distributions) and ``marts.comparisons`` (event rates)."""
    comparisons = marts_suite_name("comparisons")
    return ([_suite(raw_suite_name(src.name, "extraction"), raw_extraction_expectations(src)) for src in SOURCES]
            + [s for s in marts_suites() if s.name == comparisons])


def all_suites() -> list[Any]:
    """Every suite the gates use."""
    return raw_suites() + marts_suites()


def index_columns(suite_name: str) -> list[str]:
    """Columns GX reports for sample rows of a failed expectation of ``suite_name``."""
    parts = suite_name.split(".")
    if parts[0] == "marts" and parts[1] != "comparisons":
        return list(next(m for m in MARTS if m.name == parts[1]).key)
    return ["subject", "detail"]
