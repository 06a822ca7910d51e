"""Run records: one :class:`ChapterRecord` per chapter and profile in ``results/run_summary.json``, merged and written
atomically after every chapter; the errors found in an executed notebook."""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..safeio import current_umask, write_text
from .layout import PROFILES, BookLayout, _source, _tags

#: Statuses of a chapter run.
STATUSES = ("ok", "failed", "timeout", "skipped")

SUMMARY_SCHEMA_VERSION = 1

#: Tags of cells that papermill or this module add to an executed notebook (not part of the chapter source).
ADDED_CELL_TAGS = ("injected-parameters", "papermill-error-cell-tag", "molesyn-run-stamp", "molesyn-run-banner")

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class CellError:
    """An error found in an executed notebook.

    Attributes:
        cell_index: 0-based index of the cell in the chapter *source* notebook (cells papermill or molesyn add,
            such as the injected parameters, are not counted).
        execution_count: the ``In [n]`` number, if the cell ran.
        source_head: the first lines of the cell's code.
        ename: the exception's class name (``"Timeout"`` for a chapter killed at its time limit).
        evalue: the exception's message.
        traceback: the last lines of the traceback, without terminal colour codes.
    """

    cell_index: int
    execution_count: int | None
    source_head: str
    ename: str
    evalue: str
    traceback: str = ""

    def describe(self) -> str:
        first_line = self.source_head.splitlines()[0] if self.source_head else ""
        return f"cell {self.cell_index} (`{first_line}`): {self.ename}: {self.evalue}"


@dataclass
class ChapterRecord:
    """The outcome of running one chapter with one profile (one entry of the run summary).

    Attributes:
        chapter: the notebook stem.
        profile: ``smoke``, ``standard`` or ``full``.
        status: ``ok``, ``failed``, ``timeout`` or ``skipped`` (skipped: resumed, the earlier ok run still stands).
        seconds: wall time of the papermill subprocess.
        started, finished: ISO-8601 UTC timestamps.
        title: the chapter's first heading.
        parameters: the effective parameters (the notebook's defaults overridden by the profile's).
        injected: the parameters papermill injected.
        seeds: the ``seed``/``seeds`` parameters.
        error: the failing cell and exception (``None`` when ok).
        versions: library versions of the run (python, torch, transformers, trl, datasets, papermill, molesyn).
        hardware: CPU model, cores, RAM, GPU name(s) if any.
        source_hash: hash of the notebook's cell sources, the injected parameters and the library code (for
            ``resume``).
        executed: path of the executed notebook, relative to the root.
        log: path of the papermill log, relative to the root.
        timeout_s: the time limit the chapter ran under.
        current: whether ``book/chapters`` holds this run's notebook (the profile the book shows).
        last_failure: a later rerun that failed while this good run's notebook was kept (its ``status``,
            ``finished``, ``error``, ``log`` and ``executed``); ``None`` when the last run was this one.
        library_hash: :func:`library_hash` of the code that ran the chapter (``""`` in records written before it
            was recorded); ``library_files``: :func:`library_file_hashes` of that code (``{}`` in older records).
    """

    chapter: str
    profile: str
    status: str
    seconds: float
    started: str
    finished: str
    title: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    injected: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, Any] = field(default_factory=dict)
    error: CellError | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    source_hash: str = ""
    executed: str = ""
    log: str = ""
    timeout_s: float | None = None
    current: bool = True
    last_failure: dict[str, Any] | None = None
    library_hash: str = ""
    library_files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error"] = asdict(self.error) if self.error else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChapterRecord:
        known = {name for name in cls.__dataclass_fields__}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("error"):
            values["error"] = CellError(**values["error"])
        return cls(**values)


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def find_error_outputs(notebook: str | Path | dict[str, Any]) -> list[CellError]:
    """Every error output of an executed notebook, plus the cell that was still running if it was killed.

    Accepts a path or an already loaded notebook dict. Cell indexes refer to the chapter source (cells papermill
    or molesyn inserted are skipped when counting).
    """
    if isinstance(notebook, dict):
        nb = notebook
    else:
        path = Path(notebook)
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"not a notebook (invalid JSON: {exc.msg})", path, exc.lineno) from exc
    errors: list[CellError] = []
    index = -1
    for cell in nb.get("cells", []):
        if any(tag in ADDED_CELL_TAGS for tag in _tags(cell)):
            continue
        index += 1
        if cell.get("cell_type") != "code":
            continue
        head = "\n".join(_source(cell).splitlines()[:3])[:300]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = strip_ansi("\n".join(output.get("traceback", [])))
                errors.append(CellError(cell_index=index, execution_count=cell.get("execution_count"),
                                        source_head=head, ename=str(output.get("ename", "Error")),
                                        evalue=strip_ansi(str(output.get("evalue", ""))),
                                        traceback="\n".join(trace.splitlines()[-15:])))
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            errors.append(CellError(cell_index=index, execution_count=cell.get("execution_count"), source_head=head,
                                    ename="Timeout", evalue="this cell was still running when the chapter was stopped"))
    return errors


