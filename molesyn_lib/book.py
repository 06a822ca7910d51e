"""The book pipeline: run the chapter notebooks with papermill, keep a run summary, build the HTML book.

Layout under one root directory (see :class:`BookLayout`; every path is derived from ``root`` so tests can run on
a temporary copy):

* ``notebooks/NN_name.ipynb``: the chapter sources, each with a cell tagged ``parameters``;
* ``params/<profile>.yaml``: papermill parameters per chapter, a mapping ``chapter -> {param: value}`` keyed by the
  notebook stem (``01_three_bonds``) or its number (``"01"``); ``profile`` itself is always injected as well;
* ``book/``: the jupyter-book source folder; executed chapters go to ``book/chapters/NN_name.ipynb``, the generated
  ``book/status.md`` ("Reproducibility status") and the HTML to ``book/_build/html``;
* ``_config.yml`` and ``_toc.yml`` at the root (jupyter-book 1.x, ``execute_notebooks: off``);
* ``results/run_summary.json``: one record per chapter and profile (kept outside ``_build``, which rebuilds wipe).

:func:`run_chapters` executes each chapter in its own papermill subprocess with a wall-clock timeout. A chapter that
raises is reported (chapter, failing cell, error) and the others still run; the executed notebook is written even
when it failed. The summary is merged with the previous one and rewritten atomically after every chapter, so a run
killed half-way loses no finished chapter, and ``resume=True`` skips chapters whose last run for the same profile
succeeded on the same source, parameters and library code (:func:`library_hash`). A failed or timed-out rerun of a
chapter whose shown notebook is a good run keeps that notebook (and its summary record, with the failure noted in
``last_failure``); the failed run's notebook goes to ``logs/<stem>.<profile>.failed.ipynb``. :func:`build_book` renders the status page and runs
``jupyter-book build book --config _config.yml --toc _toc.yml --path-output book --all -W -n --keep-going``.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, MolesynError

#: Profiles a chapter can be run with (papermill parameters come from ``params/<profile>.yaml``).
PROFILES = ("smoke", "standard", "full")
#: Per-chapter wall-clock limits. They are a guard against hangs, not a speed target: the smoke chapters take 1-14 min
#: on 2 idle cores (Chapter 4 is the longest, cold caches) and up to 1.5x that when the cores are shared.
DEFAULT_TIMEOUT_S = {"smoke": 1500.0, "standard": 2 * 3600.0, "full": 6 * 3600.0}
#: Statuses of a chapter run.
STATUSES = ("ok", "failed", "timeout", "skipped")
#: Packages whose versions every run record carries.
VERSIONED_PACKAGES = ("torch", "transformers", "trl", "datasets", "papermill", "molesyn")
SUMMARY_SCHEMA_VERSION = 1
#: Tags of cells that papermill or this module add to an executed notebook (not part of the chapter source).
ADDED_CELL_TAGS = ("injected-parameters", "papermill-error-cell-tag", "molesyn-run-stamp", "molesyn-run-banner")
CHAPTER_PATTERN = re.compile(r"^(\d{2})_[A-Za-z0-9_\-]+$")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TOC_SUFFIXES = (".md", ".ipynb", ".rst", ".myst", ".markdown")


@dataclass(frozen=True)
class BookLayout:
    """Where the book's files live; every path derives from ``root``.

    Attributes:
        root: the project root (holds ``_config.yml``, ``_toc.yml``, ``notebooks/``, ``params/``, ``book/``).
    """

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> BookLayout:
        return cls(Path(root).expanduser().resolve())

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def params_dir(self) -> Path:
        return self.root / "params"

    @property
    def book_dir(self) -> Path:
        return self.root / "book"

    @property
    def chapters_dir(self) -> Path:
        return self.book_dir / "chapters"

    @property
    def build_dir(self) -> Path:
        return self.book_dir / "_build"

    @property
    def html_dir(self) -> Path:
        return self.build_dir / "html"

    @property
    def config_path(self) -> Path:
        return self.root / "_config.yml"

    @property
    def toc_path(self) -> Path:
        return self.root / "_toc.yml"

    @property
    def status_page(self) -> Path:
        return self.book_dir / "status.md"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def summary_path(self) -> Path:
        return self.results_dir / "run_summary.json"

    @property
    def logs_dir(self) -> Path:
        return self.results_dir / "book_logs"

    def params_path(self, profile: str) -> Path:
        return self.params_dir / f"{profile}.yaml"


@dataclass(frozen=True)
class Chapter:
    """One chapter source notebook.

    Attributes:
        number: the two-digit prefix (``"01"``).
        stem: the file stem (``"01_three_bonds"``), also the chapter's name in summaries and ``params/*.yaml``.
        source: path of ``notebooks/<stem>.ipynb``.
    """

    number: str
    stem: str
    source: Path

    def executed_path(self, layout: BookLayout) -> Path:
        return layout.chapters_dir / f"{self.stem}.ipynb"


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


# ----------------------------------------------------------------------------------------------- chapter sources
def discover_chapters(layout: BookLayout) -> list[Chapter]:
    """All ``notebooks/NN_*.ipynb`` in number order (raises :class:`MolesynError` if there are none)."""
    if not layout.notebooks_dir.is_dir():
        raise MolesynError(f"{layout.notebooks_dir}: no notebooks folder (is {layout.root} the project root?)")
    chapters = []
    for path in sorted(layout.notebooks_dir.glob("*.ipynb")):
        match = CHAPTER_PATTERN.match(path.stem)
        if match:
            chapters.append(Chapter(number=match.group(1), stem=path.stem, source=path))
    if not chapters:
        raise MolesynError(f"{layout.notebooks_dir}: no chapter notebooks named NN_name.ipynb")
    numbers = [chapter.number for chapter in chapters]
    duplicates = sorted({number for number in numbers if numbers.count(number) > 1})
    if duplicates:
        raise MolesynError(f"{layout.notebooks_dir}: several notebooks share the number(s) {', '.join(duplicates)}")
    return chapters


def select_chapters(chapters: Sequence[Chapter], selection: Iterable[str] | None) -> list[Chapter]:
    """Keep the chapters named in ``selection`` (numbers ``"01"``/``"1"`` or stems); ``None`` keeps all."""
    if selection is None:
        return list(chapters)
    chosen: list[Chapter] = []
    for item in selection:
        key = str(item).strip()
        match = [c for c in chapters if c.stem == key or c.number == key or (key.isdigit() and c.number == f"{int(key):02d}")]
        if not match:
            known = ", ".join(c.number for c in chapters)
            raise MolesynError(f"no chapter {key!r} in notebooks/ (chapters: {known})")
        if match[0] not in chosen:
            chosen.append(match[0])
    return sorted(chosen, key=lambda c: c.number)


def load_profile_parameters(layout: BookLayout, profile: str, chapters: Sequence[Chapter]) -> dict[str, dict[str, Any]]:
    """Read ``params/<profile>.yaml`` into ``{stem: {param: value}}`` (a missing file means no parameters).

    Keys may be stems or two-digit numbers; a key that names no chapter, or a value that is not a mapping, is an
    :class:`InputError` naming the file and line.
    """
    if profile not in PROFILES:
        raise MolesynError(f"unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    path = layout.params_path(profile)
    by_stem: dict[str, dict[str, Any]] = {c.stem: {} for c in chapters}
    if not path.exists():
        return by_stem
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path, mark.line + 1 if mark else None) from exc
    if data is None:
        return by_stem
    if not isinstance(data, dict):
        raise InputError("expected a mapping chapter -> {parameter: value}", path, 1)
    lines: dict[str, int] = {}
    for key_node, _ in getattr(node, "value", []):
        raw = str(key_node.value)
        lines[f"{int(raw):02d}" if raw.isdigit() else raw] = key_node.start_mark.line + 1
    for key, values in data.items():
        name = f"{key:02d}" if isinstance(key, int) else str(key)  # unquoted 02 is read as the integer 2
        line = lines.get(name)
        match = [c for c in chapters if c.stem == name or c.number == name]
        if not match:
            raise InputError(f"{name!r} names no chapter in {layout.notebooks_dir.name}/", path, line)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise InputError(f"parameters of {name!r} must be a mapping, got {type(values).__name__}", path, line)
        by_stem[match[0].stem].update({str(k): v for k, v in values.items()})
    return by_stem


def notebook_defaults(path: Path) -> dict[str, Any]:
    """The defaults of the notebook's ``parameters`` cell (literal values; other expressions kept as source)."""
    import papermill

    try:
        inferred = papermill.inspect_notebook(str(path))
    except Exception as exc:  # papermill raises several types for unreadable notebooks
        raise InputError(f"cannot read the notebook's parameters: {exc}", path) from exc
    defaults: dict[str, Any] = {}
    for name, info in inferred.items():
        text = str(info.get("default", ""))
        try:
            defaults[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            defaults[name] = text
    return defaults


def notebook_title(path: Path) -> str:
    """The first markdown heading of a notebook (``""`` if none)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, json.JSONDecodeError):
        return ""
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        for line in _source(cell).splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return ""


#: Modules that run, publish and render the book but compute nothing a chapter shows; they are left out of
#: :func:`library_hash`, so mending the book machinery does not make executed chapters stale.
BOOK_MACHINERY = ("book.py", "publish.py", "commands/book.py")


def _library_sources(package: Path | None) -> list[tuple[str, bytes]]:
    """``(path relative to the package, contents)`` of the library's Python sources except :data:`BOOK_MACHINERY`."""
    package = Path(package).resolve() if package is not None else Path(__file__).resolve().parent
    return [(file.relative_to(package).as_posix(), file.read_bytes()) for file in sorted(package.rglob("*.py"))
            if "__pycache__" not in file.parts and file.relative_to(package).as_posix() not in BOOK_MACHINERY]


@lru_cache(maxsize=4)
def library_hash(package: Path | None = None) -> str:
    """sha256 of the ``molesyn_lib`` package's Python sources (paths and contents) except :data:`BOOK_MACHINERY`: a
    chapter computed with other library code is stale, so it is part of :func:`source_hash`. ``package``: another
    checkout's ``molesyn_lib`` folder (default: the imported package)."""
    digest = hashlib.sha256()
    for relative, contents in _library_sources(package):
        digest.update(relative.encode() + b"\0")
        digest.update(contents + b"\0")
    return digest.hexdigest()


def library_file_hashes(package: Path | None = None) -> dict[str, str]:
    """sha256 per library source file (the files :func:`library_hash` covers), so a stale chapter can say which
    files changed since it ran."""
    return {relative: hashlib.sha256(contents).hexdigest() for relative, contents in _library_sources(package)}


def changed_library_files(then: dict[str, str], now: dict[str, str]) -> list[str]:
    """The library files that differ between two :func:`library_file_hashes` (changed, added or removed)."""
    return sorted(path for path in set(then) | set(now) if then.get(path) != now.get(path))


def json_sha256(payload: Any) -> str:
    """sha256 of a JSON-able payload (keys sorted; other values as ``str``)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def notebook_cells(path: Path) -> list[list[Any]]:
    """``[cell_type, source]`` of every cell of a notebook (outputs and metadata ignored)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except json.JSONDecodeError as exc:
        raise InputError(f"not a notebook (invalid JSON: {exc.msg})", path, exc.lineno) from exc
    return [[cell.get("cell_type"), _source(cell)] for cell in cells]


def injected_parameters(layout: BookLayout, profile: str, chapters: Sequence[Chapter]) -> dict[str, dict[str, Any]]:
    """What papermill injects into each chapter: ``params/<profile>.yaml``'s mapping plus ``profile`` itself."""
    per_chapter = load_profile_parameters(layout, profile, chapters)
    return {c.stem: {**per_chapter.get(c.stem, {}), "profile": profile} for c in chapters}


def source_hash(path: Path, injected: dict[str, Any], profile: str) -> str:
    """Hash of the notebook's cell types and sources (outputs ignored), the injected parameters and the library's
    source code (:func:`library_hash`)."""
    return json_sha256({"cells": notebook_cells(path), "parameters": injected, "profile": profile,
                        "library": library_hash()})


def seeds_of(parameters: dict[str, Any]) -> dict[str, Any]:
    """The seed parameters (``seed``, ``seeds`` and any ``*_seed``) of a chapter."""
    return {key: value for key, value in parameters.items() if key in ("seed", "seeds") or key.endswith("_seed")}


# ------------------------------------------------------------------------------------------ executed notebooks
def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


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


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def strip_widget_outputs(nb: dict[str, Any]) -> dict[str, Any]:
    """Remove Jupyter widget views (e.g. a progress bar some library drew despite ``TQDM_DISABLE``) from an executed
    notebook, in place, and return it.

    A widget output keeps its plain-text fallback when it has one and is dropped otherwise; the notebook's widget
    state is removed. Widgets in the HTML book would need require.js and the widget manager from a CDN, which an
    offline reader does not have.
    """
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs")
        if not outputs:
            continue
        kept = []
        for output in outputs:
            data = output.get("data")
            if isinstance(data, dict) and WIDGET_MIME in data:
                data.pop(WIDGET_MIME)
                if not any(key.startswith("text/") for key in data):
                    continue
            kept.append(output)
        cell["outputs"] = kept
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def stamp_executed_notebook(path: Path, record: ChapterRecord, link_status: bool) -> None:
    """Prepare an executed chapter for the book.

    Inserts a short note after the chapter's title saying which profile produced it, when, and how it went,
    tags the ``parameters`` and ``injected-parameters`` cells ``hide-cell`` (collapsed in the HTML book), and drops
    Jupyter widget outputs (:func:`strip_widget_outputs`).
    """
    nb = strip_widget_outputs(json.loads(path.read_text(encoding="utf-8")))
    cells = [c for c in nb.get("cells", []) if "molesyn-run-stamp" not in _tags(c)]
    for cell in cells:
        tags = _tags(cell)
        if ("parameters" in tags or "injected-parameters" in tags) and "hide-cell" not in tags:
            cell.setdefault("metadata", {})["tags"] = tags + ["hide-cell"]
    when = record.finished.replace("T", " ")[:16]
    status = {"ok": "succeeded", "failed": "FAILED", "timeout": "was stopped at its time limit"}.get(record.status,
                                                                                                   record.status)
    where = "the [reproducibility status](../status.md) page" if link_status else "the reproducibility status page"
    text = (f"*Executed with the `{record.profile}` profile on {when} UTC in {_format_seconds(record.seconds)}; "
            f"the run {status}. Versions, hardware and seeds are on {where}.*")
    stamp = {"cell_type": "markdown", "id": "molesyn-run-stamp", "metadata": {"tags": ["molesyn-run-stamp"]},
             "source": text}
    position = 0
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown" and any(line.startswith("# ") for line in _source(cell).splitlines()):
            position = i + 1
            break
    cells.insert(position, stamp)
    nb["cells"] = cells
    _atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


# -------------------------------------------------------------------------------------------------- environment
def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def environment_versions() -> dict[str, str | None]:
    """Python and key library versions (read from package metadata, nothing is imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        versions[name] = _package_version(name)
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names() -> list[str]:
    """Names of visible CUDA devices via torch (skipped on Linux machines without an NVIDIA driver)."""
    if sys.platform.startswith("linux") and not Path("/proc/driver/nvidia").exists():
        return []
    try:
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except (ImportError, RuntimeError, AssertionError, OSError):  # a broken CUDA setup must not stop the book
        return []
    return []


@lru_cache(maxsize=1)
def hardware_info() -> dict[str, Any]:
    """CPU model, logical cores, RAM (GiB), GPU names (empty when there is none) and the OS."""
    try:
        import psutil

        ram = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        ram = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    gpus = _gpu_names()
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "ram_gib": ram, "gpu": ", ".join(gpus) or None,
            "gpu_count": len(gpus), "os": f"{platform.system()} {platform.release()}"}


# ------------------------------------------------------------------------------------------------------ summary
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def _umask() -> int:
    """The process's file-creation mask (:func:`molesyn_lib.safeio.current_umask`)."""
    from .safeio import current_umask

    return current_umask()


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path`` and rename it over ``path``
    (:func:`molesyn_lib.safeio.write_text`)."""
    from .safeio import write_text

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


# ---------------------------------------------------------------------------------------------------- execution
def _kill_tree(pid: int) -> None:
    """Terminate a process and all its descendants (papermill and its kernel), then kill stragglers."""
    import psutil

    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs = parent.children(recursive=True) + [parent]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


@lru_cache(maxsize=1)
def _libc() -> Any:
    """The C library (Linux), loaded in the parent so the child's pre-exec hook imports and locks nothing."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


def _die_with_parent() -> None:
    """(In the child before exec) Ask Linux to SIGTERM this process when its parent dies, so that a killed
    ``molesyn book run`` does not leave papermill and its Jupyter kernel running. Only calls prctl(2)."""
    libc = _libc()
    if libc is not None:
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def _chapter_env(profile: str, layout: BookLayout) -> dict[str, str]:
    """The chapter kernel's environment: offline Hugging Face, fixed hash seed, the profile, and the book root's
    ``results/`` as ``MOLESYN_RESULTS`` (unless set) so chapters save their results next to the run summary."""
    env = dict(os.environ)
    env.setdefault("MOLESYN_RESULTS", str(layout.results_dir))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("TQDM_DISABLE", "1")  # progress bars help interactive users, not the rendered pages
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # also transformers' bars
    env.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    env["MOLESYN_BOOK_PROFILE"] = profile
    return env


def execute_chapter(chapter: Chapter, layout: BookLayout, profile: str, injected: dict[str, Any],
                    timeout_s: float, kernel: str = "python3", keep_good: bool = False) -> ChapterRecord:
    """Run one chapter with papermill in a subprocess, killed (with its kernel) after ``timeout_s`` seconds.

    Papermill writes to a hidden temporary notebook that replaces ``book/chapters/<stem>.ipynb`` only when the run
    ended (ok, failed or timed out), so an interrupted run never leaves a half-written chapter behind. With
    ``keep_good`` (the chapter's notebook is a good run) a failed or timed-out run does not replace it: its notebook
    goes to ``logs/<stem>.<profile>.failed.ipynb`` and the record is not current. A ``KeyboardInterrupt`` stops the
    subprocess and propagates without recording anything for this chapter.
    """
    layout.chapters_dir.mkdir(parents=True, exist_ok=True)
    layout.logs_dir.mkdir(parents=True, exist_ok=True)
    final = chapter.executed_path(layout)
    running = layout.chapters_dir / f".{chapter.stem}.running.ipynb"
    log_path = layout.logs_dir / f"{chapter.stem}.{profile}.log"
    defaults = notebook_defaults(chapter.source)
    parameters = {**defaults, **injected}
    with tempfile.TemporaryDirectory(prefix="molesyn-params-") as tmp:
        params_file = Path(tmp) / "parameters.yaml"
        params_file.write_text(yaml.safe_dump(injected, sort_keys=True), encoding="utf-8")
        command = [sys.executable, "-m", "papermill", str(chapter.source), str(running), "-f", str(params_file),
                   "-k", kernel, "--cwd", str(layout.notebooks_dir), "--no-progress-bar", "--log-level", "WARNING"]
        started, t0 = _now(), time.perf_counter()
        timed_out = False
        with open(log_path, "w", encoding="utf-8") as log:
            hook = _die_with_parent if sys.platform.startswith("linux") and _libc() is not None else None
            # the hook only makes one system call (no imports, no locks), which is safe after fork
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_chapter_env(profile, layout),
                                    cwd=layout.root, preexec_fn=hook)  # noqa: PLW1509
            try:
                returncode = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_tree(proc.pid)
                returncode = proc.wait()
            except BaseException:
                _kill_tree(proc.pid)
                proc.wait()
                running.unlink(missing_ok=True)
                raise
        seconds = round(time.perf_counter() - t0, 2)
    error: CellError | None = None
    produced = running.exists()
    # papermill failed before writing anything: the previous notebook (if any) stays, not current
    errors = find_error_outputs(running) if produced else []
    if timed_out:
        status = "timeout"
        running_cell = next((e for e in errors if e.ename == "Timeout"), None)
        error = running_cell or CellError(cell_index=-1, execution_count=None, source_head="", ename="Timeout",
                                          evalue="")
        error.evalue = f"the chapter exceeded its time limit of {timeout_s:g} s" + (
            f" while running cell {error.cell_index}" if error.cell_index >= 0 else "")
    elif returncode != 0 or errors:
        status = "failed"
        real = [e for e in errors if e.ename != "Timeout"]
        error = real[0] if real else CellError(cell_index=-1, execution_count=None, source_head="",
                                               ename="PapermillError", evalue=_log_tail(log_path))
    else:
        status = "ok"
    executed: Path | None = None
    if produced:
        failed_copy = layout.logs_dir / f"{chapter.stem}.{profile}.failed.ipynb"
        executed = final if status == "ok" or not keep_good else failed_copy
        os.replace(running, executed)
    if status != "ok" and error is not None:
        what = "stopped at its time limit" if status == "timeout" else "failed"
        where = f" at cell {error.cell_index}" if error.cell_index >= 0 else ""
        if executed == final:
            _add_banner(final, f"This chapter's last run ({profile} profile, {started}) {what}{where}: "
                               f"{error.ename}: {error.evalue[:300]}. The results below are incomplete, and its "
                               "claims are listed as not tested on the scoreboard.")
        elif final.exists():
            _add_banner(final, f"The latest run of this chapter ({profile} profile, {started}) {what}{where}. "
                               "This page shows the previous successful run.")
    return ChapterRecord(
        chapter=chapter.stem, profile=profile, status=status, seconds=seconds, started=started, finished=_now(),
        title=notebook_title(chapter.source), parameters=parameters, injected=dict(injected),
        seeds=seeds_of(parameters), error=error, versions=environment_versions(), hardware=hardware_info(),
        source_hash=source_hash(chapter.source, injected, profile), library_hash=library_hash(),
        library_files=library_file_hashes(),
        executed=str(executed.relative_to(layout.root)) if executed is not None else "",
        log=str(log_path.relative_to(layout.root)), timeout_s=timeout_s, current=executed == final)


