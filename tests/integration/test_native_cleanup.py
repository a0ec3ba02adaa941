"""A throw-away topology interrupted while it starts leaves no process and no database behind (local PostgreSQL).

The start is replaced by a dummy process (a shell and a child in a process group of its own, like a task
runner) followed by a KeyboardInterrupt, so the test costs a database creation, not an Airflow start.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
from oncopipe.orchestration import native, processes
from oncopipe.orchestration.deployment import Process
from support import native_harness

DATABASE = "oncopipe_native_cleanup_test"


def _database_exists(name: str) -> bool:
    import psycopg2

    with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres") as connection:
        with connection.cursor() as cursor:
            cursor.execute("select 1 from pg_database where datname = %s", (name,))
            return cursor.fetchone() is not None


def _running(pid: int) -> bool:
    return processes.state(pid) not in ("Z", None)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_start_stops_its_processes_and_drops_the_database(tmp_path, monkeypatch, interrupt):
    script = (f"{sys.executable} -c 'import os, time; os.setpgid(0, 0); time.sleep(300)' & "
              "echo \"pids: $!\"; sleep 300")
    seen: dict[str, object] = {}
    # What the handler was before: the default, or the session topology's when that one runs in this process (tests
    # run on two workers, and its worker can reach this file after it); a handler already there is kept.
    before = signal.getsignal(signal.SIGTERM)

    def interrupted_up(self: native.NativeTopology, timeout: float = 0, **_: object) -> float:
        seen["database_created"] = _database_exists(DATABASE)
        seen["sigterm_handler"] = signal.getsignal(signal.SIGTERM)
        self.only, self.airflow_bin = (Process("dummy", ("-c", script), needs_api=False),), Path("/bin/sh")
        started = self.start("dummy")
        deadline = time.monotonic() + 10
        while not (lines := [x for x in started.log.read_text().splitlines() if x.startswith("pids: ")]):
            assert time.monotonic() < deadline, started.log.read_text()
            time.sleep(0.05)
        seen["pids"] = [started.popen.pid, int(lines[0].split()[1])]
        raise interrupt("interrupted while starting")

    monkeypatch.setattr(native.NativeTopology, "up", interrupted_up)
    with pytest.raises(interrupt):
        with native_harness.ephemeral_topology(tmp_path, DATABASE, celery=False):
            pytest.fail("the topology never started")
    assert seen["database_created"] is True
    assert seen["sigterm_handler"] not in (signal.SIG_DFL, None), "SIGTERM raises KeyboardInterrupt meanwhile"
    assert len(seen["pids"]) == 2 and not [p for p in seen["pids"] if _running(p)]
    assert not _database_exists(DATABASE)
    assert signal.getsignal(signal.SIGTERM) == before  # restored
    assert not list(Path("/tmp").glob(f"oncopipe-native-{DATABASE}.state"))
