"""The layout rules of the repository, checked on the source itself.

The folders show the data flow only while dependencies point one way: ``embeddings`` is a
model layer that knows nothing of ``qa``; ``qa`` is the product and never reaches into
``benchmarks`` (absent from a deployment) or ``ui`` (the one exception is ``ludao serve``,
which starts it). A cycle between two files means neither can be read or tested alone, so none is
allowed, not even through an import inside a function.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("qa", "embeddings", "benchmarks")
TOP_MODULES = ("ui",)
ALLOWED = {("qa.cli", "ui")}
"""``ludao serve`` imports the server lazily; no other edge across the rules below."""
MAX_LINES = 450
MAX_UI_LINES = 400


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project's own code, by dotted name."""
    modules = {name: root / f"{name}.py" for name in TOP_MODULES if (root / f"{name}.py").is_file()}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            modules[_module_name(path, root)] = path
    return modules


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        yield target
        for alias in node.names:
            yield f"{target}.{alias.name}"


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere in its body (functions included)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(tree):
            for target in _imported(node, name, is_package):
                if target in modules and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def forbidden_edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    bad = []
    for source, targets in graph.items():
        for target in targets:
            rule_broken = (_top(source) == "embeddings" and _top(target) == "qa") or (
                _top(source) == "qa" and _top(target) in {"benchmarks", "ui"}
            )
            if rule_broken and (source, target) not in ALLOWED:
                bad.append((source, target))
    return sorted(bad)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(source_modules())


def test_dependencies_point_one_way(graph):
    assert forbidden_edges(graph) == []


def test_no_two_modules_import_each_other(graph):
    assert cycles(graph) == []


def test_checks_catch_what_they_are_for(tmp_path):
    """The checks above are only worth something if they fail on a broken tree."""
    for name, body in {
        "embeddings/__init__.py": "",
        "embeddings/encoder.py": "from qa.errors import LudaoError\n",
        "qa/__init__.py": "",
        "qa/errors.py": "",
        "qa/a.py": "def f():\n    from . import b\n",
        "qa/b.py": "from qa.a import f\nimport benchmarks.latency\n",
        "benchmarks/__init__.py": "",
        "benchmarks/latency.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    fake = import_graph(source_modules(tmp_path))
    assert cycles(fake) == [["qa.a", "qa.b"]]
    assert forbidden_edges(fake) == [
        ("embeddings.encoder", "qa.errors"),
        ("qa.b", "benchmarks.latency"),
    ]


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_files_stay_small():
    too_long = {
        str(path.relative_to(ROOT)): _lines(path)
        for package in ("qa", "embeddings")
        for path in (ROOT / package).rglob("*.py")
        if _lines(path) > MAX_LINES
    }
    assert too_long == {}
    assert _lines(ROOT / "ui.py") < MAX_UI_LINES


def test_no_module_shadows_a_well_known_one():
    """``qa/tokenize.py`` once shadowed the standard library's ``tokenize`` for any script run
    from ``qa/``; a reader also expects ``packaging`` or ``html`` to mean the well-known module."""
    ours = set(PACKAGES) | set(TOP_MODULES)
    known = set(sys.stdlib_module_names) | (set(importlib.metadata.packages_distributions()) - ours)
    shadowing = sorted(
        name for name in source_modules() if name not in ours and name.rsplit(".", 1)[-1] in known
    )
    assert shadowing == []
