"""Nothing lost, nothing crashes (issue 16): safe outputs, validated graph files, robust readers and caches, an HTTP
client that gives up in time, a book that keeps its last good chapter, and a fuzz run of malformed inputs.

Every fixture is written by the tests into ``tmp_path``.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from molesyn_lib import book, safeio
from molesyn_lib.backends import (
    RETRY_AFTER_MAX_S,
    CachedBackend,
    GenerationRequest,
    MockBackend,
    OpenAIBackend,
    retry_after_seconds,
)
from molesyn_lib.cachedb import BUSY_TIMEOUT_S
from molesyn_lib.cli import main
from molesyn_lib.embeddings import EmbeddingCache, StepEncoder
from molesyn_lib.errors import CacheError, InputError, MolesynError
from molesyn_lib.traces import Trace, iter_jsonl, save_traces
from molesyn_lib.transfer import TransferGraph, load_graph

sys.path.insert(0, str(Path(__file__).parent))
from openai_stub import OpenAIStub, StubBehaviour

TRACES = [
    {"id": "a", "model": "m1", "steps": ["We need x with 2x = 6.", "So x = 3, since 6 / 2 = 3.",
                                         "Wait, let me check: 2 * 3 = 6."], "gold": ["N", "D", "R"]},
    {"id": "b", "model": "m1", "steps": ["Alternatively, maybe guess.", "Therefore it is 3."], "gold": ["E", "D"]},
]
GRAPH = TransferGraph.from_sequences([["N", "D", "R", "E", "N", "D", "D", "R"]] * 3, labeler="lexical", name="g")


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TRACES))
    return path


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    return GRAPH.save(tmp_path / "graph.json")


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


# ------------------------------------------------------------------------------------------------ safe outputs
@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink"])
def test_label_and_graph_refuse_to_overwrite_their_input(trace_file, tmp_path, capsys, spelling):
    before = trace_file.read_bytes()
    (tmp_path / "sub").mkdir()
    out = {"same": trace_file, "dotdot": tmp_path / "sub" / ".." / trace_file.name,
           "symlink": tmp_path / "link.jsonl", "hardlink": tmp_path / "hard.jsonl"}[spelling]
    if spelling == "symlink":
        out.symlink_to(trace_file)
    elif spelling == "hardlink":
        os.link(trace_file, out)
    for command in ("label", "graph"):
        assert main([command, str(trace_file), "--labeler", "lexical", "--out", str(out)]) == 2
        assert "same file as the input" in one_line_error(capsys)
        assert trace_file.read_bytes() == before


def test_every_command_refuses_its_input_as_output(trace_file, graph_file, tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                                 for i in range(4)))
    saved = {p: p.read_bytes() for p in (trace_file, graph_file, questions)}
    calls = [
        ["compress", str(trace_file), "--method", "truncate", "--labeler", "lexical", "--tokenizer", "regex",
         "--out", str(trace_file)],
        ["synth", "--graph", str(graph_file), "--questions", str(questions), "--backend", "mock", "--n", "2",
         "--no-cache", "--quiet", "--out", str(questions)],
        ["synth", "--graph", str(graph_file), "--questions", str(questions), "--backend", "mock", "--no-cache",
         "--quiet", "--out", str(graph_file)],
        ["fidelity", str(trace_file), "--graph", str(graph_file), "--labeler", "lexical", "--json", str(graph_file)],
    ]
    for argv in calls:
        assert main(argv) == 2, argv
        assert "same file as the input" in one_line_error(capsys)
    assert {p: p.read_bytes() for p in saved} == saved


def test_output_problems_are_found_before_the_work(trace_file, tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    assert main(["graph", str(trace_file), "--labeler", "lexical", "--out", str(tmp_path / "adir")]) == 2
    assert "is a directory" in one_line_error(capsys)
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    assert main(["label", str(trace_file), "--labeler", "lexical", "--out", str(blocker / "out.jsonl")]) == 2
    err = one_line_error(capsys)
    assert "plain.txt is a file, not a directory" in err and "Errno" not in err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert main(["label", str(trace_file), "--labeler", "lexical", "--out", str(locked / "o.jsonl")]) == 2
            assert "cannot write the output" in one_line_error(capsys)
        finally:
            locked.chmod(0o700)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), safeio.atomic_open(target) as handle:
        handle.write("partial")
        raise RuntimeError("stopped")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind
    safeio.write_text(target, "new\n")
    assert target.read_text() == "new\n"


_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from molesyn_lib.traces import Trace, save_traces
    def traces():
        for i in range(int(sys.argv[2])):
            if i == 200:
                print("writing", flush=True)
            if i >= 200 and sys.argv[3] == "slow":
                time.sleep(0.001)
            yield Trace(f"t{i}", ["step " * 30, "Wait, check it."])
    save_traces(traces(), sys.argv[1])
    print("done", flush=True)
""")


