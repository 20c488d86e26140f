"""The package's shape: no import cycle among its modules, and no module over 600 lines.

Imports are read from the source (ast), at module level and inside functions alike: a lazy
import that dodges a cycle is still a cycle. Imports under `if TYPE_CHECKING:` are not (they
never run). Importing `a.b.c` runs the packages `a.b` above it first, so that counts as
importing them too, except from inside the same package (a package's own modules import it
as a matter of course) and except the top package, whose __init__ only names the entry
points.

Known exceptions outside the jobs area are listed below with their owner; each list only
shrinks: remove an entry when its module is fixed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "jupyter_sm_debug"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
MAX_LINES = 600

# Import edges that close a cycle today, to be removed by their owners (issue 21).
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()
# Modules over MAX_LINES today, to be split by their owners (issue 21).
KNOWN_LONG: set[str] = set()


def modules() -> dict[str, tuple[Path, bool]]:
    """{dotted name: (path, is a package)} of every module of the package."""
    found = {}
    for path in ROOT.rglob("*.py"):
        if "labextension" in path.parts:
            continue
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def type_checking_only(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in node.body for inner in ast.walk(inner))
    return skipped


def absolute(module: str, package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([name] if name else []))


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for module, (path, package) in known.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (
                    absolute(module, package, node.level, node.module)
                    if node.level
                    else node.module or ""
                )
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target not in known or target == module:
                    continue
                graph[module].add(target)
                parent = target.rsplit(".", 1)[0]
                while "." in parent:  # the packages above it run first
                    if parent != module and not module.startswith(parent + "."):
                        graph[module].add(parent)
                    parent = parent.rsplit(".", 1)[0]
    graph.pop(PACKAGE, None)  # the entry points' package
    for targets in graph.values():
        targets.discard(PACKAGE)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def qualified(edge: tuple[str, str]) -> tuple[str, str]:
    return (f"{PACKAGE}.{edge[0]}", f"{PACKAGE}.{edge[1]}")


def test_the_graph_sees_the_imports_it_must():
    """A check of the checker: relative, absolute, lazy and TYPE_CHECKING imports."""
    graph = import_graph()
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.jobs.aws"]  # from ..errors import
    assert f"{PACKAGE}.connect.ssm" in graph[f"{PACKAGE}.jobs.environment"]
    assert f"{PACKAGE}.connect" in graph[f"{PACKAGE}.jobs.environment"]  # its package runs
    assert f"{PACKAGE}.connect.ssh" in graph[f"{PACKAGE}.connect.registry"]  # in a function
    assert f"{PACKAGE}.jobs" not in graph[f"{PACKAGE}.connect.types"]  # TYPE_CHECKING only
    assert f"{PACKAGE}.jobs" not in graph[f"{PACKAGE}.jobs.cache"]  # its own package


def test_no_import_cycle():
    graph = import_graph()
    for edge in map(qualified, KNOWN_CYCLE_EDGES):
        graph.get(edge[0], set()).discard(edge[1])
    assert cycles(graph) == []


def test_jobs_and_connect_do_not_import_each_other_in_a_circle():
    """The cycle that a lazy import in JobsService.environment used to dodge."""
    graph = import_graph()
    jobs_side = {m for m in graph if m == f"{PACKAGE}.jobs" or m.startswith(f"{PACKAGE}.jobs.")}
    for component in cycles(graph):
        assert not jobs_side & set(component), component


def test_no_module_over_600_lines():
    long = {
        str(path.relative_to(ROOT)): count
        for path, _ in modules().values()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert set(long) <= KNOWN_LONG, {k: v for k, v in long.items() if k not in KNOWN_LONG}
