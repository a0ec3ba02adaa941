"""Publishing exports: contents, manifest, atomicity, idempotency, refusal, audit, index, verify, CLI."""

from __future__ import annotations

import json
import shutil
import sqlite3

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from disclosure_cases import trajectory_result  # noqa: E402
from oncopipe.cli import app  # noqa: E402
from oncopipe.contracts.results import ResultFigure, ResultTable, StudyResult  # noqa: E402
from oncopipe.delivery.audit import AuditLog  # noqa: E402
from oncopipe.delivery.disclosure import MASK_MARKER, DisclosureViolation  # noqa: E402
from oncopipe.delivery.export_store import (  # noqa: E402
    ExportError,
    StudyInfo,
    list_exports,
    publish_export,
    remove_temporary,
    run_folder_name,
    sha256_file,
    verify_export,
)
from support.masked_csv import marked  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

STUDY = {"id": "demo_study", "title": "Demo survival study", "recipients": ["pi@example.org", "stat@example.org"],
         "approval": {"reference": "CESREES-2024-042", "committee": "CESREES"},
         "principal_investigator": {"name": "Dr Demo", "email": "pi@example.org"}}
PROVENANCE = {"extraction_date": "2026-06-30", "mart_version": "20260701T000000Z", "dbt_invocation_id": "inv-1",
              "gx_validations": [{"id": "raw-er_pha_f-1", "name": "raw er_pha_f", "success": True,
                                  "evaluated_expectations": 12, "successful_expectations": 12}],
              "code_lists": {"icd10_poor_prognosis": "2024.1"}, "row_counts": {"poor_prognosis_cases": 5000},
              "code_version": "0123abc"}
RUN = "scheduled__2026-07-01T00:00:00+00:00"


def draw_bars(frames):
    fig, ax = plt.subplots(figsize=(4, 3))
    frame = frames["by_site"]
    ax.bar(frame["site"], frame["n"].astype(float))
    ax.set_ylabel("patients")
    return fig


def draw_km(frames):
    fig, ax = plt.subplots(figsize=(4, 3))
    for site, curve in frames["km"].groupby("site"):
        ax.step(curve["month"], curve["survival"], where="post", label=site)
    ax.legend()
    return fig


def demo_result(pancreas: int = 5, *, fail_figure: bool = False) -> StudyResult:
    sites = pd.DataFrame({"site": ["lung", "pancreas", "liver", "Total"],
                          "n": [120, pancreas, 45, 165 + pancreas]})
    sites["pct_dead"] = [0.6, 0.8, 0.7, 0.65]
    km_rows = []
    for site, start in (("lung", 120), ("liver", 45)):
        for month in range(0, 37, 6):
            at_risk = int(start * 0.8 ** (month / 6))
            km_rows.append({"site": site, "month": month, "n_at_risk": at_risk, "survival": 0.8 ** (month / 6)})
    km = pd.DataFrame(km_rows)

    def broken(frames):
        raise RuntimeError("boom")

    return StudyResult(
        "demo_study", "poor_prognosis_survival", {"sites": ["lung", "pancreas", "liver"], "horizon_months": 36},
        [ResultTable("by_site", sites, "Cases by site.", count_columns=("n",), statistic_columns={"pct_dead": "n"},
                     group_columns=("site",), total_value="Total"),
         ResultTable("km", km, "Kaplan-Meier survival by site.", statistic_columns={"survival": "n_at_risk"},
                     group_columns=("site",), at_risk_column="n_at_risk")],
        [ResultFigure("cases", "Cases by site", ("by_site",), draw_bars),
         ResultFigure("km_curves", "Observed survival", ("km",), broken if fail_figure else draw_km)],
        methods="Kaplan-Meier estimator from diagnosis.")


def checksums(folder):
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def exports(oncopipe_home):
    # The mart version PROVENANCE pins is published (verify checks that it still is).
    pinned = oncopipe_home / "published" / PROVENANCE["mart_version"]
    pinned.mkdir(parents=True)
    (pinned / "version.json").write_text(json.dumps({"version": PROVENANCE["mart_version"]}))
    return oncopipe_home / "exports"


