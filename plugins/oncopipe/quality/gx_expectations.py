"""Custom Great Expectations expectations the oncopipe suites use.

Importing this module registers them with GX (the suites in ``expectations/`` name them by type), so
:mod:`oncopipe.quality.gxcontext` imports it before it loads the file context.
"""

from __future__ import annotations

from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from oncopipe.quality.formats import is_valid_cip13


class ColumnValuesValidCip13(ColumnMapMetricProvider):
    """Row condition: the value is a CIP13 with a valid EAN-13 check digit."""

    condition_metric_name = "column_values.oncopipe_valid_cip13"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):  # noqa: N805 (GX metric providers take cls)
        return column.map(is_valid_cip13)


class ExpectColumnValuesToBeValidCip13(ColumnMapExpectation):
    """Expect column values to be CIP13 codes: 13 digits, prefix 34009, valid EAN-13 check digit."""

    map_metric = "column_values.oncopipe_valid_cip13"
    success_keys = ("mostly",)
