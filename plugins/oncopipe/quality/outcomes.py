"""What a gate found: one outcome per expectation, gathered in a report; ``GateFailed`` when it stops."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ExpectationOutcome:
    """The result of one expectation on one batch.

    Attributes:
        suite: GX suite name (``raw.er_pha_f.rows``).
        subject: the landing source or mart checked.
        expectation: stable name from the suite's ``meta.name`` (``PHA_PRS_C13.cip13_format``).
        expectation_type: GX type (``expect_column_values_to_be_valid_cip13``).
        severity: ``critical`` or ``warning``.
        success: whether GX judged the expectation met.
        observed: the observed value, in words (``6 of 120 lines (5.00%)``, ``0.1``).
        expected: the rule in words (from ``meta.rule``).
        sample: up to a few offending rows (keys and value).
        validation_id: the GX validation result it comes from.
        consequence: what a failure does (``quarantine`` the extraction, or ``warn``).
        basis: the reference the rule comes from (the SNDS dictionary, a nomenclature, a coding rule).
    """

    suite: str
    subject: str
    expectation: str
    expectation_type: str
    severity: str
    success: bool
    observed: str
    expected: str
    sample: list[dict[str, Any]] = field(default_factory=list)
    validation_id: str = ""
    consequence: str = ""
    basis: str = ""

    @property
    def message(self) -> str:
        """One line an operator can act on: source, expectation, consequence, observed value, sample rows.

        A warning reads like a failure (rule, column, observed value, sample rows): it is what the quality view
        shows.
        """
        sample = json.dumps(self.sample[:5], default=str, ensure_ascii=False) if self.sample else "none"
        consequence = f": {self.consequence}" if self.consequence else ""
        basis = f"; basis {self.basis}" if self.basis else ""
        return (f"{self.subject}: expectation {self.expectation} ({self.severity}{consequence}, suite {self.suite}) "
                f"failed: observed {self.observed}; expected {self.expected}{basis}; sample rows: {sample}")


@dataclass
class GateReport:
    """Everything one gate run found."""

    run_id: str
    stage: str
    extraction: str
    started_at: str
    finished_at: str = ""
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # suite -> why it was not run
    validation_ids: dict[str, str] = field(default_factory=dict)  # suite -> GX validation id
    quarantined_to: str = ""
    durations_s: dict[str, float] = field(default_factory=dict)  # "<source>:<phase>" -> wall seconds

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]

    @property
    def passed(self) -> bool:
        """True when no critical expectation failed."""
        return not self.critical_failures

    @property
    def pass_counts(self) -> dict[str, int]:
        return {
            "evaluated": len(self.outcomes),
            "successful": sum(o.success for o in self.outcomes),
            "critical_failures": len(self.critical_failures),
            "warnings": len(self.warnings),
        }

    def failed_names(self, severity: str = "critical") -> set[tuple[str, str]]:
        """``{(subject, expectation)}`` of the failed expectations of ``severity``."""
        return {(o.subject, o.expectation) for o in self.outcomes if not o.success and o.severity == severity}

    def summary(self) -> str:
        head = (f"{self.stage} gate, extraction {self.extraction or '-'}, run {self.run_id}: "
                f"{'PASSED' if self.passed else 'FAILED'} ({self.pass_counts})")
        lines = [head] + [f"  CRITICAL {o.message}" for o in self.critical_failures]
        lines += [f"  warning  {o.message}" for o in self.warnings]
        lines += [f"  skipped  {suite}: {why}" for suite, why in self.skipped.items()]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["pass_counts"] = self.pass_counts
        return data


class GateFailed(Exception):
    """A gate found a critical failure; ``report`` holds everything, the message names each failure."""

    def __init__(self, report: GateReport) -> None:
        self.report = report
        failures = "\n".join(f"- {o.message}" for o in report.critical_failures)
        where = f"\nextraction quarantined to {report.quarantined_to}" if report.quarantined_to else ""
        super().__init__(f"{report.stage} gate failed for extraction {report.extraction or '-'} "
                         f"(run {report.run_id}):\n{failures}{where}")
