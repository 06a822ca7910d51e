"""Tests of the published book: publishing chapters with provenance, rendering them without running anything, and
marking a published chapter stale when its notebook, parameters or the library changed (fixture book as in
``test_book.py``)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from molesyn_lib import book
from molesyn_lib.book import publish
from molesyn_lib.book import BookLayout
from molesyn_lib.cli import main
from molesyn_lib.errors import MolesynError

FIXTURE = Path(__file__).parent / "fixtures" / "book"


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MOLESYN_RESULTS", raising=False)
    target = tmp_path / "project"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("_build", "chapters", "results", "status.md"))
    return target


def test_publish_needs_a_good_run_of_the_profile(root: Path) -> None:
    with pytest.raises(MolesynError, match="nothing to publish"):
        publish.publish(root, "standard", echo=lambda line: None)
    book.run_chapters(root, profile="smoke", chapters=["01"], progress=False, echo=lambda line: None)
    with pytest.raises(MolesynError, match="no good standard run to publish for 01"):
        publish.publish(root, "standard", chapters=["01"], echo=lambda line: None)
    with pytest.raises(MolesynError, match="unknown profile"):
        publish.publish(root, "huge", echo=lambda line: None)
    with pytest.raises(MolesynError, match="nothing is published"):
        publish.build_published(root, "standard", echo=lambda line: None)


@pytest.mark.slow
def test_published_book_renders_without_running_and_marks_stale_chapters(root: Path, capsys) -> None:
    layout = BookLayout.at(root)
    [alpha] = book.run_chapters(root, profile="standard", chapters=["01"], progress=False, echo=lambda line: None)
    assert alpha.status == "ok" and alpha.parameters["n"] == 10
    assert main(["book", "publish", "--root", str(root), "--profile", "standard"]) == 0
    target = root / "published" / "standard"
    assert (target / "chapters" / "01_alpha.ipynb").exists()
    assert json.loads((target / "results" / "01_alpha.json").read_text()) == {"profile": "standard", "sum": 45}
    entry = publish.load_provenance(layout, "standard")["01_alpha"]
    assert entry.parameters == {"n": 10, "seed": 7, "profile": "standard"} and entry.seeds == {"seed": 7}
    assert entry.library_hash == book.library_hash() and entry.seconds == alpha.seconds and entry.hardware["cores"]
    assert entry.files == ["chapters/01_alpha.ipynb", "results/01_alpha.json"]
    # a later smoke run in the checkout changes neither the published copy nor its results
    book.run_chapters(root, profile="smoke", chapters=["01"], progress=False, echo=lambda line: None)
    assert json.loads((target / "results" / "01_alpha.json").read_text())["sum"] == 45

    assert main(["book", "build", "--root", str(root), "--published"]) == 0
    html = root / "build" / "published-standard" / "_build" / "html"
    assert "alpha standard 45" in (html / "chapters" / "01_alpha.html").read_text()
    assert "has not been published" in (html / "chapters" / "02_beta.html").read_text()
    status = (html / "status.html").read_text()
    assert "published from the" in status and "current" in status and "<strong>stale</strong>" not in status
    assert not (root / "book" / "_build").exists()  # the checkout's own book is untouched

    # edits after publication make the chapter stale, each for its own reason
    params = root / "params" / "standard.yaml"
    params.write_text(params.read_text().replace("n: 10", "n: 11"))
    source = root / "notebooks" / "01_alpha.ipynb"
    nb = json.loads(source.read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "extra", "metadata": {}, "source": "more"})
    source.write_text(json.dumps(nb))
    injected = {"n": 11, "seed": 7, "profile": "standard"}
    assert publish.stale_reasons(entry, layout, injected) == [
        "its notebook changed", "its parameters in params/standard.yaml changed"]
    page = publish.render_published_status(layout, "standard", ["01_alpha", "02_beta"])
    assert "**stale**: its notebook changed; its parameters in params/standard.yaml changed" in page
    assert "| `02_beta` | not published |" in page


def test_library_change_makes_a_published_chapter_stale(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = BookLayout.at(root)
    source = root / "notebooks" / "01_alpha.ipynb"
    entry = publish.Provenance(chapter="01_alpha", profile="standard", notebook_hash=publish.notebook_hash(source),
                               parameters_hash=publish.parameters_hash({"profile": "standard"}),
                               library_hash=book.library_hash())
    assert publish.stale_reasons(entry, layout, {"profile": "standard"}) == []
    monkeypatch.setattr(publish, "library_hash", lambda: "other")
    assert publish.stale_reasons(entry, layout, {"profile": "standard"}) == ["the library changed"]


def test_scoreboard_links_into_unpublished_chapters_lose_their_section_anchor():
    page = "[01](chapters/01_alpha.ipynb#2-results) and [02](chapters/02_beta.ipynb#3-more)"
    assert publish.unlink_unpublished_sections(page, {"01_alpha"}) == \
        "[01](chapters/01_alpha.ipynb#2-results) and [02](chapters/02_beta.ipynb)"


def test_library_hash_ignores_the_book_machinery_only(tmp_path: Path) -> None:
    package = Path(book.__file__).resolve().parents[1]
    copy = tmp_path / "molesyn_lib"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert book.library_hash(copy) == book.library_hash()
    for machinery in ("book/publish.py", "book/running.py", "commands/book.py"):
        (copy / machinery).write_text((copy / machinery).read_text() + "\n# a comment\n")
    (copy / "book" / "new_page.py").write_text('"""a new page of the book machinery."""\n')
    book.library_hash.cache_clear()
    assert book.library_hash(copy) == book.library_hash()  # rendering code does not make chapters stale
    (copy / "claims.py").write_text((copy / "claims.py").read_text() + "\n# a comment\n")
    book.library_hash.cache_clear()
    assert book.library_hash(copy) != book.library_hash()


def test_a_corrupt_provenance_file_is_one_line_naming_it(root: Path, capsys) -> None:
    target = root / "published" / "standard"
    target.mkdir(parents=True)
    (target / "provenance.json").write_text('{"chapters": {\n  "01_alpha": [1,\n')
    assert main(["book", "build", "--root", str(root), "--published"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "provenance.json:3" in err and "not valid JSON" in err
    (target / "provenance.json").write_text('{"chapters": []}')
    assert main(["book", "build", "--root", str(root), "--published"]) == 2
    assert "provenance.json: expected" in capsys.readouterr().err


def test_a_stale_chapter_names_the_library_files_that_changed(root: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    layout = BookLayout.at(root)
    source = root / "notebooks" / "01_alpha.ipynb"
    package = Path(book.__file__).resolve().parents[1]
    copy = tmp_path / "molesyn_lib"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "claims.py").write_text((copy / "claims.py").read_text() + "\n# a comment\n")
    (copy / "new_module.py").write_text('"""added after the run."""\n')
    entry = publish.Provenance(chapter="01_alpha", profile="standard", notebook_hash=publish.notebook_hash(source),
                               parameters_hash=publish.parameters_hash({"profile": "standard"}),
                               library_hash=book.library_hash(), library_files=book.library_file_hashes())
    assert set(entry.library_files) >= {"claims.py", "lab/experiments.py"} and not any(
        path.startswith("book/") for path in entry.library_files)
    monkeypatch.setattr(publish, "library_hash", lambda: book.library_hash(copy))
    monkeypatch.setattr(publish, "library_file_hashes", lambda: book.library_file_hashes(copy))
    assert publish.stale_reasons(entry, layout, {"profile": "standard"}) == [
        "the library changed (molesyn_lib/claims.py, molesyn_lib/new_module.py)"]
    # an entry published before per-file hashes were kept still says that the library changed
    entry.library_files = {}
    assert publish.stale_reasons(entry, layout, {"profile": "standard"}) == ["the library changed"]


def test_every_published_file_is_in_the_repository() -> None:
    """The committed publication is complete: every file its provenance lists exists and git does not ignore it
    (an ignore rule once kept ``published/*/results`` out of the repository)."""
    root = Path(__file__).resolve().parents[1]
    for profile_dir in sorted((root / "published").glob("*/")):
        if not (profile_dir / publish.PROVENANCE_FILE).exists():
            continue
        entries = publish.load_provenance(BookLayout.at(root), profile_dir.name)
        listed = [profile_dir / f for entry in entries.values() for f in entry.files]
        assert listed and all(p.exists() for p in listed), [str(p) for p in listed if not p.exists()]
        ignored = subprocess.run(["git", "check-ignore", "--no-index", *map(str, listed)], cwd=root, capture_output=True, text=True,
                                 check=False)
        # --no-index: ignore rules apply to tracked files too. Exit status 1: no path is ignored (0: some are; 128:
        # not a git checkout or another error)
        assert ignored.returncode == 1, f"published files ignored by git: {ignored.stdout}{ignored.stderr}"
