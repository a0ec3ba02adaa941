"""What the export manifest pins: code lists from the seeds, the code version with its dirty flag, readable
run ids mapped to Airflow's (issue #19)."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
import yaml
from oncopipe.contracts.settings import DBT_PROJECT_DIR
from oncopipe.delivery import export_store
from oncopipe.delivery.export_store import find_export, publish_export, verify_export
from oncopipe.delivery.provenance import ProvenanceError, code_lists, code_state, readable_run_id
from test_exports import PROVENANCE, STUDY, demo_result

AIRFLOW_RUN = "manual__2026-12-02T13:06:04.436522+00:00"


def _without(key: str) -> dict:
    return {k: v for k, v in PROVENANCE.items() if k != key}


def test_code_lists_come_from_the_seed_catalogue_with_checksums():
    lists = code_lists()
    catalogue = yaml.safe_load((DBT_PROJECT_DIR / "seeds" / "_seeds.yml").read_text(encoding="utf-8"))["seeds"]
    assert set(lists) == {s["name"] for s in catalogue}
    icd = lists["icd10_cancer_sites"]
    assert icd["version"] == "2024.1" and icd["source"].startswith("WHO ICD-10 2019")
    assert icd["file"] == "seeds/icd10_cancer_sites.csv"
    data = (DBT_PROJECT_DIR / "seeds" / "icd10_cancer_sites.csv").read_bytes()
    assert icd["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_seed_without_version_or_file_is_named(tmp_path):
    (tmp_path / "_seeds.yml").write_text(yaml.safe_dump({"seeds": [{"name": "codes", "config": {"meta": {
        "source": "somewhere"}}}]}))
    with pytest.raises(ProvenanceError, match="seed codes lacks config.meta version"):
        code_lists(tmp_path)
    (tmp_path / "_seeds.yml").write_text(yaml.safe_dump({"seeds": [{"name": "codes", "config": {"meta": {
        "source": "somewhere", "version": "1"}}}]}))
    with pytest.raises(ProvenanceError, match="seed codes has no file"):
        code_lists(tmp_path)


def test_the_manifest_pins_every_code_list(oncopipe_home):
    info = publish_export(demo_result(), STUDY, _without("code_lists"), AIRFLOW_RUN)
    manifest = json.loads(info.manifest.read_text())
    assert manifest["code_lists"] == code_lists()
    assert manifest["code_lists"]["atc_hormone_therapies"]["version"] == "2025"


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.org")
    _git(repo, "config", "user.name", "t")
    (repo / "study.yml").write_text("id: a\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    return repo


def test_code_state_flags_a_dirty_tree_with_the_checksum_of_its_difference(repo):
    clean = code_state(repo)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False and clean["diff_sha256"] is None
    (repo / "study.yml").write_text("id: b\n")
    edited = code_state(repo)
    assert edited["commit"] == clean["commit"] and edited["dirty"] is True and len(edited["diff_sha256"]) == 64
    (repo / "study.yml").write_text("id: c\n")
    assert code_state(repo)["diff_sha256"] != edited["diff_sha256"]
    (repo / "study.yml").write_text("id: b\n")
    assert code_state(repo) == edited  # same difference, same checksum
    (repo / "study.yml").write_text("id: a\n")
    (repo / "new_study.yml").write_text("id: new\n")  # an uncommitted new study file
    untracked = code_state(repo)
    assert untracked["dirty"] is True and untracked["diff_sha256"] not in (None, edited["diff_sha256"])


def test_code_state_outside_git_is_unknown(tmp_path):
    assert code_state(tmp_path) == {"commit": "unknown", "dirty": None, "diff_sha256": None}


def test_the_manifest_records_the_dirty_flag(oncopipe_home, repo, monkeypatch):
    (repo / "study.yml").write_text("id: edited\n")
    monkeypatch.setattr(export_store, "PROJECT_ROOT", repo)
    info = publish_export(demo_result(), STUDY, _without("code_version"), AIRFLOW_RUN)
    manifest = json.loads(info.manifest.read_text())
    assert manifest["code_version"] == code_state(repo) and manifest["code_version"]["dirty"] is True
    assert "uncommitted changes (sha256 " + manifest["code_version"]["diff_sha256"][:12] in (
        (info.path / "report.html").read_text())


@pytest.mark.parametrize(
    ("run_id", "readable"),
    [(AIRFLOW_RUN, "2026-12-02T1306-tradhor"),
     ("scheduled__2026-07-01T00:00:00+00:00", "2026-07-01T0000-tradhor"),
     ("asset_triggered__2026-12-02T14:06:04+01:00", "2026-12-02T1306-tradhor"),
     ("run_1", "run_1")],
)
def test_readable_run_ids(run_id, readable):
    assert readable_run_id(run_id, "tradhor") == readable


def test_run_folders_use_the_readable_id_and_the_manifest_maps_it(oncopipe_home):
    exports = oncopipe_home / "exports"
    pinned = oncopipe_home / "published" / PROVENANCE["mart_version"]  # verify checks the pinned version exists
    pinned.mkdir(parents=True)
    (pinned / "version.json").write_text(json.dumps({"version": PROVENANCE["mart_version"]}))
    first = publish_export(demo_result(), STUDY, PROVENANCE, AIRFLOW_RUN)
    assert first.path == exports / "demo_study" / "2026-12-02T1306-demo_study"
    manifest = json.loads(first.manifest.read_text())
    assert (manifest["run_id"], manifest["airflow_run_id"]) == ("2026-12-02T1306-demo_study", AIRFLOW_RUN)
    same_minute = "manual__2026-12-02T13:06:59+00:00"
    second = publish_export(demo_result(), STUDY, PROVENANCE, same_minute)
    assert second.path.name == "2026-12-02T1306-demo_study-2"
    again = publish_export(demo_result(), STUDY, PROVENANCE, AIRFLOW_RUN)  # a re-run rewrites its own folder
    assert again.path == first.path
    assert sorted(p.name for p in (exports / "demo_study").iterdir()) == [
        "2026-12-02T1306-demo_study", "2026-12-02T1306-demo_study-2"]
    assert find_export("demo_study", same_minute, exports) == second.path
    assert find_export("demo_study", "2026-12-02T1306-demo_study", exports) == first.path
    assert verify_export(second.path) == []