def check_executed_notebooks(root: str | Path) -> dict[str, list[CellError]]:
    """Error outputs of every executed chapter in ``book/chapters`` (only chapters with errors are listed)."""
    layout = BookLayout.at(root)
    found: dict[str, list[CellError]] = {}
    for path in sorted(layout.chapters_dir.glob("*.ipynb")):
        errors = find_error_outputs(path)
        if errors:
            found[path.stem] = errors
    return found


# ------------------------------------------------------------------------------------------------------ summary
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def _umask() -> int:
    """The process's file-creation mask (:func:`molesyn_lib.safeio.current_umask`)."""
    return current_umask()


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path`` and rename it over ``path``
    (:func:`molesyn_lib.safeio.write_text`)."""
    write_text(path, text)


def load_summary(path: str | Path) -> list[ChapterRecord]:
    """Records of a run summary file (``[]`` if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"corrupt run summary ({exc.msg}); delete it to start afresh", path, exc.lineno) from exc
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise InputError("not a molesyn run summary (no 'records' list)", path)
    try:
        return [ChapterRecord.from_dict(item) for item in data["records"]]
    except TypeError as exc:
        raise InputError(f"malformed record in run summary: {exc}", path) from exc


def merge_records(previous: Sequence[ChapterRecord], new: ChapterRecord) -> list[ChapterRecord]:
    """Replace the (chapter, profile) record by ``new``; other chapters and profiles are kept.

    When ``new`` is current (its notebook now sits in ``book/chapters``), the chapter's other profiles are marked
    not current.
    """
    merged = [r for r in previous if (r.chapter, r.profile) != (new.chapter, new.profile)]
    if new.current:
        for record in merged:
            if record.chapter == new.chapter:
                record.current = False
    merged.append(new)
    return sorted(merged, key=lambda r: (r.chapter, PROFILES.index(r.profile) if r.profile in PROFILES else 99))


def save_summary(path: str | Path, records: Sequence[ChapterRecord]) -> None:
    """Write the summary atomically (temporary file + rename)."""
    payload = {"schema_version": SUMMARY_SCHEMA_VERSION, "updated": _now(),
               "records": [record.to_dict() for record in records]}
    _atomic_write_text(Path(path), json.dumps(payload, indent=1, ensure_ascii=False, default=str) + "\n")


def record_summary(path: str | Path, record: ChapterRecord) -> list[ChapterRecord]:
    """Merge one record into the summary on disk and write it back atomically; returns the merged records."""
    merged = merge_records(load_summary(path), record)
    save_summary(path, merged)
    return merged


def can_resume(record: ChapterRecord | None, source_hash_now: str, executed: Path) -> bool:
    """True when ``record`` is an ok, current run with the same source hash, its executed notebook exists and no
    rerun failed since (``last_failure``)."""
    return (record is not None and record.status == "ok" and record.current and record.source_hash == source_hash_now
            and executed.exists() and not record.last_failure)


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
