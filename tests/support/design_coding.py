"""The design matrices and results of the dummy coding (``cox.design_matrix`` and the multinomial predictors) on
the committed reference data, as captured in ``tests/reference/design_coding_golden.json``.

The golden file was written once, by the hand-written coding (the commit before the switch to formulaic), from
the checkout root::

    .venv/bin/python tests/support/design_coding.py

``tests/unit/methods/test_design_coding.py`` holds the coding that replaced it to these figures (1e-12). Floats
are written with ``repr`` (17 significant digits), so nothing is lost in the round trip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from oncopipe.methods.cox import concordance, cox_zph, design_matrix, fit_cox
from oncopipe.methods.predictors import multinomial_odds_ratios

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
GOLDEN = REFERENCE / "design_coding_golden.json"

#: name -> (data file, time, status, numeric covariates, categorical covariate -> reference level)
COX_CASES: dict[str, tuple[str, str, str, list[str], dict[str, object]]] = {
    "veteran_squamous": ("veteran", "time", "status", ["trt", "karno", "diagtime", "age", "prior"],
                         {"celltype": "squamous"}),
    "veteran_large": ("veteran", "time", "status", ["karno"], {"celltype": "large"}),
    "lung_sex": ("lung", "time", "status", ["age", "ph.ecog"], {"sex": "female"}),
    "lung_ecog_factor": ("lung", "time", "status", ["age"], {"ph.ecog": 0, "sex": "male"}),
    # levels are str() of the values: a float column reads "0.0", "1.0" ..., so a float reference matches
    "lung_ecog_float": ("lung_float", "time", "status", ["age"], {"ph.ecog": 1.0}),
    "generated_group": ("generated", "time", "status", ["x"], {"group": "a"}),
    # a reference level absent from the data: every level gets its column
    "generated_absent_reference": ("generated", "time", "status", [], {"group": "zz"}),
    "ovarian_factors": ("ovarian", "futime", "fustat", ["age"], {"rx": 1, "ecog.ps": 2, "resid.ds": 1}),
}

#: Cases whose design is checked but not fitted (a full dummy set is collinear with the baseline hazard).
DESIGN_ONLY = ("generated_absent_reference", "lung_ecog_float")


def reference_frame(name: str) -> pd.DataFrame:
    """One of R's data sets committed in ``tests/reference``."""
    if name == "lung_float":
        return reference_frame("lung").astype({"ph.ecog": float})
    return pd.read_csv(REFERENCE / f"{name}.csv")


def cox_case(name: str) -> dict[str, Any]:
    """The design, its terms, and the Efron and Breslow fits of one Cox case."""
    data_name, time, status, numeric, categorical = COX_CASES[name]
    frame = reference_frame(data_name)
    design, terms = design_matrix(frame, numeric, categorical)
    out: dict[str, Any] = {"columns": list(design.columns), "terms": terms,
                           "design": design.to_numpy().T.tolist(), "index": design.index.tolist()}
    if name in DESIGN_ONLY:
        return out
    for ties in ("efron", "breslow"):
        fit = fit_cox(design, frame[time], frame[status], ties=ties)
        zph = cox_zph(fit, terms)
        conc = concordance(frame[time].to_numpy(), frame[status].to_numpy(), fit.linear_predictor)
        out[ties] = {"summary": fit.summary().to_dict(orient="list"), "var": fit.var.tolist(),
                     "loglik": [fit.loglik_null, fit.loglik], "score": fit.score_chisq,
                     "zph": zph.drop(columns="ph_violated").to_dict(orient="list"),
                     "concordance": [conc["concordance"], conc["std_err"]]}
    return out


def predictor_frame(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Simulated women: a 3-group outcome on age, a 3-level region, a float-coded quintile and a tied factor."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    region = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    quintile = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], n)
    molecule = np.where(np.arange(n) % 2 == 0, "tamoxifen", "letrozole")  # tied frequencies
    eta2 = -0.5 + 0.04 * (age - 60) + 0.7 * (region == "B") + 0.1 * quintile
    eta3 = -1.0 - 0.03 * (age - 60) + 0.9 * (region == "C") + 0.3 * (molecule == "tamoxifen")
    expo = np.column_stack([np.ones(n), np.exp(eta2), np.exp(eta3)])
    prob = expo / expo.sum(1, keepdims=True)
    group = 1 + (rng.random(n)[:, None] > prob.cumsum(1)).sum(1)
    frame = pd.DataFrame({"group": group, "age": age, "region": region, "quintile": quintile,
                          "molecule": molecule})
    frame.loc[[3, 11, 40], "quintile"] = np.nan
    return frame


#: name -> keyword arguments of multinomial_odds_ratios (besides the frame, outcome and reference group)
PREDICTOR_CASES: dict[str, dict[str, Any]] = {
    "most_frequent_references": {"continuous": {"age": 10}, "categorical": ["region", "molecule"],
                                 "missing": "drop"},
    "given_references": {"continuous": ["age"], "categorical": ["region", "quintile"],
                         "reference_levels": {"region": "C", "quintile": "1"}, "missing": "drop"},
    "absent_given_reference": {"continuous": {"age": 5}, "categorical": ["quintile", "region"],
                               "reference_levels": {"quintile": "9", "region": "B"}, "missing": "drop"},
}


def predictor_case(name: str) -> dict[str, Any]:
    """The odds-ratio table and what the model was fitted on, for one case."""
    result = multinomial_odds_ratios(predictor_frame(), "group", 1, **PREDICTOR_CASES[name])
    return {"table": result.table.to_dict(orient="list"), "n_used": result.n_used, "n_dropped": result.n_dropped,
            "reference_levels": result.reference_levels, "converged": result.converged}


def capture() -> dict[str, Any]:
    """Every case, as written to the golden file."""
    return {"cox": {name: cox_case(name) for name in COX_CASES},
            "predictors": {name: predictor_case(name) for name in PREDICTOR_CASES}}


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(capture(), indent=1) + "\n")
    print(f"written {GOLDEN}")
