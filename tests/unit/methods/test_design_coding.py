"""Dummy coding of ``cox.design_matrix`` and of the multinomial predictors, held to R and to the hand-written coding.

- ``design_matrix`` on R's data sets gives R's own ``model.matrix`` (``tests/reference/cox_design_*.csv``, treatment
  contrasts against R's first level), column for column.
- Every case of :mod:`support.design_coding` (references given, most frequent, absent, tied; integer and float
  levels) gives the column names, terms, design and statistics the hand-written coding gave
  (``tests/reference/design_coding_golden.json``), to 1e-12.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods.cox import design_matrix
from support import design_coding

TOL = 1e-12

#: data set -> (numeric, categorical -> R's reference, the first level)
R_DESIGNS = {
    "lung": (["age", "ph.ecog"], {"sex": "female"}),
    "veteran": (["trt", "karno", "diagtime", "age", "prior"], {"celltype": "adeno"}),
    "ovarian": (["age", "ecog.ps", "rx"], {}),
    "generated": (["x"], {"group": "a"}),
}


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(design_coding.GOLDEN.read_text())


@pytest.mark.parametrize("name", list(R_DESIGNS))
def test_design_matrix_is_r_model_matrix(name):
    numeric, categorical = R_DESIGNS[name]
    design, terms = design_matrix(design_coding.reference_frame(name), numeric, categorical)
    r = pd.read_csv(design_coding.REFERENCE / f"cox_design_{name}.csv").drop(columns=["time", "status"])
    # R names a dummy <variable><level> (sexmale); ours is <variable>=<level>
    renamed = {c: re.sub(rf"^({'|'.join(map(re.escape, categorical))})(.+)$", r"\1=\2", c) if categorical else c
               for c in r.columns}
    r = r.rename(columns=renamed)
    assert sorted(design.columns) == sorted(r.columns)
    np.testing.assert_array_equal(design[r.columns].to_numpy(), r.to_numpy(dtype=float))
    assert [c for cs in terms.values() for c in cs] == list(design.columns)


def _assert_close(actual: dict, expected: dict, where: str) -> None:
    assert list(actual) == list(expected), where
    for key, value in expected.items():
        if isinstance(value, list) and value and isinstance(value[0], str):
            assert actual[key] == value, f"{where}: {key}"
        else:
            np.testing.assert_allclose(actual[key], value, rtol=TOL, atol=TOL, err_msg=f"{where}: {key}")


@pytest.mark.parametrize("name", list(design_coding.COX_CASES))
def test_cox_design_and_fits_equal_the_hand_written_coding(golden, name):
    expected, actual = golden["cox"][name], design_coding.cox_case(name)
    assert actual["columns"] == expected["columns"]
    assert actual["terms"] == expected["terms"]
    assert actual["index"] == expected["index"]
    np.testing.assert_array_equal(actual["design"], expected["design"])
    for ties in ("efron", "breslow"):
        assert (ties in actual) == (ties in expected)
        if ties not in expected:
            continue
        for part in ("summary", "zph"):
            _assert_close(actual[ties][part], expected[ties][part], f"{name} {ties} {part}")
        for part in ("var", "loglik", "score", "concordance"):
            np.testing.assert_allclose(actual[ties][part], expected[ties][part], rtol=TOL, atol=TOL,
                                       err_msg=f"{name} {ties} {part}")


@pytest.mark.parametrize("name", list(design_coding.PREDICTOR_CASES))
def test_predictors_equal_the_hand_written_coding(golden, name):
    expected, actual = golden["predictors"][name], design_coding.predictor_case(name)
    assert actual["reference_levels"] == expected["reference_levels"]
    assert (actual["n_used"], actual["n_dropped"], actual["converged"]) == (
        expected["n_used"], expected["n_dropped"], expected["converged"])
    _assert_close(actual["table"], expected["table"], name)
