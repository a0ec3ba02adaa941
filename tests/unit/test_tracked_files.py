"""What git tracks: no environment, warehouse or generated data, and no link pointing outside the checkout.

A symlinked ``.venv`` (a worktree sharing another's virtual environment) slipped past ``.venv/`` in .gitignore,
which matches directories only, and was committed: a clean clone then held a dangling link where ``make`` builds
the virtualenv, and on this machine one that ran every command with another checkout's environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from oncopipe.contracts.settings import PROJECT_ROOT

NEVER_TRACKED = (".venv", "var", "dbt_project/target", "dbt_project/logs", "expectations/uncommitted", ".env")


def _git(*args: str) -> str:
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, check=True, text=True).stdout


def _tracked() -> list[tuple[str, str, str]]:
    """(mode, blob, path) of every file in git's index."""
    entries = [e for e in _git("ls-files", "-s", "-z").split("\0") if e]
    return [(*e.split("\t", 1)[0].split(" ")[:2], e.split("\t", 1)[1]) for e in entries]


def test_no_environment_warehouse_or_generated_folder_is_tracked():
    tracked = [path for *_, path in _tracked()]
    found = [p for p in tracked for top in NEVER_TRACKED if p == top or p.startswith(top + "/")]
    assert not found, f"tracked but local to a machine: {found[:10]}"


def test_no_tracked_symlink_points_outside_the_checkout():
    outside = []
    for mode, blob, path in _tracked():
        if mode == "120000":  # a symlink: its blob holds the target
            target = _git("cat-file", "-p", blob)
            resolved = Path(os.path.normpath(PROJECT_ROOT / Path(path).parent / target))
            if os.path.isabs(target) or not resolved.is_relative_to(PROJECT_ROOT):
                outside.append(f"{path} -> {target}")
    assert not outside, f"tracked symlinks leaving the checkout: {outside}"
