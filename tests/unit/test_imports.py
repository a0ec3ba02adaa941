"""The package imports in any kind of process, ``python -c`` and pytest-xdist workers included.

With pyspark installed (the Spark engine), importing great_expectations imports ``pyspark.sql.connect``, which
calls ``sys.exit(0)`` when its optional dependencies are missing and the main module has no file, as under
``python -c`` (every embedded scenario driver of the tests) and in every pytest-xdist worker: the process ended
with status 0 and nothing done. The lock installs pyspark's ``connect`` extra so that cannot happen.
"""

import subprocess
import sys


def test_the_gates_import_under_python_dash_c():
    code = "import oncopipe.quality.suites, oncopipe.orchestration.embedded; print('imported')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "imported", (proc.returncode, proc.stdout, proc.stderr)
    assert "FutureWarning" not in proc.stderr, proc.stderr
