"""The researcher's report: one self-contained HTML file (inline CSS, figures as base64 PNG, no external asset).

It is rendered from the disclosure-controlled result only, so it can show nothing the tables had to hide,
and holds no wall-clock time, so re-running a run writes the same bytes. Sections: data and code version,
methods (written from the study metadata, the provenance and the analysis parameters), the disclosure rules
applied and how many cells each masked, the quality-gate summary, the result tables and the figures.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from oncopipe.delivery import codebook
from oncopipe.delivery.disclosure import MASK_MARKER, MASK_SUFFIX, ControlledResult, rule_text

if TYPE_CHECKING:
    from oncopipe.delivery.metadata import StudyInfo

TEMPLATES_DIR = Path(__file__).parent / "templates"
MAX_REPORT_ROWS = 200
OPEN_ROWS = 10  # longer tables start folded in the report (the contents link to each; print unfolds them)


@dataclass(frozen=True)
class GateSummary:
    """One quality-gate validation as the report and the manifest show it."""

    id: str
    name: str
    success: bool
    evaluated: int
    passed: int

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> GateSummary:
        """Read a validation summary; accepts GX-style key names as well as the short ones."""
        evaluated = raw.get("evaluated", raw.get("evaluated_expectations", 0))
        passed = raw.get("passed", raw.get("successful_expectations", raw.get("pass_count", 0)))
        return cls(id=str(raw.get("id", raw.get("validation_id", ""))),
                   name=str(raw.get("name", raw.get("suite", raw.get("suite_name", "")))),
                   success=bool(raw.get("success", passed == evaluated)),
                   evaluated=int(evaluated), passed=int(passed))


def environment(*, autoescape: bool = True) -> jinja2.Environment:
    """The jinja2 environment of oncopipe's templates (HTML autoescaped, strict about undefined names)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=autoescape,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _format_value(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def methods_paragraphs(controlled: ControlledResult, study: StudyInfo, provenance: Mapping[str, Any]) -> list[str]:
    """The methods section, written from the study metadata, the provenance and the analysis."""
    result = controlled.result
    paragraphs = [
        f"This export of the study “{study.title}” ({study.study_id}) was produced under the approval "
        f"{study.approval_reference}"
        + (f" granted by {study.approval_committee}" if study.approval_committee else "")
        + ". It reads only the published marts named by that approval."
    ]
    data = "The analysis read the published mart version " + str(provenance.get("mart_version") or "unknown")
    if provenance.get("extraction_date"):
        data += f", built from the SNDS-shaped extraction of {provenance['extraction_date']}"
    data += (", after the raw-data and mart quality gates passed (summary below). Marts are built with dbt "
             "from the landed extraction and published as versioned Parquet snapshots.")
    paragraphs.append(data)
    params = ", ".join(f"{k} = {_format_value(v)}" for k, v in sorted(result.parameters.items()))
    paragraphs.append(f"Analysis “{result.analysis}” was run "
                      + (f"with parameters {params}." if params else "with its default parameters."))
    if result.methods:
        paragraphs += [p.strip() for p in result.methods.split("\n\n") if p.strip()]
    if result.references:
        paragraphs.append("Each estimator agrees with its reference implementation on the reference's own data "
                          "(tested): " + "; ".join(f"{k}: {v}" for k, v in result.references.items()) + ".")
    return paragraphs


NOT_REACHED = "—"


def disclosure_text(controlled: ControlledResult) -> str:
    """One paragraph stating the disclosure rules the export was controlled with."""
    n, threshold = len(controlled.report.masked), controlled.threshold
    return (f"No count of 1 to {threshold - 1} people is shown: such counts, and statistics computed on fewer than "
            f"{threshold} people, are shown as “{MASK_MARKER}” in this report; in the CSV and Parquet files the "
            f"cell is empty and its column <column>{MASK_SUFFIX} says true. Further cells are masked so that no "
            "masked cell can be recomputed from row or column totals, from another table of this export, or by "
            f"comparison with an earlier export of this study. Curve rows with fewer than {threshold} people at risk "
            f"are omitted, and so is a curve row where fewer than {threshold} people left since the row before it "
            "(the difference of two numbers at risk is the number who left): curves are published on coarser "
            "steps, each row with its true value. The same marker is used for every reason, so small cells cannot "
            f"be told from their complements. In all, {n} cell(s) or row(s) were masked or omitted; "
            f"disclosure.json lists each one and its rule, never its value. “{NOT_REACHED}” is not a masked cell: "
            "it marks a value not reached or not estimable (e.g. a median survival not reached); the CSV leaves it "
            f"empty and the Parquet null, with <column>{MASK_SUFFIX} false.")


