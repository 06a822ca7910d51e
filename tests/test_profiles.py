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
