"""Suite-wide fixtures and ordering: slow, topology and browser tests run last."""

from __future__ import annotations

import hashlib
import os

import pytest
from oncopipe.settings import EXPECTATIONS_DIR

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


def _tree_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "uncommitted" not in p.parts}


@pytest.fixture(scope="session", autouse=True)
def committed_expectations_stay_unchanged():
    """Running gates must never write into the committed GX context (production mounts it read-only)."""
    before = _tree_digest(EXPECTATIONS_DIR)
    yield
    after = _tree_digest(EXPECTATIONS_DIR)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"the test run changed committed files under expectations/: {changed[:10]}"
