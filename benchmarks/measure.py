"""Measuring a stage: wall time, CPU time and peak memory of the whole process tree.

Used by ``benchmarks/run.py`` and the per-area benchmark scripts, so every figure in the README is
measured the same way. Peak memory is the peak of the summed RSS of this process and all its children,
sampled every ``interval`` seconds by a background thread (children such as dbt or DuckDB helpers are
included). The sampler can miss a spike of this process that happens while the GIL is held, so on Linux
the kernel's own high-water mark of this process (VmHWM) is reset at the start of the stage
(``/proc/self/clear_refs``) and read at the end as a floor. ``ru_maxrss`` is not used: it never resets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil


@dataclass
class StageMeasure:
    """What one stage cost."""

    stage: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float | None:
        if self.rows is None or self.wall_s <= 0:
            return None
        return self.rows / self.wall_s

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows_per_s"] = self.rows_per_s
        return data


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _reset_own_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _own_peak() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _tree_cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    # children_* hold the CPU of children that have already exited and been waited for.
    return times.user + times.system + times.children_user + times.children_system


@contextmanager
def measure(stage: str, interval: float = 0.05) -> Iterator[StageMeasure]:
    """Measure the block as ``stage``; set ``.rows`` inside the block to get a throughput.

    Example:
        >>> with measure("noop") as m:
        ...     m.rows = 10
        >>> m.wall_s >= 0
        True
    """
    proc = psutil.Process()
    result = StageMeasure(stage)
    peak = _tree_rss(proc)
    own_peak_known = _reset_own_peak()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(interval):
            peak = max(peak, _tree_rss(proc))
        if own_peak_known:
            peak = max(peak, _own_peak() + _tree_rss(proc) - proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    cpu0, wall0 = _tree_cpu(proc), time.perf_counter()
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result.wall_s = time.perf_counter() - wall0
        result.cpu_s = _tree_cpu(proc) - cpu0
        peak = max(peak, _tree_rss(proc))
        if own_peak_known:
            peak = max(peak, _own_peak() + _tree_rss(proc) - proc.memory_info().rss)
        result.peak_rss_mb = peak / 2**20


def machine_facts() -> dict[str, Any]:
    """The machine a figure was measured on."""
    import platform

    return {
        "cpu_count": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def write_results(path: Path, measures: list[StageMeasure], **context: Any) -> Path:
    """Write measures and context as JSON to ``path`` (folders created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine_facts(), **context, "stages": [m.as_dict() for m in measures]}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path
