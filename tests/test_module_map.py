"""The README's module map is the code's: each module's floor (1 + the highest floor among the project modules it
imports, so a module imports only from floors below its own) and each chapter's modules (what its notebook imports
from ``molesyn_lib``) are recomputed here and compared with the two tables under "Module map" in README.md."""
from __future__ import annotations

import json
import re
from pathlib import Path

from test_import_graph import PACKAGE, import_graph

ROOT = PACKAGE.parent


def unit(module: str) -> str:
    """``molesyn_lib.lab.train`` -> ``lab/``; ``molesyn_lib.transfer`` -> ``transfer``."""
    name = module.split(".")[1]
    return f"{name}/" if (PACKAGE / name).is_dir() else name


#: Imports that still close a loop between two units (each is an import inside a function, back to a higher floor).
#: They are left out when floors are computed, and the test fails when a loop is added or one of these is removed
#: (then delete it here). Removing them changes library files, which makes the published chapters stale, so they wait
#: for the next library change that precedes a standard run.
KNOWN_LOOPS = {("molesyn_lib.formats", "molesyn_lib.traces"),          # formats._read_jsonl -> traces.iter_jsonl
               ("molesyn_lib.labelers.trained", "molesyn_lib.validation")}  # trained.cross_validate_head_on -> validation.label_report


def unit_graph(skip: set[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, deps in import_graph().items():
        if module == "molesyn_lib":
            continue
        graph.setdefault(unit(module), set()).update(
            unit(d) for d in deps if d != "molesyn_lib" and (module, d) not in skip and unit(d) != unit(module))
    return graph


def test_the_known_loops_are_the_only_loops():
    import networkx as nx

    loops = [sorted(c) for c in nx.strongly_connected_components(nx.DiGraph(unit_graph(set()))) if len(c) > 1]
    assert sorted(loops) == sorted(sorted({unit(a), unit(b)}) for a, b in KNOWN_LOOPS)
    assert all(b in import_graph()[a] for a, b in KNOWN_LOOPS)


def floors() -> dict[str, int]:
    graph = unit_graph(KNOWN_LOOPS)
    level: dict[str, int] = {}

    def floor(name: str, path: tuple[str, ...] = ()) -> int:
        assert name not in path, f"import loop between units: {' -> '.join(path + (name,))}"
        if name not in level:
            level[name] = 1 + max((floor(d, path + (name,)) for d in graph[name]), default=-1)
        return level[name]

    for name in graph:
        floor(name)
    return level


def chapter_modules() -> dict[str, list[str]]:
    found = {}
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        modules = set()
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for sub, names in re.findall(r"from molesyn_lib(\.[\w.]+)? import ([\w, ]+)", "".join(cell["source"])):
                if sub:
                    modules.add(unit("molesyn_lib" + sub))
                else:
                    modules.update(unit(f"molesyn_lib.{n.strip()}") for n in names.split(",")
                                   if (PACKAGE / f"{n.strip()}.py").exists() or (PACKAGE / n.strip()).is_dir())
        found[notebook.stem] = sorted(modules)
    return found


def readme_tables() -> tuple[dict[str, int], dict[str, list[str]]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Module map", 1)[1].split("\n## ", 1)[0]
    floor_of, chapters = {}, {}
    for row in re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.M):
        for name in re.findall(r"`([\w/]+)`", row[1]):
            floor_of[name] = int(row[0])
    for row in re.findall(r"^\| `(\d\d_\w+)` \| (.+) \|$", section, flags=re.M):
        chapters[row[0]] = sorted(re.findall(r"`([\w/]+)`", row[1]))
    return floor_of, chapters


def test_the_readme_module_map_matches_the_imports():
    floor_of, chapters = readme_tables()
    assert floor_of == floors()
    assert chapters == chapter_modules()
