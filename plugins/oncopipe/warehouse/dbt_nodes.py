"""One Airflow task per dbt model and seed, generated from the dbt manifest, each running ``dbt build`` on it.

Why not astronomer-cosmos' ``DbtTaskGroup`` (which the refresh DAG can still use, ``ONCOPIPE_DBT_TASKS=cosmos``,
``cosmos-build`` or ``cosmos-watcher``)? Re-measured with Cosmos 1.15 (``benchmarks/dbt_tasks.py``, the dbt part of
the refresh in ``dag.test()`` on the same 200-person extraction, 22 models and 8 seeds, all with
``InvocationMode.DBT_RUNNER``; ``benchmarks/results/dbt-tasks-200.json``): these per-node tasks built it in 110 s
(30 tasks; 154 s in an earlier run on the same load), Cosmos ``TestBehavior.BUILD`` in 193 s (30 tasks),
``TestBehavior.AFTER_EACH`` in 343 s (60 tasks: a run task and a test task per model). Every Cosmos task copies
the project and starts a dbt invocation that re-reads it; here each task runs ``dbt build --select <node>`` (the
node and its tests, so tests stay visible per model, in the task log and its XCom), and the parsed manifest is
kept in the process: tasks that run in the same process (``dag.test()``, the embedded ``oncopipe run``) skip
dbt's parse entirely. Parsing the DAG costs 0.24 s here against 0.75 to 1.2 s with Cosmos (first parse in a
process). The watcher mode (one producer ``dbt build`` per group, followed by sensors) does not finish under
``dag.test()``: its sensors start beside their producer (``trigger_rule="always"``) and the ``marts_candidate``
ones hold the only thread while their producer waits for ``transform``.

Tests with several parents (relationships) run with the last of their parents (``--indirect-selection
buildable``): the tasks follow the dbt graph, so the other parents are already built.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncopipe.contracts.settings import Settings, get_settings
from oncopipe.warehouse.lineage import LineageParent, emit_dbt_lineage

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_MANIFEST_CACHE: dict[str, tuple[float, Any]] = {}


class DbtNodeFailed(RuntimeError):
    """A dbt model, seed or one of its tests failed; the message names each failing node."""


@dataclass(frozen=True)
class DbtNode:
    """A model or seed of the manifest, with the nodes it depends on."""

    unique_id: str
    name: str
    resource_type: str
    layer: str
    depends_on: tuple[str, ...]
    tests: tuple[str, ...]

    @property
    def task_id(self) -> str:
        return f"{self.resource_type}.{self.name}" if self.resource_type == "seed" else self.name


def manifest_path(settings: Settings | None = None) -> Path:
    """Where ``dbt parse`` writes the manifest the refresh DAG is generated from."""
    return (settings or get_settings()).dbt_target_dir / "manifest.json"


def _layer(node: Mapping[str, Any]) -> str:
    if node["resource_type"] == "seed":
        return "seeds"
    parts = Path(node.get("original_file_path", "")).parts
    return parts[1] if len(parts) > 2 and parts[0] == "models" else "models"


def read_nodes(path: Path) -> list[DbtNode]:
    """Models and seeds of a manifest file, in dbt graph order, with their tests.

    Raises:
        FileNotFoundError: no manifest: run ``oncopipe dbt parse`` (or ``oncopipe run``, which parses first).
    """
    if not path.exists():
        raise FileNotFoundError(f"no dbt manifest at {path}: run `oncopipe dbt parse` first")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    nodes = {uid: n for uid, n in manifest["nodes"].items()
             if n["resource_type"] in ("model", "seed") and n.get("package_name") == manifest["metadata"].get(
                 "project_name", n.get("package_name"))}
    tests: dict[str, list[str]] = {uid: [] for uid in nodes}
    for n in manifest["nodes"].values():
        if n["resource_type"] == "test":
            parents = [p for p in n.get("depends_on", {}).get("nodes", []) if p in nodes]
            if parents:
                tests[parents[-1]].append(n["name"])
    out = [DbtNode(uid, n["name"], n["resource_type"], _layer(n),
                   tuple(p for p in n.get("depends_on", {}).get("nodes", []) if p in nodes), tuple(tests[uid]))
           for uid, n in nodes.items()]
    return sorted(out, key=lambda d: (d.layer, d.name))


def _manifest(settings: Settings) -> Any:
    """The parsed dbt manifest, kept per process (re-read when manifest.json changes)."""
    from dbt.cli.main import dbtRunner

    from oncopipe.warehouse.dbt_runner import dbt_args

    path = manifest_path(settings)
    key = str(path)
    stamp = path.stat().st_mtime if path.exists() else -1.0
    cached = _MANIFEST_CACHE.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    result = dbtRunner().invoke(dbt_args("parse", settings, quiet=True))
    if not result.success:
        raise DbtNodeFailed(f"dbt parse failed: {result.exception}")
    _MANIFEST_CACHE[key] = (manifest_path(settings).stat().st_mtime, result.result)
    return result.result


def _keep(settings: Settings, manifest: Any) -> None:
    """Keep ``manifest`` as the parsed one after an invocation that rewrote manifest.json from it.

    ``dbt build`` writes the manifest it was given back to ``manifest.json`` (and ``run_results.json``, which
    publish reads), so the file's time changes on every build: without this, every dbt task re-ran
    ``dbt parse`` (0.6 to 6.5 s each, measured at the demo scale) before its own build.
    """
    path = manifest_path(settings)
    if path.exists():
        _MANIFEST_CACHE[str(path)] = (path.stat().st_mtime, manifest)


def parse(settings: Settings | None = None) -> Path:
    """Run ``dbt parse`` (writes the manifest the refresh DAG is built from) and return the manifest path."""
    settings = (settings or get_settings()).ensure()
    settings.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    from oncopipe.warehouse.dbt_runner import dbt_environment

    with _LOCK:
        saved = {k: os.environ.get(k) for k in dbt_environment(settings)}
        os.environ.update(dbt_environment(settings))
        try:
            _MANIFEST_CACHE.pop(str(manifest_path(settings)), None)
            _manifest(settings)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return manifest_path(settings)


def release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after an invocation.

    dbt-duckdb caches one database handle per process (``DuckDBConnectionManager._ENV``); while it is open, any
    other connection to the warehouse file from this process with another configuration (the read-only export
    of the marts gate and publish) fails, and other processes are locked out. A task running in its own process
    releases it at exit anyway; ``dag.test()`` runs every task in one process, hence this.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def _invoke(settings: Settings, args: list[str], *, lineage: bool = False,
            lineage_parent: LineageParent | None = None) -> tuple[Any, str]:
    """One dbt invocation on the manifest kept in the process; returns dbt's result and invocation id.

    With ``lineage``, the OpenLineage events of the nodes it ran are emitted from its artifacts (a model build; not
    a freshness check, whose results are no node runs).
    """
    from dbt.cli.main import dbtRunner
    from dbt_common.invocation import get_invocation_id

    from oncopipe.warehouse.dbt_runner import dbt_environment

    with _LOCK:  # dbt keeps global state: one invocation at a time in a process
        saved = {k: os.environ.get(k) for k in dbt_environment(settings)}
        os.environ.update(dbt_environment(settings))
        manifest = None
        try:
            manifest = _manifest(settings)
            result = dbtRunner(manifest=manifest).invoke(args)
            if lineage:
                emit_dbt_lineage(settings, parent=lineage_parent)
            return result, get_invocation_id()
        finally:
            release_warehouse()
            if manifest is not None:
                _keep(settings, manifest)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def source_freshness(extraction_date: str, settings: Settings | None = None) -> tuple[str, str | None]:
    """``dbt source freshness`` at ``extraction_date`` (the var the freshness macro measures at), on the landing
    views as they are (the refresh's begin_candidate bounded them to this extraction).

    It runs on the manifest kept in the process, as the build tasks do: the var given on the command line is read
    when the macro runs, not at parse time, and parsing with it would cost a full re-parse here and another in the
    next build task (dbt's partial parsing starts over when the vars change): 2.1 to 2.7 s instead of ~25 s,
    measured on the dbt fixture's landing at a load of 21 on 2 cores.

    Returns:
        dbt's invocation id (``metadata.invocation_id`` of the ``<target>/sources.json`` it wrote) and, when dbt
        raised, its error.
    """
    from oncopipe.warehouse.dbt_runner import dbt_args

    settings = (settings or get_settings()).ensure()
    result, invocation_id = _invoke(settings, dbt_args("freshness", settings, quiet=True,
                                                       vars={"extraction_date": extraction_date}))
    error = None if result.exception is None else f"{type(result.exception).__name__}: {result.exception}"
    return invocation_id, error


def build_node(name: str, *, full_refresh: bool = False, settings: Settings | None = None,
               lineage_parent: LineageParent | None = None) -> dict[str, Any]:
    """``dbt build`` one model or seed and its tests; returns each node's status and time.

    ``name`` may be a dbt selection of several space-separated methods (``path:models/marts ...``): the refresh
    DAG builds whole groups that way when it was parsed without a manifest.

    ``full_refresh`` rebuilds an incremental model from every landed extraction (needed after a change of
    its columns: dbt refuses to append to a table of another shape).

    The OpenLineage events of the node and its tests are emitted after the build (:mod:`oncopipe.warehouse.lineage`),
    with ``lineage_parent`` (the Airflow task's OpenLineage run) as their parent.

    Raises:
        DbtNodeFailed: the model/seed or a test failed (the message lists them with dbt's message).
    """
    from oncopipe.warehouse.dbt_runner import dbt_args

    settings = (settings or get_settings()).ensure()
    args = [*dbt_args("build", settings, select=name.split(), full_refresh=full_refresh, quiet=True),
            "--indirect-selection", "buildable"]
    started = time.perf_counter()
    result, _ = _invoke(settings, args, lineage=True, lineage_parent=lineage_parent)
    wall = time.perf_counter() - started
    nodes = []
    for item in getattr(result.result, "results", None) or ():
        status = getattr(item.status, "value", item.status)
        nodes.append({"node": item.node.name, "type": str(getattr(item.node.resource_type, "value",
                                                                  item.node.resource_type)),
                      "status": str(status), "seconds": round(float(item.execution_time or 0.0), 3),
                      "message": item.message if str(status) in ("error", "fail", "runtime error") else None})
    for n in nodes:
        log.info("dbt %-6s %-60s %-8s %6.2fs", n["type"], n["node"], n["status"], n["seconds"])
    failed = [n for n in nodes if n["status"] in ("error", "fail", "runtime error")]
    if failed or not result.success:
        detail = "; ".join(f"{n['type']} {n['node']}: {n['status']}: {n['message']}" for n in failed)
        raise DbtNodeFailed(f"dbt build --select {name} failed: {detail or result.exception}")
    return {"select": name, "wall_seconds": round(wall, 3),
            "dbt_seconds": round(sum(n["seconds"] for n in nodes), 3), "nodes": nodes}
