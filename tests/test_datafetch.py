"""Tests of the data inventory and downloader (``molesyn data list|fetch``).

Nothing here touches the network: downloads come from a real HTTP server on the loopback interface serving files
written into a temporary directory, and the "offline" case points at a loopback port nobody listens on.
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from molesyn_lib import datafetch
from molesyn_lib.cli import main
from molesyn_lib.config import data_dir
from molesyn_lib.datafetch import DataFile, RepackItem

OWNER_REPO, COMMIT = "someone/traces", "0123456789abcdef0123456789abcdef01234567"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


@pytest.fixture()
def upstream(tmp_path: Path):
    """A loopback HTTP server serving ``<owner>/<repo>/<commit>/<path>`` from a temporary folder."""
    root = tmp_path / "upstream"
    repo = root / OWNER_REPO / COMMIT
    (repo / "data" / "docs").mkdir(parents=True)
    (repo / "data" / "plain.txt").write_bytes(b"hello molesyn\n")
    for doc_id, question, response in (("q_0_M", "1+1?", "<think>\nWait, 2.\n</think>2"), ("q_1_M", "π?", "3.14")):
        doc = {"doc_id": doc_id, "raw_text": {"question": question, "response": response},
               "metadata": {"batch": 0, "domain": "q", "generator": "M", "annotator": None,
                            "question_id": doc_id.rsplit("_", 1)[0].replace("_", "-"), "correct_answer": "2"},
               "nodes": [], "edges": []}
        (repo / "data" / "docs" / f"{doc_id}.json").write_text(json.dumps(doc, indent=4), encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _entry(name: str, data: bytes, **extra) -> DataFile:
    return DataFile(dataset="toy", name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                    repository=OWNER_REPO, commit=COMMIT, **extra)


# The re-packed JSONL written out by hand (not by the recipe under test).
EXPECTED_TRACES = (
    '{"doc_id": "q_0_M", "generator": "M", "domain": "q", "question_id": "q-0", "question": "1+1?", '
    '"correct_answer": "2", "response": "<think>\\nWait, 2.\\n</think>2"}\n'
    '{"doc_id": "q_1_M", "generator": "M", "domain": "q", "question_id": "q-1", "question": "π?", '
    '"correct_answer": "2", "response": "3.14"}\n'
).encode()


def _toy_manifest() -> list[DataFile]:
    return [
        _entry("plain.txt", b"hello molesyn\n", method="copy", upstream_path="data/plain.txt"),
        _entry("traces.jsonl", EXPECTED_TRACES, method="repack", recipe="reasoningflow_traces",
               items=(RepackItem({"doc": "data/docs/q_0_M.json"}), RepackItem({"doc": "data/docs/q_1_M.json"}))),
        _entry("tampered.txt", b"the bytes we expect\n", method="copy", upstream_path="data/plain.txt"),
        _entry("gone.txt", b"nothing\n", method="copy", upstream_path="data/not_there.txt"),
    ]


def _write_manifest(path: Path, files: list[DataFile]) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "files": [f.to_dict() for f in files]}), encoding="utf-8")
    return path


def test_fetch_from_loopback_verifies_copies_and_repacks(upstream: str, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    results = {r.file.name: r for r in datafetch.fetch(dest, _toy_manifest(), base_url=upstream, progress=False)}
    assert results["plain.txt"].status == "fetched"
    assert (dest / "toy" / "plain.txt").read_bytes() == b"hello molesyn\n"
    assert results["traces.jsonl"].status == "fetched"
    assert (dest / "toy" / "traces.jsonl").read_bytes() == EXPECTED_TRACES
    # checksum mismatch: nothing in place, the download kept as .partial, the message says so
    assert results["tampered.txt"].status == "mismatch"
    assert not (dest / "toy" / "tampered.txt").exists()
    assert (dest / "toy" / "tampered.txt.partial").read_bytes() == b"hello molesyn\n"
    assert "checksum mismatch" in results["tampered.txt"].message and ".partial" in results["tampered.txt"].message
    assert results["gone.txt"].status == "failed" and "HTTP 404" in results["gone.txt"].message
    # a second run leaves verified files alone
    again = {r.file.name: r.status for r in datafetch.fetch(dest, _toy_manifest()[:2], base_url=upstream,
                                                             progress=False)}
    assert again == {"plain.txt": "present", "traces.jsonl": "present"}


def test_fetch_never_replaces_a_file_with_unverified_bytes(upstream: str, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    (dest / "toy").mkdir(parents=True)
    (dest / "toy" / "tampered.txt").write_bytes(b"user's own copy\n")
    [result] = datafetch.fetch(dest, [_toy_manifest()[2]], base_url=upstream, progress=False)
    assert result.status == "mismatch"
    assert (dest / "toy" / "tampered.txt").read_bytes() == b"user's own copy\n"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fetch_offline_says_what_is_missing_and_where_to_put_it(tmp_path: Path, capsys) -> None:
    manifest = _write_manifest(tmp_path / "manifest.json", _toy_manifest()[:2])
    dest = tmp_path / "data"
    code = main(["data", "fetch", "--dest", str(dest), "--manifest", str(manifest), "--no-progress",
                 "--base-url", f"http://127.0.0.1:{_closed_port()}", "--connect-timeout", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err and "no network access" in err
    lines = [line for line in err.splitlines() if line.startswith("missing ")]
    assert len(lines) == 2
    assert f"{OWNER_REPO}/{COMMIT}/data/plain.txt" in lines[0] and str(dest / "toy" / "plain.txt") in lines[0]
    assert "2 upstream files re-packed by recipe reasoningflow_traces" in lines[1]
    assert str(dest / "toy" / "traces.jsonl") in lines[1]


def test_data_list_reports_present_missing_and_different(tmp_path: Path, capsys) -> None:
    files = _toy_manifest()[:3]
    manifest = _write_manifest(tmp_path / "manifest.json", files)
    dest = tmp_path / "data"
    (dest / "toy").mkdir(parents=True)
    (dest / "toy" / "plain.txt").write_bytes(b"hello molesyn\n")
    (dest / "toy" / "tampered.txt").write_bytes(b"THE BYTES WE EXPECT\n")  # same size, other content
    assert main(["data", "list", "--dest", str(dest), "--manifest", str(manifest), "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"data directory: {dest}" in out and "toy/  (1/3 present)" in out
    assert "present  plain.txt" in out and "sha256 ok" in out
    assert "missing  traces.jsonl" in out
    assert "mismatch tampered.txt" in out and "sha256 differs" in out


def test_manifest_and_selection_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"files": [', encoding="utf-8")
    with pytest.raises(datafetch.InputError, match="bad.json:1"):
        datafetch.load_manifest(bad)
    with pytest.raises(datafetch.MolesynError, match="unknown dataset or file nope"):
        datafetch.select_files(_toy_manifest(), ["nope"])
    assert [f.name for f in datafetch.select_files(_toy_manifest(), ["toy/gone.txt"])] == ["gone.txt"]


def test_shipped_manifest_is_complete_and_pinned() -> None:
    files = datafetch.load_manifest()
    names = {f.relpath for f in files}
    assert {"reasoningflow/traces/aime2024_5models.jsonl", "benchmarks/gsm8k_test.jsonl",
            "thought_anchors/math_chunks_labeled.jsonl", "steering_thinking_behaviors/questions.json"} <= names
    for item in files:
        assert len(item.commit) == 40 and len(item.sha256) == 64 and item.size > 0
        assert all(url.startswith(f"https://raw.githubusercontent.com/{item.repository}/{item.commit}/")
                   for url in item.urls())
    assert sum(len(f.items) for f in files if f.recipe == "reasoningflow_traces") == 150 + 990


@pytest.mark.data
def test_reference_data_matches_the_manifest() -> None:
    files = datafetch.load_manifest()
    states = datafetch.inspect_data_dir(data_dir(), files, verify=True)
    assert [s.file.relpath for s in states if s.status != "present"] == []


@pytest.mark.data
def test_recipes_reproduce_the_reference_bytes() -> None:
    root = data_dir()
    by_name = {f.relpath: f for f in datafetch.load_manifest()}
    # questions.json is re-packed from a byte-copied file we also have: the whole file must come out identical
    steering = by_name["steering_thinking_behaviors/questions.json"]
    source = (root / "steering_thinking_behaviors" / "reasoning_comparison_qwen2.5-32b-instruct.json").read_bytes()
    out = datafetch.RECIPES["steering_questions"]([(steering.items[0], {"doc": source})])
    assert hashlib.sha256(out).hexdigest() == steering.sha256
    # one ReasoningFlow trace line, rebuilt from an upstream-shaped document, is byte-identical to ours
    line = (root / "reasoningflow" / "traces" / "aime2024_5models.jsonl").open(encoding="utf-8").readline()
    row = json.loads(line)
    doc = {"doc_id": row["doc_id"], "raw_text": {"question": row["question"], "response": row["response"]},
           "metadata": {"batch": 0, "domain": row["domain"], "generator": row["generator"], "annotator": None,
                        "question_id": row["question_id"], "correct_answer": row["correct_answer"]},
           "nodes": [], "edges": []}
    blob = json.dumps(doc, indent=4, ensure_ascii=False).encode("utf-8")
    assert datafetch.RECIPES["reasoningflow_traces"]([(RepackItem({"doc": "x.json"}), {"doc": blob})]) == \
        line.encode("utf-8")
