"""The published book: executed chapters stored with their provenance, and rendered without executing anything.

``molesyn book publish --profile standard`` copies every chapter that ran ``ok`` with that profile (its executed
notebook from ``book/chapters``, its saved results and claims from ``results/``) into the committed folder
``published/<profile>/`` and records per chapter, in ``published/<profile>/provenance.json``: the commit and whether
the work tree differed from it, the hashes of the notebook's cells, of its injected parameters and of the library
code, the finish date, wall time, hardware, seeds and library versions (:class:`Provenance`).

``molesyn book build --published standard`` stages the book's pages with the published chapters in
``build/published-<profile>/`` and builds the HTML there (``build/published-<profile>/_build/html``); the checkout's
own ``book/`` is untouched. A chapter that was never published gets a one-cell page that says so. The status page
marks a published chapter as *stale* when its notebook, its parameters in ``params/<profile>.yaml`` or the library
changed since it ran (:func:`stale_reasons`); the scoreboard is rendered from the published claims.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..claims import render_scoreboard
from ..errors import InputError, MolesynError
from ..safeio import read_json_file
from .build import run_jupyter_book, vendor_mathjax
from .layout import (
    PROFILES,
    TOC_SUFFIXES,
    BookLayout,
    discover_chapters,
    injected_parameters,
    notebook_cells,
    notebook_title,
    select_chapters,
    toc_files,
)
from .pages import _hardware_text, _md_cell, _seeds_text, _versions_text
from .provenance import changed_library_files, json_sha256, library_file_hashes, library_hash
from .records import ChapterRecord, _atomic_write_text, _format_seconds, load_summary

PROVENANCE_FILE = "provenance.json"
PROVENANCE_SCHEMA_VERSION = 1


def published_dir(layout: BookLayout, profile: str) -> Path:
    """``published/<profile>/`` under the project root (committed)."""
    return layout.root / "published" / profile


def staging_dir(layout: BookLayout, profile: str) -> Path:
    """Where :func:`build_published` assembles the published book (``build/``, ignored by git)."""
    return layout.root / "build" / f"published-{profile}"


def notebook_hash(path: Path) -> str:
    """sha256 of a notebook's cell types and sources (:func:`~molesyn_lib.book.layout.notebook_cells`)."""
    return json_sha256(notebook_cells(path))


def parameters_hash(injected: dict[str, Any]) -> str:
    """sha256 of the parameters papermill injected (``profile`` included)."""
    return json_sha256(injected)


