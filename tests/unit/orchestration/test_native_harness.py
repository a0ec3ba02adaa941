"""The native harness's stop logic, on dummy processes started by its own launcher (no Airflow, a few seconds).

Each dummy is a shell that starts a child in its group and one in a process group of its own (as Airflow's task
supervisor does for a task runner): stopping the process must stop all three, by PID, whatever the way out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from oncopipe.orchestration import deployment, processes
from oncopipe.orchestration.deployment import Process
from oncopipe.orchestration.native import NativeTopology

# Logs the PIDs of its two children on one line, then waits. `trap '' TERM` (when asked) makes the shell and
# the children it forks (they inherit the ignored signal) deaf to SIGTERM.
TREE = textwrap.dedent("""\
    {trap}
    sleep 300 &
    in_group=$!
    {python} -c 'import os, time; os.setpgid(0, 0); time.sleep(300)' &
    own_group=$!
    echo "pids: $in_group $own_group"
    wait
""")


def dummy(name: str, *, deaf: bool = False) -> Process:
    script = TREE.format(trap="trap '' TERM" if deaf else "", python=sys.executable)
    return Process(name, ("-c", script), ready_log=None, needs_api=False)


def harness(tmp_path: Path, *processes: Process, stop_timeout: float = 10.0) -> NativeTopology:
    secrets = deployment.generate_secrets()
    target = deployment.native_target(secrets=secrets, data=tmp_path / "data", airflow_home=tmp_path / "airflow",
                                    postgres_db="unused", api_port=1, celery=False)
    return NativeTopology(target, tmp_path / "state", "pw", celery=False, airflow_bin=Path("/bin/sh"),
                          stop_timeout=stop_timeout, only=processes)


def tree(h: NativeTopology, name: str) -> list[int]:
    """The PIDs of a started dummy and of its two children (read from its log), once the third leads its group."""
    log = h.started[name].log
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in log.read_text().splitlines() if line.startswith("pids: ")]
        if lines:
            pids = [h.started[name].popen.pid, *map(int, lines[-1].split()[1:])]
            if os.getpgid(pids[2]) == pids[2]:
                return pids
        time.sleep(0.05)
    raise AssertionError(f"{name} printed no PIDs or its third process leads no group: {log.read_text()}")


def running(pid: int) -> bool:
    return processes.state(pid) not in ("Z", None)


def test_stop_all_stops_every_process_of_each_session_on_sigterm(tmp_path):
    h = harness(tmp_path, dummy("a"), dummy("b"))
    h.start("a")
    h.start("b")
    pids = tree(h, "a") + tree(h, "b")
    assert all(running(p) for p in pids)
    assert os.getpgid(pids[1]) == pids[0] != pids[2], "the second process is in the leader's group, not the third"
    h.stop_all()
    assert not [p for p in pids if running(p)]
    assert h.forced == [], "every process exited on SIGTERM"
    assert json.loads((tmp_path / "state" / "pids.json").read_text()) == {}


def test_a_process_deaf_to_sigterm_is_killed_after_the_grace_period(tmp_path):
    h = harness(tmp_path, dummy("deaf", deaf=True), stop_timeout=1.0)
    h.start("deaf")
    pids = tree(h, "deaf")
    began = time.monotonic()
    h.stop_all()
    assert not [p for p in pids if running(p)]
    assert h.forced == ["deaf"]
    assert time.monotonic() - began < 15


def test_leaving_the_block_by_keyboard_interrupt_stops_everything(tmp_path):
    h = harness(tmp_path, dummy("a"))
    with pytest.raises(KeyboardInterrupt), h:
        h.start("a")
        pids = tree(h, "a")
        raise KeyboardInterrupt
    assert not [p for p in pids if running(p)]


def test_a_killed_and_restarted_process_leaves_nothing_behind(tmp_path):
    """The fault tests SIGKILL a process's group and start it again: the old session's other group survives
    the kill (as a Celery task runner would) and is stopped at the end with the rest."""
    h = harness(tmp_path, dummy("a"))
    h.start("a")
    old = tree(h, "a")
    h.kill("a")
    assert not running(old[0]) and running(old[2]), "the task-runner-like group outlives its killed leader"
    h.start("a")
    new = tree(h, "a")
    h.stop_all()
    assert not [p for p in old + new if running(p)]


DRIVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path[:0] = [{tests!r}, {support_root!r}]
    from test_native_harness import dummy, harness, tree
    from support.native_harness import sigterm_as_interrupt

    h = harness(Path({tmp!r}), dummy("a"))
    mode = {mode!r}
    if mode == "sigterm":
        sigterm_as_interrupt()
        with h:
            h.start("a")
            print(*tree(h, "a"), flush=True)
            time.sleep(300)
    else:  # never stopped by the caller: the interpreter's exit must stop it
        h.start("a")
        print(*tree(h, "a"), flush=True)
        sys.exit(3)
""")


@pytest.mark.parametrize("mode", ["sigterm", "exit"])
def test_a_process_that_owns_a_harness_stops_it_when_terminated_or_exiting(tmp_path, mode):
    code = DRIVER.format(tests=str(Path(__file__).parent), support_root=str(Path(__file__).parents[2]),
                         tmp=str(tmp_path), mode=mode)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 3, proc.stderr.read()
        if mode == "sigterm":
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not [p for p in pids if running(p)]
    assert proc.returncode != 0
