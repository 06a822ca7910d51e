"""Trace loading: formats, think-block splitting, truncation, bad input with file and line."""
from __future__ import annotations

import gzip
import json

import pytest

from molesyn_lib.errors import InputError
from molesyn_lib.traces import Trace, load_traces, save_traces, split_thinking


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_split_thinking_variants():
    assert split_thinking("<think>a</think>b") == ("a", "b", False)
    assert split_thinking("a</think>b") == ("a", "b", False)
    assert split_thinking("<think>a") == ("a", None, True)
    assert split_thinking("plain") == ("plain", None, False)


def test_load_response_and_steps(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [
        json.dumps({"id": "a", "model": "m", "response": "<think>First we compute the sum of all values here.\n\n"
                    "Wait, let me check the second value again carefully.</think>The answer is 4.", "answer": "4"}),
        "",
        json.dumps({"doc_id": "b", "generator": "g", "steps": ["x", "y"], "gold": ["N", "R"]}),
    ])
    corpus = load_traces(path)
    assert [t.trace_id for t in corpus] == ["a", "b"]
    assert corpus[0].steps == ["First we compute the sum of all values here.",
                               "Wait, let me check the second value again carefully."]
    assert corpus[0].final == "The answer is 4." and corpus[0].answer == "4"
    assert corpus[1].steps == ["x", "y"] and corpus[1].behaviors == ["N", "R"] and corpus[1].model == "g"
    assert corpus[1].source.endswith(":3")


def test_model_filter_and_limit(tmp_path):
    lines = [json.dumps({"model": m, "steps": ["s"]}) for m in ["a", "b", "a", "a"]]
    corpus = load_traces(write_lines(tmp_path / "t.jsonl", lines), model="a", limit=2)
    assert len(corpus) == 2 and corpus.skipped["other model"] == 1


def test_truncated_flagged_skipped_or_error(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [
        json.dumps({"response": "<think>long thought that never ends because the budget ran out"}),
        json.dumps({"response": "<think>done thinking about the problem at length</think>42"}),
    ])
    kept = load_traces(path)
    assert [t.truncated for t in kept] == [True, False]
    skipped = load_traces(path, truncated="skip")
    assert len(skipped) == 1 and skipped.skipped["truncated"] == 1
    with pytest.raises(InputError, match=r"t\.jsonl:1: truncated"):
        load_traces(path, truncated="error")


def test_qwq_style_missing_close_is_truncated(tmp_path):
    lines = [json.dumps({"model": "q", "response": f"thought number {i} goes on for a while</think>ans"})
             for i in range(3)]
    lines.append(json.dumps({"model": "q", "response": "a thought that was cut off by the token budget"}))
    lines.append(json.dumps({"model": "inst", "response": "an instruct model answer with no tags at all"}))
    corpus = load_traces(write_lines(tmp_path / "t.jsonl", lines))
    assert [t.truncated for t in corpus] == [False, False, False, True, False]


def test_empty_traces_are_skipped_and_counted(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [json.dumps({"response": ""}), json.dumps({"steps": []}),
                                              json.dumps({"steps": ["ok"]})])
    corpus = load_traces(path)
    assert len(corpus) == 1 and corpus.skipped["empty"] == 2
    assert "skipped: empty: 2" in corpus.summary()


@pytest.mark.parametrize("line, message", [
    ("{not json", r"bad\.jsonl:2: not valid JSON"),
    ("[1, 2]", r"bad\.jsonl:2: expected a JSON object"),
    ('{"id": "x"}', r"bad\.jsonl:2: a trace needs a 'response'"),
    ('{"steps": "abc"}', r"bad\.jsonl:2: field 'steps' must be a list of strings"),
    ('{"steps": ["a"], "gold": ["X"]}', r"bad\.jsonl:2: field 'gold' must be a list of N/D/R/E"),
    ('{"steps": ["a", "b"], "gold": ["N"]}', r"bad\.jsonl:2: field 'gold' has 1 labels for 2 steps"),
    ('{"response": 5.5, "model": []}', r"bad\.jsonl:2: field 'model' must be a string"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps({"steps": ["fine"]}), line])
    with pytest.raises(InputError, match=message):
        load_traces(path)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_traces(tmp_path / "nope.jsonl")
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"steps": ["ok"]}\n{"steps": ["caf\xe9"]}\n')
    with pytest.raises(InputError, match=r"latin\.jsonl:2: not UTF-8"):
        load_traces(path)


def test_gzip_and_roundtrip(tmp_path):
    traces = [Trace(trace_id="t1", steps=["a", "b"], model="m", behaviors=["D", "E"], answer="3", final="3")]
    path = tmp_path / "out.jsonl"
    assert save_traces(traces, path) == 1
    again = load_traces(path)
    assert again[0].steps == ["a", "b"] and again[0].behaviors == ["D", "E"] and again[0].final == "3"
    gz = tmp_path / "out.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert load_traces(gz)[0].trace_id == "t1"


def test_large_file_streams(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w") as handle:
        for i in range(20000):
            handle.write(json.dumps({"id": str(i), "steps": ["Wait, check.", "So x = 1."]}) + "\n")
    corpus = load_traces(path, limit=5)
    assert len(corpus) == 5
    assert len(load_traces(path)) == 20000
