"""``oncopipe run`` ends its process itself (commands/run.py ``end_process``): it must end, whatever a library left.

The walkthrough of the Spark section (2026-12-07) printed its summary and then never exited: Airflow's OpenLineage
listener had submitted the DAG run's event to a ``ProcessPoolExecutor``, whose worker waits for its next task until
the executor is shut down. A normal exit shuts executors down first (``threading``'s exit callbacks, before
``atexit``); ``end_process`` ran ``atexit`` alone, so multiprocessing's exit handler joined a worker that never ends.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=1)  # as the OpenLineage listener keeps one, never shut down
    assert pool.submit(abs, -3).result() == 3
    sys.argv[0] = "/somewhere/bin/oncopipe"
    from oncopipe.commands.run import end_process

    print("ending", flush=True)
    end_process(3)
""")


def test_the_command_ends_although_a_process_pool_was_left_open(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert "ending" in proc.stdout, proc.stderr[-2000:]
    assert proc.returncode == 3, proc.stderr[-2000:]
