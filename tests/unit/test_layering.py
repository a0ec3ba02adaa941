"""The package's layers: imports go one way only (from orchestration down to methods), and no module circle.

Every import counts, including those inside functions (used to keep Airflow's DAG parsing light) and those under
``if TYPE_CHECKING:``: a type-only import is still a dependency a reader must follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "oncopipe"

# Bottom (0) to top. A module may import its own layer or a lower one.
LAYERS: dict[str, int] = {
    "methods": 0,
    "contracts": 0,
    "landing": 1,
    "synth": 1,
    "quality": 2,
    "warehouse": 3,
    "delivery": 4,
    "studies": 5,
    "orchestration": 6,
    "commands": 7,
    "cli": 7,
}
# What the pure statistics must not touch: no orchestration, transformation, validation or storage engine,
# and no file system.
METHODS_FORBIDDEN = ("airflow", "dbt", "great_expectations", "duckdb", "pathlib", "os", "shutil", "glob", "io",
                     "sqlite3", "pyarrow", "matplotlib")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in ``path``; ``from X import y`` is X.y when y is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (the house style is absolute imports)"
            base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if candidate in MODULES else base))
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "oncopipe" or len(parts) < 2:
        return None
    return parts[1]


def internal_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for _, target in imports_of(path):
            if target in MODULES and target != module:
                edges[module].add(target)
    return edges


def test_every_module_belongs_to_a_layer():
    stray = sorted(m for m in MODULES if m != "oncopipe" and layer_of(m) not in LAYERS)
    assert not stray, f"modules outside the layers {sorted(LAYERS)}: {stray}"


def test_every_subpackage_says_what_it_holds_and_may_import():
    for name in LAYERS:
        init = PACKAGE / name / "__init__.py"
        if not init.exists():
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, f"{init}: its docstring must say what the subpackage may import"


def upward_imports() -> list[str]:
    wrong = []
    for module, path in MODULES.items():
        own = layer_of(module)
        if own is None:
            continue
        for line, target in imports_of(path):
            other = layer_of(target)
            if other is None or other == own:
                continue
            if LAYERS[other] > LAYERS[own]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({own}, layer {LAYERS[own]}) "
                             f"imports {target} ({other}, layer {LAYERS[other]})")
    return wrong


def test_imports_go_down_only():
    wrong = upward_imports()
    assert not wrong, "imports from a lower layer to a higher one:\n" + "\n".join(wrong)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_circle():
    cycle = find_cycle(internal_edges())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_methods_are_pure():
    wrong = []
    for module, path in MODULES.items():
        if layer_of(module) != "methods":
            continue
        for line, target in imports_of(path):
            top = target.split(".")[0]
            if top in METHODS_FORBIDDEN or (top == "oncopipe" and layer_of(target) != "methods"):
                wrong.append(f"{path.name}:{line}: {target}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        wrong += [f"{path.name}:{n.lineno}: open()" for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"]
    assert not wrong, "methods must stay pure (no I/O, Airflow, dbt, GX, DuckDB):\n" + "\n".join(wrong)


@pytest.mark.parametrize(("edges", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
])
def test_cycle_finder_finds_circles(edges, expected):
    assert find_cycle(edges) == expected


def test_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "oncopipe"
    (fake / "methods").mkdir(parents=True)
    (fake / "delivery").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "methods" / "__init__.py").write_text("")
    (fake / "delivery" / "__init__.py").write_text("")
    (fake / "delivery" / "report.py").write_text("")
    (fake / "methods" / "km.py").write_text("def f():\n    from oncopipe.delivery import report\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    monkeypatch.setattr(__import__(__name__), "MODULES", {module_name(p): p for p in sorted(fake.rglob("*.py"))})
    wrong = upward_imports()
    assert len(wrong) == 1 and "oncopipe.methods.km (methods, layer 0) imports oncopipe.delivery.report" in wrong[0]
