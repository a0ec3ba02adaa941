"""Publishing: atomic, idempotent, readable, versions kept; a crash mid-publish changes nothing visible."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from gates_marts import mart_tables, settings_for, write_warehouse
from oncopipe.warehouse import versions


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".candidates" not in p.parts}


@pytest.fixture()
def settings(tmp_path):
    s = settings_for(tmp_path / "home")
    write_warehouse(s.warehouse, mart_tables())
    return s


def _with_more_women(settings, n: int) -> None:
    write_warehouse(settings.warehouse, mart_tables(n))


def test_first_publish_writes_every_table_with_version_json(settings):
    assert versions.current_version(settings) is None
    version = versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    folder = settings.published / version.version
    assert (settings.published / "CURRENT").read_text().strip() == version.version
    assert version.version.startswith("2024-01-01_")
    for table in versions.PUBLISHED_TABLES:
        path = folder / f"{table}.parquet"
        assert version.files[path.name] == hashlib.sha256(path.read_bytes()).hexdigest()
    meta = json.loads((folder / "version.json").read_text())
    assert meta["extraction"] == "2024-01-01"
    assert meta["row_counts"]["endocrine_adherence_monthly"] == 120
    assert meta["gates"]["marts"]["pass_counts"]["critical_failures"] == 0
    assert meta["gx_validations"] and all(v["success"] for v in meta["gx_validations"])
    assert "created_at" in meta and "dbt_invocation_id" in meta
    assert versions.current_version(settings) == version
    cohort = versions.read_mart("breast_cancer_endocrine_cohort", settings=settings)
    assert len(cohort) == 40 and cohort["person_id"].is_unique
    assert len(versions.read_mart("french_life_tables", version.version, settings)) == 6


def test_republishing_identical_content_is_idempotent(settings):
    first = versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    before = tree_hashes(settings.published)
    again = versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    assert again.version == first.version
    assert tree_hashes(settings.published) == before
    assert [v.version for v in versions.list_versions(settings)] == [first.version]


def test_new_content_makes_a_new_version_and_keeps_the_old_one(settings):
    first = versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    _with_more_women(settings, 44)
    second = versions.publish_candidate(extraction_date="2024-04-01", settings=settings)
    assert second.version != first.version
    assert versions.current_version(settings).version == second.version
    assert [v.version for v in versions.list_versions(settings)] == [first.version, second.version]
    assert len(versions.read_mart("poor_prognosis_cases", first.version, settings)) == 40
    assert len(versions.read_mart("poor_prognosis_cases", settings=settings)) == 44


def test_retention_never_removes_current(settings):
    published = []
    for i, n in enumerate((40, 42, 44)):
        _with_more_women(settings, n)
        published.append(versions.publish_candidate(extraction_date=f"2024-0{i + 1}-01", settings=settings,
                                                   retention=2).version)
    kept = [v.version for v in versions.list_versions(settings)]
    assert kept == published[1:]
    assert versions.current_version(settings).version == published[-1]


def _pin(settings, study: str, run: str, version: str) -> None:
    folder = settings.exports / study / run
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"mart_version": version, "run_id": run}))


def test_retention_never_removes_a_version_an_export_pins(settings):
    published = []
    for i, n in enumerate((40, 42, 44, 46)):
        _with_more_women(settings, n)
        published.append(versions.publish_candidate(extraction_date=f"2024-0{i + 1}-01", settings=settings,
                                                   retention=1).version)
        if i < 3:  # three studies export from each of the first three versions
            _pin(settings, f"study_{i}", f"run_{i}", published[-1])
    assert [v.version for v in versions.list_versions(settings)] == published
    # Once no export names it, a version goes at the next publish.
    import shutil

    shutil.rmtree(settings.exports / "study_0")
    _with_more_women(settings, 48)
    newest = versions.publish_candidate(extraction_date="2024-06-01", settings=settings, retention=1).version
    assert [v.version for v in versions.list_versions(settings)] == [*published[1:3], newest]


def test_recovery_removes_every_temporary_folder(settings):
    from oncopipe.warehouse import refresh

    first = versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    before = tree_hashes(settings.published)
    left = [settings.published / ".tmp-2024-02-01_abc-1234abcd", settings.published / ".candidates" / ".tmp-ff00"]
    for folder in left:
        folder.mkdir(parents=True)
        (folder / "poor_prognosis_cases.parquet").write_bytes(b"half")
    (settings.published / ".CURRENT.tmp-99").write_text("x")
    copy = settings.warehouse.with_name(f".{settings.warehouse.name}.tmp-0badf00d")
    copy.write_bytes(b"half a warehouse")
    removed = refresh.recover(settings)
    assert len(removed) == 4 and str(copy) in removed
    assert not any(p.name.startswith(".tmp-") for p in settings.published.rglob("*"))
    assert not copy.exists() and not (settings.published / ".CURRENT.tmp-99").exists()
    assert tree_hashes(settings.published) == before
    assert versions.current_version(settings).version == first.version


@pytest.mark.parametrize("crash_at", ["rename_version", "replace_current"])
def test_crash_mid_publish_leaves_current_and_previous_version_byte_identical(settings, monkeypatch, crash_at):
    first = versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    before = tree_hashes(settings.published)
    _with_more_women(settings, 44)
    candidate = versions.stage_candidate(settings)

    versions.gate_candidate(settings, candidate, build_docs=False)

    real_rename, real_replace = os.rename, os.replace

    def crash(*args, **kwargs):
        raise OSError("injected crash")

    if crash_at == "rename_version":
        monkeypatch.setattr(os, "rename", crash)
    else:
        monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="injected crash"):
        versions.publish_candidate(candidate, extraction_date="2024-04-01", settings=settings)
    monkeypatch.setattr(os, "rename", real_rename)
    monkeypatch.setattr(os, "replace", real_replace)

    after = {k: v for k, v in tree_hashes(settings.published).items() if not k.startswith(".")}
    assert {k: v for k, v in after.items() if k.startswith((first.version, "CURRENT"))} == before
    assert versions.current_version(settings).version == first.version
    assert len(versions.read_mart("poor_prognosis_cases", settings=settings)) == 40


def test_read_mart_errors_name_the_table_and_version(settings):
    with pytest.raises(LookupError, match="nothing is published"):
        versions.read_mart("poor_prognosis_cases", settings=settings)
    versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    with pytest.raises(KeyError, match="unknown published table 'nope'"):
        versions.read_mart("nope", settings=settings)
    with pytest.raises(LookupError, match="2099"):
        versions.read_mart("poor_prognosis_cases", "2099-01-01_x", settings=settings)


def test_missing_mart_in_warehouse_is_a_clear_error(settings):
    tables = mart_tables()
    del tables["care_pathway_delays"]
    write_warehouse(settings.warehouse, tables)
    with pytest.raises(versions.PublishError, match="marts.care_pathway_delays is missing"):
        versions.publish_candidate(extraction_date="2024-01-01", settings=settings)
    assert versions.current_version(settings) is None


def test_staging_is_deterministic(settings):
    a = versions.stage_tables(mart_tables(), settings)
    b = versions.stage_tables({k: pa.Table.from_pandas(v.to_pandas(), schema=v.schema, preserve_index=False)
                              for k, v in mart_tables().items()}, settings)
    assert a.content_sha256 == b.content_sha256
