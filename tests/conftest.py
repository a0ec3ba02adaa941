"""Suite-wide fixtures and ordering: slow, browser, live-UI and topology tests run last, in that order."""

from __future__ import annotations

import hashlib
import os

import pytest
from oncopipe.contracts.settings import EXPECTATIONS_DIR

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")
# A developer's .env (docker compose's, at the top of the checkout) must not reach the tests' settings: they set
# what they need in the environment. Tests of the .env file point ONCOPIPE_ENV_FILE at their own.
os.environ["ONCOPIPE_ENV_FILE"] = ""

# The session's native topology (PostgreSQL, Celery, every Airflow process), shared by the airflow_ui and
# topology tests: tests/native_topology.py.
pytest_plugins = ["native_topology"]

# Later in this tuple runs later. The airflow_ui and topology tests come last and together, so the shared
# topology starts once and lives no longer than needed; the browser test goes first because it checks the
# platform before any extraction landed, which the topology tests then land and refresh; the ``after_refresh``
# browser tests (tests/e2e/test_topology_browser.py) come after those, on what they published and mailed.
_LAST = ("slow", "e2e", "airflow_ui", "topology", "after_refresh")


# Under pytest-xdist (``make test`` runs ``-n 2``) the unit a worker takes is a group (:func:`group_of`): one test
# file, so a module fixture (a generated platform, say) is built once, on one worker; except the files that share a
# session fixture, which must run on one worker: the native topology's (its PostgreSQL database and Redis db are
# fixed) and the embedded scenario's (tests/support/embedded_scenario.py). The scheduler below groups by file
# path because the controller sees node ids only. (xdist's own ``loadgroup`` does not work with pytest 9: it
# renames ``item._nodeid``, which pytest 9 no longer reads.)
SHARED_GROUPS = {
    "native-topology": ("tests/e2e/test_ui_browser.py", "tests/integration/test_topology.py",
                        "tests/e2e/test_topology_browser.py"),
    "embedded-scenario": ("tests/integration/test_dag_e2e.py", "tests/e2e/test_operator_browser.py"),
}
_TOPOLOGY_MARKERS = ("topology", "airflow_ui", "after_refresh")


def group_of(nodeid: str) -> str:
    """The xdist work unit of a test: its file, or the shared group its file belongs to."""
    path = nodeid.split("::")[0]
    return next((group for group, files in SHARED_GROUPS.items() if path in files), path)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return max((i for i, marker in enumerate(_LAST, start=1) if item.get_closest_marker(marker)), default=0)

    items.sort(key=rank)  # stable: keeps file order within a rank
    for item in items:  # a new file using a shared session fixture must join its group
        path = item.nodeid.split("::")[0]
        if any(item.get_closest_marker(m) for m in _TOPOLOGY_MARKERS):
            assert path in SHARED_GROUPS["native-topology"], f"{path}: add it to SHARED_GROUPS in tests/conftest.py"
        if "embedded_scenario" in getattr(item, "fixturenames", ()):
            assert path in SHARED_GROUPS["embedded-scenario"], f"{path}: add it to SHARED_GROUPS in tests/conftest.py"
    if hasattr(config, "workerinput"):
        # On an xdist worker the longest groups go first (the controller keeps this order: --no-loadscope-reorder),
        # so two workers finish together: the topology group, then the files holding slow or browser tests, then
        # the rest (each group keeps the order above inside it).
        def cost(item: pytest.Item) -> int:
            if group_of(item.nodeid) == "native-topology":
                return 0
            return 1 if item.get_closest_marker("slow") or item.get_closest_marker("e2e") else 2

        items.sort(key=cost)


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
