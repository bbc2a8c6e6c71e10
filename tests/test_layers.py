"""The package's layers point down only, and no module imports itself through others.

The order is written in ARCHITECTURE.md: errors < base < core < training < analysis <
search < tracking < run < cli < the public entry points. A module may import its own
layer or any layer below; every import counts, the ones inside functions too (a lazy
import is still a dependency).
"""

import ast
import sys
from pathlib import Path

import autolambda

PACKAGE = Path(autolambda.__file__).parent
LAYERS = ["errors", "base", "core", "training", "analysis", "search", "tracking", "run", "cli", None]
ENTRY_POINTS = {"autolambda", "autolambda.__main__", "autolambda.callbacks", "autolambda.pruners", "autolambda.samplers"}


def module_name(path: Path) -> str:
    parts = ("autolambda",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The autolambda modules ``path`` imports (``from a import b`` gives a.b when b is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if (PACKAGE.parent / f"{base}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
                          or (PACKAGE.parent / f"{base}.{alias.name}".replace(".", "/")).is_dir() else base)
    return {m for m in found if m == "autolambda" or m.startswith("autolambda.")} - {name}


def layer_of(module: str) -> int:
    if module in ENTRY_POINTS:
        return len(LAYERS) - 1
    return LAYERS.index(module.split(".")[1])


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    for module in graph():
        assert layer_of(module) >= 0, module


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Each import of a higher layer, in words."""
    def label(m):
        return LAYERS[layer_of(m)] or "entry point"
    return [f"{m} ({label(m)}) imports {t} ({label(t)})"
            for m, targets in edges.items() for t in sorted(targets) if layer_of(t) > layer_of(m)]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import circles among modules (each found from its first module in sorted order)."""
    found, done = [], set()

    def visit(node, path):
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for start in sorted(edges):
        visit(start, [])
    return found


def test_imports_point_down_only():
    assert upward_imports(graph()) == []


def test_no_module_circle():
    assert circles(graph()) == []


def test_the_checks_see_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    """The walker would catch what it guards against: a core module importing run inside a
    function, and two modules of one layer importing each other (one relatively)."""
    fake = tmp_path / "autolambda"
    (fake / "core").mkdir(parents=True)
    (fake / "run").mkdir()
    for init in (fake / "__init__.py", fake / "core" / "__init__.py", fake / "run" / "__init__.py"):
        init.write_text("")
    (fake / "core" / "a.py").write_text("def f():\n    from autolambda.run.c import x\n")
    (fake / "core" / "b.py").write_text("from autolambda.core import a\n")
    (fake / "run" / "c.py").write_text("from . import d\n")
    (fake / "run" / "d.py").write_text("from autolambda.run.c import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    edges = graph()
    assert edges["autolambda.core.b"] == {"autolambda.core.a"}
    assert upward_imports(edges) == ["autolambda.core.a (core) imports autolambda.run.c (run)"]
    assert circles(edges) == [["autolambda.run.c", "autolambda.run.d", "autolambda.run.c"]]
