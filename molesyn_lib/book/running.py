"""Running the chapters: each in its own papermill subprocess with a wall-clock timeout and a process-group kill, the
executed notebook stamped with its run, the summary updated after every chapter."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import MolesynError
from ..progress import tqdm
from .layout import (
    DEFAULT_TIMEOUT_S,
    BookLayout,
    Chapter,
    _source,
    _tags,
    discover_chapters,
    injected_parameters,
    notebook_defaults,
    notebook_title,
    select_chapters,
    toc_files,
)
from .provenance import environment_versions, hardware_info, library_file_hashes, library_hash, seeds_of, source_hash
from .records import (
    CellError,
    ChapterRecord,
    _atomic_write_text,
    _format_seconds,
    _now,
    can_resume,
    find_error_outputs,
    load_summary,
    record_summary,
    strip_ansi,
)

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
