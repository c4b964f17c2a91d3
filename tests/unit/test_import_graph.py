"""The library's modules import each other without cycles (a deferred import inside a function
counts too: it only hides a cycle)."""

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib"


def _module_name(path):
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """``{module: {slurmdeploy modules it imports}}`` over lib/slurmdeploy."""
    modules = {_module_name(p): p for p in (LIB / "slurmdeploy").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("slurmdeploy"):
                target = node.module
                deps.update(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("slurmdeploy"))
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph):
    """A list of modules forming a cycle, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, stack + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_library_has_no_import_cycle():
    graph = import_graph()
    assert "slurmdeploy.slurm.models" in graph["slurmdeploy.states"]  # the graph sees real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