def test_publish_writes_every_file_and_a_complete_manifest(exports):
    info = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    folder = exports / "demo_study" / run_folder_name(RUN, "demo_study")
    assert info.path == folder and folder.is_dir()
    expected = {"tables/by_site.csv", "tables/by_site.parquet", "tables/km.csv", "tables/km.parquet",
                "figures/cases.png", "figures/cases.svg", "figures/km_curves.png", "figures/km_curves.svg",
                "report.html", "disclosure.json", "codebook.csv", "manifest.json"}
    assert set(checksums(folder)) == expected
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["approval"]["reference"] == "CESREES-2024-042"
    assert manifest["run_id"] == "2026-07-01T0000-demo_study" and manifest["airflow_run_id"] == RUN
    assert manifest["mart_version"] == "20260701T000000Z"
    assert manifest["extraction_date"] == "2026-06-30" and manifest["dbt_invocation_id"] == "inv-1"
    assert manifest["gx_validations"][0] == {"id": "raw-er_pha_f-1", "name": "raw er_pha_f", "success": True,
                                             "evaluated": 12, "passed": 12}
    assert manifest["code_version"] == {"commit": "0123abc", "dirty": None, "diff_sha256": None}
    assert manifest["code_lists"] == {"icd10_poor_prognosis": "2024.1"}
    assert manifest["package_versions"]["pandas"] == pd.__version__
    assert manifest["parameters"]["horizon_months"] == 36
    assert manifest["row_counts"]["inputs"] == {"poor_prognosis_cases": 5000}
    for rel, digest in manifest["files"].items():
        assert sha256_file(folder / rel) == digest
    assert set(manifest["files"]) == expected - {"manifest.json"}
    csv = pd.read_csv(folder / "tables" / "by_site.csv", dtype=str, keep_default_na=False)
    assert csv["n"].tolist() == ["120", "", "", "170"]
    assert csv["n__masked"].tolist() == ["false", "true", "true", "false"]
    parquet = pd.read_parquet(folder / "tables" / "by_site.parquet")
    assert parquet["n__masked"].tolist() == [False, True, True, False]
    assert (exports / "index.html").read_text().count(run_folder_name(RUN, "demo_study")) >= 1
    assert verify_export(folder) == []


def test_code_version_is_the_git_commit_or_unknown(exports):
    provenance = {k: v for k, v in PROVENANCE.items() if k != "code_version"}
    info = publish_export(demo_result(), STUDY, provenance, RUN)
    version = json.loads(info.manifest.read_text())["code_version"]
    assert version["commit"] == "unknown" or len(version["commit"]) == 40


def test_rerun_is_idempotent_apart_from_the_manifest_timestamp(exports, monkeypatch):
    first = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    before = checksums(first.path)
    manifest_before = json.loads(first.manifest.read_text())
    manifest_before["created_at"] = "2000-01-01T00:00:00+00:00"  # a different clock reading on the re-run
    first.manifest.write_text(json.dumps(manifest_before, sort_keys=True, indent=2) + "\n")
    second = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    after = checksums(second.path)
    assert {k: v for k, v in before.items() if k != "manifest.json"} == {
        k: v for k, v in after.items() if k != "manifest.json"}
    manifest_after = json.loads(second.manifest.read_text())
    assert manifest_after["created_at"] != manifest_before["created_at"]
    manifest_before.pop("created_at"), manifest_after.pop("created_at")
    assert manifest_before == manifest_after
    assert [p.name for p in (exports / "demo_study").iterdir()] == [run_folder_name(RUN, "demo_study")]


def test_a_rerun_under_a_new_run_id_gives_the_same_files_but_the_manifest(exports):
    # After a kill, the study is re-run as a new run: only the manifest's run fields may differ.
    first = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    second = publish_export(demo_result(), STUDY, {**PROVENANCE, "dbt_invocation_id": "inv-2"}, "manual__retry")
    before, after = checksums(first.path), checksums(second.path)
    assert set(before) == set(after)
    assert {k: v for k, v in before.items() if k != "manifest.json"} == {
        k: v for k, v in after.items() if k != "manifest.json"}
    assert json.loads(second.manifest.read_text())["run_id"] == "manual__retry"


def test_failure_mid_build_leaves_no_partial_folder_and_prior_exports_untouched(exports):
    prior = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    prior_sums = checksums(prior.path)
    index_before = (exports / "index.html").read_bytes()
    for run in ("manual__retry", RUN):
        with pytest.raises(ExportError, match="figure 'km_curves': draw failed: boom"):
            publish_export(demo_result(fail_figure=True), STUDY, PROVENANCE, run)
    assert sorted(p.name for p in (exports / "demo_study").iterdir()) == [run_folder_name(RUN, "demo_study")]
    assert checksums(prior.path) == prior_sums
    assert (exports / "index.html").read_bytes() == index_before
    assert [e.kind for e in AuditLog(exports).events("demo_study")] == ["export"]


