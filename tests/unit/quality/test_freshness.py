"""dbt's freshness results (sources.json) as the refresh reads them, and their rows in the quality history."""

from __future__ import annotations

import json
import sqlite3

import pytest
from oncopipe.quality import history
from oncopipe.quality.freshness import FreshnessError, read_sources_json

INVOCATION = "5dc9d891-08b2-4404-827b-a3e2b2ece4e0"
DELTA = {"warn_after": {"count": 45, "period": "day"}, "error_after": {"count": 120, "period": "day"}, "filter": None}
SNAPSHOT = {"warn_after": {"count": 400, "period": "day"}, "error_after": None, "filter": None}


def _result(source: str, status: str, newest: str, age_days: int, criteria: dict) -> dict:
    """A result as dbt 1.11 writes it (SourceFreshnessOutput), timing and adapter response included."""
    return {"unique_id": f"source.oncopipe.{source}", "max_loaded_at": f"{newest}T00:00:00+00:00",
            "snapshotted_at": "2022-03-01T00:00:00+00:00", "max_loaded_at_time_ago_in_s": age_days * 86400.0,
            "status": status, "criteria": criteria, "adapter_response": {"_message": "OK"},
            "timing": [{"name": "execute", "started_at": "2026-12-04T18:46:11.253507Z",
                        "completed_at": "2026-12-04T18:46:11.474818Z"}],
            "thread_id": "Thread-1 (worker)", "execution_time": 0.22}


def _sources_json(tmp_path, results: list[dict]):
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json", "dbt_version": "1.11.16",
                     "generated_at": "2026-12-04T18:49:04.961219Z", "invocation_id": INVOCATION, "env": {}},
        "results": results, "elapsed_time": 3.1}))
    return path


RESULTS = [_result("snds.er_pha_f", "warn", "2021-12-31", 60, DELTA),
           _result("pmsi_mco.t_mco_b", "error", "2021-06-30", 244, DELTA),
           _result("snds.ir_ben_r", "pass", "2021-12-31", 60, SNAPSHOT),
           {"unique_id": "source.oncopipe.cepidc.ki_cci_r", "status": "runtime error",
            "error": "Catalog Error: Table with name ki_cci_r does not exist!"}]


def test_each_source_gets_dbt_s_status_age_and_thresholds(tmp_path):
    report = read_sources_json(_sources_json(tmp_path, RESULTS), "2022-03-01")
    by_source = {s.source: s for s in report.sources}
    assert list(by_source) == ["cepidc.ki_cci_r", "pmsi_mco.t_mco_b", "snds.er_pha_f", "snds.ir_ben_r"]
    warn = by_source["snds.er_pha_f"]
    assert (warn.status, warn.max_loaded_at, warn.snapshotted_at, warn.age_days) == ("warn", "2021-12-31",
                                                                                    "2022-03-01", 60.0)
    assert (warn.warn_after, warn.error_after, warn.failed) == ("45 days", "120 days", False)
    assert (by_source["snds.ir_ben_r"].warn_after, by_source["snds.ir_ben_r"].error_after) == ("400 days", None)
    assert by_source["pmsi_mco.t_mco_b"].failed and by_source["cepidc.ki_cci_r"].failed
    assert by_source["cepidc.ki_cci_r"].age_days is None
    assert (report.run_id, report.extraction, report.passed) == (INVOCATION, "2022-03-01", False)
    assert [s.source for s in report.errors] == ["cepidc.ki_cci_r", "pmsi_mco.t_mco_b"]
    assert [s.source for s in report.warnings] == ["snds.er_pha_f"]


def test_the_summary_names_every_error_and_warning_with_its_age_and_thresholds(tmp_path):
    summary = read_sources_json(_sources_json(tmp_path, RESULTS), "2022-03-01").summary()
    assert summary.splitlines()[0].endswith("FAILED (4 sources, 2 errors, 1 warnings)")
    assert ("pmsi_mco.t_mco_b [error]: newest extraction 2021-06-30, 244 days old at 2022-03-01 "
            "(warn after 45 days, error after 120 days)") in summary
    assert "cepidc.ki_cci_r [runtime error]: Catalog Error: Table with name ki_cci_r does not exist!" in summary
    assert "snds.er_pha_f [warn]" in summary and "snds.ir_ben_r" not in summary


def test_only_warnings_pass(tmp_path):
    report = read_sources_json(_sources_json(tmp_path, RESULTS[:1] + RESULTS[2:3]))
    assert report.passed and len(report.warnings) == 1


@pytest.mark.parametrize(("text", "message"), [
    (None, "sources.json: not dbt's freshness results (FileNotFoundError"),
    ("{not json", "sources.json: not dbt's freshness results (JSONDecodeError"),
    (json.dumps({"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
                 "results": []}), "dbt_schema_version https://schemas.getdbt.com/dbt/run-results/v6.json"),
])
def test_a_file_that_is_no_freshness_result_is_named(tmp_path, text, message):
    path = tmp_path / "sources.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(FreshnessError, match="sources.json") as raised:
        read_sources_json(path)
    assert message in str(raised.value)


def test_a_result_without_status_is_named_by_its_index(tmp_path):
    broken = dict(RESULTS[0])
    del broken["status"]
    with pytest.raises(FreshnessError, match=r"sources\.json: results\[1\] is not a freshness result \(KeyError"):
        read_sources_json(_sources_json(tmp_path, [RESULTS[2], broken]))


def test_recorded_rows_replace_a_re_recorded_run(tmp_path):
    report = read_sources_json(_sources_json(tmp_path, RESULTS), "2022-03-01")
    quality = tmp_path / "quality"
    history.record_freshness(report, quality)
    history.record_freshness(report, quality)
    with sqlite3.connect(history.history_path(quality)) as db:
        rows = db.execute("select source, status, failed, age_days, error_after from source_freshness "
                          "where run_id = ? order by source", (INVOCATION,)).fetchall()
    assert rows == [("cepidc.ki_cci_r", "runtime error", 1, None, None),
                    ("pmsi_mco.t_mco_b", "error", 1, 244.0, "120 days"),
                    ("snds.er_pha_f", "warn", 0, 60.0, "120 days"), ("snds.ir_ben_r", "pass", 0, 60.0, None)]


def test_results_left_by_an_earlier_invocation_are_not_taken_for_this_one(tmp_path, monkeypatch, oncopipe_home):
    from oncopipe.contracts.settings import get_settings
    from oncopipe.quality.freshness import FreshnessFailed
    from oncopipe.warehouse import dbt_nodes, refresh

    settings = get_settings()
    settings.dbt_target_dir.mkdir(parents=True)
    (settings.dbt_target_dir / "sources.json").write_text(_sources_json(tmp_path, RESULTS[2:3]).read_text())
    monkeypatch.setattr(dbt_nodes, "source_freshness", lambda date, settings: ("inv-now", "DbtRuntimeError: boom"))
    stale = f"is from invocation {INVOCATION}, not inv-now\\): DbtRuntimeError: boom"
    with pytest.raises(FreshnessFailed, match=stale):
        refresh.source_freshness("2022-03-01", settings)
    assert not history.history_path(settings.quality).exists()
