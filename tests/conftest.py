"""Suite-wide fixtures and ordering: slow, browser, live-UI and topology tests run last, in that order."""

from __future__ import annotations

import hashlib
import os

import pytest
from oncopipe.contracts.settings import EXPECTATIONS_DIR

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")

# The session's native topology (PostgreSQL, Celery, every Airflow process), shared by the airflow_ui and
# topology tests: tests/native_topology.py.
pytest_plugins = ["native_topology"]

# Later in this tuple runs later. The airflow_ui and topology tests come last and together, so the shared
# topology starts once and lives no longer than needed; the browser test goes first because it checks the
# platform before any extraction landed, which the topology tests then land and refresh; the ``after_refresh``
# browser tests (tests/e2e/test_topology_browser.py) come after those, on what they published and mailed.
_LAST = ("slow", "e2e", "airflow_ui", "topology", "after_refresh")


# Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) the unit a worker takes is a group: one test
# file (so a module-scoped fixture, e.g. a generated platform, is built once, on one worker), except the tests
# of the shared native topology, which all go to one worker, in the order above.
_TOPOLOGY_GROUP = "native-topology"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the group into the node id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return max((i for i, marker in enumerate(_LAST, start=1) if item.get_closest_marker(marker)), default=0)

    items.sort(key=rank)  # stable: keeps file order within a rank
    if hasattr(config, "workerinput"):
        # On an xdist worker the longest units go first, so two workers finish together: the topology group, then
        # the files holding slow or browser tests, then the rest (each group keeps the order above inside it).
        def cost(item: pytest.Item) -> int:
            if any(item.get_closest_marker(m) for m in ("topology", "airflow_ui", "after_refresh")):
                return 0
            return 1 if item.get_closest_marker("slow") or item.get_closest_marker("e2e") else 2

        items.sort(key=cost)
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        shared = any(item.get_closest_marker(m) for m in ("topology", "airflow_ui", "after_refresh"))
        item.add_marker(pytest.mark.xdist_group(_TOPOLOGY_GROUP if shared else item.nodeid.split("::")[0]))


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


@pytest.fixture(scope="session")
def embedded_scenario(tmp_path_factory):
    """The embedded platform with a history (tests/support/embedded_scenario.py): ``(home, what happened)``."""
    from support.embedded_scenario import run_scenario

    return run_scenario(tmp_path_factory.mktemp("embedded_scenario"))