BANNER_TAG = "molesyn-run-banner"  # one of ADDED_CELL_TAGS: not counted as a chapter cell


def _add_banner(notebook: Path, text: str) -> None:
    """Put a warning box at the top of an executed chapter (replacing an earlier banner) so a reader of the HTML
    page sees that its run failed or timed out."""
    try:
        data = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    cells = [c for c in data.get("cells", []) if BANNER_TAG not in c.get("metadata", {}).get("tags", [])]
    banner = {"cell_type": "markdown", "id": "molesyn-banner", "metadata": {"tags": [BANNER_TAG]},
              "source": f":::{{warning}}\n{text}\n:::\n"}
    data["cells"] = cells[:1] + [banner] + cells[1:]  # below the title
    _atomic_write_text(notebook, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = strip_ansi(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip() and "running over TCP without encryption" not in line]
    return "\n".join(kept[-lines:])


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


def run_chapters(root: str | Path, profile: str = "smoke", chapters: Iterable[str] | None = None,
                 timeout_s: float | None = None, kernel: str = "python3", resume: bool = False,
                 progress: bool = True, echo: Callable[[str], None] | None = None) -> list[ChapterRecord]:
    """Execute the chapter notebooks with papermill into ``book/chapters`` and record each run.

    Args:
        root: project root (see :class:`BookLayout`).
        profile: one of :data:`PROFILES`; parameters come from ``params/<profile>.yaml`` plus ``profile`` itself.
        chapters: chapter numbers or stems to run (``None``: all).
        timeout_s: wall-clock limit per chapter (default :data:`DEFAULT_TIMEOUT_S` of the profile).
        kernel: Jupyter kernel name.
        resume: skip chapters whose summary record is ok and current for this profile, with an unchanged source
            and parameters hash and an existing executed notebook.
        progress: show a tqdm progress bar.
        echo: where to print one line per chapter (default: through tqdm).

    Returns:
        One record per selected chapter, in order (``skipped`` for resumed ones). A failing chapter does not stop
        the others; the summary file is merged and rewritten after every chapter.
    """
    from .progress import tqdm

    layout = BookLayout.at(root)
    all_chapters = discover_chapters(layout)
    selected = select_chapters(all_chapters, chapters)
    injected_by_chapter = injected_parameters(layout, profile, all_chapters)
    limit = float(timeout_s) if timeout_s is not None else DEFAULT_TIMEOUT_S[profile]
    if limit <= 0:
        raise MolesynError(f"the chapter timeout must be positive, got {limit:g}")
    for stale in layout.chapters_dir.glob(".*.running.ipynb"):
        stale.unlink(missing_ok=True)
    previous = {(r.chapter, r.profile): r for r in load_summary(layout.summary_path)}
    link_status = layout.toc_path.exists() and "status" in toc_files(layout.toc_path)
    results: list[ChapterRecord] = []
    bar = tqdm(selected, desc=f"chapters ({profile})", unit="chapter", disable=not progress)
    say = echo or bar.write
    for chapter in bar:
        bar.set_postfix_str(chapter.stem)
        injected = injected_by_chapter[chapter.stem]
        digest = source_hash(chapter.source, injected, profile)
        earlier = previous.get((chapter.stem, profile))
        if resume and can_resume(earlier, digest, chapter.executed_path(layout)):
            assert earlier is not None
            skipped = ChapterRecord.from_dict(earlier.to_dict())
            skipped.status = "skipped"
            results.append(skipped)
            say(f"{chapter.stem}: skipped (ok with the {profile} profile on {earlier.finished}, unchanged)")
            continue
        shown = next((r for r in previous.values() if r.chapter == chapter.stem and r.current), None)
        keep_good = shown is not None and shown.status == "ok" and chapter.executed_path(layout).exists()
        record = execute_chapter(chapter, layout, profile, injected, limit, kernel, keep_good=keep_good)
        if record.current:
            stamp_executed_notebook(chapter.executed_path(layout), record, link_status)
        if keep_good and record.status != "ok" and shown is not None and shown.profile == profile:
            kept = ChapterRecord.from_dict(shown.to_dict())  # the good run stays, with the failure noted
            kept.last_failure = {"status": record.status, "finished": record.finished, "log": record.log,
                                 "executed": record.executed, "source_hash": record.source_hash,
                                 "error": asdict(record.error) if record.error else None}
            previous[(chapter.stem, profile)] = kept
            record_summary(layout.summary_path, kept)
        else:
            previous[(chapter.stem, profile)] = record
            record_summary(layout.summary_path, record)
        results.append(record)
        if record.status == "ok":
            say(f"{chapter.stem}: ok in {_format_seconds(record.seconds)}")
        else:
            assert record.error is not None
            say(f"{chapter.stem}: {record.status.upper()} after {_format_seconds(record.seconds)} at "
                f"{record.error.describe()} (log: {record.log})")
    bar.close()
    return results


# ---------------------------------------------------------------------------------------------- status page
def _md_cell(text: Any) -> str:
    """Escape text for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("$", "\\$").replace("\n", " ")


def _versions_text(versions: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in versions.items() if value)


def _hardware_text(hardware: dict[str, Any]) -> str:
    if not hardware:
        return "-"
    text = f"{hardware.get('cpu', '?')} ({hardware.get('cores', '?')} cores, {hardware.get('ram_gib', '?')} GiB RAM)"
    if hardware.get("gpu"):
        text += f"; GPU: {hardware['gpu']}"
    return text


def _seeds_text(seeds: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in seeds.items()) or "-"


STATUS_MARK = {"ok": "✅ ok", "failed": "❌ failed", "timeout": "⏱ timeout", "skipped": "↷ skipped"}


def render_status_page(records: Sequence[ChapterRecord], toc_chapters: Sequence[str] = ()) -> str:
    """The "Reproducibility status" page (MyST Markdown) for a run summary.

    Args:
        records: the summary's records.
        toc_chapters: chapter documents listed in ``_toc.yml`` (``chapters/<stem>``); those never run are listed
            as such, and chapters in the toc are linked.
    """
    intro = ("This page is generated by `molesyn book build` from `results/run_summary.json`, which "
             "`molesyn book run` updates after every chapter. Each chapter is a notebook executed with papermill "
             "under one of three parameter profiles: `smoke` (the CI profile, minutes per chapter on 2 CPU cores), "
             "`standard` (the reference run, at most 2 hours for the whole book on 2 CPU cores) or `full` (larger "
             "students and samples, for a GPU machine).")
    lines = ["# Reproducibility status", "", intro, ""]
    toc_stems = [doc.split("/", 1)[1] for doc in toc_chapters if doc.startswith("chapters/")]
    if not records:
        lines += [("No chapter has been run yet. Run `molesyn book run --profile smoke` (or `molesyn book`) to "
                   "execute the chapters; this page then shows their status."), ""]
        return "\n".join(lines)

    def name(stem: str) -> str:
        return f"[`{stem}`](chapters/{stem}.ipynb)" if stem in toc_stems else f"`{stem}`"

    by_chapter: dict[str, list[ChapterRecord]] = {}
    for record in records:
        by_chapter.setdefault(record.chapter, []).append(record)
    chapters = sorted(set(by_chapter) | set(toc_stems))

    lines += ["## What the book shows", "",
              "| Chapter | Profile shown | Status | Wall time | Finished (UTC) | Seeds |",
              "|---|---|---|---|---|---|"]
    for stem in chapters:
        current = [r for r in by_chapter.get(stem, []) if r.current]
        if not current:
            lines.append(f"| {name(stem)} | - | not run yet | - | - | - |")
            continue
        r = current[0]
        lines.append(f"| {name(stem)} | `{r.profile}` | {STATUS_MARK.get(r.status, r.status)} | "
                     f"{_format_seconds(r.seconds)} | {_md_cell(r.finished.replace('T', ' ')[:19])} | "
                     f"{_md_cell(_seeds_text(r.seeds))} |")
    lines += ["", "## Every chapter and profile", "",
              "| Chapter | Profile | Status | Wall time | Finished (UTC) | Hardware | Versions |",
              "|---|---|---|---|---|---|---|"]
    for record in records:
        lines.append(f"| {name(record.chapter)} | `{record.profile}` | {STATUS_MARK.get(record.status, record.status)} | "
                     f"{_format_seconds(record.seconds)} | {_md_cell(record.finished.replace('T', ' ')[:19])} | "
                     f"{_md_cell(_hardware_text(record.hardware))} | {_md_cell(_versions_text(record.versions))} |")
    failures = [r for r in records if r.status in ("failed", "timeout")]
    reruns = [r for r in records if r.last_failure]
    lines += ["", "## Failures", ""]
    if not failures and not reruns:
        lines += ["None: every recorded run succeeded.", ""]
    for record in reruns:
        failure = record.last_failure or {}
        error = failure.get("error") or {}
        note = (f"The rerun finished {_md_cell(str(failure.get('finished', '')).replace('T', ' ')[:19])} UTC with "
                f"`{_md_cell(error.get('ename', ''))}: {_md_cell(error.get('evalue', ''))}` (log: "
                f"`{failure.get('log', '')}`, notebook: `{failure.get('executed', '')}`); the book still shows the "
                "last good run.")
        lines += [f"### `{record.chapter}` ({record.profile}): a rerun {failure.get('status', 'failed')}", "", note, ""]
    for record in failures:
        error = record.error
        lines += [f"### `{record.chapter}` ({record.profile}): {record.status}", ""]
        if error is None:
            lines += ["No error details were recorded.", ""]
            continue
        where = (f"cell {error.cell_index} (counting from 0 in the chapter's source notebook)"
                 if error.cell_index >= 0 else "before any cell ran")
        lines += [f"Stopped at {where} after {_format_seconds(record.seconds)}; log: `{record.log}`.", ""]
        if error.source_head:
            lines += ["```python", error.source_head, "```", ""]
        message = f"{error.ename}: {error.evalue}".strip()
        body = error.traceback.strip() or message
        if message not in body:
            body = f"{body}\n{message}"
        lines += ["```text", body.replace("```", "'''"), "```", ""]
    lines += ["## Parameters", ""]
    for record in records:
        params = json.dumps(record.parameters, sort_keys=True, default=str)
        lines += [f"* `{record.chapter}` ({record.profile}): `{params.replace('`', chr(39))}`"]
    lines.append("")
    return "\n".join(lines)


def write_status_page(root: str | Path) -> Path:
    """Render ``results/run_summary.json`` as ``book/status.md`` (works before any run) and return its path."""
    layout = BookLayout.at(root)
    toc = toc_files(layout.toc_path) if layout.toc_path.exists() else []
    text = render_status_page(load_summary(layout.summary_path), [doc for doc in toc if doc.startswith("chapters/")])
    layout.book_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(layout.status_page, text)
    return layout.status_page


# ------------------------------------------------------------------------------------------------------- build
def toc_files(toc_path: str | Path) -> list[str]:
    """Every document of a jupyter-book ``_toc.yml`` (root first), as paths without suffix."""
    path = Path(toc_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path, mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict) or "root" not in data:
        raise InputError("a jupyter-book table of contents needs a 'root' entry", path)
    files = [str(data["root"])]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: data.get(key) for key in ("parts", "chapters", "sections")})
    return [str(Path(f).with_suffix("")) if Path(f).suffix in TOC_SUFFIXES else f for f in files]


def _check_config(layout: BookLayout) -> None:
    try:
        config = yaml.safe_load(layout.config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", layout.config_path) from exc
    mode = (config.get("execute") or {}).get("execute_notebooks", "auto")
    if mode not in ("off", False):
        raise MolesynError(f"{layout.config_path}: set execute: execute_notebooks: \"off\" (chapters are executed "
                           f"by `molesyn book run`, not by jupyter-book); found {mode!r}")
    if config.get("only_build_toc_files") is not True:
        raise MolesynError(f"{layout.config_path}: set only_build_toc_files: true so that stray files under book/ "
                           "are not built")


def jupyter_book_command() -> list[str]:
    """The jupyter-book 1.x executable of this environment (raises if it is missing or not 1.x)."""
    version = _package_version("jupyter-book")
    if version is None:
        raise MolesynError("jupyter-book is not installed (pip install 'jupyter-book==1.0.4.post1')")
    if not version.startswith("1."):
        raise MolesynError(f"jupyter-book {version} is installed; the book needs 1.x (2.x cannot build offline)")
    local = Path(sys.executable).parent / "jupyter-book"
    if local.exists():
        return [str(local)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def _build_failure(log: str) -> str:
    lines = [strip_ansi(line).rstrip() for line in log.splitlines()]
    flagged = [line for line in lines if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Error:|error:", line)]
    tail = (flagged or [line for line in lines if line.strip()])[-12:]
    return "\n".join(tail)


def build_book(root: str | Path, strict: bool = True, timeout_s: float = 1800.0,
               echo: Callable[[str], None] = print) -> Path:
    """Write the status page, build the HTML with jupyter-book 1.x and verify every page exists.

    Runs ``jupyter-book build <root>/book --config <root>/_config.yml --toc <root>/_toc.yml --path-output
    <root>/book --all`` plus ``-W -n --keep-going`` when ``strict`` (warnings are errors). The jupyter-book log is
    kept in ``book/_build/jupyter-book.log``.

    Returns:
        ``book/_build/html``.

    Raises:
        MolesynError: a toc document is missing (e.g. a chapter never run), the build fails (the message carries
            the log's warnings and errors), or ``index.html``/a chapter page was not produced.
    """
    layout = BookLayout.at(root)
    for needed in (layout.config_path, layout.toc_path):
        if not needed.exists():
            raise MolesynError(f"{needed}: missing (the book needs _config.yml and _toc.yml at {layout.root})")
    _check_config(layout)
    write_status_page(layout.root)
    write_scoreboard_page(layout)
    vendor_mathjax(layout.book_dir / "_extra" / "_static", echo=echo)
    documents = toc_files(layout.toc_path)
    missing = [doc for doc in documents if not any((layout.book_dir / f"{doc}{s}").exists() for s in TOC_SUFFIXES)]
    if missing:
        hints = []
        for doc in missing:
            if doc.startswith("chapters/"):
                hints.append(f"book/{doc}.ipynb (run `molesyn book run --chapters {doc.split('/')[1][:2]}`)")
            else:
                hints.append(f"book/{doc}.md")
        raise MolesynError("_toc.yml lists documents that do not exist: " + "; ".join(hints))
    return run_jupyter_book(layout, layout.book_dir, documents, strict=strict, timeout_s=timeout_s, echo=echo)


def run_jupyter_book(layout: BookLayout, source: Path, documents: Sequence[str], strict: bool = True,
                     timeout_s: float = 1800.0, echo: Callable[[str], None] = print) -> Path:
    """Build ``source`` (a book folder: ``book/`` or a staged copy) with the root's ``_config.yml`` and ``_toc.yml``
    into ``source/_build/html``, check that every one of ``documents`` has a page, and return that folder."""
    command = jupyter_book_command() + ["build", str(source), "--config", str(layout.config_path),
                                        "--toc", str(layout.toc_path), "--path-output", str(source), "--all"]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    echo(f"building the HTML book with jupyter-book ({'strict' if strict else 'lenient'}) ...")
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    try:
        proc = subprocess.run(command, check=False, cwd=layout.root, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise MolesynError(f"jupyter-book did not finish within {timeout_s:g} s") from exc
    log = (proc.stdout or "") + (proc.stderr or "")
    build_dir = source / "_build"
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = build_dir / "jupyter-book.log"
    log_path.write_text(strip_ansi(log), encoding="utf-8")
    if proc.returncode != 0:
        raise MolesynError(f"jupyter-book build failed (exit {proc.returncode}; full log: {log_path}):\n"
                           f"{_build_failure(log)}")
    html = build_dir / "html"
    index = html / "index.html"
    absent = [str(p.relative_to(layout.root)) for p in [index] + [html / f"{d}.html" for d in documents]
              if not p.exists()]
    if absent:
        raise MolesynError(f"jupyter-book succeeded but these pages are missing: {', '.join(absent)}")
    echo(f"built {len(documents)} pages in {_format_seconds(time.perf_counter() - t0)}: {index}")
    return html


def write_scoreboard_page(layout: BookLayout) -> Path:
    """Render ``book/scoreboard.md`` (the claims scoreboard) from the claims the chapters saved."""
    from .claims import render_scoreboard

    page = layout.book_dir / "scoreboard.md"
    _atomic_write_text(page, render_scoreboard(layout.results_dir))
    return page


MATHJAX_VERSION = "3.2.2"


def vendor_mathjax(static_dir: Path, echo: Callable[[str], None] = print) -> Path | None:
    """Put MathJax 3 into ``static_dir/mathjax`` so pages render math offline (``_config.yml`` points
    ``mathjax_path`` there instead of a CDN).

    The book passes ``book/_extra/_static``: ``html_extra_path`` copies it to the site's ``_static/`` as plain files.
    (Anything under ``book/_static`` itself would be added to every page as a script by Jupyter Book, all of
    MathJax's alternative builds included.)

    The files come from the npm package ``mathjax@3`` (``npm pack``, the npm registry; cached in the molesyn cache
    directory) and are a build output, not committed. Without npm or a network the build goes on and says that math
    will not render offline.
    """
    target = static_dir / "mathjax"
    if (target / "tex-chtml.js").exists():
        return target
    from .config import cache_dir

    cache = cache_dir() / "npm"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"mathjax-{MATHJAX_VERSION}.tgz"
    if not tarball.exists():
        npm = shutil.which("npm")
        if npm is None:
            echo("warning: npm not found, MathJax is not vendored: math will render only when the reader is online")
            return None
        proc = subprocess.run([npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent"], cwd=cache,
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0 or not tarball.exists():
            echo(f"warning: `npm pack mathjax@{MATHJAX_VERSION}` failed ({proc.stderr.strip()[-200:]}); math will "
                 "render only when the reader is online")
            return None
    import tarfile

    staging = static_dir / ".mathjax-staging"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith("package/es5/") and m.isfile()]
        archive.extractall(staging, members=members, filter="data")
    shutil.rmtree(target, ignore_errors=True)
    (staging / "package" / "es5").rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    echo(f"vendored MathJax {MATHJAX_VERSION} into {target}")
    return target


def find_root(start: str | Path | None = None) -> Path:
    """The book root: ``start`` if given, else the first of the working directory and its parents (then the
    installed project) that holds ``_toc.yml``."""
    if start is not None:
        return Path(start).expanduser().resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "_toc.yml").exists() and (candidate / "notebooks").is_dir():
            return candidate
    from .config import PROJECT_ROOT

    return PROJECT_ROOT
