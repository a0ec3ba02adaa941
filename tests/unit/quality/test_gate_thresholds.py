"""Gate thresholds are settings (issue #21): a deployment's value reaches the suites its gates load.

The committed suites keep the defaults (tests/unit/quality/test_quality_suites.py and the session fixture that
fails when a test changes ``expectations/``); a changed threshold is written into the gate's private copy.
"""

from __future__ import annotations

import json

from oncopipe.contracts.settings import EXPECTATIONS_DIR, get_settings
from oncopipe.quality.gxcontext import customised_gate_thresholds, open_context


def _bound(expectations, name: str) -> dict:
    return next(e for e in expectations if e["meta"]["name"] == name)["kwargs"]


def test_a_changed_gate_threshold_reaches_the_suites_the_gate_loads(oncopipe_home, monkeypatch):
    committed = json.loads((EXPECTATIONS_DIR / "expectations" / "raw" / "er_pha_f" / "extraction.json").read_text())
    assert _bound(committed["expectations"], "distribution_drift.moderate")["max_value"] == 0.25
    assert customised_gate_thresholds() == {}
    monkeypatch.setenv("ONCOPIPE_GATE_PSI_WARNING", "0.3")
    monkeypatch.setenv("ONCOPIPE_GATE_EVENT_RATE_MAX_SHIFT", "0.2")
    assert customised_gate_thresholds() == {"gate_psi_warning": 0.3, "gate_event_rate_max_shift": 0.2}

    context = open_context(get_settings())
    raw = context.suites.get("raw.er_pha_f.extraction").to_json_dict()["expectations"]
    drift = next(e for e in raw if e["meta"]["name"] == "distribution_drift.moderate")
    assert drift["kwargs"]["max_value"] == 0.3 and "PSI 0.3 " in drift["meta"]["rule"]
    assert _bound(raw, "distribution_drift")["max_value"] == 1.0  # left at its default
    comparisons = context.suites.get("marts.comparisons").to_json_dict()["expectations"]
    shift = next(e for e in comparisons if e["meta"]["name"] == "event_rate_vs_published")
    assert shift["kwargs"]["max_value"] == 0.2 and shift["meta"]["consequence"] == "drop_candidate"
