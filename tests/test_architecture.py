"""The import graph, read from the code's own imports: packages point one way and never in a circle.

The layer order is the one written down in docs/architecture.md. Every ``import``/``from ... import`` in
src/tripwire counts, including the lazy ones inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tripwire"

#: lowest first; a module may import its own package or any lower layer, never a higher one
LAYERS: list[tuple[str, ...]] = [
    ("__init__", "errors", "config", "records", "jsonl", "progress", "csvsafe", "termsafe"),
    ("media",),
    ("extractor",),
    ("signals",),
    ("provenance",),
    ("store",),
    ("banks",),
    ("match",),
    ("policy",),
    ("review",),
    ("evidence",),
    ("report",),
    ("sharing",),
    ("trade",),
    ("pipeline",),
    ("service",),
    ("cli", "__main__"),
]
LEVEL = {unit: n for n, units in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _unit(module: str) -> str:
    """The architectural unit of a dotted module name: its sub-package, or the top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported tripwire module, line) for every import statement in ``path``."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # from . import x: each name may be a sub-module
                found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((target, node.lineno))
    return [(name, line) for name, line in found if name == "tripwire" or name.startswith("tripwire.")]


def _edges() -> dict[tuple[str, str], list[str]]:
    """(from unit, to unit) -> ['file:line', ...] for imports that cross units."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        for target, line in _imports(path):
            unit = _unit(target)
            if unit != source:
                edges[(source, unit)].append(f"{path.relative_to(SRC)}:{line}")
    return edges


def test_every_unit_has_a_layer():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    missing = sorted(units - set(LEVEL))
    assert not missing, f"add these to LAYERS here and in docs/architecture.md: {missing}"


def test_no_upward_imports():
    upward = [
        f"{a} (layer {LEVEL[a]}) imports {b} (layer {LEVEL[b]}) at {', '.join(where)}"
        for (a, b), where in sorted(_edges().items())
        if a in LEVEL and b in LEVEL and LEVEL[b] > LEVEL[a]
    ]
    assert upward == []


def test_no_import_cycles_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in _edges():
        graph[a].add(b)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_no_import_cycles_between_modules():
    """Inside a package too: a circle between two modules is a seam in the wrong place."""
    graph: dict[str, set[str]] = defaultdict(set)
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    for name, path in modules.items():
        for target, _line in _imports(path):
            while target and target not in modules:  # `from pkg.mod import name` names the module
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(modules):
        if v not in index:
            strongconnect(v)
    # a package __init__ re-exporting its own modules is not a circle worth reporting
    real = [c for c in components if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert real == []


def test_only_the_cli_imports_typer():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _unit(_module_name(path)) == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "typer" or n.startswith("typer.") for n in names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("name", ["signals.py"])
def test_module_names_say_what_they_are(name):
    """One meaning per name: a module named like a package elsewhere (signals) is confusing."""
    clashes = sorted(str(p.relative_to(SRC)) for p in PACKAGE.rglob(name))
    assert clashes == []