def git_commit(root: Path) -> tuple[str | None, bool]:
    """The checkout's ``HEAD`` commit and whether notebooks, parameters or library differ from it (``None`` outside
    a git work tree)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "notebooks", "params", "molesyn_lib"],
                               cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return head.stdout.strip(), bool(dirty.stdout.strip())


@dataclass
class Provenance:
    """Where a published chapter came from.

    Attributes:
        chapter: the notebook stem; ``profile``: the parameter profile it ran with.
        title: the chapter's first heading.
        commit: the git commit of the checkout that ran it; ``commit_dirty``: notebooks, parameters or library
            had uncommitted changes at publication.
        notebook_hash: :func:`notebook_hash` of the source notebook when it ran.
        parameters_hash: :func:`parameters_hash` of the injected parameters; ``parameters``: those parameters.
        library_hash: :func:`~molesyn_lib.book.provenance.library_hash` of the library that ran it; ``library_files``: its
            :func:`~molesyn_lib.book.provenance.library_file_hashes` (``{}`` where unknown), so a stale chapter names the files
            that changed since.
        finished: when the run ended (UTC); ``seconds``: its wall time; ``timeout_s``: its limit.
        seeds, versions, hardware: as in the run summary (:class:`~molesyn_lib.book.records.ChapterRecord`).
        files: the published files of the chapter, relative to ``published/<profile>/``.
    """

    chapter: str
    profile: str
    title: str = ""
    commit: str | None = None
    commit_dirty: bool = False
    notebook_hash: str = ""
    parameters_hash: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    library_hash: str = ""
    library_files: dict[str, str] = field(default_factory=dict)
    finished: str = ""
    seconds: float = 0.0
    timeout_s: float | None = None
    seeds: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def load_provenance(layout: BookLayout, profile: str) -> dict[str, Provenance]:
    """The published chapters of a profile (``{}`` when nothing is published)."""
    path = published_dir(layout, profile) / PROVENANCE_FILE
    if not path.exists():
        return {}
    data = read_json_file(path)
    chapters = data.get("chapters") if isinstance(data, dict) else None
    if not isinstance(chapters, dict) or not all(isinstance(entry, dict) for entry in chapters.values()):
        raise InputError("expected {\"chapters\": {stem: provenance}}", path)
    return {stem: Provenance.from_dict(entry) for stem, entry in chapters.items()}


def publish(root: str | Path, profile: str = "standard", chapters: Iterable[str] | None = None,
            echo: Callable[[str], None] = print) -> list[Provenance]:
    """Copy the chapters that ran ``ok`` with ``profile`` (and are the ones ``book/chapters`` shows) into
    ``published/<profile>/`` with their results and provenance; earlier published chapters not republished stay.

    Raises:
        MolesynError: an unknown profile, a named chapter without a good run of the profile, or nothing to publish.
    """
    if profile not in PROFILES:
        raise MolesynError(f"unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    layout = BookLayout.at(root)
    sources = {c.stem: c.source for c in select_chapters(discover_chapters(layout), chapters)}
    records: dict[str, ChapterRecord] = {}
    for record in load_summary(layout.summary_path):
        if record.chapter in sources and record.profile == profile and record.status in ("ok", "skipped") \
                and record.current:
            records[record.chapter] = record
    missing = sorted(set(sources) - set(records)) if chapters else []
    if missing:
        raise MolesynError(f"no good {profile} run to publish for {', '.join(missing)} (run `molesyn book run "
                           f"--profile {profile} --chapters {' '.join(missing)}` first)")
    if not records:
        raise MolesynError(f"no chapter has run ok with the {profile} profile; nothing to publish")
    target = published_dir(layout, profile)
    existing = load_provenance(layout, profile)
    commit, dirty = git_commit(layout.root)
    # Records written before runs stored their library hash: the published checkout's own library code stands in.
    checkout_package = layout.root / "molesyn_lib" if (layout.root / "molesyn_lib").is_dir() else None
    run_library, run_files = library_hash(checkout_package), library_file_hashes(checkout_package)
    published: list[Provenance] = []
    for stem, record in sorted(records.items()):
        executed = layout.root / record.executed
        if not executed.exists():
            raise MolesynError(f"{executed}: the executed notebook of {stem} is missing; rerun the chapter")
        files = [f"chapters/{stem}.ipynb"]
        (target / "chapters").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(executed, target / files[0])
        for relative in (f"claims/{stem}.json", f"{stem}.json"):
            saved = layout.results_dir / relative
            content = read_json_file(saved) if saved.exists() else None
            if isinstance(content, dict) and content.get("profile") == profile:
                (target / "results" / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(saved, target / "results" / relative)
                files.append(f"results/{relative}")
        entry = Provenance(
            chapter=stem, profile=profile, title=record.title, commit=commit, commit_dirty=dirty,
            notebook_hash=notebook_hash(sources[stem]),
            parameters_hash=parameters_hash(record.injected), parameters=record.injected,
            library_hash=record.library_hash or run_library,
            # per-file hashes of the code that ran: from the record, else the checkout's when it is that same code
            library_files=record.library_files or (run_files if record.library_hash in ("", run_library) else {}),
            finished=record.finished, seconds=record.seconds,
            timeout_s=record.timeout_s, seeds=record.seeds, versions=record.versions, hardware=record.hardware,
            files=files)
        existing[stem] = entry
        published.append(entry)
        echo(f"published {stem} ({profile}, {_format_seconds(record.seconds)}, finished {record.finished})")
    payload = {"schema": PROVENANCE_SCHEMA_VERSION, "profile": profile,
               "chapters": {stem: asdict(entry) for stem, entry in sorted(existing.items())}}
    _atomic_write_text(target / PROVENANCE_FILE, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return published


def stale_reasons(entry: Provenance, layout: BookLayout, injected_now: dict[str, Any] | None = None) -> list[str]:
    """Why a published chapter no longer matches the checkout (``[]``: it is current): its notebook, its parameters
    or the library changed since it ran."""
    reasons = []
    source = layout.notebooks_dir / f"{entry.chapter}.ipynb"
    if not source.exists():
        reasons.append("its notebook no longer exists")
    elif notebook_hash(source) != entry.notebook_hash:
        reasons.append("its notebook changed")
    if injected_now is not None and parameters_hash(injected_now) != entry.parameters_hash:
        reasons.append(f"its parameters in params/{entry.profile}.yaml changed")
    if library_hash() != entry.library_hash:
        changed = changed_library_files(entry.library_files, library_file_hashes()) if entry.library_files else []
        shown = ", ".join(f"molesyn_lib/{path}" for path in changed[:6]) + (
            f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        reasons.append(f"the library changed ({shown})" if changed else "the library changed")
    return reasons


def render_published_status(layout: BookLayout, profile: str, toc_stems: Iterable[str]) -> str:
    """The status page of the published book: every chapter with its provenance and whether it is stale."""
    entries = load_provenance(layout, profile)
    injected = injected_parameters(layout, profile, discover_chapters(layout))
    lines = ["# Reproducibility status", "",
             (f"This book shows the chapters published from the `{profile}` profile (`published/{profile}/`, written "
              f"by `molesyn book publish --profile {profile}`); nothing was executed to render it. A chapter is "
              "*stale* when its notebook, its parameters or the library changed after it ran: rerun it with "
              f"`molesyn book run --profile {profile} --chapters NN` and publish again."), "",
             "| Chapter | Finished (UTC) | Wall time | Commit | Seeds | Current? |", "|---|---|---|---|---|---|"]
    total = 0.0
    for stem in toc_stems:
        entry = entries.get(stem)
        if entry is None:
            lines.append(f"| `{stem}` | not published | - | - | - | - |")
            continue
        total += entry.seconds
        reasons = stale_reasons(entry, layout, injected.get(stem))
        state = "current" if not reasons else "**stale**: " + "; ".join(reasons)
        commit = (entry.commit or "?")[:10] + (" (uncommitted changes)" if entry.commit_dirty else "")
        lines.append(f"| [`{stem}`](chapters/{stem}.ipynb) | {_md_cell(entry.finished.replace('T', ' ')[:19])} | "
                     f"{_format_seconds(entry.seconds)} | `{commit}` | {_md_cell(_seeds_text(entry.seeds))} | "
                     f"{_md_cell(state)} |")
    lines += ["", f"Published chapters' wall time in all: {_format_seconds(total)}.", ""]
    hardware = {json.dumps(e.hardware, sort_keys=True): e for e in entries.values()}
    lines += ["## Hardware and versions", ""]
    for entry in hardware.values():
        lines.append(f"* {_hardware_text(entry.hardware)}: {_versions_text(entry.versions)}")
    lines.append("")
    return "\n".join(lines)


def unlink_unpublished_sections(page: str, published: set[str]) -> str:
    """Drop the section anchor of scoreboard links into chapters that are not published (their page is a one-cell
    placeholder without those sections), keeping the link to the page."""
    def fix(match: re.Match[str]) -> str:
        return match.group(0) if match.group(1) in published else f"(chapters/{match.group(1)}.ipynb)"

    return re.sub(r"\(chapters/([A-Za-z0-9_\-]+)\.ipynb#[^)\s]*\)", fix, page)


def _placeholder_notebook(title: str, profile: str) -> dict[str, Any]:
    text = (f"# {title}\n\nThis chapter has not been published from the `{profile}` profile yet. The smoke-profile "
            f"book (`make book`) shows it; `molesyn book run --profile {profile}` followed by `molesyn book "
            f"publish --profile {profile}` publishes it.")
    return {"cells": [{"cell_type": "markdown", "id": "not-published", "metadata": {}, "source": text}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def build_published(root: str | Path, profile: str = "standard", strict: bool = True, timeout_s: float = 1800.0,
                    echo: Callable[[str], None] = print) -> Path:
    """Render the published chapters of ``profile`` as an HTML book without executing anything (see module
    docstring) and return the HTML folder."""
    layout = BookLayout.at(root)
    entries = load_provenance(layout, profile)
    if not entries:
        raise MolesynError(f"nothing is published for the {profile} profile ({published_dir(layout, profile)} has no "
                           f"{PROVENANCE_FILE}); run `molesyn book publish --profile {profile}` first")
    stage = staging_dir(layout, profile)
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(layout.book_dir, stage, ignore=shutil.ignore_patterns("_build", "chapters", "status.md",
                                                                          "scoreboard.md", "_extra"))
    (stage / "chapters").mkdir()
    documents = toc_files(layout.toc_path)
    toc_stems = [doc.split("/", 1)[1] for doc in documents if doc.startswith("chapters/")]
    source = published_dir(layout, profile)
    for stem in toc_stems:
        target = stage / "chapters" / f"{stem}.ipynb"
        if stem in entries and (source / "chapters" / f"{stem}.ipynb").exists():
            shutil.copyfile(source / "chapters" / f"{stem}.ipynb", target)
        else:
            title = notebook_title(layout.notebooks_dir / f"{stem}.ipynb") or stem
            target.write_text(json.dumps(_placeholder_notebook(title, profile), indent=1) + "\n", encoding="utf-8")
    _atomic_write_text(stage / "status.md", render_published_status(layout, profile, toc_stems))
    _atomic_write_text(stage / "scoreboard.md", unlink_unpublished_sections(render_scoreboard(source / "results"),
                                                                           set(entries)))
    vendor_mathjax(stage / "_extra" / "_static", echo=echo)
    missing = [doc for doc in documents if not any((stage / f"{doc}{s}").exists() for s in TOC_SUFFIXES)]
    if missing:
        raise MolesynError(f"_toc.yml lists documents the published book lacks: {', '.join(missing)}")
    echo(f"building the published {profile} book ({len(entries)} chapters published) ...")
    return run_jupyter_book(layout, stage, documents, strict=strict, timeout_s=timeout_s, echo=echo)
