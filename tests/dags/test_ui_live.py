"""``oncopipe ui`` for real: airflow standalone answers on 127.0.0.1 with the printed login, lists the DAGs, and
Ctrl-C (SIGINT to the command) stops every process it started.

The command runs in a session of its own (``start_new_session``), so every process it starts, standalone's
process group included, carries that session id: after SIGINT none may be left.

Cost: standalone's start-up dominates. Measured from launch to "every component healthy" (fresh metadata
database, dbt parse, four Airflow processes importing): 34 s and 55 s at a load average of 6 to 10 on this
2-core machine (47 s and 69 s for the whole test, stop included: 8.6 and 8.8 s after SIGINT), but 196 s and 225 s
at a load of 10 to 17. It stays in ``make test`` (marker ``slow``, run last).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from oncopipe.commands.ui import all_healthy, port_in_use
from oncopipe.orchestration.native import free_port
from oncopipe.orchestration.processes import live_processes
from oncopipe.studies.registry import scan_registry

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 300.0
#: What `oncopipe ui` allows itself after SIGINT (INTERRUPT_GRACE_S + 2 x TERMINATE_GRACE_S) plus its own exit.
STOP_TIMEOUT_S = 100.0


def _session_processes(sid: int) -> list[str]:
    """``<pid> <name>`` of the live processes of a session (zombies excluded: they wait for their parent)."""
    return [f"{pid} {name}" for pid, name in live_processes(session=sid).items()]


def _get(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_ui_serves_with_the_printed_login_and_stops_on_sigint(tmp_path):
    port = free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env["ONCOPIPE_HOME"] = str(home)
    log = tmp_path / "ui.log"
    oncopipe = Path(sys.executable).with_name("oncopipe")
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen([str(oncopipe), "ui", "--port", str(port)], env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        while "ready:" not in log.read_text():
            assert proc.poll() is None, f"oncopipe ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() - started < START_TIMEOUT_S, f"not ready in time:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        ready_s = time.monotonic() - started
        assert all_healthy(_get(f"{base}/api/v2/monitor/health"))
        login = re.search(r"login: admin / (\S+)", log.read_text())
        assert login, log.read_text()[-2000:]
        request = urllib.request.Request(f"{base}/auth/token", method="POST",
                                         data=json.dumps({"username": "admin", "password": login.group(1)}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.loads(response.read())["access_token"]
        wrong = urllib.request.Request(f"{base}/auth/token", method="POST",
                                       data=json.dumps({"username": "admin", "password": "wrong"}).encode(),
                                       headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=10)
        expected = {"platform_refresh"} | {e.study.dag_id for e in scan_registry(check_kinds=False) if e.study}
        deadline = time.monotonic() + 120
        while True:  # the dag-processor writes the DAGs shortly after it reports healthy
            dags = {d["dag_id"] for d in _get(f"{base}/api/v2/dags?limit=100", token)["dags"]}
            if dags >= expected or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert dags == expected
        assert _get(f"{base}/api/v2/importErrors", token)["total_entries"] == 0
        # No log server was started (the scheduler and triggerer run with --skip-serve-logs).
        assert not [p for p in _session_processes(proc.pid) if "serve-l" in p]
    finally:
        stop_started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        stop_s = time.monotonic() - stop_started
        drain = time.monotonic() + 10  # helpers of the command itself (multiprocessing's resource tracker) end
        while (left := _session_processes(proc.pid)) and time.monotonic() < drain:  # when it has exited
            time.sleep(0.2)
        for pid in (int(p.split()[0]) for p in left):  # never leave them running, even when the test fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    print(f"ready after {ready_s:.1f} s, stopped in {stop_s:.1f} s")
    assert code == 0, log.read_text()[-3000:]
    assert left == [], left
    assert "airflow standalone stopped (SIGINT)" in log.read_text(), log.read_text()[-3000:]
    assert not port_in_use(port)
