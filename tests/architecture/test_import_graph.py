"""The Python layer's imports run one way (ARCHITECTURE.md): no circle among pyfastnn's modules, counting
imports inside functions too; no pyfastnn import hidden in a function (the usual way to dodge a circle); and
autograd knows no Tensor."""
from __future__ import annotations

import ast
import pathlib

import pyfastnn

ROOT = pathlib.Path(pyfastnn.__file__).parent


def _module_name(path):
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module, node, is_package):
    """The absolute names an import statement in `module` refers to (pyfastnn's own only)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("pyfastnn")]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if not prefix.startswith("pyfastnn"):
        return []
    names = [prefix]
    for a in node.names:       # "from . import x" may import the submodule x
        names.append(f"{prefix}.{a.name}")
    return names


def import_graph():
    modules = {}
    for path in ROOT.rglob("*.py"):
        modules[_module_name(path)] = path
    graph = {m: set() for m in modules}
    for m, path in modules.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(m, node, path.name == "__init__.py"):
                    if target in modules and target != m:
                        graph[m].add(target)
    return graph


def _packages_of(module):
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def find_cycle(graph):
    # a package's __init__ importing its own submodules is not a cycle: drop edges from a module to the packages
    # that contain it
    edges = {m: {t for t in ts if t not in _packages_of(m)} for m, ts in graph.items()}
    state, stack = {}, []

    def visit(m):
        state[m] = "active"
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == "active":
                return stack[stack.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None
    for m in sorted(edges):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def function_level_imports():
    """'path:line statement' for each import of a pyfastnn module below a module's top level."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top_level:
                if _resolve(module, node, path.name == "__init__.py"):
                    found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_pyfastnn_import_inside_a_function():
    assert function_level_imports() == []


def test_autograd_knows_no_tensor():
    assert import_graph()["pyfastnn.autograd"] <= {"pyfastnn"}, import_graph()["pyfastnn.autograd"]


def test_nn_module_does_not_import_the_trainer():
    assert not any(t.startswith("pyfastnn.training") for t in import_graph()["pyfastnn.nn.module"])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
