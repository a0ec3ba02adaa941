"""What the delivery layer knows of a study and of a published export: shared by the report, the export folder
and the mail (so that none of them imports another for its types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE_FORMATS = ("csv", "parquet")
FIGURE_FORMATS = ("png", "svg")
REPORT_FORMATS = ("html", "markdown", "none")


class ExportError(RuntimeError):
    """An export could not be built or verified; the message names the study, run and step."""


@dataclass(frozen=True)
class StudyInfo:
    """What publishing needs to know about a study (read from the registry by :meth:`of`)."""

    study_id: str
    title: str
    approval_reference: str
    approval_committee: str = ""
    principal_investigator: str = ""
    recipients: tuple[str, ...] = ()
    table_formats: tuple[str, ...] = TABLE_FORMATS
    figure_formats: tuple[str, ...] = FIGURE_FORMATS
    report: str = "html"
    keep_last: int | None = None

    @classmethod
    def of(cls, study: Any) -> StudyInfo:
        """Read a pydantic ``Study``, a mapping or any object with the documented keys."""
        if isinstance(study, StudyInfo):
            return study

        def get(obj: Any, key: str, default: Any = None) -> Any:
            if obj is None:
                return default
            if isinstance(obj, Mapping):
                return obj.get(key, default)
            return getattr(obj, key, default)

        approval = get(study, "approval")
        export = get(study, "export")
        pi = get(study, "principal_investigator")
        if pi is not None and not isinstance(pi, str):
            pi = " ".join(x for x in (get(pi, "name", ""), f"<{get(pi, 'email')}>" if get(pi, "email") else "") if x)
        recipients = tuple(r if isinstance(r, str) else str(get(r, "email")) for r in get(study, "recipients") or ())
        info = cls(
            study_id=str(get(study, "id") or get(study, "study_id") or ""),
            title=str(get(study, "title") or ""),
            approval_reference=str(get(approval, "reference") or get(study, "approval_reference") or ""),
            approval_committee=str(get(approval, "committee") or get(study, "approval_committee") or ""),
            principal_investigator=pi or "",
            recipients=recipients,
            table_formats=tuple(get(export, "formats") or TABLE_FORMATS),
            figure_formats=tuple(get(export, "figures") or FIGURE_FORMATS),
            report=str(get(export, "report") or "html"),
            keep_last=get(export, "keep_last"),
        )
        missing = [k for k in ("study_id", "title", "approval_reference") if not getattr(info, k)]
        if missing:
            raise ExportError(f"study metadata lacks {missing}: every export must name its study and approval")
        unsupported = sorted(set(info.table_formats) - set(TABLE_FORMATS)) + sorted(
            set(info.figure_formats) - set(FIGURE_FORMATS)) + ([info.report] if info.report not in REPORT_FORMATS
                                                                 else [])
        if unsupported:
            raise ExportError(f"study {info.study_id}: export option(s) {unsupported} not supported; tables: "
                              f"{TABLE_FORMATS}, figures: {FIGURE_FORMATS}, report: {'|'.join(REPORT_FORMATS)}")
        return info


@dataclass(frozen=True)
class ExportInfo:
    """A published export: where it is and what it holds."""

    study_id: str
    run_id: str
    path: Path
    manifest: Path
    report: Path | None
    files: dict[str, str]
    recipients: tuple[str, ...]
    approval_reference: str
    masked_by_rule: dict[str, int] = field(default_factory=dict)
    audit_event_id: int = 0
