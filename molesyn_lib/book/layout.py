"""Where the book's files are and which chapters run with which parameters: the layout under one root, chapter
discovery and selection, parameters per profile, notebook defaults, titles and cells, the table of contents."""
from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import PROJECT_ROOT
from ..errors import InputError, MolesynError

#: Profiles a chapter can be run with (papermill parameters come from ``params/<profile>.yaml``).
PROFILES = ("smoke", "standard", "full")

#: Per-chapter wall-clock limits. They are a guard against hangs, not a speed target: the smoke chapters take 1-14 min
#: on 2 idle cores (Chapter 4 is the longest, cold caches) and up to 1.5x that when the cores are shared.
DEFAULT_TIMEOUT_S = {"smoke": 1500.0, "standard": 2 * 3600.0, "full": 6 * 3600.0}

CHAPTER_PATTERN = re.compile(r"^(\d{2})_[A-Za-z0-9_\-]+$")

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


# ------------------------------------------------------------------------------------------ executed notebooks
def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


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


def find_root(start: str | Path | None = None) -> Path:
    """The book root: ``start`` if given, else the first of the working directory and its parents (then the
    installed project) that holds ``_toc.yml``."""
    if start is not None:
        return Path(start).expanduser().resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "_toc.yml").exists() and (candidate / "notebooks").is_dir():
            return candidate
    return PROJECT_ROOT
