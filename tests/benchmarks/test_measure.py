import json
import subprocess
import sys
from pathlib import Path

# The measuring helper belongs to the benchmark scripts (benchmarks/measure.py), not to the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from measure import measure, write_results  # noqa: E402


def test_measure_counts_cpu_of_children_and_wall_time():
    with measure("child") as m:
        subprocess.run([sys.executable, "-c", "sum(i*i for i in range(3_000_000))"], check=True)
        m.rows = 3_000_000
    assert m.wall_s > 0.05
    assert m.cpu_s > 0.05  # the child's CPU is counted, not only this process's
    assert m.rows_per_s and m.rows_per_s > 0


def test_peak_memory_sees_an_allocation():
    with measure("alloc") as small:
        pass
    with measure("alloc") as big:
        block = bytearray(300 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
        del block
    assert big.peak_rss_mb > small.peak_rss_mb + 200


def test_results_are_written_as_json(tmp_path):
    with measure("x") as m:
        m.rows = 1
    path = write_results(tmp_path / "r" / "out.json", [m], scale=10)
    data = json.loads(path.read_text())
    assert data["scale"] == 10 and data["stages"][0]["stage"] == "x" and data["machine"]["cpu_count"] >= 1
