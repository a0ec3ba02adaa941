"""Hand-made results shared by the disclosure and export tests."""

from __future__ import annotations

import pandas as pd
from oncopipe.contracts.results import ResultTable, StudyResult


def trajectory_result() -> StudyResult:
    groups = pd.DataFrame({"group": ["1", "2", "all"], "n_patients": [100, 50, 150]})
    means = pd.DataFrame({"group": ["1"] * 3 + ["2"] * 3, "month": [0, 1, 2] * 2,
                          "n_patients": [100, 90, 80, 50, 40, 8], "mean_pdc": [.9, .9, .8, .5, .4, .3]})
    by_month = pd.DataFrame({"month": [0, 1, 2], "n_patients": [150, 130, 88]})
    return StudyResult("s1", "test", {}, [
        ResultTable("groups", groups, "", count_columns=("n_patients",), group_columns=("group",), total_value="all"),
        ResultTable("means", means, "", count_columns=("n_patients",), statistic_columns={"mean_pdc": "n_patients"},
                    group_columns=("group", "month"), at_risk_column="n_patients"),
        ResultTable("by_month", by_month, "", count_columns=("n_patients",), group_columns=("month",))])
