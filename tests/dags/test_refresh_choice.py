"""Which extraction a refresh run takes (oncopipe.warehouse.refresh), on hand-made landing folders."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from oncopipe.contracts.settings import get_settings
from oncopipe.warehouse import refresh, versions


def _land(home, source, date):
    folder = home / "landing" / source / f"extraction={date}"
    folder.mkdir(parents=True)
    (folder / "part-00000.parquet").write_bytes(b"")


@pytest.fixture()
def published(monkeypatch):
    state = {"extraction": None}

    def current_version(settings=None):
        return None if state["extraction"] is None else SimpleNamespace(version="v", extraction=state["extraction"])

    monkeypatch.setattr(versions, "current_version", current_version)
    return state


def test_oldest_new_extraction_first(oncopipe_home, published):
    _land(oncopipe_home, "er_pha_f", "2025-06-30")
    _land(oncopipe_home, "ir_ben_r", "2025-03-31")
    _land(oncopipe_home, "ir_ben_r", "2025-06-30")
    (oncopipe_home / "landing" / "_truth" / "extraction=2026-01-01").mkdir(parents=True)  # not a source
    (oncopipe_home / "landing" / "er_pha_f" / "extraction=not-a-date").mkdir()
    settings = get_settings()
    assert refresh.landed_extractions(settings) == ["2025-03-31", "2025-06-30"]
    assert refresh.choose_extraction(None, settings) == "2025-03-31"
    published["extraction"] = "2025-03-31"
    assert refresh.pending_extractions(settings) == ["2025-06-30"]
    published["extraction"] = "2025-06-30"
    assert refresh.choose_extraction(None, settings) is None


def test_requested_extraction_must_have_landed_and_not_be_older_than_published(oncopipe_home, published):
    _land(oncopipe_home, "ir_ben_r", "2025-03-31")
    _land(oncopipe_home, "ir_ben_r", "2025-06-30")
    settings = get_settings()
    published["extraction"] = "2025-06-30"
    assert refresh.choose_extraction("2025-06-30", settings) == "2025-06-30"  # a re-run of the published one
    with pytest.raises(ValueError, match="older than the published extraction 2025-06-30"):
        refresh.choose_extraction("2025-03-31", settings)
    with pytest.raises(ValueError, match="2025-09-30 has no folder in .*landing"):
        refresh.choose_extraction("2025-09-30", settings)
    with pytest.raises(ValueError, match="not a YYYY-MM-DD date"):
        refresh.choose_extraction("June", settings)


def test_a_publication_is_new_only_when_the_version_changes():
    before = SimpleNamespace(version="2025-06-30_abc", extraction="2025-06-30")
    same = refresh.describe_publication(before, before, "2025-06-30")
    assert same["new"] is False
    after = SimpleNamespace(version="2025-09-30_def", extraction="2025-09-30", path="/p")
    assert refresh.describe_publication(before, after, "2025-09-30")["new"] is True
    assert refresh.describe_publication(None, before, "2025-06-30")["new"] is True
    assert set(refresh.describe_publication(None, before, "x")["tables"]) >= {"poor_prognosis_cases",
                                                                              "french_life_tables"}
