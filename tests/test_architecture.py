"""The package's shape: no import cycles between its files (imports inside functions included),
so that every module can be read, and imported, on its own."""

import ast
import os

PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_indi")


def _module_files():
    modules = {}
    for directory, _, files in os.walk(PACKAGE_ROOT):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                name = os.path.relpath(path[:-3], os.path.dirname(PACKAGE_ROOT)).replace(os.sep, ".")
                modules[name.removesuffix(".__init__")] = path
    return modules


def import_graph():
    """``{module: {modules it imports}}`` for every file of keras_indi (top-level and lazy imports)."""
    modules = _module_files()
    graph = {}
    for name, path in modules.items():
        with open(path) as file:
            tree = ast.parse(file.read())
        dependencies = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")
                    if not path.endswith("__init__.py"):
                        parts = parts[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    dependencies.add(target)
        graph[name] = dependencies
    return graph


def import_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_import_graph_is_found():
    graph = import_graph()
    assert "keras_indi.models.indi_model" in graph
    assert "keras_indi.samplers.indi_sampler" in graph["keras_indi.models.indi_model"]


def test_no_import_cycles():
    assert import_cycles(import_graph()) == []


def test_cycle_detection_works():
    assert import_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
