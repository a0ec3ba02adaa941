"""A study whose run failed, or was killed mid-export, after a publish is retried by the next ``oncopipe run``.

Issue #24, point 4: the DagRun of a killed study stayed ``running``, the Asset rule counted it as served, and the
export was missing for good. Scenario (embedded Airflow in a fresh interpreter, 1,000 people, as
tests/integration/test_dag_e2e.py): round 1 publishes and runs the studies, one of which fails in its export
step; its run is then put back to ``running`` (what a kill leaves). Round 2, with nothing new landed, marks that
run failed, runs the study again and exports it; nothing is owed any more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PATIENTS = 1_000
SEED = 5
VICTIM = "care_pathway_delays"

DRIVER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from oncopipe.orchestration import embedded
    from oncopipe.studies import steps

    patients, seed, victim, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    log = lambda message: print(message, flush=True)
    real_export = steps.export

    def export_dies_for_the_victim(state_path):
        if steps.StudyRunState.load(state_path).study.id == victim:
            raise steps.NoPublishedMarts("simulated death of the export step")
        return real_export(state_path)

    steps.export = export_dies_for_the_victim
    one = embedded.run_platform(patients=patients, seed=seed, extraction_date="2025-06-30", progress=log)
    steps.export = real_export

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select
    with create_session() as session:  # what a kill mid-export leaves: the run stays running
        run = session.scalars(select(DagRun).where(DagRun.dag_id == "study_" + victim)).one()
        run.state = DagRunState.RUNNING
    two = embedded.run_platform(generate=False, progress=log)
    Path(out).write_text(json.dumps({"one": one.to_json(), "two": two.to_json()}, default=str))
""")


@pytest.fixture(scope="module")
def rounds(tmp_path_factory):
    root = tmp_path_factory.mktemp("study_retry")
    home = root / "oncopipe_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env.update({"ONCOPIPE_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow")})
    out, log = root / "result.json", root / "driver.log"
    with log.open("w") as sink:
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(PATIENTS), str(SEED), VICTIM, str(out)],
                              env=env, stdout=sink, stderr=subprocess.STDOUT, text=True, timeout=3600)
    assert proc.returncode == 0 and out.exists(), f"driver failed, log in {log}:\n{log.read_text()[-4000:]}"
    return json.loads(out.read_text())


@pytest.mark.slow
def test_a_study_killed_after_a_publish_is_retried_and_exported(rounds):
    one, two = rounds["one"], rounds["two"]
    victim = f"study_{VICTIM}"
    first = {r["dag_id"]: r for r in one["studies"]}
    assert first[victim]["state"] == "failed" and first[victim]["failed_tasks"] == ["publish_export"]
    assert first[victim]["skipped_tasks"] == ["notify_recipients"]
    assert VICTIM not in one["exports"]
    assert one["owed"] == {victim: f"owes an export of mart version {one['published_version']}"}
    # Round 2: the killed run is marked failed, the study runs again on the same version and exports.
    assert f"{victim}/{first[victim]['run_id']}" in two["interrupted"]
    assert two["refreshes"][0]["state"] in ("success", "skipped")
    again = {r["dag_id"]: r for r in two["studies"]}
    assert set(again) == {victim}, "only the study that owed an export runs again"
    assert again[victim]["state"] == "success"
    manifest = json.loads(open(os.path.join(two["exports"][VICTIM], "manifest.json")).read())
    assert manifest["mart_version"] == one["published_version"] == two["published_version"]
    assert two["owed"] == {}
