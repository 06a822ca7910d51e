"""Tests of the book pipeline: papermill chapter runs, the run summary, resume, the status page, the HTML build.

The fixture book (``tests/fixtures/book``) has two tiny chapters: ``01_alpha`` always succeeds; ``02_beta`` does
what its ``mode`` parameter says (``ok``, ``raise`` or ``hang``). Tests copy it to a temporary root. Tests that run
papermill or jupyter-book take several seconds each and are marked ``slow``.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from molesyn_lib import book
from molesyn_lib.book import BookLayout, CellError, ChapterRecord
from molesyn_lib.cli import main
from molesyn_lib.errors import InputError, MolesynError

FIXTURE = Path(__file__).parent / "fixtures" / "book"


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MOLESYN_RESULTS", raising=False)  # the runner points chapters at the fixture's results/
    target = tmp_path / "project"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("_build", "chapters", "results", "status.md"))
    return target


def _record(chapter: str = "01_alpha", profile: str = "smoke", status: str = "ok", **extra) -> ChapterRecord:
    values = {"chapter": chapter, "profile": profile, "status": status, "seconds": 1.5,
              "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:00:02+00:00", "source_hash": "h",
              "executed": f"book/chapters/{chapter}.ipynb", "seeds": {"seed": 7},
              "hardware": {"cpu": "Test CPU", "cores": 2, "ram_gib": 8.0, "gpu": None},
              "versions": {"python": "3.11", "torch": "2.13.0"}}
    values.update(extra)
    return ChapterRecord(**values)


# --------------------------------------------------------------------------------------------- fast tests
def test_chapters_and_profile_parameters(root: Path) -> None:
    layout = BookLayout.at(root)
    chapters = book.discover_chapters(layout)
    assert [c.stem for c in chapters] == ["01_alpha", "02_beta"]
    assert [c.stem for c in book.select_chapters(chapters, ["2"])] == ["02_beta"]
    with pytest.raises(MolesynError, match="no chapter '07'"):
        book.select_chapters(chapters, ["07"])
    params = book.load_profile_parameters(layout, "smoke", chapters)
    assert params == {"01_alpha": {"n": 3, "seed": 7}, "02_beta": {"mode": "raise"}}  # "02" key -> stem
    (root / "params" / "smoke.yaml").write_text("01:\n  n: 1\n2:\n  mode: ok\n")  # unquoted numbers work too
    assert book.load_profile_parameters(layout, "smoke", chapters) == {"01_alpha": {"n": 1}, "02_beta": {"mode": "ok"}}
    (root / "params" / "smoke.yaml").write_text("01_alpha:\n  n: 1\n09_nothing:\n  n: 2\n")
    with pytest.raises(InputError, match=r"smoke\.yaml:3: '09_nothing' names no chapter"):
        book.load_profile_parameters(layout, "smoke", chapters)
    (root / "params" / "smoke.yaml").write_text("01_alpha: [1, 2]\n")
    with pytest.raises(InputError, match="smoke.yaml:1: parameters of '01_alpha' must be a mapping"):
        book.load_profile_parameters(layout, "smoke", chapters)


def test_source_hash_tracks_code_and_parameters_not_outputs(root: Path, tmp_path: Path) -> None:
    source = root / "notebooks" / "01_alpha.ipynb"
    base = book.source_hash(source, {"n": 3}, "smoke")
    assert book.source_hash(source, {"n": 4}, "smoke") != base
    assert book.source_hash(source, {"n": 3}, "full") != base
    nb = json.loads(source.read_text())
    nb["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "noise"}]
    with_outputs = tmp_path / "with_outputs.ipynb"
    with_outputs.write_text(json.dumps(nb))
    assert book.source_hash(with_outputs, {"n": 3}, "smoke") == base
    nb["cells"][2]["source"] = "print('changed')"
    with_outputs.write_text(json.dumps(nb))
    assert book.source_hash(with_outputs, {"n": 3}, "smoke") != base


def test_find_error_outputs_counts_source_cells_only() -> None:
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {"tags": ["papermill-error-cell-tag"]}, "source": "banner"},
        {"cell_type": "markdown", "metadata": {}, "source": "# Title"},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1", "outputs": []},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "x = 2", "outputs": []},
        {"cell_type": "code", "metadata": {}, "execution_count": 3, "source": "1 / 0\nmore\nlines\nhidden",
         "outputs": [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                      "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"]}]},
        {"cell_type": "code", "metadata": {"papermill": {"status": "running"}}, "source": "sleep()", "outputs": []},
    ]}
    first, second = book.find_error_outputs(nb)
    assert (first.cell_index, first.execution_count, first.ename) == (2, 3, "ZeroDivisionError")
    assert first.source_head == "1 / 0\nmore\nlines" and "\x1b" not in first.traceback
    assert (second.cell_index, second.ename) == (3, "Timeout")


def test_strip_widget_outputs_keeps_text_fallback_and_drops_bare_widgets() -> None:
    widget = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb = {"metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {}}}, "cells": [
        {"cell_type": "code", "source": "bars()", "outputs": [
            {"output_type": "display_data", "metadata": {},
             "data": {book.WIDGET_MIME: widget, "text/plain": "lab runs: 100%"}},
            {"output_type": "display_data", "metadata": {}, "data": {book.WIDGET_MIME: widget}},
            {"output_type": "stream", "name": "stdout", "text": "done"}]},
        {"cell_type": "markdown", "source": "# Title"}]}
    out = book.strip_widget_outputs(nb)
    outputs = out["cells"][0]["outputs"]
    assert len(outputs) == 2
    assert outputs[0]["data"] == {"text/plain": "lab runs: 100%"} and outputs[1]["text"] == "done"
    assert "widgets" not in out["metadata"]
    assert book.WIDGET_MIME not in json.dumps(out)


def test_summary_merge_keeps_other_chapters_and_profiles(root: Path) -> None:
    path = BookLayout.at(root).summary_path
    book.record_summary(path, _record("01_alpha", "smoke"))
    book.record_summary(path, _record("02_beta", "smoke", "failed"))
    merged = book.record_summary(path, _record("01_alpha", "full"))
    assert [(r.chapter, r.profile, r.status, r.current) for r in merged] == [
        ("01_alpha", "smoke", "ok", False), ("01_alpha", "full", "ok", True), ("02_beta", "smoke", "failed", True)]
    assert [(r.chapter, r.profile) for r in book.load_summary(path)] == [(r.chapter, r.profile) for r in merged]
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write leaves no temporary files
    assert path.stat().st_mode & 0o777 == 0o666 & ~book.records._umask()  # not mkstemp's private 0600
    path.write_text("{not json")
    with pytest.raises(InputError, match="run_summary.json:1: corrupt run summary"):
        book.load_summary(path)


def test_can_resume_needs_ok_current_same_hash_and_notebook(tmp_path: Path) -> None:
    executed = tmp_path / "01_alpha.ipynb"
    executed.write_text("{}")
    ok = _record(source_hash="abc")
    assert book.can_resume(ok, "abc", executed)
    assert not book.can_resume(ok, "changed", executed)
    assert not book.can_resume(_record(status="failed", source_hash="abc"), "abc", executed)
    assert not book.can_resume(_record(source_hash="abc", current=False), "abc", executed)
    assert not book.can_resume(ok, "abc", tmp_path / "missing.ipynb")
    assert not book.can_resume(None, "abc", executed)


def test_status_page_before_any_run_and_with_failures(root: Path) -> None:
    page = book.write_status_page(root)
    text = page.read_text()
    assert text.startswith("# Reproducibility status") and "No chapter has been run yet" in text
    error = CellError(cell_index=3, execution_count=4, source_head="raise ValueError('x | y')", ename="ValueError",
                      evalue="x | y", traceback="Traceback...\nValueError: x | y")
    book.save_summary(BookLayout.at(root).summary_path, [
        _record("01_alpha", "smoke"), _record("01_alpha", "full", current=False, seconds=4000.0),
        _record("02_beta", "smoke", "failed", error=error, seeds={"seeds": [1, 2]})])
    text = book.write_status_page(root).read_text()
    assert "| [`01_alpha`](chapters/01_alpha.ipynb) | `smoke` | ✅ ok | 1.5 s |" in text
    assert "| [`02_beta`](chapters/02_beta.ipynb) | `smoke` | ❌ failed |" in text and "seeds=[1, 2]" in text
    assert "`full` | ✅ ok | 1 h 06 min" in text  # the full-profile record is kept and listed
    assert "Test CPU (2 cores, 8.0 GiB RAM)" in text and "torch 2.13.0" in text
    assert "### `02_beta` (smoke): failed" in text and "Stopped at cell 3" in text
    assert "raise ValueError('x | y')" in text and "ValueError: x | y" in text


def test_toc_files_and_build_preconditions(root: Path) -> None:
    layout = BookLayout.at(root)
    assert book.toc_files(layout.toc_path) == ["intro", "chapters/01_alpha", "chapters/02_beta", "status"]
    nested = root / "nested_toc.yml"
    nested.write_text("format: jb-book\nroot: intro.md\nparts:\n  - caption: P\n    chapters:\n"
                      "      - file: a\n        sections:\n          - file: b.ipynb\n")
    assert book.toc_files(nested) == ["intro", "a", "b"]
    with pytest.raises(MolesynError, match=r"book/chapters/01_alpha\.ipynb \(run `molesyn book run --chapters 01`\)"):
        book.build_book(root)  # no chapter has been executed yet
    (root / "_config.yml").write_text("title: t\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: auto\n")
    with pytest.raises(MolesynError, match="execute_notebooks"):
        book.build_book(root)


def test_cli_book_options_work_before_and_after_the_subcommand() -> None:
    from molesyn_lib.cli import build_parser

    parser = build_parser()
    plain = parser.parse_args(["book", "--profile", "full"])  # what `make book PROFILE=full` runs
    assert (plain.func.__name__, plain.profile, plain.lenient) == ("_all", "full", False)
    before = parser.parse_args(["book", "--root", "/r", "--profile", "full", "run", "--chapters", "01"])
    assert (before.func.__name__, before.root, before.profile, before.chapters) == ("_run", "/r", "full", ["01"])
    after = parser.parse_args(["book", "run", "--resume"])
    assert (after.profile, after.resume, after.root) == ("smoke", True, None)


def test_cli_rejects_unknown_chapter_without_traceback(root: Path, capsys) -> None:
    assert main(["book", "run", "--root", str(root), "--chapters", "07", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no chapter '07'" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------- slow tests
@pytest.mark.slow
def test_failing_chapter_is_reported_and_does_not_stop_the_others(root: Path) -> None:
    layout = BookLayout.at(root)
    records = book.run_chapters(root, profile="smoke", progress=False, echo=lambda line: None)
    alpha, beta = records
    assert (alpha.chapter, alpha.status, alpha.error) == ("01_alpha", "ok", None)
    assert alpha.parameters == {"n": 3, "seed": 7, "profile": "smoke"} and alpha.seeds == {"seed": 7}
    assert alpha.versions["python"] and alpha.hardware["cores"] and alpha.seconds > 0
    assert beta.status == "failed"
    assert beta.error is not None and (beta.error.cell_index, beta.error.ename) == (3, "ValueError")
    assert beta.error.evalue == "beta was told to fail" and beta.error.source_head.startswith("import time")
    # the failed chapter's executed notebook is kept, with its error
    [error] = book.find_error_outputs(layout.chapters_dir / "02_beta.ipynb")
    assert error.ename == "ValueError"
    executed = json.loads((layout.chapters_dir / "01_alpha.ipynb").read_text())
    outputs = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "alpha smoke 3" in outputs  # papermill injected n=3 and profile
    saved = json.loads((layout.results_dir / "01_alpha.json").read_text())  # MOLESYN_RESULTS points at the root
    assert saved == {"profile": "smoke", "sum": 3}
    assert any("molesyn-run-stamp" in c["metadata"].get("tags", []) for c in executed["cells"])
    # running one chapter with another profile keeps the other records
    [full] = book.run_chapters(root, profile="full", chapters=["01"], progress=False, echo=lambda line: None)
    assert full.status == "ok" and full.parameters["n"] == 30
    summary = {(r.chapter, r.profile): r for r in book.load_summary(layout.summary_path)}
    assert set(summary) == {("01_alpha", "smoke"), ("01_alpha", "full"), ("02_beta", "smoke")}
    assert summary[("01_alpha", "full")].current and not summary[("01_alpha", "smoke")].current
    assert summary[("02_beta", "smoke")].status == "failed"


@pytest.mark.slow
def test_killed_run_keeps_finished_chapters_and_resume_skips_them(root: Path) -> None:
    import psutil

    layout = BookLayout.at(root)
    (root / "params" / "smoke.yaml").write_text('"02":\n  mode: hang\n')
    runner = subprocess.Popen([sys.executable, "-m", "molesyn_lib.cli", "book", "run", "--root", str(root),
                               "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if layout.summary_path.exists() and (layout.chapters_dir / ".02_beta.running.ipynb").exists():
                break
            time.sleep(0.2)
        else:
            pytest.fail("chapter 01 never finished")
        children = psutil.Process(runner.pid).children(recursive=True)
        runner.send_signal(signal.SIGKILL)  # killed half-way, while chapter 02 hangs
        runner.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, "papermill or its kernel outlived the killed runner"
    finally:
        if runner.poll() is None:
            runner.kill()
    records = book.load_summary(layout.summary_path)
    assert [(r.chapter, r.status) for r in records] == [("01_alpha", "ok")]
    first_run = records[0].finished
    (root / "params" / "smoke.yaml").write_text('"02":\n  mode: ok\n')
    alpha, beta = book.run_chapters(root, resume=True, progress=False, echo=lambda line: None)
    assert alpha.status == "skipped" and beta.status == "ok"
    assert not list(layout.chapters_dir.glob(".*.running.ipynb"))
    summary = {r.chapter: r for r in book.load_summary(layout.summary_path)}
    assert summary["01_alpha"].status == "ok" and summary["01_alpha"].finished == first_run
    assert summary["02_beta"].status == "ok"


@pytest.mark.slow
def test_hung_chapter_is_killed_at_its_timeout(root: Path) -> None:
    (root / "params" / "smoke.yaml").write_text('"02":\n  mode: hang\n')
    t0 = time.monotonic()
    # 15 s: on a loaded machine the kernel's start and the first cells took more than 6 s, and the kill then
    # (rightly) named cell 1; the hang itself lasts 600 s, so the limit still decides
    [beta] = book.run_chapters(root, chapters=["02"], timeout_s=15, progress=False, echo=lambda line: None)
    assert time.monotonic() - t0 < 60
    assert beta.status == "timeout" and beta.error is not None
    assert beta.error.cell_index == 3 and "time limit of 15 s" in beta.error.evalue
    assert (BookLayout.at(root).chapters_dir / "02_beta.ipynb").exists()


@pytest.mark.slow
def test_molesyn_book_runs_and_builds_html_even_when_a_chapter_fails(root: Path, capsys) -> None:
    code = main(["book", "--root", str(root)])
    out, err = capsys.readouterr()
    html = root / "book" / "_build" / "html"
    assert code == 1  # 02_beta raised
    assert f"HTML book: {html / 'index.html'}" in out and "02_beta [smoke] failed" in err
    for page in ("index", "intro", "chapters/01_alpha", "chapters/02_beta", "status"):
        assert (html / f"{page}.html").exists(), page
    status = (html / "status.html").read_text()
    assert "Reproducibility status" in status and "beta was told to fail" in status
    assert "alpha smoke 3" in (html / "chapters" / "01_alpha.html").read_text()
    beta = (html / "chapters" / "02_beta.html").read_text()
    assert "last run (smoke profile" in beta and "failed at cell" in beta and "admonition warning" in beta
    assert main(["book", "check", "--root", str(root)]) == 1  # the error-output checker finds 02_beta's error
    assert "02_beta: cell 3 (`import time`): ValueError: beta was told to fail" in capsys.readouterr().out
    # a build that produces a warning fails (warnings are errors), with the warning in the message
    (root / "book" / "intro.md").write_text("# Fixture book\n\nSee [nowhere](missing.md).\n")
    with pytest.raises(MolesynError, match=r"(?s)build failed.*intro\.md:3: WARNING.*'missing\.md'"):
        book.build_book(root)
