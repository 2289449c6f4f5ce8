"""No import cycle among src/weakseg's modules (DESIGN: layout; issue 13), read with ``ast``.

Every import counts, at module level or inside a function: a lazy import only hides a cycle
until the day someone moves it to the top. ``from weakseg.a import b`` is an edge to the module
``weakseg.a.b`` when that is a module, else to ``weakseg.a``. A package's ``__init__`` is its own
node; importing ``weakseg.x.y`` is not counted as importing ``weakseg.x`` (Python runs that
``__init__`` first, but a package that imports its own submodules is not a design cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "weakseg"


def module_names(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package's modules that the file at ``path`` (module ``name``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is this package, 2 its parent ...
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:  # a name inside a module
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name and candidate != PACKAGE:
                targets.add(candidate)
    return targets


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(src, package)
    return {m: imported_modules(p, m, set(modules)) for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_known_cycle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_from_imports_resolve_to_modules(tmp_path: Path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from ..top import name\n")
    (pkg / "top.py").write_text("from pkg.sub.leaf import f\nname = 1\n")
    modules = module_names(tmp_path, "pkg")
    graph = {m: imported_modules(p, m, set(modules)) for m, p in modules.items()}
    assert graph["pkg.sub"] == {"pkg.sub.leaf"}
    assert graph["pkg.sub.leaf"] == {"pkg.top"}  # the function-level import counts
    assert graph["pkg.top"] == {"pkg.sub.leaf"}
    assert cycles(graph) == [["pkg.sub.leaf", "pkg.top"]]


def test_no_import_cycle_in_weakseg():
    graph = import_graph()
    assert "weakseg.pseudo.bana" in graph and "weakseg.config" in graph
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_config_imports_nothing_of_the_package_and_pseudo_not_engine_or_methods():
    graph = import_graph()
    assert graph["weakseg.config"] == set()
    for module, targets in graph.items():
        if module.startswith("weakseg.pseudo"):
            bad = {t for t in targets if t.startswith(("weakseg.engine", "weakseg.methods"))}
            assert not bad, f"{module} imports {sorted(bad)}"
