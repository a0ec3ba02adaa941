"""GX validation results as outcomes (runner.outcome_of): the severity is GX's own field of the expectation."""

from __future__ import annotations

import pytest
from oncopipe.quality.gxcontext import quiet_gx
from oncopipe.quality.outcomes import GateReport

quiet_gx()
from great_expectations.core.expectation_validation_result import ExpectationValidationResult  # noqa: E402
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration  # noqa: E402
from oncopipe.quality.runner import outcome_of  # noqa: E402


def _result(severity: str, success: bool, meta: dict) -> ExpectationValidationResult:
    config = ExpectationConfiguration(type="expect_column_values_to_not_be_null", kwargs={"column": "BEN_NIR_PSA"},
                                      meta=meta, severity=severity)
    return ExpectationValidationResult(success=success, expectation_config=config,
                                       result={"element_count": 10, "unexpected_count": 0 if success else 2,
                                               "unexpected_percent": 0.0 if success else 20.0,
                                               "partial_unexpected_list": [] if success else [None, None]})


@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_the_outcome_takes_gx_s_severity(severity):
    outcome = outcome_of(_result(severity, False, {"name": "BEN_NIR_PSA.not_null", "rule": "no null"}),
                         "raw.ir_ben_r.rows", "ir_ben_r", "v-1")
    assert (outcome.severity, outcome.success, outcome.expectation) == (severity, False, "BEN_NIR_PSA.not_null")
    assert outcome.observed == "2 of 10 lines (20.00%) e.g. None, None"


def test_a_severity_left_in_meta_is_not_what_counts():
    outcome = outcome_of(_result("warning", False, {"name": "x", "severity": "critical"}), "s", "t", "v")
    assert outcome.severity == "warning"


def test_a_failed_warning_is_recorded_and_does_not_stop_the_gate_a_failed_critical_does():
    warning = outcome_of(_result("warning", False, {"name": "w"}), "s", "t", "v")
    critical = outcome_of(_result("critical", False, {"name": "c"}), "s", "t", "v")
    report = GateReport(run_id="r", stage="raw", extraction="2025-03-31", started_at="now", outcomes=[warning])
    assert report.passed and report.warnings == [warning]
    report.outcomes.append(critical)
    assert not report.passed and report.critical_failures == [critical]
