"""One embedded platform, operated through Airflow, shared by the tests that need a platform with a history.

tests/integration/test_dag_e2e.py asserts what each round did; tests/e2e/test_operator_browser.py opens the
operator's view of the same platform under ``oncopipe ui`` (on a copy of its home). Building it costs a few minutes
(four ``run_platform`` rounds at 1,000 people), so it is built once a session (:func:`embedded_scenario`, a session
fixture in tests/conftest.py); both test files are one xdist group
(``SHARED_GROUPS`` in tests/conftest.py), so under ``-n 2`` it is built once.

Airflow reads its configuration once per process, so the scenario runs in a fresh interpreter with a temporary
AIRFLOW_HOME (SQLite metadata, migrated there) and ONCOPIPE_HOME; it writes what happened as JSON.

Scenario: (1) a first extraction lands -> refresh, then every approved study; the expired study's DAG is run
too and must stop at its first task. (2) a second extraction date lands -> one refresh, then the studies
scheduled on its Assets; one of them (``VICTIM``) dies in its export step, and its run is then put back to
``running``, what a kill mid-export leaves (issue #24, point 4). (2b) the next ``oncopipe run``, with nothing new
landed, marks that run failed, runs that study alone again on the same version and exports it. (3) the refresh is
re-run for the second extraction -> nothing published changes, and no study is owed anything. (4) a third
extraction with a critical fault lands -> its refresh stops at the raw gate; nothing is published.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PATIENTS = 1_000
SEED = 7
FIRST = "2025-03-31"
SECOND = "2025-06-30"
FAULTY = "2025-09-30"
FAULT = "null_mandatory"  # critical in the raw gate: the third extraction is quarantined
VICTIM = "care_pathway_delays"

DRIVER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from oncopipe.orchestration import embedded
    from oncopipe.warehouse import refresh
    from oncopipe.contracts.settings import get_settings

    patients, seed, first, second, victim, faulty, fault, out = (
        int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7],
        sys.argv[8])
    log = lambda message: print(message, flush=True)
    result = {}
    one = embedded.run_platform(patients=patients, seed=seed, extraction_date=first, progress=log)
    result["round1"] = one.to_json()
    result["current_after_round1"] = (get_settings().published / "CURRENT").read_text().strip()
    dags = embedded.load_dags()
    expired = [d for d in dags if d.startswith("study_") and "approval-refused" in dags[d].tags]
    result["expired_runs"] = [embedded.test_dag(dags[d]).__dict__ for d in expired]

    from oncopipe.synth.extraction import generate
    generate(get_settings().landing, patients, seed, second)
    result["pending_before_round2"] = refresh.pending_extractions()
    from oncopipe.studies import steps
    real_export = steps.export

    def export_dies_for_the_victim(state_path):
        if steps.StudyRunState.load(state_path).study.id == victim:
            raise steps.NoPublishedMarts("simulated death of the export step")
        return real_export(state_path)

    steps.export = export_dies_for_the_victim
    two = embedded.run_platform(generate=False, progress=log)
    steps.export = real_export
    result["round2"] = two.to_json()

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select
    with create_session() as session:  # what a kill mid-export leaves: the run stays running
        run = session.scalars(select(DagRun).where(DagRun.dag_id == "study_" + victim,
                                                   DagRun.state == DagRunState.FAILED)).one()
        run.state = DagRunState.RUNNING
    result["retry"] = embedded.run_platform(generate=False, progress=log).to_json()

    import hashlib
    published = get_settings().published
    digest = lambda: {str(p.relative_to(published)): hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in sorted(published.rglob("*")) if p.is_file() and ".candidates" not in p.parts}
    result["published_before_rerun"] = digest()
    dags = embedded.load_dags()
    again = embedded.test_dag(dags[embedded.REFRESH_DAG_ID], run_conf={"extraction_date": second})
    result["published_after_rerun"] = digest()
    result["rerun"] = again.__dict__
    due, waiting = embedded.due_studies(dags)
    result["due_after_rerun"] = [d.dag_id for d, _ in due]
    # (4) a third extraction with a critical fault: its refresh stops at the raw gate (the operator's view shows the
    # refusal and the failed task's log; tests/e2e/test_operator_browser.py).
    generate(get_settings().landing, patients, seed, faulty, faults=fault)
    result["faulty"] = embedded.run_platform(generate=False, progress=log).to_json()
    Path(out).write_text(json.dumps(result, default=lambda o: getattr(o, "__dict__", str(o))))
""")




def run_scenario(root: Path) -> tuple[Path, dict]:
    """Run the scenario with ``root`` as its folder: the platform's home and what happened, as JSON."""
    home = root / "oncopipe_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env.update({"ONCOPIPE_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow")})
    out = root / "result.json"
    log = root / "driver.log"
    with log.open("w") as sink:  # streamed, so a slow or failed run can be followed and diagnosed
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(PATIENTS), str(SEED), FIRST, SECOND, VICTIM,
                               FAULTY, FAULT, str(out)],
                              env=env, stdout=sink, stderr=subprocess.STDOUT, text=True, timeout=3600)
    assert proc.returncode == 0 and out.exists(), f"driver failed, log in {log}:\n{log.read_text()[-4000:]}"
    return home, json.loads(out.read_text())
