"""The house rules that keep the packages easy to build on, checked on the source itself:

- the core (`collector/`) imports no package above it; `insights/` (the composition root) is
  imported by no one; `exporters/`, `dashboard/` and `scoring/` import one another not at all;
- no two source files import each other, directly or around a loop;
- no source module grows past MAX_MODULE_LINES.

A failure names the file and the import, so that the fix is where it points.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("insights", "collector", "exporters", "dashboard", "scoring", "endpoints", "live", "monitoring", "alerts")
MAY_IMPORT = {
    "insights": {"collector", "exporters", "dashboard", "scoring", "endpoints", "live", "monitoring", "alerts"},
    "collector": set(),
    "exporters": {"collector"},
    "dashboard": {"collector"},
    "scoring": {"collector"},
    "endpoints": {"collector", "scoring"},
    "live": {"collector"},
    "monitoring": {"collector"},
    "alerts": {"collector"},
}
MAX_MODULE_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules `name` imports, anywhere in the file (function-level imports included)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join([*parts, base] if base else parts)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in MODULES:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_packages_import_only_the_layers_below_them():
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if (here := name.split(".")[0]) != (there := target.split(".")[0]) and there not in MAY_IMPORT[here]
    )
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_file_import_circles():
    """Package __init__ files that re-export their own modules are not circles of files."""
    graph = {name: {t for t in targets if not _is_reexport(name, t)} for name, targets in GRAPH.items()}
    circles = [circle for circle in _strongly_connected(graph) if len(circle) > 1]
    assert not circles, f"files importing each other: {circles}"


def _is_reexport(name: str, target: str) -> bool:
    return MODULES[target].name == "__init__.py" and name.startswith(target + ".")


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of files that reach one another."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(sorted(group))
    return groups


def test_no_module_outgrows_one_concept():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    large = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not large, f"modules over {MAX_MODULE_LINES} lines (split them along their seams): {large}"


def test_the_checker_sees_what_it_should():
    """Guards the guard: the import parser finds the edges a human reads in the source."""
    assert "collector.server" in GRAPH["insights.up"]
    assert "collector.store.writer" in GRAPH["collector.store.database"]
    assert _strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"], ["c"]]
