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
