"""The marts gate's own facts (comparison_frame) and the frames every gate hands to GX (runner.gx_frame)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
from oncopipe.quality.marts_gate import comparison_frame
from oncopipe.quality.runner import gx_frame

D = dt.date(2023, 5, 1)


def _marts(case_deaths, cohort_deaths):
    """Cases of P1..P3 (one site each) and a cohort of P1..P3 with the given death dates (None: alive)."""
    people = ["P1", "P2", "P3"]
    cases = pd.DataFrame({"case_id": ["C1", "C2", "C3"], "person_id": people, "site": ["lung"] * 3,
                          "event": [int(d is not None) for d in case_deaths], "death_date": case_deaths})
    cohort = pd.DataFrame({"person_id": people, "death_date": cohort_deaths})
    monthly = pd.DataFrame({"person_id": people, "month_index": [0, 0, 0]})
    delays = pd.DataFrame({"case_id": ["C1"], "site": ["lung"]})
    return {"poor_prognosis_cases": cases, "breast_cancer_endocrine_cohort": cohort,
            "endocrine_adherence_monthly": monthly, "care_pathway_delays": delays}


def _fact(frame: pd.DataFrame, subject: str) -> pd.Series:
    return frame.set_index("subject").loc[subject]


def test_a_person_dead_in_one_mart_and_alive_in_another_is_counted():
    subject = "a person dead in one mart and alive in another"
    agree = comparison_frame(_marts([D, None, None], [D, None, None]), None)
    assert _fact(agree, subject)["value"] == 0
    # P2 dead in the cases, alive in the cohort; P3 the other way round; P1 dead in both.
    disagree = comparison_frame(_marts([D, D, None], [D, None, D]), None)
    fact = _fact(disagree, subject)
    assert fact["value"] == 2
    assert set(json.loads(fact["detail"])) == {"P2", "P3"}


def test_gx_frame_widens_fixed_width_numbers_only():
    frame = pd.DataFrame({"i32": np.array([1, 2], dtype="int32"), "u64": np.array([1, 2], dtype="uint64"),
                          "f32": np.array([0.5, 1], dtype="float32"), "s": ["a", "b"], "b": [True, False]})
    wide = gx_frame(frame)
    assert wide.dtypes.to_dict() == {"i32": np.dtype("int64"), "u64": np.dtype("uint64"),
                                     "f32": np.dtype("float64"), "s": frame["s"].dtype, "b": np.dtype("bool")}
    pd.testing.assert_frame_equal(wide, frame, check_dtype=False)
