"""The study registry: one validated YAML file per study under ``dags/studies/``.

A study is what an ethics/data-access committee approved: who leads it, which marts it may read, until when,
which analysis it runs with which parameters, when it runs, and who receives its exports. The DAG factory
(:mod:`oncopipe.orchestration.dag_factory`) turns every entry into one Airflow DAG; adding a study is adding one
YAML file.

Example (``dags/studies/tradhor.yml``)::

    id: tradhor
    title: Adherence trajectories to adjuvant hormone therapy in breast cancer
    principal_investigator: {name: Dr Jeanne Martin, email: jeanne.martin@example.org}
    approval:
      committee: CESREES
      reference: CESREES-2024-117
      status: granted
      granted: 2024-03-12
      expires: 2029-03-11
      marts: [breast_cancer_endocrine_cohort, endocrine_adherence_monthly]
    reads: [breast_cancer_endocrine_cohort, endocrine_adherence_monthly]
    analysis: {kind: tradhor_adherence, parameters: {n_groups: 4}}
    schedule: {assets: [breast_cancer_endocrine_cohort, endocrine_adherence_monthly]}
    recipients: [jeanne.martin@example.org]

Two rules are checked twice, on purpose: when the registry is loaded (so ``oncopipe studies validate`` and the
DAG processor refuse a bad file) and again when a study runs (:func:`check_approval`, :func:`check_reads`), so a
YAML edited after parsing, an approval that expired since, or code that asks for another mart is still refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from oncopipe.contracts.marts import READABLE_TABLES
from oncopipe.contracts.settings import STUDIES_DIR
from oncopipe.studies import parameters as kind_parameters

_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
_EMAIL = TypeAdapter(EmailStr)
_CRON_FIELDS = 5
#: Airflow's schedule presets (a cron alias or a special schedule).
_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly",
            "@annually")
#: How each committee writes its decision references; any other committee: letters, digits, '-', '/', '.'
#: and at least one digit (a reference is what a reader quotes to find the decision).
REFERENCE_PATTERNS: dict[str, str] = {
    "CESREES": r"CESREES-\d{4}-\d{2,5}",
    "CEREES": r"CEREES-\d{4}-\d{2,5}",
    "CNIL": r"(?:DR-\d{4}-\d{1,5}|\d{6,7})",
}
_ANY_REFERENCE = r"(?=[^ ]*\d)[A-Za-z0-9][A-Za-z0-9./_-]*"


def asset_uri(mart: str) -> str:
    """The stable Asset URI of a published mart (``oncopipe://marts/<mart>``)."""
    return f"oncopipe://marts/{mart}"


class StudyError(ValueError):
    """A study file is invalid, or a study may not run; the message names the file or the approval."""


class ApprovalError(StudyError):
    """The study's approval does not allow this run (not granted, expired, or a mart outside its scope)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _address(value: str) -> str:
    """``value`` checked by pydantic's ``EmailStr`` (email-validator), refused with the address and the reason."""
    try:
        return _EMAIL.validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = (error.get("ctx") or {}).get("reason") or error["msg"]
        raise ValueError(f"{value!r} is not an email address: {reason}") from None


#: An email address (the reason named when it is not one: two dots, no domain, a reserved domain such as localhost).
Address = Annotated[str, AfterValidator(_address)]


class Person(_Strict):
    name: str = Field(min_length=1)
    email: Address


def _known_tables(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in READABLE_TABLES]
    if unknown:
        raise ValueError(f"unknown mart(s) {unknown}; published tables are {list(READABLE_TABLES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"mart listed twice in {names}")
    return names


class Approval(_Strict):
    """The committee decision that lets the study run, and the marts it covers."""

    committee: str = Field(min_length=1, description="e.g. CESREES, CNIL, a hospital ethics committee")
    reference: str = Field(min_length=1, description="the decision's reference; every export names it")
    status: Literal["granted", "pending", "suspended", "withdrawn"] = "granted"
    granted: dt.date
    expires: dt.date
    marts: list[str] = Field(min_length=1, description="the published marts the approval lets the study read")

    @field_validator("committee", "reference")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if value != value.strip():
            raise ValueError(f"{value!r} has leading or trailing spaces")
        return value

    @model_validator(mode="after")
    def _reference_pattern(self) -> Approval:
        pattern = REFERENCE_PATTERNS.get(self.committee.upper())
        if not re.fullmatch(pattern or _ANY_REFERENCE, self.reference):
            expected = (f"{self.committee} references look like {pattern!r}" if pattern else
                        "a reference is letters, digits, '-', '/', '.' or '_' with at least one digit")
            raise ValueError(f"reference {self.reference!r} is not a {self.committee} decision reference: {expected}")
        return self

    @field_validator("marts")
    @classmethod
    def _marts(cls, value: list[str]) -> list[str]:
        return _known_tables(value)

    @model_validator(mode="after")
    def _dates(self) -> Approval:
        if self.expires < self.granted:
            raise ValueError(f"expires ({self.expires}) is before granted ({self.granted})")
        return self

    def problem_on(self, day: dt.date) -> str | None:
        """Why the approval does not allow a run on ``day``, or None if it does."""
        name = f"approval {self.reference} ({self.committee})"
        if self.status != "granted":
            return f"{name} is {self.status}, not granted"
        if day < self.granted:
            return f"{name} is granted only from {self.granted.isoformat()}"
        if day > self.expires:
            return f"{name} expired on {self.expires.isoformat()}"
        return None


class Analysis(_Strict):
    kind: str = Field(description="a registered analysis kind (oncopipe.studies.kinds.kinds())")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="checked against the kind's schema (oncopipe.studies.parameters)")

    @field_validator("kind")
    @classmethod
    def _registered(cls, value: str, info: ValidationInfo) -> str:
        # Importing every analysis module pulls in scikit-learn & co: the DAG processor skips this check
        # (check_kinds=False) and the study's first task makes it instead.
        if not (info.context or {}).get("check_kinds", True):
            return value
        from oncopipe.studies import kinds

        known = kinds.kinds()
        if value not in known:
            raise ValueError(f"unknown analysis kind {value!r}; registered kinds: {known or 'none yet'}")
        return value

    @model_validator(mode="after")
    def _parameters(self) -> Analysis:
        # Light (pydantic only), so the DAG processor checks parameters too; an undeclared kind is refused
        # by the kind check above or, on the DAG processor, by the study's first task.
        if kind_parameters.schema_for(self.kind) is not None:
            try:
                kind_parameters.validate(self.kind, self.parameters)
            except kind_parameters.ParameterError as exc:
                raise ValueError(f"parameters: {exc}") from None
        return self

    @property
    def effective_parameters(self) -> dict[str, Any]:
        """The parameters the analysis runs with: the study's, with the kind's defaults filled in."""
        if kind_parameters.schema_for(self.kind) is None:
            return dict(self.parameters)
        return kind_parameters.effective(self.kind, self.parameters)


class Schedule(_Strict):
    """Either the published marts the study waits for (Asset schedule), or a cron expression, not both."""

    assets: list[str] | None = None
    cron: str | None = None

    @field_validator("assets")
    @classmethod
    def _assets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("assets must name at least one mart")
            _known_tables(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None or value in _PRESETS:
            return value
        if len(value.split()) != _CRON_FIELDS:  # croniter also takes a 6th (seconds) field; Airflow's cron has 5
            raise ValueError(f"not a 5-field cron expression (minute hour day month weekday) or one of "
                             f"{', '.join(_PRESETS)}: {value!r}")
        try:
            croniter(value, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
        except CroniterBadDateError:
            raise ValueError(f"cron {value!r} never fires (no such date, e.g. 31 February)") from None
        except CroniterBadCronError as exc:  # out of range, an unknown name, a zero step...
            raise ValueError(f"not a valid cron expression (minute hour day month weekday): {value!r} "
                             f"(croniter: {exc})") from None
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Schedule:
        if (self.assets is None) == (self.cron is None):
            raise ValueError("give exactly one of 'assets' (marts to wait for) or 'cron'")
        return self


class ExportOptions(_Strict):
    """What the export folder holds (the formats :mod:`oncopipe.delivery.export_store` writes)."""

    formats: list[Literal["csv", "parquet"]] = Field(default_factory=lambda: ["csv", "parquet"], min_length=1)
    figures: list[Literal["png", "svg"]] = Field(default_factory=lambda: ["png", "svg"])
    report: Literal["html", "none"] = "html"
    keep_last: int = Field(default=10, ge=1, description="export folders kept per study")


class Study(_Strict):
    """One registry entry; see the module docstring for the YAML shape."""

    id: str
    title: str = Field(min_length=1)
    description: str = ""
    principal_investigator: Person
    approval: Approval
    reads: list[str] = Field(min_length=1, description="the published marts the analysis gets as inputs")
    analysis: Analysis
    schedule: Schedule
    recipients: list[Address] = Field(min_length=1)
    export: ExportOptions = Field(default_factory=ExportOptions)
    owner: str = "data-team"
    tags: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"{value!r}: use lower case letters, digits and '_', starting with a letter")
        return value

    @field_validator("reads")
    @classmethod
    def _reads(cls, value: list[str], info: ValidationInfo) -> list[str]:
        _known_tables(value)
        approval = info.data.get("approval")  # absent when the approval itself was invalid
        if approval is not None:
            outside = [m for m in value if m not in approval.marts]
            if outside:
                raise ValueError(
                    f"{outside} outside approval {approval.reference}, which names only {approval.marts}"
                )
        return value

    @field_validator("schedule")
    @classmethod
    def _waits_for_what_it_reads(cls, value: Schedule, info: ValidationInfo) -> Schedule:
        reads = info.data.get("reads")
        if reads is not None and value.assets:
            not_read = [m for m in value.assets if m not in reads]
            if not_read:
                raise ValueError(f"waits for {not_read}, which the study does not read ({reads})")
        return value

    @property
    def dag_id(self) -> str:
        return f"study_{self.id}"

    @property
    def asset_uris(self) -> list[str]:
        """URIs of the Assets the study is scheduled on (empty for a cron study)."""
        return [asset_uri(m) for m in self.schedule.assets or ()]

    def approval_problem(self, day: dt.date | None = None) -> str | None:
        """Why the study may not run on ``day`` (default: today, UTC), or None."""
        return self.approval.problem_on(day or dt.datetime.now(dt.UTC).date())


def outside_approval(study: Study, marts: Iterable[str]) -> list[str]:
    """The marts in ``marts`` that the study's approval does not name."""
    return [m for m in marts if m not in study.approval.marts]


@dataclass(frozen=True)
class RegistryEntry:
    """A study file and either its validated study or the error that refused it."""

    path: Path
    study: Study | None
    error: str | None


def _format_error(path: Path, error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(file)"
        lines.append(f"{path}: field '{field}': {e['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def load_study(path: Path, *, check_kinds: bool = True) -> Study:
    """Read and validate one study file.

    Args:
        path: the YAML file.
        check_kinds: also check that the analysis kind is registered (imports every analysis module).

    Raises:
        StudyError: the file is unreadable, not YAML, or invalid; the message names the file and each field.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StudyError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping of study fields, got {type(data).__name__}")
    try:
        study = Study.model_validate(data, context={"check_kinds": check_kinds})
    except ValidationError as exc:
        raise StudyError(_format_error(path, exc)) from None
    if study.id != path.stem:
        raise StudyError(f"{path}: field 'id': {study.id!r} must match the file name {path.stem!r}")
    return study


def _study_files(directory: Path) -> dict[str, list[Path]]:
    """Registry files by study id (the file stem), each list sorted."""
    files: dict[str, list[Path]] = {}
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        files.setdefault(path.stem, []).append(path)
    return files


def _twice(study_id: str, paths: list[Path]) -> str:
    return (f"study {study_id!r} is defined by {len(paths)} files: {', '.join(str(p) for p in paths)}; "
            "keep one (a DAG is built from one file only)")


def scan_registry(directory: Path | None = None, *, check_kinds: bool = True) -> list[RegistryEntry]:
    """Every ``*.yml``/``*.yaml`` file of the registry, valid or not, sorted by file name.

    Two files of one study id (``tradhor.yml`` and ``tradhor.yaml``) are both refused, each naming the other.
    """
    directory = Path(directory or STUDIES_DIR)
    entries = []
    for study_id, paths in _study_files(directory).items():
        for path in paths:
            if len(paths) > 1:
                entries.append(RegistryEntry(path, None, f"{path}: {_twice(study_id, paths)}"))
                continue
            try:
                entries.append(RegistryEntry(path, load_study(path, check_kinds=check_kinds), None))
            except StudyError as exc:
                entries.append(RegistryEntry(path, None, str(exc)))
    return sorted(entries, key=lambda e: e.path.name)


def load_registry(directory: Path | None = None, *, check_kinds: bool = True) -> list[Study]:
    """Every study of the registry; raises :class:`StudyError` naming every invalid file."""
    entries = scan_registry(directory, check_kinds=check_kinds)
    errors = [e.error for e in entries if e.error]
    if errors:
        raise StudyError("\n".join(errors))
    return [e.study for e in entries if e.study is not None]


def get_study(study_id: str, directory: Path | None = None, *, check_kinds: bool = True) -> Study:
    """The study ``study_id``, re-read from its file (the registry is the source of truth at run time)."""
    directory = Path(directory or STUDIES_DIR)
    paths = [p for p in (directory / f"{study_id}.yml", directory / f"{study_id}.yaml") if p.exists()]
    if len(paths) > 1:
        raise StudyError(_twice(study_id, paths))
    if not paths:
        raise StudyError(f"no study {study_id!r} in {directory}")
    return load_study(paths[0], check_kinds=check_kinds)


def check_approval(study: Study, day: dt.date | None = None) -> None:
    """Refuse a run the approval does not allow.

    Raises:
        ApprovalError: naming the study and its approval reference (not granted, not yet valid, expired).
    """
    problem = study.approval_problem(day)
    if problem:
        raise ApprovalError(f"study {study.id}: {problem}; the study may not run")


def check_reads(study: Study, marts: Iterable[str]) -> None:
    """Refuse reading any mart the study's approval does not name.

    Raises:
        ApprovalError: naming the marts and the approval reference.
    """
    outside = outside_approval(study, marts)
    if outside:
        raise ApprovalError(
            f"study {study.id}: mart(s) {outside} are outside approval {study.approval.reference} "
            f"({study.approval.committee}), which names only {study.approval.marts}"
        )
