"""The project's own modules import each other without loops (module-level imports and imports inside functions
alike), checked on the modules whose loops were removed: data sources and annotations, the labeller registry."""
from __future__ import annotations

import ast
from pathlib import Path

import molesyn_lib

PACKAGE = Path(molesyn_lib.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Project modules ``path`` imports anywhere in the file (``from . import x`` counts ``x`` if it is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("molesyn_lib"):
                continue
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("molesyn_lib"))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, ()))
    return False


def test_sources_and_annotations_do_not_import_each_other_in_a_loop():
    graph = import_graph()
    assert "molesyn_lib.annotations" in graph["molesyn_lib.sources"]
    assert not reaches(graph, "molesyn_lib.annotations", "molesyn_lib.sources")


def test_labeller_base_imports_no_labeller():
    graph = import_graph()
    labellers = [m for m in graph if m.startswith("molesyn_lib.labelers.") and m not in (
        "molesyn_lib.labelers.base", "molesyn_lib.labelers.builtin")]
    assert labellers
    for labeller in labellers:
        assert not reaches(graph, "molesyn_lib.labelers.base", labeller), labeller
    assert {"molesyn_lib.labelers.lexical", "molesyn_lib.labelers.trained"} <= graph["molesyn_lib.labelers.builtin"]


def test_protocol_and_registry_sit_low():
    graph = import_graph()
    for low in ("molesyn_lib.protocol", "molesyn_lib.registry"):
        assert not reaches(graph, low, "molesyn_lib.synth") and not reaches(graph, low, "molesyn_lib.backends")
