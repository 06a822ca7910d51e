"""Saved results and paper-vs-measured claims: what chapters write and the scoreboard reads.

A chapter calls :func:`save_results` with its measured numbers and :func:`record_claims` with one :class:`Claim` per
paper claim it tests. Both land as JSON under the results directory (``results/`` by default, see
:func:`molesyn_lib.config.results_dir`), tagged with the profile, so that the claims scoreboard and the
reproducibility page are rendered from saved results, never from typed-in numbers.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
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
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return jsonable(value.to_dict())
    return value


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write JSON via a temporary file and a rename, so a killed run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(jsonable(payload), out, indent=2)
        out.write("\n")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the mode a plain open() would
    os.replace(temp, path)
    return path


def save_results(chapter: str, results: dict[str, Any], profile: str, root: str | Path | None = None) -> Path:
    """Save a chapter's measured results to ``<results>/<chapter>.json`` with profile and timestamp."""
    payload = {"chapter": chapter, "profile": profile, "saved": datetime.now(UTC).isoformat(timespec="seconds"),
               "results": results}
    return write_json_atomic(results_dir(root) / f"{chapter}.json", payload)


def load_results(chapter: str, root: str | Path | None = None) -> dict[str, Any] | None:
    path = results_dir(root) / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else None


@dataclass
class Claim:
    """One claim of the paper next to our measurement.

    Attributes:
        claim_id: short stable id (e.g. ``"ch1.teacher-correlation"``).
        claim: the paper's claim in words.
        paper: the paper's number(s) as printed (text).
        measured: our number(s), formatted by the chapter from its computed values.
        setting: what we measured on (data, labeller, model sizes, seeds).
        verdict: reproduced / partly / not reproduced / not tested.
        section: the chapter section anchor (for links).
        values: the raw measured values (machine-readable).
    """

    claim_id: str
    claim: str
    paper: str
    measured: str
    setting: str
    verdict: Verdict
    section: str = ""
    values: dict[str, Any] = field(default_factory=dict)


def record_claims(chapter: str, claims: list[Claim], profile: str, root: str | Path | None = None) -> Path:
    """Save a chapter's claims to ``<results>/claims/<chapter>.json``."""
    payload = {"chapter": chapter, "profile": profile,
               "saved": datetime.now(UTC).isoformat(timespec="seconds"),
               "claims": [asdict(c) for c in claims]}
    return write_json_atomic(results_dir(root) / "claims" / f"{chapter}.json", payload)


def load_claims(root: str | Path | None = None) -> list[dict[str, Any]]:
    """All recorded claims, chapter by chapter (each with its chapter and profile)."""
    out: list[dict[str, Any]] = []
    for path in sorted((results_dir(root) / "claims").glob("*.json")):
        record = json.loads(path.read_text())
        for claim in record["claims"]:
            out.append({"chapter": record["chapter"], "profile": record["profile"], **claim})
    return out


def threshold_verdict(value: float, reproduced_at: float, partly_at: float, higher_is_better: bool = True) -> Verdict:
    """Verdict from a measured value and two thresholds (``reproduced_at`` stricter than ``partly_at``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not tested"
    sign = 1 if higher_is_better else -1
    if sign * value >= sign * reproduced_at:
        return "reproduced"
    if sign * value >= sign * partly_at:
        return "partly"
    return "not reproduced"


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


def render_scoreboard(root: str | Path | None = None) -> str:
    """The claims scoreboard page (MyST markdown) from every chapter's recorded claims."""
    claims = load_claims(root)
    lines = [
        "# Claims scoreboard",
        "",
        "Every claim of the paper that this book tests, with the paper's number, ours (read from the results each "
        "chapter saved when it ran, never typed in), the setting and a verdict. *reproduced*: our measurement "
        "supports the claim in our setting; *partly*: the direction holds but not the size, or only in some cases; "
        "*not reproduced*: our measurement disagrees; *not tested*: no measurement yet.",
        "",
    ]
    if not claims:
        lines.append("No chapter has recorded its claims yet: run `molesyn book run`.")
        return "\n".join(lines) + "\n"
    counts: dict[str, int] = {}
    for claim in claims:
        counts[claim["verdict"]] = counts.get(claim["verdict"], 0) + 1
    lines.append("**Verdicts:** " + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items())) + ".")
    lines.append("")
    rows = []
    for claim in claims:
        anchor = claim.get("section") or ""  # a MyST heading slug (myst_heading_anchors in _config.yml)
        link = f"[{claim['chapter']}](chapters/{claim['chapter']}.ipynb#{anchor})" if anchor else \
            f"[{claim['chapter']}](chapters/{claim['chapter']}.ipynb)"
        rows.append({"claim": claim["claim"], "paper": claim["paper"], "measured": claim["measured"],
                     "setting": f"{claim['setting']} (profile {claim['profile']})", "verdict": f"**{claim['verdict']}**",
                     "where": link})
    lines.append(markdown_table(rows, ["claim", "paper", "measured", "setting", "verdict", "where"]))
    return "\n".join(lines) + "\n"