def test_a_kill_during_a_write_leaves_the_old_file_or_a_complete_new_one(tmp_path):
    target = tmp_path / "traces.jsonl"
    old = "".join(json.dumps({"id": f"old{i}", "steps": ["s"]}) + "\n" for i in range(3))
    target.write_text(old)
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target), "100000", "slow"],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert target.read_text() == old  # the half-written new file never replaced the old one
    finished = subprocess.run([sys.executable, "-c", _SLOW_WRITER, str(target), "500", "fast"], capture_output=True,
                              text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr
    lines = target.read_text().splitlines()
    assert len(lines) == 500 and json.loads(lines[-1])["id"] == "t499"


def test_strict_json_has_no_nan_or_infinity(tmp_path):
    text = safeio.dumps_strict({"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float64("-inf"),
                                "d": np.array([1.0, np.nan])})
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": None, "d": [1.0, None]}
    trace = Trace("t", ["s"], meta={"score": float("nan")})
    save_traces([trace], tmp_path / "t.jsonl")
    assert "NaN" not in (tmp_path / "t.jsonl").read_text()


def test_compare_of_constant_graphs_prints_no_nan(tmp_path, capsys):
    uniform = TransferGraph.from_matrix(np.full((4, 4), 0.25), [0.25] * 4).save(tmp_path / "u.json")
    assert main(["compare", str(uniform), str(uniform), "--json"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out and json.loads(out)["pearson"] is None
    assert main(["compare", str(uniform), str(uniform), "--value"]) == 0
    assert capsys.readouterr().out.strip() == "undefined"
    assert main(["compare", str(uniform), str(uniform)]) == 0
    assert "Pearson r = undefined" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ graph validation
def _graph_record() -> dict:
    return GRAPH.to_dict()


def _with(**changes) -> dict:
    record = _graph_record()
    for key, value in changes.items():
        if value is _DROP:
            record.pop(key, None)
        else:
            record[key] = value
    return record


_DROP = object()
BAD_GRAPHS = {
    "counts 2x2": (_with(counts=[[1, 0], [0, 1]]), "'counts' must be a non-negative 4x4 matrix"),
    "marginal of 3": (_with(marginal=[0.5, 0.25, 0.25]), "'marginal' must be a non-negative 4 list"),
    "n_steps many": (_with(n_steps="many"), "'n_steps' must be a non-negative whole number"),
    "NaN in counts": (_with(counts=[[float("nan")] * 4] * 4), "'counts' holds NaN"),
    "NaN marginal": (_with(marginal=[float("nan")] * 4), "'marginal' holds NaN"),
    "negative marginal": (_with(marginal=[0.5, 0.5, 0.5, -0.5]), "'marginal' holds negative values"),
    "zero marginal": (_with(marginal=[0, 0, 0, 0]), "'marginal' must have a positive sum"),
    "fractional counts": (_with(counts=[[0.5] * 4] * 4), "'counts' must hold whole numbers"),
    "string cells": (_with(transition=[["0.25"] * 4] * 4), "'transition' must be a non-negative 4x4 matrix"),
    "rows not summing": (_with(transition=[[0.5, 0, 0, 0]] * 4), "'transition' rows must each sum to 1"),
    "infinite transition": (_with(transition=[[float("inf"), 0, 0, 0]] * 4), "'transition' holds NaN or infinite"),
    "no transition": (_with(transition=_DROP), "needs a 4x4 numeric 'transition'"),
    "labeler a number": (_with(labeler=3), "'labeler' must be a string"),
    "meta a list": (_with(meta=[1]), "'meta' must be an object"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_bad_graph_files_are_one_line_errors_naming_the_field(tmp_path, capsys, case):
    record, expected = BAD_GRAPHS[case]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))  # Python writes NaN / Infinity tokens, as some tools do
    with pytest.raises(InputError, match=f"bad.json: .*{expected}"):
        load_graph(bad)
    good = GRAPH.save(tmp_path / "good.json")
    for argv in (["compare", str(good), str(bad), "--json"], ["compare", str(bad), str(good)]):
        assert main(argv) == 2
        assert expected in one_line_error(capsys)


@pytest.mark.parametrize("content, expected", [
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"transition": "\x01"}', "Invalid control character at column"),
])
def test_unreadable_graph_files(tmp_path, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=expected) as info:
        load_graph(bad)
    assert "bad.json" in str(info.value) and "at at" not in str(info.value)


def test_graph_files_with_a_bom_gzip_directories_and_file_parents(tmp_path):
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(GRAPH.to_dict()).encode())
    np.testing.assert_allclose(load_graph(bom).transition, GRAPH.transition)
    packed = tmp_path / "g.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(GRAPH.to_dict()).encode()))
    np.testing.assert_allclose(load_graph(packed).transition, GRAPH.transition)
    fake = tmp_path / "fake.json.gz"
    fake.write_text("{}")
    with pytest.raises(InputError, match="fake.json.gz: not a valid gzip file"):
        load_graph(fake)
    with pytest.raises(InputError, match="is a directory, not a file"):
        load_graph(tmp_path)
    with pytest.raises(InputError, match="bom.json is a file, not a directory"):
        load_graph(bom / "g.json")
    with pytest.raises(InputError, match="no such file"):
        load_graph(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------------- readers
def test_jsonl_reader_bom_nesting_gzip_directories(tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(TRACES[0]).encode() + b"\n")
    assert [obj["id"] for _, obj in iter_jsonl(bom)] == ["a"]
    deep = tmp_path / "deep.jsonl"
    deep.write_text(json.dumps(TRACES[0]) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError, match="deep.jsonl:2: JSON nested too deeply"):
        list(iter_jsonl(deep))
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text(json.dumps(TRACES[0]) + "\n")
    assert [n for n, _ in iter_jsonl(fake)] == [1]  # gzip is recognised by its magic bytes, not by the suffix
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip data")
    with pytest.raises(InputError, match="bad.jsonl.gz:1: not a valid gzip file"):
        list(iter_jsonl(bad))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(("".join(json.dumps(t) + "\n" for t in TRACES) * 50).encode())[:-30])
    with pytest.raises(InputError, match="cut.jsonl.gz:.*not a complete gzip file"):
        list(iter_jsonl(cut))
    with pytest.raises(InputError, match="is a directory, not a file"):
        list(iter_jsonl(tmp_path))
    with pytest.raises(InputError, match="bom.jsonl is a file, not a directory"):
        list(iter_jsonl(bom / "x.jsonl"))
    control = tmp_path / "control.jsonl"
    control.write_bytes(b'{"steps": ["a\x01"]}\n')
    with pytest.raises(InputError, match=r"control.jsonl:1: not valid JSON \(Invalid control character at column"):
        list(iter_jsonl(control))


def test_fidelity_on_an_empty_file_names_the_file(tmp_path, graph_file, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["fidelity", str(empty), "--graph", str(graph_file), "--labeler", "lexical"]) == 2
    assert "empty.jsonl" in one_line_error(capsys)


# ----------------------------------------------------------------------------------------------------- caches
def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(4096, len(data), 4096):  # overwrite every page after the header page
        data[offset:offset + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))


