"""The landing contract: SNDS-shaped sources, their folders, columns and types.

This is the single description of what an extraction looks like on disk. The generator writes it,
the raw quality gate checks it, and the dbt sources read it; a real SNDS extract delivered in the
same shape lands in the same place.

Layout: ``<landing>/<source>/extraction=<YYYY-MM-DD>/part-<NNNNN>.parquet`` (or ``.csv`` with ``;`` as
separator, UTF-8, ISO dates ``YYYY-MM-DD``, empty field for null).

Delivery mode per source:
- ``snapshot``: each extraction holds the whole table as of the extraction date (referentials,
  beneficiaries, registry, causes of death). The latest accepted extraction is authoritative.
- ``delta``: each extraction holds only the lines whose flux/exit date falls after the previous
  extraction date (the DCIR claim and drug lines, PMSI stays). The union of all accepted extractions is the history;
  a line re-sent in a later flux (late reimbursement) supersedes its earlier version.

Volume tolerance per source (``max_volume_drop``): the referentials and the registry only grow between two
deliveries (a beneficiary, a case or a death is never removed), so a drop of more than 10% (5% for the fixed
FDep table) is a lost part of the delivery; the DCIR flux varies from month to month (seasonal dispensing,
reimbursement delays: about 15% between two consecutive generated deliveries) and is allowed 30%; the PMSI
deltas are small (a few hundred stays a quarter for a regional cohort) and allowed 50%.

Column names and types are those of the SNDS data dictionary (schema-snds, vendored in
``contracts/reference/snds/`` and checked by ``tests/unit/contracts/test_snds_dictionary.py``); the registry
and FDep tables are not SNDS tables and follow the French registries' (FRANCIM) variable names in the same style.
One column is the platform's own: ``PMSI_ANN`` on the four PMSI tables (``Source.year_column``), the year the insurer
puts in the table's name (T_MCO23B), kept so the years of one table stay apart once unioned.

DCIR lands as its two tables, ER_PRS_F (claim lines) and ER_PHA_F (drug lines), each keyed by the nine DCIR keys
(``DCIR_KEY``); staging joins them (``dbt_project/macros/dcir.sql``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["string", "int", "float", "date"]
Delivery = Literal["snapshot", "delta"]


@dataclass(frozen=True)
class Column:
    """One landing column.

    Attributes:
        name: SNDS dictionary name.
        type: contract type.
        description: meaning, with its nomenclature.
        nullable: whether an empty value is legitimate.
        coded: a code of a small closed set (a nomenclature value, an order number, a count of boxes): the raw
            gate compares its value distribution with the previous accepted extraction (a swapped or shifted
            column changes it). Identifiers, dates, years and free labels are not coded: they move legitimately
            from one delivery to the next.
    """

    name: str
    type: ColumnType
    description: str
    nullable: bool = False
    coded: bool = False


@dataclass(frozen=True)
class Source:
    name: str           # landing folder name and dbt source table name
    snds_table: str     # the SNDS (or registry) table it mirrors
    delivery: Delivery
    key: tuple[str, ...]
    """The unique key of a line within one extraction (a PMSI key starts with its stay, ``PMSI_STAY``)."""
    description: str
    columns: tuple[Column, ...]
    max_volume_drop: float = 0.5
    """Largest tolerated drop of lines (per flux month for a delta source) relative to the previous accepted
    extraction; a larger drop is critical (raw gate ``row_count_vs_previous``)."""
    person: str | None = None
    """The column holding the person key (the platform's pseudonym), if the source has one. A delivered file may
    name it by another pseudonym column (``PSEUDONYMS``); ``oncopipe import`` maps it to this one."""
    delivered_dates: str = "%d/%m/%Y"
    """How the insurer writes this source's dates in a delivered CSV (strptime format): DD/MM/YYYY in the DCIR
    and the referentials, DDMMYYYY in the PMSI, ISO in the registry. ``oncopipe import`` parses by it, never by
    guessing from the data; the landing itself holds typed Parquet (or ISO dates in its own CSV)."""
    year_column: str | None = None
    """For a table the insurer delivers once per year, the year being part of the table's name (T_MCO23B is
    T_MCOaaB of 2023), the platform column that keeps that year in the landing (``PMSI_ANN``): ``oncopipe import``
    fills it from the file name and refuses a file whose ``YEAR_CHECKED`` column holds another year; a file
    named without a year (``t_mco_b.parquet``) must carry the column itself. It is not a column of the SNDS
    table."""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


YEAR_CHECKED = "SOR_ANN"
"""The delivered column that must hold the year of a per-year file, on every line where it is filled (the year of
exit: a stay belongs to the PMSI year it ended in). T_MCOaaB and T_MCOaaC carry it."""


def _pmsi_year() -> Column:
    return Column("PMSI_ANN", "int", "Platform column: the PMSI year of the table the line came in (2023 for "
                  "T_MCO23B), from the delivered file's name; not a column of the SNDS table.")


def _c(name: str, type_: ColumnType, description: str, nullable: bool = False, coded: bool = False) -> Column:
    return Column(name, type_, description, nullable, coded)


DCIR_KEY: tuple[str, ...] = ("FLX_DIS_DTD", "FLX_TRT_DTD", "FLX_EMT_TYP", "FLX_EMT_NUM", "FLX_EMT_ORD",
                             "ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
"""The nine DCIR join keys: an ER_PHA_F drug line belongs to the ER_PRS_F claim line with the same nine values.
They identify a line in one flux; the same line re-sent in a later flux has other flux dates (FLX_DIS_DTD,
FLX_TRT_DTD) and the same seven others (``DCIR_LINE``)."""

DCIR_LINE: tuple[str, ...] = tuple(k for k in DCIR_KEY if k not in ("FLX_DIS_DTD", "FLX_TRT_DTD"))
"""A DCIR line across fluxes: the nine keys but the flux dates (a re-sent version supersedes the earlier one)."""

PMSI_STAY: tuple[str, ...] = ("PMSI_ANN", "ETA_NUM", "RSA_NUM")
"""A PMSI MCO stay across the four T_MCOaaB/C/D/A tables: its PMSI year, hospital (FINESS) and RSA number. ETA_NUM +
RSA_NUM number a stay within one PMSI year only (each year's tables number their stays again), so the year is part
of the key."""

_DCIR_KEY_COLUMNS: tuple[Column, ...] = (
    _c("FLX_DIS_DTD", "date", "Date the flux was made available (first day of a month)."),
    _c("FLX_TRT_DTD", "date", "Date the flux was processed."),
    _c("FLX_EMT_TYP", "int", "Type of the flux emitter.", coded=True),
    _c("FLX_EMT_NUM", "int", "Number of the flux emitter."),
    _c("FLX_EMT_ORD", "int", "Sequence number of the flux.", coded=True),
    _c("ORG_CLE_NUM", "string", "Paying fund (organisme) key."),
    _c("DCT_ORD_NUM", "int", "Claim (decompte) order number within the fund."),
    _c("PRS_ORD_NUM", "int", "Line (prestation) order number within the claim.", coded=True),
    _c("REM_TYP_AFF", "int", "Refined reimbursement type.", coded=True),
)


SOURCES: tuple[Source, ...] = (
    Source(
        "ir_ben_r", "IR_BEN_R", "snapshot", ("BEN_NIR_PSA", "BEN_RNG_GEM"),
        "Beneficiary referential: one line per beneficiary (pseudonymised NIR + twin rank).",
        (
            _c("BEN_NIR_PSA", "string", "Pseudonymised beneficiary identifier (17 characters)."),
            _c("BEN_RNG_GEM", "int", "Twin rank (1 for almost everyone).", coded=True),
            _c("BEN_SEX_COD", "int", "Sex: 1 male, 2 female (0/9 unknown).", coded=True),
            _c("BEN_NAI_ANN", "string", "Year of birth, YYYY."),
            _c("BEN_NAI_MOI", "string", "Month of birth, MM."),
            _c("BEN_RES_DPT", "string", "Department of residence, 3 characters (075, 02A, 971)."),
            _c("BEN_RES_COM", "string", "Commune of residence within the department, 3 characters."),
            _c("BEN_DCD_DTE", "date", "Date of death; null when alive or not yet known.", True),
            _c("BEN_DTE_INS", "date", "Date the beneficiary entered the referential."),
            _c("BEN_DTE_MAJ", "date", "Date of the last update of the line."),
        ),
        max_volume_drop=0.1, person="BEN_NIR_PSA",
    ),
    Source(
        "ir_pha_r", "IR_PHA_R", "snapshot", ("PHA_CIP_C13",),
        "Drug referential (subset): one line per CIP13 presentation.",
        (
            _c("PHA_CIP_C13", "string", "CIP13 code of the presentation (13 digits, starts 34009)."),
            _c("PHA_ATC_C07", "string", "ATC code, level 5 (7 characters, e.g. L02BA01)."),
            _c("PHA_ATC_L07", "string", "ATC label."),
            _c("PHA_UNT_NBR_DSES", "string", "Number of dispensing units (tablets) per box (text in the dictionary).",
               coded=True),
            _c("PHA_NOM_PA", "string", "Product label (brand or generic name, strength, pack)."),
        ),
        max_volume_drop=0.2,
    ),
    Source(
        "er_prs_f", "ER_PRS_F", "delta", DCIR_KEY,
        "DCIR claim lines (prestations): one line per service of a claim, pharmacy dispensings (PRS_NAT_REF 3317...) "
        "and the services with no drug line (a GP consultation, 1111).",
        (
            _c("BEN_NIR_PSA", "string", "Pseudonymised beneficiary identifier."),
            _c("BEN_RNG_GEM", "int", "Twin rank: with BEN_NIR_PSA identifies the beneficiary.", coded=True),
            *_DCIR_KEY_COLUMNS,
            _c("EXE_SOI_DTD", "date", "Date of care (start of care; the dispensing date of a pharmacy line)."),
            _c("PRS_NAT_REF", "int", "Nature of the service (3317 = pharmacy dispensing, 1111 = GP consultation).",
               coded=True),
            _c("DPN_QLF", "int", "Line qualifier: 0 reimbursed, 71 information only (to be dropped).", coded=True),
            _c("PSE_SPE_COD", "int", "Specialty of the prescriber (1 GP, 2 anaesthesia, 6 oncology...).", coded=True),
        ),
        max_volume_drop=0.3, person="BEN_NIR_PSA",
    ),
    Source(
        "er_pha_f", "ER_PHA_F", "delta", DCIR_KEY,
        "DCIR drug lines: the presentation, boxes and price of a pharmacy claim line of ER_PRS_F (same nine keys).",
        (
            *_DCIR_KEY_COLUMNS,
            _c("PHA_PRS_C13", "string", "CIP13 code of the dispensed presentation (an integer in the dictionary, read "
               "as text: 13 digits)."),
            _c("PHA_ACT_QSN", "int", "Number of boxes (negative on a regularisation line).", coded=True),
            _c("PHA_ACT_PRU", "float", "Unit price of a box, euros."),
        ),
        max_volume_drop=0.3,
    ),
    Source(
        "t_mco_b", "T_MCOaaB", "delta", PMSI_STAY,
        "PMSI MCO stay summary: one line per stay (RSA).",
        (
            _c("ETA_NUM", "string", "FINESS number of the hospital (9 characters)."),
            _c("RSA_NUM", "string", "Stay number within the hospital (10 characters)."),
            _c("DGN_PAL", "string", "Principal diagnosis, ICD-10 without dot (e.g. C509)."),
            _c("DGN_REL", "string", "Related diagnosis, ICD-10 without dot.", True),
            _c("GRG_GHM", "string", "Diagnosis-related group (GHM, 6 characters)."),
            _c("SEJ_NBJ", "int", "Length of stay in days (0 for a day case)."),
            _c("ENT_MOD", "string", "Mode of entry (8 home, 7 transfer).", coded=True),
            _c("SOR_MOD", "string", "Mode of exit (8 home, 7 transfer, 9 death).", coded=True),
            _c("SOR_ANN", "string", "Year of exit, YYYY."),
            _pmsi_year(),
        ),
        max_volume_drop=0.5, delivered_dates="%d%m%Y", year_column="PMSI_ANN",
    ),
    Source(
        "t_mco_c", "T_MCOaaC", "delta", PMSI_STAY,
        "PMSI MCO linkage: the patient and the dates of each stay.",
        (
            _c("ETA_NUM", "string", "FINESS number of the hospital."),
            _c("RSA_NUM", "string", "Stay number within the hospital."),
            _c("NIR_ANO_17", "string", "Pseudonymised patient identifier (same pseudonym as BEN_NIR_PSA)."),
            _c("EXE_SOI_DTD", "date", "Date of entry."),
            _c("EXE_SOI_DTF", "date", "Date of exit."),
            _c("NIR_RET", "string", "Linkage return code on the NIR ('0' = OK).", coded=True),
            _c("ENT_DAT", "date", "Date of entry as the hospital declared it (staging falls back to EXE_SOI_DTD "
               "when empty).", True),
            _c("SOR_DAT", "date", "Date of exit as the hospital declared it (staging falls back to EXE_SOI_DTF "
               "when empty).", True),
            _pmsi_year(),
        ),
        max_volume_drop=0.5, person="NIR_ANO_17", delivered_dates="%d%m%Y", year_column="PMSI_ANN",
    ),
    Source(
        "t_mco_d", "T_MCOaaD", "delta", (*PMSI_STAY, "DGN_ASS_NUM"),
        "PMSI MCO associated diagnoses.",
        (
            _c("ETA_NUM", "string", "FINESS number of the hospital."),
            _c("RSA_NUM", "string", "Stay number within the hospital."),
            _c("DGN_ASS_NUM", "int", "Order of the associated diagnosis within the stay.", coded=True),
            _c("ASS_DGN", "string", "Associated diagnosis, ICD-10 without dot."),
            _pmsi_year(),
        ),
        max_volume_drop=0.5, delivered_dates="%d%m%Y", year_column="PMSI_ANN",
    ),
    Source(
        "t_mco_a", "T_MCOaaA", "delta", (*PMSI_STAY, "CDC_ACT", "ENT_DAT_DEL", "ACV_ACT"),
        "PMSI MCO CCAM medical acts performed during a stay (T_MCOaaA numbers no act: an act is its code, day and "
        "activity within the stay).",
        (
            _c("ETA_NUM", "string", "FINESS number of the hospital."),
            _c("RSA_NUM", "string", "Stay number within the hospital."),
            _c("CDC_ACT", "string", "CCAM act code (4 letters + 3 digits, e.g. QEFA003)."),
            _c("ENT_DAT_DEL", "int", "Days between entry and the act."),
            _c("ACV_ACT", "string", "Activity code ('1' = main act).", coded=True),
            _pmsi_year(),
        ),
        max_volume_drop=0.5, delivered_dates="%d%m%Y", year_column="PMSI_ANN",
    ),
    Source(
        "registry_cases", "FRANCIM registry records", "snapshot", ("REG_ID", "REG_CAS_ID"),
        "Cancer registry records: one line per incident tumour, from the registries covering the residence.",
        (
            _c("REG_ID", "string", "Registry code (one of the French general or specialised registries)."),
            _c("REG_CAS_ID", "string", "Case identifier within the registry."),
            _c("BEN_NIR_PSA", "string", "Pseudonymised beneficiary identifier (linked)."),
            _c("DAT_DIAG", "date", "Date of diagnosis (registry incidence date)."),
            _c("TOP_ICDO3", "string", "ICD-O-3 topography (C50.9)."),
            _c("MOR_ICDO3", "string", "ICD-O-3 morphology with behaviour (8500/3)."),
            _c("CIM10", "string", "ICD-10 code derived from topography, without dot (C509)."),
            _c("STADE", "string", "Stage at diagnosis: I, II, III, IV or X (unknown).", coded=True),
            _c("BASE_DIAG", "int", "Basis of diagnosis (7 = histology of the primary).", coded=True),
        ),
        max_volume_drop=0.1, person="BEN_NIR_PSA", delivered_dates="%Y-%m-%d",
    ),
    Source(
        "ki_cci_r", "KI_CCI_R", "snapshot", ("BEN_NIR_ANO",),
        "Causes of death (CepiDc) linked to beneficiaries.",
        (
            _c("BEN_NIR_ANO", "string", "Pseudonymised identifier of the deceased (the person key, as BEN_NIR_PSA)."),
            _c("BEN_DCD_DTE", "date", "Date of death from the death certificate."),
            _c("DCD_CIM_COD", "string", "Underlying cause of death, ICD-10 without dot."),
            _c("DCD_DPT_COD", "string", "Department of death, 3 characters."),
        ),
        max_volume_drop=0.1, person="BEN_NIR_ANO",
    ),
    Source(
        "ir_geo_fdep", "FDep (commune deprivation index)", "snapshot", ("DPT_COD", "COM_COD"),
        "French deprivation index (FDep) by commune, with its national quintile (1 least deprived).",
        (
            _c("DPT_COD", "string", "Department, 3 characters."),
            _c("COM_COD", "string", "Commune within the department, 3 characters."),
            _c("FDEP_IDX", "float", "FDep index value."),
            _c("FDEP_QUINT", "int", "National population-weighted quintile of FDep, 1..5.", coded=True),
        ),
        max_volume_drop=0.05, delivered_dates="%Y-%m-%d",
    ),
)

SOURCES_BY_NAME: dict[str, Source] = {s.name: s for s in SOURCES}

PSEUDONYMS: tuple[str, ...] = ("NUM_ENQ", "BEN_NIR_PSA", "NIR_ANO_17", "BEN_NIR_ANO")
"""Patient pseudonym columns a delivered table may carry: NUM_ENQ (the study pseudonym of a project extract),
BEN_NIR_PSA (DCIR, IR_BEN_R), NIR_ANO_17 (PMSI), BEN_NIR_ANO (KI_CCI_R)."""


def source(name: str) -> Source:
    """Return the landing source called ``name`` or raise ``KeyError`` listing the known ones."""
    try:
        return SOURCES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown landing source {name!r}; known: {', '.join(SOURCES_BY_NAME)}") from None