def _display(value: Any) -> str:
    """A cell as the report shows it: as the CSV writes it (rounded to the codebook's precision)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _table_view(controlled: ControlledResult, name: str, formats: Sequence[str]) -> dict[str, Any]:
    table = controlled.result.table(name)
    mask = controlled.masks[name]
    numeric = set(mask.columns)
    # the CSV's flag columns are for programs: the report writes the marker in the masked cell itself
    frame = codebook.csv_frame(controlled, name).drop(columns=[c + MASK_SUFFIX for c in numeric])
    masked = {c: mask[c].to_numpy(dtype=bool) for c in numeric}
    rows = []
    for i, record in enumerate(frame.head(MAX_REPORT_ROWS).itertuples(index=False)):
        row = []
        for col, value in zip(frame.columns, record, strict=True):
            text = _display(value)
            cls = "num" if col in numeric else ""
            if col in masked and masked[col][i]:
                text, cls = MASK_MARKER, "masked"
            elif not text and col in numeric:
                # A blank number is not reached or not estimable (a median survival not reached): shown
                # apart from masked, which hides a value that exists.
                text, cls = NOT_REACHED, "na"
            row.append((text, cls))
        rows.append(row)
    return {"name": name, "description": table.description, "columns": [str(c) for c in frame.columns],
            "headers": [(codebook.label_and_unit(str(c))[0], str(c)) for c in frame.columns],
            "files": [f"tables/{name}.{fmt}" for fmt in formats],
            "rows": rows, "truncated": len(frame) > MAX_REPORT_ROWS, "total_rows": len(frame)}


def render_report(controlled: ControlledResult, study: StudyInfo, provenance: Mapping[str, Any], *,
                  code_version: str, figures: Sequence[tuple[str, str, bytes]] = ()) -> str:
    """Render the HTML report.

    The report holds no run identity (run id, dbt invocation id): those live in the manifest's run fields
    only, so a re-run of the same analysis on the same mart version (after a kill, say) gives the same bytes.

    Args:
        controlled: the disclosure-controlled result.
        study: study metadata (title, approval reference, ...).
        provenance: extraction date, mart version, GX validations, code lists, row counts
            (see :func:`oncopipe.delivery.export_store.publish_export`).
        code_version: git commit of the code, or ``unknown``.
        figures: ``(name, title, png bytes)`` of each figure, drawn from the controlled tables.

    Returns:
        The HTML document.
    """
    return _render("report.html.j2", controlled, study, provenance, code_version=code_version, figures=figures)


def render_markdown_report(controlled: ControlledResult, study: StudyInfo, provenance: Mapping[str, Any], *,
                           code_version: str, figure_names: Sequence[tuple[str, str]] = ()) -> str:
    """The same report as Markdown (``export.report: markdown``); figures link to ``figures/<name>.png``."""
    return _render("report.md.j2", controlled, study, provenance, code_version=code_version,
                   figures=[(name, title, b"") for name, title in figure_names])


def _render(template_name: str, controlled: ControlledResult, study: StudyInfo, provenance: Mapping[str, Any], *,
            code_version: str, figures: Sequence[tuple[str, str, bytes]]) -> str:
    template = environment(autoescape=template_name.endswith(".html.j2")).get_template(template_name)
    counts = controlled.report.counts_by_rule()
    table_formats = list(getattr(study, "table_formats", ("csv", "parquet")))
    figure_formats = list(getattr(study, "figure_formats", ("png", "svg")))
    book: dict[str, list[codebook.Entry]] = {}
    for entry in codebook.entries(controlled):
        book.setdefault(entry.table, []).append(entry)
    return template.render(
        study=study,
        code_version=code_version,
        provenance={"extraction_date": provenance.get("extraction_date"),
                    "mart_version": provenance.get("mart_version"),
                    "code_lists": dict(provenance.get("code_lists") or {})},
        methods=methods_paragraphs(controlled, study, provenance),
        parameters=[(k, _format_value(v)) for k, v in sorted(controlled.result.parameters.items())],
        row_counts=dict(provenance.get("row_counts") or {}),
        disclosure_text=disclosure_text(controlled),
        disclosure_counts=[(rule, rule_text(rule, controlled.threshold), n) for rule, n in counts.items()],
        gates=[GateSummary.of(g) for g in provenance.get("gx_validations") or ()],
        tables=[_table_view(controlled, t.name, table_formats) for t in controlled.result.tables],
        figures=[{"name": name, "title": title, "png_base64": base64.b64encode(png).decode("ascii"),
                  "files": [f"figures/{name}.{fmt}" for fmt in figure_formats]}
                 for name, title, png in figures],
        codebook=list(book.items()),
        notes=list(controlled.result.notes),
        open_rows=OPEN_ROWS,
    )
