from pathlib import Path

from oncopipe.contracts.settings import PROJECT_ROOT, get_settings


def test_defaults_live_under_home(oncopipe_home):
    s = get_settings()
    assert s.home == oncopipe_home
    for p in (s.landing, s.quarantine, s.warehouse, s.published, s.exports, s.quality, s.airflow_home):
        assert oncopipe_home in p.parents


def test_each_path_can_be_overridden(oncopipe_home, monkeypatch, tmp_path):
    monkeypatch.setenv("ONCOPIPE_LANDING", str(tmp_path / "elsewhere"))
    assert get_settings().landing == (tmp_path / "elsewhere").resolve()


def test_default_home_is_the_ignored_var_folder(monkeypatch):
    monkeypatch.delenv("ONCOPIPE_HOME", raising=False)
    assert get_settings().home == PROJECT_ROOT / "var"
    assert "var/" in Path(PROJECT_ROOT / ".gitignore").read_text().splitlines()
