"""Run committed checkpoints on in-memory frames and turn GX results into outcomes.

Checkpoints are looked up by name in the committed file context (``context.checkpoints.get``); nothing
is added at run time. Results go to the GX validation-results store under ``<quality>`` (Data Docs are
built from it) and, as rows, to the SQLite history.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import numpy as np
import pandas as pd

from oncopipe.contracts.settings import Settings
from oncopipe.quality import gxspeed, history
from oncopipe.quality.gxcontext import DATA_DOCS_SITE, open_context
from oncopipe.quality.outcomes import ExpectationOutcome, GateReport


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_id(stage: str) -> str:
    return f"{stage}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _plain(value: Any) -> Any:
    """JSON-friendly copy of a GX result value (numpy scalars, timestamps)."""
    return json.loads(json.dumps(value, default=str))


def _observed(result: dict[str, Any], is_metric: bool) -> str:
    if is_metric:
        values = result.get("partial_unexpected_list") or []
        shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values[:5])
        return shown or "no offending value"
    if "observed_value" in result:
        return str(_plain(result["observed_value"]))[:300]
    count, total = result.get("unexpected_count"), result.get("element_count")
    if count is None:
        return "not evaluated"
    pct = result.get("unexpected_percent") or 0.0
    values = ", ".join(repr(v) for v in _plain(result.get("partial_unexpected_list") or [])[:5])
    return f"{count} of {total} lines ({pct:.2f}%) e.g. {values}" if count else f"0 of {total} lines"


def _line_rule(result: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """Observed value and breaking lines of a failed line rule (rules frame: ``detail`` holds the counts)."""
    for row in result.get("partial_unexpected_index_list") or []:
        try:
            detail = json.loads(row.get("detail") or "")
        except (TypeError, ValueError, AttributeError):
            return None
        if not isinstance(detail, dict) or "breaking" not in detail:
            return None
        judged, breaking = detail["judged"], detail["breaking"]
        observed = (f"{breaking:,} of {judged:,} judged lines ({100 * breaking / judged:.3g}%) break it, "
                    f"checked on every line ({detail['lines']:,} lines)")
        return observed, detail["sample"]
    return None


def gx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its fixed-width integers as int64 and its float32 as float64, for GX.

    GX's pandas ``expect_column_values_to_be_between`` is vectorised only for int64 / float64 columns; on an
    int32 column (the marts have many) it calls a Python function per value (39M calls, ~30 s of the marts gate
    at 1,000,000 people). Widening is exact, so every expectation sees the same values.
    """
    wide = {c: "int64" if t.kind in "iu" else "float64" for c, t in frame.dtypes.items()
            if isinstance(t, np.dtype) and t.kind in "iuf" and t.itemsize < 8}
    return frame.astype(wide) if wide else frame


def outcome_of(res: Any, suite: str, subject: str, validation_id: str) -> ExpectationOutcome:
    """One GX ``ExpectationValidationResult`` as an outcome; its severity is the expectation's GX ``severity``.

    An expectation that raised is a failure (``could not evaluate: ...``), whatever GX's ``success`` says.
    """
    config = res.expectation_config
    meta = config.meta or {}
    raised = (res.exception_info or {}).get("raised_exception") or any(
        isinstance(v, dict) and v.get("raised_exception") for v in (res.exception_info or {}).values())
    result = res.result or {}
    is_metric = "metric==" in str(config.kwargs.get("row_condition", ""))
    observed = _observed(result, is_metric)
    sample = _plain(result.get("partial_unexpected_index_list") or [])[:5]
    if is_metric and not res.success and (line_rule := _line_rule(result)):
        observed, sample = line_rule
    if raised:
        observed = f"could not evaluate: {_exception_message(res.exception_info)}"
    return ExpectationOutcome(
        suite=suite, subject=subject, expectation=meta.get("name", config.type), expectation_type=config.type,
        severity=config.severity.value, success=bool(res.success) and not raised, observed=observed,
        expected=meta.get("rule", ""), sample=sample, validation_id=validation_id,
        consequence=meta.get("consequence", ""), basis=meta.get("basis", ""))


class SuiteRunner:
    """Runs checkpoints of one gate and accumulates a :class:`GateReport`."""

    def __init__(self, settings: Settings, stage: str, extraction: str) -> None:
        self.settings = settings
        self.context = open_context(settings)
        self.report = GateReport(run_id=new_run_id(stage), stage=stage, extraction=extraction, started_at=now())
        self._result_ids: list[Any] = []

    def run(self, suite_name: str, subject: str, frame: pd.DataFrame,
            parameters: dict[str, Any] | None = None) -> list[ExpectationOutcome]:
        """Run the checkpoint ``suite_name`` on ``frame`` and add its outcomes to the report."""
        from great_expectations.core.run_identifier import RunIdentifier

        checkpoint = self.context.checkpoints.get(suite_name)
        try:
            result = checkpoint.run(batch_parameters={"dataframe": gx_frame(frame)},
                                    expectation_parameters=parameters or {},
                                    run_id=RunIdentifier(run_name=self.report.run_id))
        finally:
            gxspeed.forget()  # no batch frame outlives its checkpoint run in the filter memo
        outcomes = []
        self._result_ids.extend(result.run_results.keys())
        for validation in result.run_results.values():
            validation_id = str(validation.meta.get("validation_id", ""))
            self.report.validation_ids[suite_name] = validation_id
            outcomes += [outcome_of(res, suite_name, subject, validation_id) for res in validation.results]
        self.report.outcomes += outcomes
        return outcomes

    def skip(self, suite_name: str, reason: str) -> None:
        self.report.skipped[suite_name] = reason

    def finish(self, build_docs: bool = True) -> GateReport:
        """Stamp the report, append it to the history and rebuild the Data Docs site."""
        self.report.finished_at = now()
        history.record(self.report, self.settings.quality)
        if build_docs and self._result_ids:
            # Only this run's pages are rendered (the index lists every run): the cost does not grow with history.
            # With them, the pages of the suites they checked: the index and each result link to them (404s in the
            # operator's view otherwise). Measured: 1.7 s for all 25 suites at a load of 8.
            suites = list({str(r.expectation_suite_identifier): r.expectation_suite_identifier
                           for r in self._result_ids if getattr(r, "expectation_suite_identifier", None)}.values())
            self.context.build_data_docs(site_names=[DATA_DOCS_SITE],
                                         resource_identifiers=[*self._result_ids, *suites])
        return self.report


def _exception_message(info: dict[str, Any] | None) -> str:
    if not info:
        return "unknown error"
    if "exception_message" in info:
        return str(info["exception_message"])[:200]
    for value in info.values():
        if isinstance(value, dict) and value.get("exception_message"):
            return str(value["exception_message"])[:200]
    return "unknown error"
