"""The chapter notebooks are linted like the library: ruff (its notebook support) finds no syntax error, undefined
name, unused import or placeholder-less f-string in any cell, so notebook code is inside a check too."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_notebooks_pass_ruff():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "E9,F",
                             "--output-format", "concise", "notebooks"], check=False, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_figure_cell_has_a_caption():
    """A cell that shows a matplotlib figure must carry myst-nb figure metadata with a caption (and alt text), so
    no figure in the book stands without one. The browser test checks the built HTML; this finds it in seconds."""
    import json

    missing = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or "plt.show()" not in source:
                continue
            mystnb = cell.get("metadata", {}).get("mystnb", {})
            if not mystnb.get("figure", {}).get("caption") or not mystnb.get("image", {}).get("alt"):
                missing.append(f"{path.name}: cell {cell.get('id')} ({source.splitlines()[0][:60]})")
    assert missing == [], "figure cells without a caption:\n" + "\n".join(missing)
