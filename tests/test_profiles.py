"""Every parameter a profile file sets is declared in its chapter's ``parameters`` cell (a typo in
``params/*.yaml`` would otherwise be injected by papermill as a new variable and silently change nothing)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def declared_parameters(notebook: Path) -> set[str]:
    cells = [c for c in json.loads(notebook.read_text())["cells"]
             if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: needs exactly one cell tagged 'parameters'"
    names = set()
    for node in ast.parse("".join(cells[0]["source"])).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("profile", sorted(p.stem for p in (ROOT / "params").glob("*.yaml")))
def test_profiles_set_only_declared_parameters(profile):
    settings = yaml.safe_load((ROOT / "params" / f"{profile}.yaml").read_text()) or {}
    for chapter, values in settings.items():
        notebook = ROOT / "notebooks" / f"{chapter}.ipynb"
        assert notebook.exists(), f"params/{profile}.yaml names no chapter {chapter!r}"
        unknown = set(values or {}) - declared_parameters(notebook)
        assert not unknown, f"params/{profile}.yaml sets {sorted(unknown)} that {chapter} does not declare"


FOLDED_TAGS = {"hide-input", "remove-input", "hide-cell", "remove-cell"}
MAX_VISIBLE_LINES = 15


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_no_visible_code_cell_is_longer_than_15_lines(notebook):
    """Readers see prose, figures, tables and short library calls: a longer code cell (machinery, plotting) is
    folded with ``hide-input`` (its output stays visible). The parameters cell is exempt: it documents the
    chapter's settings."""
    long_cells = []
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        tags = set(cell.get("metadata", {}).get("tags", []))
        lines = len("".join(cell["source"]).splitlines())
        if cell["cell_type"] == "code" and "parameters" not in tags and not tags & FOLDED_TAGS \
                and lines > MAX_VISIBLE_LINES:
            long_cells.append(f"cell {index} ({lines} lines)")
    assert not long_cells, f"{notebook.name}: visible code cells over {MAX_VISIBLE_LINES} lines: {long_cells}"
