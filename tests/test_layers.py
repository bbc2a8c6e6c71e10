"""The package's layers point down only, and no module imports itself through others.

The order is written in ARCHITECTURE.md: errors < base < core < training < analysis <
search < tracking < run < cli < the public entry points. A module may import its own
layer or any layer below, except that the analysis is pure (trial records in, an answer
out) and imports no training code; every import counts, the ones inside functions and
under ``TYPE_CHECKING`` too (a lazy import is still a dependency).
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


#: Lower layers a layer may not import although they sit below it.
FORBIDDEN = {"analysis": {"training"}}


def layer_of(module: str) -> int:
    """The module's layer (an error for a module in no layer: every module must have one)."""
    if module in ENTRY_POINTS:
        return len(LAYERS) - 1
    return LAYERS.index(module.split(".")[1])


def allowed(source: str, target: str) -> bool:
    below = layer_of(target) <= layer_of(source)
    return below and LAYERS[layer_of(target)] not in FORBIDDEN.get(LAYERS[layer_of(source)], set())


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    unplaced = []
    for module in graph():
        try:
            layer_of(module)
        except ValueError:
            unplaced.append(module)
    assert unplaced == []


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Each import of a higher (or forbidden) layer, in words."""
    def label(m):
        return LAYERS[layer_of(m)] or "entry point"
    return [f"{m} ({label(m)}) imports {t} ({label(t)})"
            for m, targets in edges.items() for t in sorted(targets) if not allowed(m, t)]


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
    """The walker would catch what it guards against, however the import is spelled: a core
    module importing run inside a function, ``import ... as``, a relative ``from ..``, one
    under ``TYPE_CHECKING``, the pure analysis importing training, and two modules of one
    layer importing each other (one relatively)."""
    fake = tmp_path / "autolambda"
    for sub in ("core", "run", "training", "analysis"):
        (fake / sub).mkdir(parents=True)
        (fake / sub / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "core" / "a.py").write_text("def f():\n    from autolambda.run.c import x\n")
    (fake / "core" / "b.py").write_text("from autolambda.core import a\nimport autolambda.run.d as d\n")
    (fake / "core" / "e.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..run import c\n")
    (fake / "analysis" / "f.py").write_text("from autolambda.training import g\n")
    (fake / "training" / "g.py").write_text("from autolambda.core import a\n")
    (fake / "run" / "c.py").write_text("from . import d\n")
    (fake / "run" / "d.py").write_text("from autolambda.run.c import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    edges = graph()
    assert edges["autolambda.core.b"] == {"autolambda.core.a", "autolambda.run.d"}
    assert sorted(upward_imports(edges)) == [
        "autolambda.analysis.f (analysis) imports autolambda.training.g (training)",
        "autolambda.core.a (core) imports autolambda.run.c (run)",
        "autolambda.core.b (core) imports autolambda.run.d (run)",
        "autolambda.core.e (core) imports autolambda.run.c (run)",
    ]
    assert circles(edges) == [["autolambda.run.c", "autolambda.run.d", "autolambda.run.c"]]