def test_damaged_embedding_cache_names_the_file_to_delete(tmp_path):
    path = tmp_path / "emb.sqlite"
    cache = EmbeddingCache(path)
    cache.put_many({f"k{i}": np.ones(384, np.float32) for i in range(200)})
    assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cache._conn.execute("PRAGMA busy_timeout").fetchone()[0] == int(BUSY_TIMEOUT_S * 1000)
    cache._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache.close()
    _damage(path)
    with pytest.raises(CacheError, match=f"{path} is damaged.*delete {path}"):
        damaged = EmbeddingCache(path)
        damaged.get_many([f"k{i}" for i in range(200)])
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="garbage.sqlite is damaged"):
        EmbeddingCache(garbage)


def test_damaged_generation_cache_names_the_file_to_delete(tmp_path):
    garbage = tmp_path / "generations.sqlite"
    garbage.write_bytes(b"SQLite format 2\x00" + b"\x00" * 5000)
    with pytest.raises(CacheError, match="generations.sqlite is damaged.*delete"):
        CachedBackend(MockBackend(), path=garbage, progress=False)


def test_generation_cache_stores_a_digest_not_the_prompt(tmp_path):
    cached = CachedBackend(MockBackend(), cache_dir=tmp_path, progress=False)
    long_prompt = "step " * 20_000
    cached.generate([GenerationRequest(prompt=long_prompt), GenerationRequest(prompt="short")])
    rows = cached._conn.execute("SELECT request FROM generations").fetchall()
    assert all(len(row[0]) < 600 for row in rows)
    assert {json.loads(row[0])["prompt_chars"] for row in rows} >= {len(json.dumps({"messages": None,
                                                                                      "prompt": "short"},
                                                                                     separators=(",", ":")))}
    assert cached._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cached.close()


