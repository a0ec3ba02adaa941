"""What each task of a study DAG does, without Airflow: check, analyse, control, report, export, notify.

The DAG factory wraps these functions in tasks. They pass their results through files in the run's work
folder (``<home>/work/<study>/<run>/``): a :class:`~oncopipe.contracts.results.StudyResult` holds DataFrames and figure
``draw`` functions, which do not fit in XCom, so each step pickles what it hands on (cloudpickle, since
``draw`` may be a closure) and returns the file path. The work folder never leaves the platform; what
researchers receive is written by :func:`export` only, after disclosure control.

Every function is idempotent: re-running a task rewrites the same files.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from oncopipe.contracts.settings import get_settings
from oncopipe.studies.registry import ApprovalError, Study, StudyError, check_approval, check_reads, get_study


class NoPublishedMarts(StudyError):
    """No published mart version exists yet (or the requested one does not)."""


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that re-running cannot fix; the DAG fails on them without retrying."""
    from oncopipe.contracts.results import InputValidationError, NotEnoughData
    from oncopipe.delivery.disclosure import DisclosureViolation

    return (StudyError, NotEnoughData, InputValidationError, DisclosureViolation, KeyError)


@dataclass
class StudyRunState:
    """What travels from one study task to the next (pickled in the work folder)."""

    study: Study
    checked: dict[str, Any]
    run_id: str
    workdir: Path
    result: Any = None
    controlled: Any = None
    report_path: Path | None = None
    export_path: Path | None = None
    export_info: Any = None

    def save(self, step: str) -> Path:
        path = self.workdir / f"{step}.pkl"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(cloudpickle.dumps(self))
        tmp.replace(path)
        return path

    @staticmethod
    def load(path: Path) -> StudyRunState:
        return cloudpickle.loads(Path(path).read_bytes())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def work_folder(study_id: str, run_id: str) -> Path:
    """The private work folder of one study run."""
    folder = get_settings().home / "work" / study_id / _safe(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resolve_version(requested: str | None, triggering_events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The published version a run reads: the requested one, else the newest that triggered the run, else
    the current one.

    Raises:
        NoPublishedMarts: nothing has been published yet.
    """
    from oncopipe.warehouse import versions as mart_versions

    if requested:
        return {"mart_version": requested, "extraction": None, "pinned_by": "parameter"}
    versions = sorted({(str(e.get("version")), str(e.get("extraction"))) for e in triggering_events
                       if e.get("version")})
    if versions:
        version, extraction = versions[-1]
        return {"mart_version": version, "extraction": extraction, "pinned_by": "asset event"}
    current = mart_versions.current_version()
    if current is None:
        raise NoPublishedMarts("no published mart version yet: run the platform refresh first")
    return {"mart_version": current.version, "extraction": current.extraction, "pinned_by": "current"}


def version_provenance(version: str) -> dict[str, Any]:
    """What the published version records about how it was built (dbt invocation, gate validations).

    Raises:
        NoPublishedMarts: the version does not exist (pruned, or never published).
    """
    from oncopipe.warehouse import versions as mart_versions

    folder = get_settings().published / version
    try:
        published = mart_versions.PublishedVersion.load(folder)
    except FileNotFoundError:
        raise NoPublishedMarts(f"published version {version} not found in {folder.parent}") from None
    return {"extraction": published.extraction, "dbt_invocation_id": published.dbt_invocation_id,
            "gx_validations": list(published.gx_validations)}


def check(study_id: str, *, requested_version: str | None = None,
          triggering_events: Sequence[Mapping[str, Any]] = (), day: dt.date | None = None,
          registry_dir: Path | None = None) -> dict[str, Any]:
    """The first task: may this study run today, on which marts, from which published version?

    Raises:
        ApprovalError: the approval is not granted, not yet valid or expired, or does not name a mart the
            study reads; the message names the approval reference.
        StudyError: the study file is missing or invalid.
    """
    from oncopipe.delivery import export_store

    study = get_study(study_id, registry_dir)
    # An export killed mid-way left its build folder; nothing else of this study runs now (one run at a time).
    export_store.remove_temporary(study.id)
    check_approval(study, day)
    check_reads(study, study.reads)
    pinned = resolve_version(requested_version, triggering_events)
    pinned.update({k: v for k, v in version_provenance(pinned["mart_version"]).items() if v})
    return {
        "study_id": study.id,
        "approval": {"committee": study.approval.committee, "reference": study.approval.reference,
                     "expires": study.approval.expires.isoformat()},
        "reads": list(study.reads),
        "registry_dir": str(registry_dir) if registry_dir else None,
        **pinned,
    }


def load_inputs(study: Study, marts: Sequence[str], version: str) -> dict[str, Any]:
    """Read published marts for a study; refuses any mart outside its approval before reading anything.

    Raises:
        ApprovalError: a mart is outside the study's approval.
    """
    from oncopipe.warehouse import versions as mart_versions

    check_reads(study, marts)
    return {mart: mart_versions.read_mart(mart, version=version) for mart in marts}


def analyse(checked: Mapping[str, Any], *, run_id: str) -> Path:
    """Run the study's analysis on the approved marts of the pinned version; returns the state file."""
    from oncopipe.studies import kinds

    registry_dir = Path(checked["registry_dir"]) if checked.get("registry_dir") else None
    study = get_study(checked["study_id"], registry_dir)
    if study.approval.reference != checked["approval"]["reference"]:
        raise ApprovalError(f"study {study.id}: approval changed during the run "
                            f"({checked['approval']['reference']} -> {study.approval.reference})")
    inputs = load_inputs(study, study.reads, checked["mart_version"])
    result = kinds.run(study.analysis.kind, inputs, dict(study.analysis.parameters), study_id=study.id)
    state = StudyRunState(study=study, checked={**checked, "row_counts": {k: len(v) for k, v in inputs.items()}},
                          run_id=run_id, workdir=work_folder(study.id, run_id), result=result)
    return state.save("analysis")


def control(state_path: Path) -> Path:
    """Disclosure control of the result, against what earlier runs of the study published.

    This is the check the operator sees in its own task: a :class:`~oncopipe.delivery.disclosure.DisclosureViolation`
    stops the run here, and the task log says how many cells each rule masked. :func:`export` applies the same
    control again when it writes the files (``publish_export`` takes the raw result, so no code path can write
    an uncontrolled table); both see the same history, so they mask the same cells.
    """
    from oncopipe.delivery import disclosure
    from oncopipe.delivery.audit import AuditLog

    state = StudyRunState.load(state_path)
    history = AuditLog(get_settings().exports).history(state.study.id, state.run_id)
    state.controlled = disclosure.control(state.result, history=history)
    state.checked["masked_by_rule"] = state.controlled.report.counts_by_rule()
    return state.save("controlled")


def report(state_path: Path) -> Path:
    """Draw the figures from the controlled tables and render the HTML report into the work folder."""
    from oncopipe.delivery import export_store
    from oncopipe.delivery.report import render_report

    state = StudyRunState.load(state_path)
    info = export_store.StudyInfo.of(state.study)
    figures = []
    for figure in state.controlled.result.figures:
        images = export_store.render_figure(figure, state.controlled, info.study_id)
        figures.append((figure.name, figure.title, images["preview"]))
    html = render_report(state.controlled, info, provenance(state), code_version=export_store.code_version(),
                         figures=figures)
    state.report_path = state.workdir / "report.html"
    state.report_path.write_text(html, encoding="utf-8")
    return state.save("report")


def provenance(state: StudyRunState) -> dict[str, Any]:
    """What the export manifest pins: extraction, mart version, input row counts, and the published
    version's own provenance (dbt invocation, gate validations, code lists) when it records them."""
    checked = state.checked
    out: dict[str, Any] = {
        "extraction_date": checked.get("extraction"),
        "mart_version": checked.get("mart_version"),
        "row_counts": dict(checked.get("row_counts") or {}),
        "approval_reference": checked["approval"]["reference"],
        "pinned_by": checked.get("pinned_by"),
    }
    for key in ("dbt_invocation_id", "gx_validations", "code_lists"):
        if checked.get(key):
            out[key] = checked[key]
    return out


def export(state_path: Path) -> Path:
    """Publish the export folder (tables, figures, report, manifest, audit) atomically."""
    from oncopipe.delivery import export_store

    state = StudyRunState.load(state_path)
    info = export_store.publish_export(state.result, state.study, provenance(state), state.run_id)
    state.export_path = info.path
    state.checked["export"] = {"path": str(info.path), "files": len(info.files),
                               "masked_by_rule": info.masked_by_rule}
    state.export_info = info
    return state.save("export")


class MailNotConfigured(StudyError):
    """No SMTP connection is defined and mail is optional here (embedded runs): nothing was sent."""


def notify(state_path: Path) -> dict[str, Any]:
    """Email the recipients that their export is ready (a link, never data); every delivery is audited.

    Without an SMTP connection, raises :class:`MailNotConfigured` when ``ONCOPIPE_MAIL_OPTIONAL`` is set (the
    embedded run sets it: the DAG marks the task skipped), else lets the notifier's error fail the task.
    """
    from oncopipe.contracts.settings import get_settings
    from oncopipe.delivery import notify as notifier

    state = StudyRunState.load(state_path)
    if get_settings().mail_optional:
        try:
            notifier.smtp_settings()
        except notifier.NotificationError as exc:
            raise MailNotConfigured(f"study {state.study.id}: export {state.export_path} ready; no mail sent: "
                                    f"{exc}") from exc
    deliveries = notifier.notify_export(state.export_info, state.study)
    return {"study_id": state.study.id, "export": str(state.export_path),
            "sent_to": [d.recipient for d in deliveries if d.sent]}
