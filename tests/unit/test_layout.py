"""The package's shape: no import cycle, and an engine that knows no concrete provider or renderer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mkdocs_imagegen"


def imports() -> dict[str, set[str]]:
    """module -> package modules it imports (at any level, lazily too), parent packages left out."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                origin = (
                    ".".join([*base[: len(base) - node.level + 1], node.module or ""])
                    if node.level
                    else node.module
                )
                origin = (origin or "").rstrip(".")
                found.add(origin)
                found.update(f"{origin}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {
            m
            for m in found & modules.keys()
            if m != name and not m.startswith(name + ".") and not name.startswith(m + ".")
        }
    return graph


def test_no_import_cycle() -> None:
    graph = imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_engine_imports_no_concrete_provider_or_renderer() -> None:
    graph = imports()
    concrete = {
        "mkdocs_imagegen.providers.openai",
        "mkdocs_imagegen.providers.placeholder",
        "mkdocs_imagegen.wireframe",
    }
    for module, targets in graph.items():
        if module.startswith("mkdocs_imagegen.engine"):
            assert not targets & concrete, f"{module} imports {targets & concrete}"


# The house rule of issue #13: modules of about 400 lines and classes of about 150 at the most, so
# each reads in one sitting. The margins are the current largest (extension.py; the engine, whose
# constructor takes every option of a run), not an allowance to grow into.
MAX_MODULE_LINES = 420
MAX_CLASS_LINES = 165


def test_no_module_or_class_is_too_long_to_read_in_one_sitting() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(PACKAGE.parent).as_posix()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    too_long.append(f"{name}: class {node.name} is {lines} lines")
    assert not too_long, "split these along their responsibilities: " + "; ".join(too_long)