def test_encode_quietly_goes_through_encode_raw(tmp_path):
    seen: list[list[str]] = []

    class Recording(StepEncoder):
        def encode_raw(self, texts):
            seen.append(list(texts))
            assert self.show_progress is False  # the chunk loop's own bar is the only one
            return np.ones((len(texts), 8), np.float32)

    encoder = Recording(cache_path=tmp_path / "emb.sqlite", show_progress=True, batch_size=2)
    vectors = encoder.encode(["a", "b", "a"])
    assert vectors.shape == (3, 8) and seen == [["a", "b"]] and encoder.show_progress is True


# -------------------------------------------------------------------------------------------------- HTTP client
class _Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None):
        self.status_code = status
        self.headers = headers or {}
        self.text = json.dumps({"choices": [{"message": {"content": "ok"}}]})

    def json(self):
        return json.loads(self.text)


class _Session:
    def __init__(self, responses):
        self.responses = list(responses)
        self.timeouts: list[float] = []

    def post(self, url, json=None, headers=None, timeout=None):  # the requests signature
        self.timeouts.append(timeout)
        return self.responses.pop(0)


def test_retry_after_is_honoured_beyond_the_backoff_cap_up_to_the_maximum(monkeypatch):
    backend = OpenAIBackend(base_url="http://127.0.0.1:9", model="m", max_retries=3, backoff_max_s=0.01,
                            progress=False, deadline_s=0)
    session = _Session([_Response(429, {"Retry-After": "30"}), _Response(503, {"Retry-After": "100000"}),
                        _Response(200)])
    waits: list[float] = []
    monkeypatch.setattr(backend, "_session", lambda: session)
    monkeypatch.setattr(backend._stop, "wait", lambda delay: waits.append(delay) or False)
    assert backend.generate([GenerationRequest(prompt="q")]) == ["ok"]
    assert waits == [30.0, RETRY_AFTER_MAX_S]
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0 and retry_after_seconds("soon") is None


def test_a_hung_server_is_given_up_on_at_the_deadline():
    with OpenAIStub(StubBehaviour(stall_s=5.0)) as stub:
        backend = OpenAIBackend(base_url=stub.base_url, model="m", timeout_s=30, max_retries=10, backoff_s=0.01,
                                deadline_s=0.5, progress=False)
        started = time.perf_counter()
        with pytest.raises(MolesynError, match="within the deadline of 0.5 s"):
            backend.generate([GenerationRequest(prompt="q")])
        assert time.perf_counter() - started < 3


