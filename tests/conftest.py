"""Suite-wide fixtures and ordering: slow, topology and browser tests run last."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")

_LAST = ("slow", "topology", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        for i, marker in enumerate(_LAST, start=1):
            if item.get_closest_marker(marker):
                return i
        return 0

    items.sort(key=rank)  # stable: keeps file order within a rank


@pytest.fixture()
def oncopipe_home(tmp_path, monkeypatch):
    """A private ONCOPIPE_HOME so a test never touches the checkout's var/."""
    home = tmp_path / "oncopipe_home"
    monkeypatch.setenv("ONCOPIPE_HOME", str(home))
    for var in ("ONCOPIPE_LANDING", "ONCOPIPE_QUARANTINE", "ONCOPIPE_WAREHOUSE", "ONCOPIPE_PUBLISHED",
                "ONCOPIPE_EXPORTS", "ONCOPIPE_QUALITY", "AIRFLOW_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home
