"""The HTML build: jupyter-book 1.x (strict), with MathJax vendored so the book reads offline."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from ..config import cache_dir
from ..errors import InputError, MolesynError
from .layout import TOC_SUFFIXES, BookLayout, toc_files
from .pages import write_scoreboard_page, write_status_page
from .provenance import _package_version
from .records import _format_seconds, strip_ansi


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