def test_http_options_on_the_cli_and_in_the_environment(tmp_path, graph_file, monkeypatch, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    base = ["synth", "--graph", str(graph_file), "--questions", str(questions), "--backend", "openai",
            "--no-cache", "--quiet", "--out", str(tmp_path / "o.jsonl")]
    assert main(base + ["--base-url", "localhost:8000"]) == 2
    assert "needs http:// or https://" in one_line_error(capsys)
    assert main(base + ["--base-url", "http://127.0.0.1:9", "--timeout", "0"]) == 2
    assert "--timeout must be positive" in one_line_error(capsys)
    monkeypatch.setenv("MOLESYN_OPENAI_TIMEOUT", "7")
    monkeypatch.setenv("MOLESYN_OPENAI_MAX_RETRIES", "1")
    backend = OpenAIBackend(base_url="http://127.0.0.1:9")
    assert (backend.timeout_s, backend.max_retries) == (7.0, 1)
    assert OpenAIBackend(base_url="http://127.0.0.1:9", timeout_s=3, max_retries=0, deadline_s=9).deadline_s == 9



# -------------------------------------------------------------------------------------------------------- book
def test_resume_hash_includes_the_library_source(tmp_path, monkeypatch):
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1"}]}))
    assert len(book.library_hash()) == 64
    before = book.source_hash(notebook, {"n": 1}, "smoke")
    monkeypatch.setattr(book.provenance, "library_hash", lambda: "another library")
    assert book.source_hash(notebook, {"n": 1}, "smoke") != before


def test_a_failed_rerun_keeps_the_last_good_chapter_and_record(tmp_path, monkeypatch):
    fixture = Path(__file__).parent / "fixtures" / "book"
    root = tmp_path / "project"
    shutil.copytree(fixture, root, ignore=shutil.ignore_patterns("_build", "chapters", "results", "status.md"))
    layout = book.BookLayout.at(root)
    layout.chapters_dir.mkdir(parents=True, exist_ok=True)
    good = layout.chapters_dir / "01_alpha.ipynb"

    def fake_execute(chapter, layout, profile, injected, timeout_s, kernel="python3", keep_good=False):
        ok = fake_execute.ok  # type: ignore[attr-defined]
        target = chapter.executed_path(layout) if ok or not keep_good else (
            layout.logs_dir / f"{chapter.stem}.{profile}.failed.ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"cells": [], "metadata": {}, "run": "good" if ok else "bad"}))
        error = None if ok else book.CellError(cell_index=1, execution_count=1, source_head="x", ename="E",
                                               evalue="boom")
        return book.ChapterRecord(chapter=chapter.stem, profile=profile, status="ok" if ok else "failed",
                                  seconds=1.0, started="s", finished="f-ok" if ok else "f-bad", error=error,
                                  source_hash=book.source_hash(chapter.source, injected, profile),
                                  executed=str(target.relative_to(layout.root)), log="logs/x.log",
                                  current=target == chapter.executed_path(layout))

    monkeypatch.setattr(book.running, "execute_chapter", fake_execute)
    monkeypatch.setattr(book.running, "stamp_executed_notebook", lambda *args: None)
    fake_execute.ok = True  # type: ignore[attr-defined]
    [first] = book.run_chapters(root, chapters=["01"], progress=False, echo=lambda line: None)
    assert first.status == "ok" and json.loads(good.read_text())["run"] == "good"
    fake_execute.ok = False  # type: ignore[attr-defined]
    [second] = book.run_chapters(root, chapters=["01"], progress=False, echo=lambda line: None)
    assert second.status == "failed" and not second.current
    assert json.loads(good.read_text())["run"] == "good"  # the last good chapter stays in the book
    [kept] = [r for r in book.load_summary(layout.summary_path) if r.chapter == "01_alpha"]
    assert kept.status == "ok" and kept.finished == "f-ok" and kept.last_failure["status"] == "failed"
    assert not book.can_resume(kept, kept.source_hash, good)  # a failed rerun is run again on --resume
    assert "a rerun failed" in book.render_status_page([kept])


# ---------------------------------------------------------------------------------------------------- fuzzing
def _mutations(rng: random.Random, text: str) -> str | bytes:
    kind = rng.randrange(9)
    data = text.encode()
    if kind == 0:  # cut anywhere
        return data[:rng.randrange(len(data))]
    if kind == 1:  # flip bytes
        raw = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    if kind == 2:  # deep nesting
        depth = rng.choice([50, 5000, 200_000])
        return "[" * depth + "]" * depth
    if kind == 3:  # a non-object JSON value
        return rng.choice(["1", "null", '"text"', "[1, 2]", "true", "NaN"])
    if kind == 4:  # a BOM, blank lines
        return b"\xef\xbb\xbf" + data + b"\n\n"
    if kind == 5:  # a control character in a string
        return text.replace('"', '"\x07', 1)
    if kind == 6:  # invalid UTF-8 in a value
        return data.replace(b"e", b"\xc3\x28", 1)
    if kind == 7:  # Infinity and NaN tokens
        return text.replace("0", "Infinity", 1).replace("1", "NaN", 1)
    return data + rng.choice([b"}", b"]", b",", b"\x00"])  # trailing junk


def _bad_trace_record(rng: random.Random) -> dict:
    record = dict(rng.choice(TRACES))
    key = rng.choice(["steps", "gold", "id", "model", "response", "question", "meta", "truncated"])
    record[key] = rng.choice([None, 1, 2.5, True, "x", [], [1, 2], {"a": 1}, ["N", "Q"], [[["deep"]]], "<think>"])
    return record


def _bad_graph_record(rng: random.Random) -> dict:
    record = _graph_record()
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(["transition", "counts", "marginal", "n_steps", "n_traces", "states", "labeler", "meta",
                          "name"])
        record[key] = rng.choice([None, 0, -1, 1.5, "many", True, [], [0.25] * 4, [[0.25] * 4] * 4,
                                  [[0.25] * 4] * 3, [[1, 0], [0, 1]], [0, 0, 0, 0], [float("nan")] * 4,
                                  [[float("inf")] * 4] * 4, [[-1] * 4] * 4, {"a": 1}, ["N", "D", "R", "E"]])
    return record


def _write(path: Path, content: str | bytes) -> None:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))


