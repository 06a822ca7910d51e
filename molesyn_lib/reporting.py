"""Saved results: what chapters write and the scoreboard and reproducibility pages read.

A chapter calls :func:`save_results` with its measured numbers (and :func:`molesyn_lib.claims.decide_chapter` with
the evidence for its claims). Both land as JSON under the results directory (``results/`` by default, see
:func:`molesyn_lib.config.results_dir`), tagged with the profile, so that the claims scoreboard and the
reproducibility page are rendered from saved results, never from typed-in numbers.
"""
from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .config import results_dir

Verdict = Literal["reproduced", "partly", "not reproduced", "not tested"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy arrays and scalars as lists and numbers, NaN and inf as ``None`` (strict
    JSON), tuples as lists, objects with ``to_dict`` (pandas) through it, keys as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return jsonable(value.to_dict())
    return value


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write ``payload`` as strict JSON through :func:`molesyn_lib.safeio.write_json` (temporary file + rename)."""
    from .safeio import write_json

    return write_json(path, jsonable(payload))


def save_results(chapter: str, results: dict[str, Any], profile: str, root: str | Path | None = None) -> Path:
    """Save a chapter's measured results to ``<results>/<chapter>.json`` with profile and timestamp."""
    payload = {"chapter": chapter, "profile": profile, "saved": datetime.now(UTC).isoformat(timespec="seconds"),
               "results": results}
    return write_json_atomic(results_dir(root) / f"{chapter}.json", payload)


def load_results(chapter: str, root: str | Path | None = None) -> dict[str, Any] | None:
    path = results_dir(root) / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else None


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None, floatfmt: str = ".3f") -> str:
    """A GitHub/MyST markdown table from dict rows (floats formatted with ``floatfmt``)."""
    if not rows:
        return "_(no rows)_"
    columns = columns or list(rows[0])

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "n/a" if math.isnan(value) else format(float(value), floatfmt)
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
