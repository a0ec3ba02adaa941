"""Processes, through ``psutil``: what the harnesses that start Airflow need to find, and stop, every process of a
session or process group they led.

psutil has no session or process-group field, so those come from ``getsid``/``getpgid`` (one system call each).
Airflow retitles its processes (``airflow schedul`` as the kernel's 15-character name); psutil returns that name,
or the longer one from the command line when the name is a truncation of it.
"""

from __future__ import annotations

import os

import psutil

#: psutil's Linux status names back to the state letters of ``ps`` and ``/proc/<pid>/stat`` that callers compare
#: to (psutil names "wake-kill" but has no constant for it).
_LETTERS = {
    psutil.STATUS_RUNNING: "R", psutil.STATUS_SLEEPING: "S", psutil.STATUS_DISK_SLEEP: "D",
    psutil.STATUS_STOPPED: "T", psutil.STATUS_TRACING_STOP: "t", psutil.STATUS_ZOMBIE: "Z", psutil.STATUS_DEAD: "X",
    "wake-kill": "K", psutil.STATUS_WAKING: "W", psutil.STATUS_IDLE: "I", psutil.STATUS_PARKED: "P",
}


def state(pid: int) -> str | None:
    """The process state letter (``R``, ``S``, ``Z``, ...), or None when the process is gone."""
    try:
        return _LETTERS[psutil.Process(pid).status()]
    except (psutil.NoSuchProcess, ValueError):  # ValueError: a negative PID
        return None


def command_line(pid: int) -> list[str] | None:
    """The command line of a live (non-zombie) process, or None when it is gone, a zombie or not ours to read."""
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.Error, ValueError):  # ZombieProcess and AccessDenied are psutil.Error too
        return None


def live_processes(*, session: int | None = None, group: int | None = None) -> dict[int, str]:
    """PID -> command name of every live (non-zombie) process of ``session`` and/or process ``group``."""
    out = {}
    for process in psutil.process_iter():
        try:
            if (group is not None and os.getpgid(process.pid) != group) or (
                    session is not None and os.getsid(process.pid) != session):
                continue
            with process.oneshot():
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                out[process.pid] = process.name()
        except (ProcessLookupError, psutil.NoSuchProcess):  # it exited while we looked
            continue
    return out
