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

The package, one file per job:

* :mod:`~molesyn_lib.book.layout`: where things are (:class:`BookLayout`), which chapters run with which parameters;
* :mod:`~molesyn_lib.book.provenance`: library, source and parameter hashes, seeds, versions and hardware of a run;
* :mod:`~molesyn_lib.book.records`: the run summary (:class:`ChapterRecord`) and errors found in executed notebooks;
* :mod:`~molesyn_lib.book.running`: executing chapters with papermill (:func:`run_chapters`);
* :mod:`~molesyn_lib.book.pages`: the status and scoreboard pages;
* :mod:`~molesyn_lib.book.build`: the jupyter-book build (:func:`build_book`) with vendored MathJax;
* :mod:`~molesyn_lib.book.publish`: the published book (``published/<profile>/``) and its staleness.

None of it computes what a chapter shows, so the package is left out of :func:`library_hash` (:data:`BOOK_MACHINERY`):
mending the book machinery does not make executed chapters stale. The public names of every file are importable from
``molesyn_lib.book``.
"""
from __future__ import annotations

from . import publish
from .build import (
    MATHJAX_VERSION,
    build_book,
    jupyter_book_command,
    run_jupyter_book,
    vendor_mathjax,
)
from .layout import (
    CHAPTER_PATTERN,
    DEFAULT_TIMEOUT_S,
    PROFILES,
    TOC_SUFFIXES,
    BookLayout,
    Chapter,
    discover_chapters,
    find_root,
    injected_parameters,
    load_profile_parameters,
    notebook_cells,
    notebook_defaults,
    notebook_title,
    select_chapters,
    toc_files,
)
from .pages import (
    STATUS_MARK,
    render_status_page,
    write_scoreboard_page,
    write_status_page,
)
from .provenance import (
    BOOK_MACHINERY,
    VERSIONED_PACKAGES,
    changed_library_files,
    environment_versions,
    hardware_info,
    json_sha256,
    library_file_hashes,
    library_hash,
    seeds_of,
    source_hash,
)
from .records import (
    ADDED_CELL_TAGS,
    ANSI_ESCAPE,
    STATUSES,
    SUMMARY_SCHEMA_VERSION,
    CellError,
    ChapterRecord,
    can_resume,
    check_executed_notebooks,
    find_error_outputs,
    load_summary,
    merge_records,
    record_summary,
    save_summary,
    strip_ansi,
)
from .running import (
    BANNER_TAG,
    WIDGET_MIME,
    execute_chapter,
    run_chapters,
    stamp_executed_notebook,
    strip_widget_outputs,
)

__all__ = [
    "ADDED_CELL_TAGS",
    "ANSI_ESCAPE",
    "BANNER_TAG",
    "BOOK_MACHINERY",
    "CHAPTER_PATTERN",
    "DEFAULT_TIMEOUT_S",
    "MATHJAX_VERSION",
    "PROFILES",
    "STATUSES",
    "STATUS_MARK",
    "SUMMARY_SCHEMA_VERSION",
    "TOC_SUFFIXES",
    "VERSIONED_PACKAGES",
    "WIDGET_MIME",
    "BookLayout",
    "CellError",
    "Chapter",
    "ChapterRecord",
    "build_book",
    "can_resume",
    "changed_library_files",
    "check_executed_notebooks",
    "discover_chapters",
    "environment_versions",
    "execute_chapter",
    "find_error_outputs",
    "find_root",
    "hardware_info",
    "injected_parameters",
    "json_sha256",
    "jupyter_book_command",
    "library_file_hashes",
    "library_hash",
    "load_profile_parameters",
    "load_summary",
    "merge_records",
    "notebook_cells",
    "notebook_defaults",
    "notebook_title",
    "publish",
    "record_summary",
    "render_status_page",
    "run_chapters",
    "run_jupyter_book",
    "save_summary",
    "seeds_of",
    "select_chapters",
    "source_hash",
    "stamp_executed_notebook",
    "strip_ansi",
    "strip_widget_outputs",
    "toc_files",
    "vendor_mathjax",
    "write_scoreboard_page",
    "write_status_page",
]
