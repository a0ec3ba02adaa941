"""The settings module is the only place an ``ONCOPIPE_*`` environment variable is read (issue #21).

Writes stay allowed everywhere (the embedded runner and dbt get their environment set), and so do reads of other
variables (``AIRFLOW_HOME``, ``AIRFLOW_CONN_*``). A read is ``os.environ.get``, ``os.getenv``, ``os.environ[...]``
as a value, ``... in os.environ``, ``os.environ.setdefault`` or ``.pop`` of a name that is an ``ONCOPIPE_`` string,
an f-string starting so, or a module-level constant bound to one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SETTINGS_MODULE = ROOT / "plugins" / "oncopipe" / "contracts" / "settings.py"
PREFIX = "ONCOPIPE_"


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ`` (``from os import environ``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _is_getenv(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "getenv" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "getenv"


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "ONCOPIPE_..."`` bindings, so ``os.environ.get(NAME)`` counts too."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.update({t.id: value.value for t in targets if isinstance(t, ast.Name)})
    return found


def _oncopipe_name(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PREFIX):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith(PREFIX):
            return head.value + "..."
    if isinstance(node, ast.Name) and constants.get(node.id, "").startswith(PREFIX):
        return constants[node.id]
    return None


def environment_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable) of every read of an ``ONCOPIPE_*`` variable in ``source``."""
    tree = ast.parse(source)
    constants = _constants(tree)
    reads = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            reading = _is_getenv(func) or (isinstance(func, ast.Attribute) and _is_environ(func.value)
                                           and func.attr in ("get", "setdefault", "pop"))
            if reading:
                name = _oncopipe_name(node.args[0], constants)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            name = _oncopipe_name(node.slice, constants)
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            name = _oncopipe_name(node.left, constants)
        if name:
            reads.append((node.lineno, name))
    return reads


def _modules() -> list[Path]:
    return sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").rglob("*.py")])


def test_only_the_settings_module_reads_oncopipe_variables() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}: {name}"
                 for path in _modules() if path != SETTINGS_MODULE
                 for line, name in environment_reads(path.read_text(encoding="utf-8"))]
    assert not offenders, "read ONCOPIPE_* through oncopipe.contracts.settings.get_settings():\n" + "\n".join(offenders)


def test_the_settings_module_does_read_them() -> None:
    # The walk finds the reads where they belong: a detector that found nothing anywhere would pass the test above.
    assert environment_reads(SETTINGS_MODULE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("line", [
    'os.environ.get("ONCOPIPE_X")', 'os.getenv("ONCOPIPE_X", "1")', 'os.environ["ONCOPIPE_X"]',
    '"ONCOPIPE_X" in os.environ', 'environ.get("ONCOPIPE_X")', 'os.environ.get(f"ONCOPIPE_{k}")',
    'NAME = "ONCOPIPE_X"\nos.environ.setdefault(NAME, "1")',
])
def test_each_form_of_read_is_found(line: str) -> None:
    assert environment_reads(line)


@pytest.mark.parametrize("line", [
    'os.environ["ONCOPIPE_X"] = "1"', 'os.environ.update({"ONCOPIPE_X": "1"})', 'os.environ.get("AIRFLOW_HOME")',
    'env = {"ONCOPIPE_X": "1"}', 'del os.environ["ONCOPIPE_X"]',
])
def test_writes_and_other_variables_are_not_reads(line: str) -> None:
    assert not environment_reads(line)
