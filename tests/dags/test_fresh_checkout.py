"""Every DAG file imports on a fresh checkout: only the git-tracked files, no dbt manifest, an empty home.

The copy's own ``plugins/`` comes first on ``sys.path`` (the package's paths are found from where it lies), so
the DagBag parses the copy with the copy's code, in a fresh interpreter with its own AIRFLOW_HOME.

Cost: one interpreter importing Airflow and parsing the dags folder (measured: about 20 s at a load of 6).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from oncopipe.contracts.settings import PROJECT_ROOT

PARSE = textwrap.dedent("""
    import json, sys
    import oncopipe
    from airflow.dag_processing.dagbag import DagBag
    from oncopipe.contracts.settings import DAGS_DIR
    from oncopipe.warehouse import dbt_nodes

    bag = DagBag(dag_folder=str(DAGS_DIR))
    refresh = bag.dags.get("platform_refresh")
    print(json.dumps({
        "package": oncopipe.__file__, "dags_dir": str(DAGS_DIR),
        "errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags),
        "refresh_tasks": sorted(t.task_id for t in refresh.tasks) if refresh else [],
        "refresh_doc": refresh.doc_md if refresh else "",
        "manifest_exists": dbt_nodes.manifest_path().exists(),
    }))
""")


def _checkout(dest: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, check=True, capture_output=True,
                             text=True).stdout.split("\0")
    for name in filter(None, tracked):
        source = PROJECT_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_every_dag_imports_on_a_fresh_checkout_without_a_manifest(tmp_path):
    checkout = _checkout(tmp_path / "checkout")
    assert not (checkout / "dbt_project" / "target").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env.update({"ONCOPIPE_HOME": str(tmp_path / "home"), "AIRFLOW_HOME": str(tmp_path / "airflow"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(checkout / "plugins")})
    done = subprocess.run([sys.executable, "-c", PARSE], env=env, capture_output=True, text=True, timeout=600,
                          cwd=checkout)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(checkout)), result["package"]
    assert result["errors"] == {}
    from oncopipe.studies.registry import scan_registry

    studies = {e.study.dag_id for e in scan_registry(check_kinds=False) if e.study}
    assert set(result["dags"]) == {"platform_refresh"} | studies
    assert {"transform.build", "marts_candidate.build", "marts_gate", "publish"} <= set(result["refresh_tasks"])
    assert not [t for t in result["refresh_tasks"] if t.startswith("transform.") and t != "transform.build"]
    assert "No dbt manifest yet" in result["refresh_doc"]
    assert result["manifest_exists"] is False  # parsing the DAG files wrote nothing
