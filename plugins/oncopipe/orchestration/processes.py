"""Processes read from ``/proc`` (Linux): what the harnesses that start Airflow need to find, and stop, every
process of a session or process group they led.

A ``/proc/<pid>/stat`` line is ``pid (comm) state ppid pgrp session ...``; ``comm`` may hold spaces and
parentheses (Airflow retitles its processes, e.g. ``airflow schedul``), so fields are split after the last ``)``.
"""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """``(comm, [state, ppid, pgrp, session, ...])`` of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()


def state(pid: int) -> str | None:
    """The process state letter (``R``, ``S``, ``Z``, ...), or None when the process is gone."""
    stat = _stat(pid)
    return stat[1][0] if stat else None


def live_processes(*, session: int | None = None, group: int | None = None) -> dict[int, str]:
    """PID -> command name of every live (non-zombie) process of ``session`` and/or process ``group``."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _stat(entry.name)
        if stat is None:
            continue
        comm, fields = stat
        if fields[0] == "Z" or (group is not None and int(fields[2]) != group) or (
                session is not None and int(fields[3]) != session):
            continue
        out[int(entry.name)] = comm
    return out
