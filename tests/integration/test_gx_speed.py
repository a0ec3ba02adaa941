"""GX's shortcuts (plugins/oncopipe/quality/gxspeed.py) change no judgement: the raw and marts gates give the same
outcome, expectation by expectation, with and without them; and they are installed only on the GX source they were
verified against."""

from __future__ import annotations

import dataclasses
import shutil

import pyarrow as pa
import pytest
from gates_marts import settings_for
from oncopipe.quality import GateFailed, QualityConfig, gxspeed, run_raw_gate
from oncopipe.synth.extraction import generate

DATE = "2025-03-31"
FAST = QualityConfig(build_docs=False, quarantine=False)  # the landings are judged more than once
# Faults the raw gate stops (critical) and dirt it only warns about, so both kinds of outcome are compared.
FAULTS = "null_mandatory,invalid_cip13,unknown_codes,orphan_stays,care_after_death"


def _judged(report) -> list[tuple]:
    fields = [f.name for f in dataclasses.fields(report.outcomes[0]) if f.name != "validation_id"]
    return sorted(tuple(str(getattr(o, f)) for f in fields) for o in report.outcomes)


def _gate(settings):
    try:
        return run_raw_gate(DATE, settings, FAST)
    except GateFailed as refused:
        return refused.report


@pytest.fixture(scope="module")
def landings(tmp_path_factory):
    root = tmp_path_factory.mktemp("gxspeed")
    first = settings_for(root / "with")
    generate(first.landing, 300, 5, DATE, faults=FAULTS)
    second = settings_for(root / "without")
    shutil.rmtree(second.landing)
    shutil.copytree(first.landing, second.landing)
    return first, second


def test_the_installed_gx_is_the_verified_source():
    """Fails after a GX upgrade: re-read the replaced methods, re-verify the shortcuts and update VERIFIED."""
    assert gxspeed.source_digests() == gxspeed.VERIFIED
    assert gxspeed.install()


def test_the_raw_gate_judges_the_same_with_and_without_the_shortcuts(landings, monkeypatch):
    with_them, without_them = landings
    counted = {"queries": 0}
    import pandas as pd

    query = pd.DataFrame.query

    def counting(self, *args, **kwargs):
        counted["queries"] += 1
        return query(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "query", counting)
    assert gxspeed.install()
    fast = _gate(with_them)
    fast_queries, counted["queries"] = counted["queries"], 0
    with gxspeed.without_shortcuts():
        slow = _gate(without_them)
        assert not gxspeed._state["installed"], "the gate opened its context with the shortcuts"
    assert gxspeed._state["installed"]  # put back after the block
    assert not fast.passed and fast.critical_failures, "the planted faults must be refused"
    assert fast.warnings, "the planted dirt must warn"
    assert len(fast.outcomes) > 400
    assert _judged(fast) == _judged(slow)
    assert fast.skipped == slow.skipped
    # The filter memo is used: each distinct condition is queried once per batch, not once per metric; and no
    # batch frame is held once its checkpoint has run.
    assert fast_queries * 3 < counted["queries"], (fast_queries, counted["queries"])
    assert not list(gxspeed._memo_holders)


def _publish_twice(settings) -> tuple:
    """A clean candidate published, then a broken one refused: the two marts gate reports."""
    from gates_marts import mart_tables, write_warehouse
    from oncopipe.warehouse import versions

    write_warehouse(settings.warehouse, mart_tables(40))
    versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    accepted = _last_marts_report(settings)
    tables = mart_tables(40)
    monthly = tables["endocrine_adherence_monthly"]
    pdc = monthly["pdc"].to_pylist()
    pdc[3] = 1.4
    i = monthly.schema.get_field_index("pdc")
    tables["endocrine_adherence_monthly"] = monthly.set_column(i, monthly.schema.field(i),
                                                               pa.array(pdc, type=pa.float64()))
    write_warehouse(settings.warehouse, tables)
    with pytest.raises(GateFailed) as refused:
        versions.publish_candidate(extraction_date="2024-04-01", settings=settings)
    return accepted, refused.value.report


def _last_marts_report(settings):
    from oncopipe.quality.history import results, runs

    run = runs(settings.quality, "marts")[0]
    return sorted((r["subject"], r["expectation"], r["success"], r["observed_value"])
                  for r in results(settings.quality, run["run_id"]))


def test_the_marts_gate_judges_the_same_with_and_without_the_shortcuts(tmp_path):
    assert gxspeed.install()
    fast_accepted, fast_refused = _publish_twice(settings_for(tmp_path / "with"))
    with gxspeed.without_shortcuts():
        slow_accepted, slow_refused = _publish_twice(settings_for(tmp_path / "without"))
    assert fast_accepted == slow_accepted and len(fast_accepted) > 50
    assert not fast_refused.passed
    assert ("endocrine_adherence_monthly", "pdc.unit_interval") in fast_refused.failed_names("critical")
    assert _judged(fast_refused) == _judged(slow_refused)


def test_the_samples_of_a_refused_extraction_are_the_first_offenders_by_key(landings):
    """Two gates on the same extraction name the same offending lines: each sample is the first by key (it was the
    first the join happened to return, which differed between two gates on copies of one landing)."""
    import json

    report = _gate(landings[0])
    samples = {o.expectation: o.sample for o in report.outcomes if not o.success}
    after_death = json.loads(samples["no_care_after_death"][0]["detail"])
    people = [row["BEN_NIR_PSA"] for row in after_death]
    assert len(people) > 1 and people == sorted(people), people
    stays = json.loads(samples["stay_has_linkage"][0]["detail"])
    keys = [(row["PMSI_ANN"], row["ETA_NUM"], row["RSA_NUM"]) for row in stays]
    assert len(keys) > 1 and keys == sorted(keys), keys
