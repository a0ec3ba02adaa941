"""Session and process-group lookup on real child processes (a second): a leader in a session of its own, a child
in its group, a grandchild that leads a group of its own in the same session (as Airflow's task supervisor starts a
task runner), a retitled name with spaces and parentheses, and a zombie.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from oncopipe.orchestration import processes

# The leader renames itself (the kernel's 15-character comm, spaces and parentheses as Airflow's retitled
# processes have), starts a child in its group and one leading its own group, prints their PIDs and waits.
LEADER = textwrap.dedent("""\
    import os, subprocess, sys, time
    with open("/proc/self/comm", "w") as comm:
        comm.write("air (flow) sch")
    in_group = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    own_group = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0)
    print(in_group.pid, own_group.pid, flush=True)
    time.sleep(60)
""")


@pytest.fixture
def session():
    """``(leader, in_group, own_group)`` PIDs of a fresh session; every member killed at the end."""
    leader = subprocess.Popen([sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    in_group, own_group = map(int, leader.stdout.readline().split())
    deadline = time.monotonic() + 10
    while os.getpgid(own_group) != own_group and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield leader.pid, in_group, own_group
    finally:
        for pid in (own_group, in_group):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        os.killpg(leader.pid, 9)
        leader.wait()
        leader.stdout.close()


def test_session_and_group_members_are_found_by_their_ids(session):
    leader, in_group, own_group = session
    members = processes.live_processes(session=leader)
    assert set(members) == {leader, in_group, own_group}
    assert members[leader] == "air (flow) sch", "a name with spaces and parentheses, read whole"
    assert set(processes.live_processes(group=leader)) == {leader, in_group}
    assert set(processes.live_processes(group=own_group)) == {own_group}
    assert set(processes.live_processes(session=leader, group=own_group)) == {own_group}
    assert processes.live_processes(session=leader, group=os.getpgid(0)) == {}
    assert processes.state(leader) in ("S", "R")
    assert "-c" in processes.command_line(leader)


def test_a_zombie_is_no_live_member_and_a_reaped_process_has_no_state(session):
    leader, in_group, own_group = session
    os.kill(in_group, 9)  # its parent, the leader, sleeps and does not reap it
    deadline = time.monotonic() + 10
    while processes.state(in_group) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert processes.state(in_group) == "Z"
    assert processes.command_line(in_group) is None
    assert set(processes.live_processes(session=leader)) == {leader, own_group}
    os.killpg(leader, 9)
    os.waitpid(leader, 0)  # the leader reaped: gone, and the zombie child with it (reparented, then reaped)
    assert processes.state(leader) is None
    assert processes.command_line(leader) is None
    assert processes.state(-1) is None