#: The trace readers of ``molesyn_lib/formats.py`` (format detection) are being written in parallel; a crash whose
#: innermost molesyn frame is there is collected and reported as a skip (with the cases) rather than a failure, so
#: this test keeps guarding everything else. Once formats.py reads through ``safeio`` / ``iter_jsonl`` the skip goes.
PENDING_READER = "molesyn_lib/formats.py"


class _PendingReaderCrash(Exception):
    pass


def _innermost_molesyn_file(exc: BaseException) -> str:
    import traceback

    frames = [f.filename for f in traceback.extract_tb(exc.__traceback__) if "molesyn_lib" in f.filename]
    return frames[-1].replace(os.sep, "/") if frames else ""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)  # an uncaught exception here is a traceback: the test fails
    except Exception as exc:
        capsys.readouterr()
        if _innermost_molesyn_file(exc).endswith(PENDING_READER):
            raise _PendingReaderCrash(f"{argv[0]} {Path(argv[1]).name}: {type(exc).__name__}") from exc
        raise
    captured = capsys.readouterr()
    if code != 0:
        assert code == 2, (argv, captured.err)
        lines = [line for line in captured.err.strip().splitlines() if line.startswith("molesyn: error:")]
        assert len(lines) == 1, (argv, captured.err)
    return code, captured.out, captured.err


def test_fuzz_malformed_trace_and_graph_files_give_one_line_errors(tmp_path, capsys):
    """300 malformed trace files (label / graph / fidelity) and 300 malformed graph files (compare, both orders):
    every run exits 0 or 2 with one ``molesyn: error:`` line, and no output holds NaN or Infinity."""
    rng = random.Random(16)
    pending: list[str] = []
    good_traces = tmp_path / "good.jsonl"
    good_traces.write_text("".join(json.dumps(t) + "\n" for t in TRACES))
    good_graph = GRAPH.save(tmp_path / "good.json")
    out = tmp_path / "out"
    out.mkdir()
    checked = 0
    for index in range(150):
        bad = tmp_path / f"t{index}.jsonl"
        if index % 2:
            lines = [json.dumps(t) for t in TRACES] + [json.dumps(_bad_trace_record(rng))]
            _write(bad, "\n".join(lines) + "\n")
        else:
            _write(bad, _mutations(rng, json.dumps(rng.choice(TRACES))))
        command = rng.choice(["label", "graph"])
        for argv in ([command, str(bad), "--labeler", "lexical", "--out", str(out / f"{index}.out")],
                     ["fidelity", str(bad), "--graph", str(good_graph), "--labeler", "lexical"]):
            try:
                _run(argv, capsys)
            except _PendingReaderCrash as crash:
                pending.append(str(crash))
            checked += 1
    for index in range(150):
        bad = tmp_path / f"g{index}.json"
        if index % 2:
            _write(bad, json.dumps(_bad_graph_record(rng)))
        else:
            _write(bad, _mutations(rng, json.dumps(_graph_record())))
        code, stdout, _ = _run(["compare", str(good_graph), str(bad), "--json"], capsys)
        assert "NaN" not in stdout and "Infinity" not in stdout
        if code == 0:
            assert all(v is None or math.isfinite(v) for v in json.loads(stdout).values())
        code, stdout, _ = _run(["compare", str(bad), str(good_graph)], capsys)
        assert "nan" not in stdout.lower() and "inf" not in stdout.lower()
        checked += 2
    assert checked == 600
    assert not pending, (f"{len(pending)} of 300 malformed trace-file runs crash inside {PENDING_READER} (format "
                         f"detection), e.g. {'; '.join(sorted(set(pending))[:3])}")


