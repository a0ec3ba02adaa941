"""The fault catalogue: every fault the gates must stop, as data (one entry a fault).

An entry names the fault, how it is planted on a clean delivery, and what must stop it: the gate, the source,
the rule (expectation name) and the consequence: ``quarantine`` (the extraction is refused), or ``exclude`` (an
exclusion rule under its ceiling: the lines are left out of staging and counted in the ledger, the extraction is
accepted; ``excluded`` says how many lines). Two ways to plant:
- ``generator``: a fault kind of the synthetic generator (``oncopipe.synth.faults``), generated as the next
  extraction;
- ``plant``: a function that edits the clean next extraction already in the landing (the faults found by hand on
  real-shaped deliveries, issue #22), or lands an earlier delivery again under the next date.

Adding a fault is adding one entry below; ``test_fault_catalogue.py`` runs every entry.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from oncopipe.contracts.sources import SOURCES
from oncopipe.landing.layout import extraction_dir, part_files
from oncopipe.quality.suites import FAULT_EXPECTATIONS
from oncopipe.synth.faults import FAULT_KINDS

BASE, MID, NEXT = "2024-01-01", "2024-04-01", "2024-07-01"
"""Two accepted extractions, then the one each fault is planted in."""


@dataclass(frozen=True)
class Fault:
    """One fault of the catalogue.

    Attributes:
        name: what the fault is, in a few words (the test id).
        source: the landing source the gate checks for it.
        rule: the expectation that must fail (critical).
        gate: the gate that stops it.
        consequence: what its failure does.
        generator: a generator fault kind, generated as the next extraction; or
        plant: edits the landing (``plant(landing)``) after the clean next extraction has landed.
        message: a text the failure message must contain (beyond rule, observed value and sample rows).
        excluded: for ``exclude``, the number of lines the ledger must count (the lines the plant changed).
    """

    name: str
    source: str
    rule: str
    gate: str = "raw"
    consequence: str = "quarantine"
    generator: str | None = None
    plant: Callable[[Path], None] | None = None
    message: str = ""
    excluded: int = 0


def _edit(landing: Path, source: str, edit: Callable[[pa.Table], pa.Table]) -> None:
    """Apply ``edit`` to every part file of the next extraction of ``source`` (rewritten in place)."""
    for path in part_files(extraction_dir(landing, source, NEXT)):
        # A new file replaces the old one: the landed file may be a hard link to the shared clean delivery.
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(edit(pq.read_table(path)), tmp)
        tmp.replace(path)


def _set_rows(column: str, rows: list[int], value: object) -> Callable[[pa.Table], pa.Table]:
    def edit(table: pa.Table) -> pa.Table:
        values = table.column(column).to_pylist()
        for i in rows:
            if i < len(values):
                values[i] = value
        i = table.schema.get_field_index(column)
        return table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))
    return edit


def _dispensings_in_2090(rows: list[int]) -> Callable[[Path], None]:
    return lambda landing: _edit(landing, "er_prs_f", _set_rows("EXE_SOI_DTD", rows, dt.date(2090, 3, 14)))


def _boxes_1000(rows: list[int]) -> Callable[[Path], None]:
    return lambda landing: _edit(landing, "er_pha_f", _set_rows("PHA_ACT_QSN", rows, 1000))


THREE_LINES = [10, 20, 30]
"""Three dispensing lines (0.15% of NEXT's: under the exclusion ceiling of 0.5% of lines). ER_PRS_F holds its claim
lines in the order of ER_PHA_F's drug lines, then the GP consultations: these rows are pharmacy claim lines."""
EVERY_150TH = list(range(7, 40_000, 150))
"""0.67% of the dispensing lines: over the exclusion ceiling, under the 1% tolerance of the date-range rule."""


def _nul_in_pseudonym(landing: Path) -> None:
    def edit(table: pa.Table) -> pa.Table:
        nir = table.column("BEN_NIR_PSA").to_pylist()
        nir[5] = nir[5][:8] + "\x00" + nir[5][9:]
        i = table.schema.get_field_index("BEN_NIR_PSA")
        return table.set_column(i, table.schema.field(i), pa.array(nir, type=pa.string()))
    _edit(landing, "er_prs_f", edit)


def _swap_integer_columns(landing: Path) -> None:
    # Emitter type and prescriber specialty of the claim lines: both int64 codes no value rule bounds.
    def edit(table: pa.Table) -> pa.Table:
        a, b = table.schema.get_field_index("FLX_EMT_TYP"), table.schema.get_field_index("PSE_SPE_COD")
        emt, spe = table.column(a), table.column(b)
        return table.set_column(a, table.schema.field(a), spe).set_column(b, table.schema.field(b), emt)
    _edit(landing, "er_prs_f", edit)


def _negative_without_regularised_line(landing: Path) -> None:
    _edit(landing, "er_pha_f", _set_rows("PHA_ACT_QSN", [40], -30))


def _unmatched_small_regularisation(landing: Path) -> None:
    # Within the plausible range, so only the matching rule can see it.
    _edit(landing, "er_pha_f", _set_rows("PHA_ACT_QSN", [40], -1))


def _land_again(date: str) -> Callable[[Path], None]:
    """Replace the next extraction by the delivery of ``date``, landed again under the next date."""
    def plant(landing: Path) -> None:
        for src in SOURCES:
            target = extraction_dir(landing, src.name, NEXT)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(extraction_dir(landing, src.name, date), target)
    return plant


def _keep_first_rows(source: str, share: float) -> Callable[[Path], None]:
    """Keep only the first ``share`` of the lines, in line order (files removed from the end of a delivery)."""
    def plant(landing: Path) -> None:
        _edit(landing, source, lambda t: t.slice(0, int(len(t) * share)))
    return plant


def _nature_out_of_nomenclature(landing: Path) -> None:
    _edit(landing, "er_prs_f", lambda t: t.set_column(
        t.schema.get_field_index("PRS_NAT_REF"), "PRS_NAT_REF", pa.array(np.full(len(t), 9999), type=pa.int64())))


def _drug_lines_on_consultations(landing: Path) -> None:
    # Every 20th pharmacy claim line becomes a GP consultation (a valid nature): its drug line is on no pharmacy claim.
    _edit(landing, "er_prs_f", _set_rows("PRS_NAT_REF", list(range(0, 2000, 20)), 1111))


def _cip13_outside_referential(landing: Path) -> None:
    # 3400930000000 + check digit: a well-formed CIP13 that IR_PHA_R does not hold.
    stem = "340093999999"
    code = stem + str((10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(stem)) % 10) % 10)
    _edit(landing, "er_pha_f", _set_rows("PHA_PRS_C13", list(range(0, 2000, 20)), code))


