"""What an export manifest pins about the code: code lists, code version, and a run id a person can read.

- Code lists are the dbt seeds: their name, version and source come from ``dbt_project/seeds/_seeds.yml``
  (``config.meta``), their checksum from the seed file itself, so two exports with the same versions but
  different files are told apart.
- The code version is the git commit plus whether the checkout differs from it (tracked changes or untracked
  files, e.g. a study YAML not yet committed) and, when it does, the sha256 of that difference: two dirty
  exports with the same checksum ran the same code.
- Airflow run ids (``manual__2026-12-02T13:06:04.436522+00:00``) make poor folder names; a run is shown and
  stored as ``2026-12-02T1306-<study>`` and the manifest maps it to Airflow's id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from oncopipe.contracts.settings import DBT_PROJECT_DIR, PROJECT_ROOT

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_GIT_TIMEOUT_S = 20


class ProvenanceError(ValueError):
    """The code-list catalogue is unreadable or names a seed without its file; the message names the file."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_lists(seeds_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """Every code list (dbt seed) with its version, source, file and sha256.

    Raises:
        ProvenanceError: ``_seeds.yml`` is unreadable, a seed lacks ``config.meta.version``/``source``, or its
            file is missing.
    """
    seeds_dir = Path(seeds_dir or DBT_PROJECT_DIR / "seeds")
    catalogue = seeds_dir / "_seeds.yml"
    try:
        seeds = (yaml.safe_load(catalogue.read_text(encoding="utf-8")) or {}).get("seeds") or []
    except (OSError, yaml.YAMLError) as exc:
        raise ProvenanceError(f"{catalogue}: cannot read the code-list catalogue: {exc}") from exc
    out = {}
    for seed in seeds:
        name = seed.get("name")
        meta = (seed.get("config") or {}).get("meta") or {}
        missing = [k for k in ("version", "source") if not meta.get(k)]
        if not name or missing:
            raise ProvenanceError(f"{catalogue}: seed {name or '(unnamed)'} lacks config.meta {', '.join(missing)}")
        path = seeds_dir / f"{name}.csv"
        if not path.is_file():
            raise ProvenanceError(f"{catalogue}: seed {name} has no file {path}")
        out[name] = {"version": str(meta["version"]), "source": str(meta["source"]),
                     "file": path.relative_to(seeds_dir.parent).as_posix(), "sha256": sha256_bytes(path.read_bytes())}
    return out


def _git(*args: str, root: Path) -> bytes:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True,
                          timeout=_GIT_TIMEOUT_S).stdout


def code_state(root: Path | None = None) -> dict[str, Any]:
    """The git commit of the checkout, whether the tree differs from it, and the checksum of the difference.

    The difference is ``git diff HEAD`` (binary) plus the path and bytes of every untracked, not ignored file.
    Outside a git checkout the commit is ``unknown`` and ``dirty`` is None (not known).
    """
    root = Path(root or PROJECT_ROOT)
    try:
        commit = _git("rev-parse", "HEAD", root=root).decode().strip()
        diff = _git("diff", "HEAD", "--binary", root=root)
        untracked = _git("ls-files", "--others", "--exclude-standard", "-z", root=root).split(b"\0")
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None, "diff_sha256": None}
    digest = hashlib.sha256(diff)
    for rel in sorted(p for p in untracked if p):
        path = root / rel.decode()
        if path.is_file():
            digest.update(b"\0untracked\0" + rel + b"\0" + path.read_bytes())
    dirty = bool(diff) or any(untracked)
    return {"commit": commit or "unknown", "dirty": dirty, "diff_sha256": digest.hexdigest() if dirty else None}


def describe_code(state: dict[str, Any]) -> str:
    """``<commit>``, or ``<commit> + uncommitted changes (sha256 <12 digits>)`` for a dirty tree."""
    if state.get("dirty"):
        return f"{state['commit']} + uncommitted changes (sha256 {str(state.get('diff_sha256'))[:12]})"
    return str(state.get("commit"))


def readable_run_id(run_id: str, study_id: str) -> str:
    """``2026-12-02T1306-tradhor`` for an Airflow run id that carries its logical date; else the id made
    path-safe (``run_1``)."""
    stamp = run_id.split("__", 1)[-1]
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        name = _SAFE.sub("_", run_id).strip("._")
        if not name:
            raise ProvenanceError(f"run id {run_id!r} gives an empty folder name") from None
        return name
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return f"{when:%Y-%m-%dT%H%M}-{study_id}"