def test_a_result_that_breaks_the_rules_cannot_publish_and_the_refusal_is_audited(exports):
    bad = demo_result()
    bad.tables.append(ResultTable("people", pd.DataFrame({"BEN_NIR_PSA": ["a", "b"], "n": [10, 12]}), "oops",
                                  count_columns=("n",)))
    with pytest.raises(DisclosureViolation) as error:
        publish_export(bad, STUDY, PROVENANCE, RUN)
    assert str(error.value) == ("disclosure violation in table 'people', column 'BEN_NIR_PSA': rule "
                                "patient_identifier: column is named like a patient identifier; identifiers never "
                                "leave")
    assert not (exports / "demo_study").exists() or not any((exports / "demo_study").iterdir())
    events = AuditLog(exports).events("demo_study")
    assert [e.kind for e in events] == ["refused"]
    assert events[0].detail["table"] == "people" and events[0].detail["rule"] == "patient_identifier"


def test_cross_run_history_masks_a_small_difference_and_verify_rechecks_it(exports):
    publish_export(demo_result(pancreas=20), STUDY, PROVENANCE, "run_1")
    second = publish_export(demo_result(pancreas=23), STUDY, PROVENANCE, "run_2")
    csv = marked(second.path / "tables" / "by_site.csv")
    assert csv.loc[1, "n"] == MASK_MARKER and csv.loc[3, "n"] == MASK_MARKER  # 23 - 20 and 193 - 190
    assert second.masked_by_rule["cross_run_difference"] == 2
    assert verify_export(second.path) == []
    # re-running run_1 after run_2 sees only what preceded run_1: same files
    again = publish_export(demo_result(pancreas=20), STUDY, PROVENANCE, "run_1")
    assert pd.read_csv(again.path / "tables" / "by_site.csv", dtype=str).loc[1, "n"] == "20"


def test_verify_detects_tampering_and_unsafe_edits(exports):
    info = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    csv = info.path / "tables" / "by_site.csv"
    edited = pd.read_csv(csv, dtype=str, keep_default_na=False)
    edited.loc[1, ["n", "n__masked"]] = ["5", "false"]  # a masked cell given a value
    edited.to_csv(csv, index=False)
    (info.path / "tables" / "by_site.parquet").unlink()
    (info.path / "extra.txt").write_text("x")
    problems = verify_export(info.path)
    assert "tables/by_site.csv: sha256 differs from the manifest" in problems
    assert "tables/by_site.parquet: listed in the manifest but missing" in problems
    assert "extra.txt: present but not listed in the manifest" in problems
    assert any("row 1, column 'n': rule small_count: visible count 5" in p for p in problems)
    result = CliRunner().invoke(app, ["exports", "verify", "demo_study", RUN])
    assert result.exit_code == 1 and "visible count 5" in result.output


def test_verify_names_a_pinned_mart_version_that_is_gone(exports, oncopipe_home):
    info = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    assert verify_export(info.path) == []
    shutil.rmtree(oncopipe_home / "published" / PROVENANCE["mart_version"])
    problems = verify_export(info.path)
    assert problems == [f"manifest: pinned mart version {PROVENANCE['mart_version']} is not in "
                        f"{oncopipe_home / 'published'} (removed or never published): the export cannot be "
                        "reproduced"]
    result = CliRunner().invoke(app, ["exports", "verify", "--all"])
    assert result.exit_code == 1 and "pinned mart version" in result.output


def test_temporary_folders_of_an_interrupted_export_are_removed(exports):
    info = publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    left = [exports / "demo_study" / ".tmp-run-1-abcd1234", exports / "demo_study" / ".old-run-1-abcd1234"]
    for folder in left:
        (folder / "tables").mkdir(parents=True)
    assert remove_temporary("demo_study") == sorted(left[::-1])
    assert sorted(p.name for p in (exports / "demo_study").iterdir()) == [info.path.name]
    assert remove_temporary("no_such_study") == []