def test_answers_that_arrived_before_a_failure_are_cached(tmp_path):
    """One request fails for good; the answers of the others reach the cache, so a rerun only repeats the failure."""
    def reply(body):
        if "bad" in body["messages"][-1]["content"]:
            time.sleep(0.5)  # the others answer first
            raise RuntimeError("stub told to fail (the client sees a dropped connection)")
        return "ok:" + body["messages"][-1]["content"]

    with OpenAIStub(StubBehaviour(reply=reply)) as stub:
        backend = OpenAIBackend(base_url=stub.base_url, model="m", timeout_s=5, max_retries=0, backoff_s=0.01,
                                concurrency=4, progress=False)
        cached = CachedBackend(backend, cache_dir=tmp_path, chunk_size=8, progress=False)
        requests = [GenerationRequest(prompt=p) for p in ("a", "b", "c", "bad")]
        with pytest.raises(MolesynError):
            cached.generate(requests)
        found = cached.lookup([r.cache_key(backend.identity) for r in requests[:3]])
        assert sorted(found.values()) == ["ok:a", "ok:b", "ok:c"]


def test_concurrent_encoders_on_one_cache_share_the_work(tmp_path, monkeypatch):
    """Two runs encoding the same texts into one cache at the same time: every text is encoded once in total."""
    import threading

    from molesyn_lib.embeddings import StepEncoder

    encoded: list[str] = []
    lock = threading.Lock()

    def fake_encode(self, texts):
        time.sleep(0.05)
        with lock:
            encoded.extend(texts)
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)

    monkeypatch.setattr(StepEncoder, "_encode_quietly", fake_encode)
    texts = [f"step {i}" for i in range(40)]
    encoders = [StepEncoder(cache_path=tmp_path / "emb.sqlite", batch_size=1, show_progress=False) for _ in range(2)]
    threads = [threading.Thread(target=e.encode, args=(texts,)) for e in encoders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(encoded) == sorted(texts)  # no text encoded twice
    assert encoders[0].encode(texts).shape == (40, 384)


def test_concurrent_generation_runs_on_one_cache_share_the_work(tmp_path):
    """Two runs generating the same requests into one generation cache at the same time (the cross-process chunk
    lock, taken here by two threads with their own lock-file handles): every request is generated once in total,
    and both runs get every answer."""
    import threading

    generated: list[str] = []
    lock = threading.Lock()

    def responder(request: GenerationRequest) -> str:
        time.sleep(0.02)
        with lock:
            generated.append(request.prompt)
        return f"ok:{request.prompt}"

    requests = [GenerationRequest(prompt=f"q{i}") for i in range(24)]
    backends = [CachedBackend(MockBackend(responder=responder, label="shared"), path=tmp_path / "gen.sqlite",
                              chunk_size=4, progress=False) for _ in range(2)]
    answers: list[list[str]] = [[], []]

    def run(index: int) -> None:
        answers[index] = backends[index].generate(requests)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(generated) == sorted(r.prompt for r in requests)  # no request generated twice
    assert answers[0] == answers[1] == [f"ok:q{i}" for i in range(24)]
    assert sum(b.misses for b in backends) == 24 and sum(b.hits for b in backends) == 24


def test_a_second_ctrl_c_exits_at_once(tmp_path):
    """After the first Ctrl-C the command reports 'interrupted'; if the interpreter then waits (worker threads still
    finishing), a second Ctrl-C ends the process at once with status 130 and no traceback."""
    script = tmp_path / "hang.py"
    script.write_text(
        "import sys, threading, time\n"
        "from molesyn_lib import cli\n"
        "build = cli.build_parser\n"
        "def parser():\n"
        "    p = build()\n"
        "    sub = next(a for a in p._actions if a.dest == 'command')\n"
        "    def hang(args):\n"
        "        threading.Thread(target=time.sleep, args=(120,)).start()  # a worker that outlives the command\n"
        "        raise KeyboardInterrupt\n"
        "    sub.add_parser('hang').set_defaults(func=hang)\n"
        "    return p\n"
        "cli.build_parser = parser\n"
        "sys.exit(cli.main(['hang']))\n")
    process = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()
    assert "interrupted" in first
    time.sleep(0.5)  # the interpreter is now waiting for the worker thread
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=20)
    finally:
        process.kill()
    rest = process.stderr.read()
    assert code == 130 and time.monotonic() - started < 20
    assert "Traceback" not in rest
