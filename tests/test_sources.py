"""Loaders of the real datasets (need the data directory) and of question files."""
from __future__ import annotations

import json

import pytest

from molesyn_lib.errors import DataMissingError, InputError
from molesyn_lib.sources import (
    benchmark_path,
    load_questions,
    load_reasoningflow_traces,
    load_steering,
    load_thought_anchors,
    parse_steering_annotation,
)


def test_parse_steering_annotation():
    text = ('["initializing"]Okay, first.["end-section"]\n["deduction"]So x = 2.["end-section"]["backtracking"] '
            '["end-section"] stray text ["end-section"]')
    assert parse_steering_annotation(text) == ([("initializing", "Okay, first."), ("deduction", "So x = 2.")], 1)


def test_questions_formats(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"question": "2+2?", "answer": "Add them.\n#### 4"},
        {"problem": "x?", "answer": "\\frac{1}{2}", "solution": "...", "unique_id": "u1"},
        {"question": "y?", "final_answer": ["7"], "id": 3},
    ]) + "\n")
    questions = load_questions(path)
    assert [q.answer for q in questions] == ["4", "\\frac{1}{2}", "7"]
    assert questions[0].solution == "Add them." and questions[1].question_id == "u1"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answer": "1"}\n')
    with pytest.raises(InputError, match="bad.jsonl:1: a question line needs"):
        load_questions(bad)


def test_missing_data_is_clear(tmp_path):
    with pytest.raises(DataMissingError, match="MOLESYN_DATA"):
        load_thought_anchors(tmp_path)


@pytest.mark.data
def test_reasoningflow_traces():
    corpus = load_reasoningflow_traces(files=("aime2024_5models.jsonl",))
    assert len(corpus) == 150
    by_model = {m: corpus.by_model(m) for m in corpus.models}
    assert set(by_model) == {"DeepSeek-R1", "QwQ-32B", "gpt-oss-120b", "DeepSeek-V3", "Qwen2.5-32B-Instruct"}
    assert by_model["QwQ-32B"].n_truncated() == 9 and by_model["DeepSeek-R1"].n_truncated() == 4
    assert by_model["gpt-oss-120b"].n_truncated() == 0 and by_model["DeepSeek-V3"].n_truncated() == 0
    dropped = load_reasoningflow_traces(files=("aime2024_5models.jsonl",), drop_truncated=True)
    assert len(dropped) == 150 - 13 and dropped.skipped["truncated"] == 13
    limited = load_reasoningflow_traces(files=("aime2024_5models.jsonl",), models=("gpt-oss-120b",),
                                        per_model_limit=5)
    assert len(limited) == 5


@pytest.mark.data
def test_thought_anchors_and_steering():
    anchors = load_thought_anchors()
    assert len(anchors) == 40 and sum(len(t) for t in anchors) == 5814
    assert all(len(t.behaviors) == len(t.steps) for t in anchors)
    steering = load_steering("deepseek-r1-distill-qwen-32b")
    assert len(steering) == 100 and steering[0].question.startswith("What's the probability")
    assert set(b for t in steering for b in t.behaviors) == {"N", "D", "R", "E"}


@pytest.mark.data
def test_benchmarks_load():
    assert len(load_questions(benchmark_path("gsm8k"))) == 1319
    math500 = load_questions(benchmark_path("math500"))
    assert len(math500) == 500 and all(q.answer for q in math500)


@pytest.mark.data
def test_human_solutions():
    from molesyn_lib.sources import load_human_solutions

    gsm = load_human_solutions("gsm8k", limit=20)
    assert len(gsm) == 20 and all("<<" not in s for t in gsm for s in t.steps)
    assert gsm[0].model == "human-gsm8k" and len(gsm[0].steps) >= 2
    math = load_human_solutions("math500", limit=20)
    assert len(math) == 20 and sum(len(t.steps) for t in math) > 40