def test_audit_log_is_append_only(exports):
    publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    con = sqlite3.connect(AuditLog(exports).path)
    for statement in ("update events set study_id = 'x'", "delete from events", "delete from published_cells"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(statement)
    event = AuditLog(exports).events("demo_study")[0]
    assert event.recipients == ["pi@example.org", "stat@example.org"]
    assert event.approval_reference == "CESREES-2024-042"
    assert set(event.files) >= {"report.html", "manifest.json", "tables/by_site.csv"}


def test_index_lists_every_run_of_every_study(exports):
    publish_export(demo_result(), STUDY, PROVENANCE, "run_a")
    publish_export(demo_result(), STUDY, PROVENANCE, "run_b")
    other = demo_result()
    other.study_id = "other_study"
    publish_export(other, {**STUDY, "id": "other_study", "title": "Other"}, PROVENANCE, "run_c")
    index = (exports / "index.html").read_text()
    for href in ("demo_study/run_a/report.html", "demo_study/run_b/report.html", "other_study/run_c/report.html"):
        assert f'href="{href}"' in index
    assert [e["run_id"] for e in list_exports(exports)] == ["run_a", "run_b", "run_c"]


def test_keep_last_prunes_old_runs_and_audits_it(exports):
    study = {**STUDY, "export": {"keep_last": 1}}
    publish_export(demo_result(), study, PROVENANCE, "run_a")
    publish_export(demo_result(), study, PROVENANCE, "run_b")
    assert [e["run_id"] for e in list_exports(exports)] == ["run_b"]
    assert "pruned" in [e.kind for e in AuditLog(exports).events("demo_study")]


def test_export_options_choose_formats(exports):
    study = {**STUDY, "export": {"formats": ["csv"], "figures": ["png"], "report": "html"}}
    info = publish_export(demo_result(), study, PROVENANCE, RUN)
    assert not list(info.path.rglob("*.parquet")) and not list(info.path.rglob("*.svg"))
    assert verify_export(info.path) == []
    with pytest.raises(ExportError, match=r"\['xlsx'\] not supported"):
        StudyInfo.of({**STUDY, "export": {"formats": ["xlsx"]}})


def test_study_metadata_must_name_the_approval():
    with pytest.raises(ExportError, match="approval_reference"):
        StudyInfo.of({"id": "x", "title": "t"})


def test_registry_study_model_is_accepted():
    from oncopipe.studies.registry import load_registry

    studies = load_registry(check_kinds=False)
    if not studies:
        pytest.skip("no study YAML in the registry yet")
    info = StudyInfo.of(studies[0])
    assert info.approval_reference == studies[0].approval.reference
    assert info.recipients == tuple(studies[0].recipients)


def test_cli_list_and_show(exports):
    publish_export(demo_result(), STUDY, PROVENANCE, RUN)
    runner = CliRunner()
    listed = runner.invoke(app, ["exports", "list", "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output)[0]["run_id"] == "2026-07-01T0000-demo_study"
    assert json.loads(listed.output)[0]["airflow_run_id"] == RUN
    for run in (RUN, "2026-07-01T0000-demo_study"):
        shown = runner.invoke(app, ["exports", "show", "demo_study", run])
        assert shown.exit_code == 0 and "CESREES-2024-042" in shown.output
        assert "export to pi@example.org" in shown.output
    ok = runner.invoke(app, ["exports", "verify", "--all"])
    assert ok.exit_code == 0 and ok.output.startswith("ok")
    missing = runner.invoke(app, ["exports", "show", "demo_study", "nope"])
    assert missing.exit_code == 2


def test_verify_counts_dropped_curve_rows_as_unknown(exports):
    result = trajectory_result()
    study = {**STUDY, "id": "s1"}
    info = publish_export(result, study, PROVENANCE, RUN)
    assert verify_export(info.path) == []
    # without the dropped row the reader would be told 88 - 80 = 8 belongs to group 2: verify must see that too
    disclosure = json.loads((info.path / "disclosure.json").read_text())
    assert [c["labels"] for c in disclosure["cells"] if c["rule"] == "at_risk_below_10"] == [
        {"group": "2", "month": "2"}]


def test_markdown_report_option(exports):
    study = {**STUDY, "export": {"formats": ["csv"], "figures": ["svg"], "report": "markdown"}}
    info = publish_export(demo_result(), study, PROVENANCE, RUN)
    assert info.report == info.path / "report.md"
    text = info.report.read_text()
    assert "approval **CESREES-2024-042**" in text and "![Figure 1. Cases by site](figures/cases.png)" in text
    assert (info.path / "figures" / "cases.png").is_file() and (info.path / "figures" / "cases.svg").is_file()
    assert "| lung | 120 |" in text and "| pancreas | masked |" in text
    assert not (info.path / "report.html").exists() and verify_export(info.path) == []
    link = f'href="demo_study/{run_folder_name(RUN, "demo_study")}/report.md"'
    assert link in (exports / "index.html").read_text()


def test_exports_list_fits_100_columns(exports):
    result = demo_result()
    result.study_id = "poor_prognosis_survival"
    publish_export(result, {**STUDY, "id": "poor_prognosis_survival"}, PROVENANCE,
                   "manual__2026-12-02T13:06:04.436522+00:00")
    listed = CliRunner().invoke(app, ["exports", "list"], env={"COLUMNS": "100"})
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    # The first line names the folder, whole (a path is never cut; its length is the machine's: pytest's tmp folder
    # is longer under xdist); everything else fits 100 columns.
    assert lines[0] == f"exports in {exports}", lines[0]
    assert all(len(line) <= 100 for line in lines[1:]), [len(line) for line in lines]
    assert "poor_prognosis_survival - approval CESREES-2024-042" in listed.output
    row = next(line for line in lines if "2026-12-02T1306" in line)
    assert row.startswith("2026-12-02T1306-poor_prognosis_survival ") and "20260701T000000Z" in row