def _care_before_birth(landing: Path) -> None:
    _edit(landing, "er_prs_f", _set_rows("EXE_SOI_DTD", [3, 13, 23, 33, 43], dt.date(1901, 6, 1)))


def _flux_before_care(landing: Path) -> None:
    def edit(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index("FLX_DIS_DTD")
        care = table.column("EXE_SOI_DTD")
        rows = np.zeros(len(table), dtype=bool)
        rows[::50] = True
        early = pc.if_else(pa.array(rows), pc.subtract(care, pa.scalar(dt.timedelta(days=62))),
                           table.column("FLX_DIS_DTD"))
        return table.set_column(i, table.schema.field(i), pc.cast(early, pa.date32()))
    _edit(landing, "er_prs_f", edit)


HAND_MADE: tuple[Fault, ...] = (
    Fault("three dispensings dated 2090", "er_prs_f", "EXE_SOI_DTD.not_after_extraction.excluded",
          consequence="exclude", plant=_dispensings_in_2090(THREE_LINES), message="2090-03-14", excluded=3),
    Fault("0.67% of dispensings dated 2090 (over the ceiling)", "er_prs_f", "EXE_SOI_DTD.not_after_extraction",
          plant=_dispensings_in_2090(EVERY_150TH), message="2090-03-14"),
    Fault("1,000 boxes in three dispensings", "er_pha_f", "PHA_ACT_QSN.plausible_boxes.excluded",
          consequence="exclude", plant=_boxes_1000(THREE_LINES), message='"PHA_ACT_QSN": 1000', excluded=3),
    Fault("1,000 boxes in 0.67% of dispensings (over the ceiling)", "er_pha_f", "PHA_ACT_QSN.plausible_boxes",
          plant=_boxes_1000(EVERY_150TH), message='"PHA_ACT_QSN": 1000'),
    Fault("NUL byte in a pseudonym", "er_prs_f", "BEN_NIR_PSA.pseudonym_format", plant=_nul_in_pseudonym,
          message="\\u0000"),
    Fault("two same-type integer columns swapped", "er_prs_f", "distribution_drift", plant=_swap_integer_columns,
          message="PSE_SPE_COD"),
    Fault("negative quantity -30 with no line it regularises", "er_pha_f", "regularisation_matched",
          plant=_negative_without_regularised_line, message='"PHA_ACT_QSN": -30'),
    Fault("negative quantity -1 with no line it regularises", "er_pha_f", "regularisation_matched",
          plant=_unmatched_small_regularisation, message='"PHA_ACT_QSN": -1'),
    Fault("same extraction landed again under a later date", "er_pha_f", "delivery_fingerprint",
          plant=_land_again(MID), message=f'"repeats_extraction": "{MID}"'),
    Fault("duplicated delivery brings no new flux month", "er_pha_f", "flux_after_previous",
          plant=_land_again(MID)),
    Fault("old extraction re-delivered as new", "er_pha_f", "delivery_fingerprint", plant=_land_again(BASE),
          message=f'"repeats_extraction": "{BASE}"'),
    Fault("half the dispensing lines missing", "er_pha_f", "row_count_vs_previous",
          plant=_keep_first_rows("er_pha_f", 0.5)),
    Fault("45% of beneficiaries missing", "ir_ben_r", "row_count_vs_previous",
          plant=_keep_first_rows("ir_ben_r", 0.55)),
    Fault("PRS_NAT_REF outside the nomenclature", "er_prs_f", "PRS_NAT_REF.nature_value_set",
          plant=_nature_out_of_nomenclature),
    Fault("drug lines on GP consultation claim lines", "er_pha_f", "drug_line_claim_is_pharmacy",
          plant=_drug_lines_on_consultations, message='"PRS_NAT_REF": 1111'),
    Fault("CIP13 absent from IR_PHA_R", "er_pha_f", "cip13_in_referential", plant=_cip13_outside_referential,
          message="3400939999"),
    Fault("dispensings before birth", "er_prs_f", "care_after_birth", plant=_care_before_birth,
          message="1901-06-01"),
    Fault("flux month before the month of care", "er_prs_f", "flux_after_care", plant=_flux_before_care),
)

GENERATED: tuple[Fault, ...] = tuple(
    Fault(f"generator: {k.kind}", FAULT_EXPECTATIONS[k.kind][0], FAULT_EXPECTATIONS[k.kind][1], generator=k.kind)
    for k in FAULT_KINDS)

CATALOGUE: tuple[Fault, ...] = HAND_MADE + GENERATED
