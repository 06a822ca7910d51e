"""The label / graph / compare command-line contract, and one-line errors for bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from molesyn_lib.cli import main
from molesyn_lib.labelers import DEFAULT_LABELER

TRACES = [
    {"id": "a", "model": "m1", "response": "<think>We need x such that 2x = 6, a linear equation here.\n\n"
     "So x = 3, because dividing both sides by 2 gives it.\n\nWait, let me check that again: 2 * 3 = 6. Correct.</think>3"},
    {"id": "b", "model": "m2", "steps": ["Alternatively, maybe guess and check.", "So it is 3."],
     "gold": ["E", "D"]},
]


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TRACES))
    return path


def test_label_writes_one_line_per_step(trace_file, tmp_path):
    out = tmp_path / "steps.jsonl"
    assert main(["label", str(trace_file), "--labeler", "lexical", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    assert set(rows[0]) == {"trace_id", "model", "step", "text", "behavior"}
    assert [r["behavior"] for r in rows if r["trace_id"] == "a"] == ["N", "D", "R"]


def test_graph_contract_and_model_filter(trace_file, tmp_path):
    out = tmp_path / "graph.json"
    assert main(["graph", str(trace_file), "--model", "m1", "--out", str(out)]) == 0
    graph = json.loads(out.read_text())
    assert graph["states"] == ["N", "D", "R", "E"]
    assert {"transition", "marginal", "counts", "n_traces", "n_steps", "labeler"} <= set(graph)
    assert graph["n_traces"] == 1 and graph["n_steps"] == 3 and graph["labeler"] == DEFAULT_LABELER
    assert all(abs(sum(row) - 1) < 1e-9 for row in graph["transition"])
    gold = tmp_path / "gold.json"
    assert main(["graph", str(trace_file), "--model", "m2", "--labeler", "gold", "--out", str(gold)]) == 0
    assert json.loads(gold.read_text())["counts"][3][1] == 1


def test_compare_prints_pearson(trace_file, tmp_path, capsys):
    out = tmp_path / "g.json"
    main(["graph", str(trace_file), "--out", str(out)])
    capsys.readouterr()
    assert main(["compare", str(out), str(out), "--value"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(1.0)
    assert main(["compare", str(out), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Pearson r = 1.0000" in printed and "P(next|cur)" in printed and printed.count("marginal") == 3
    assert main(["compare", str(out), str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pearson"] == pytest.approx(1.0)


@pytest.mark.parametrize("content, expected", [
    ('{"steps": ["ok"]}\n{broken\n', "traces.jsonl:2: not valid JSON"),
    ('{"id": 1}\n', "traces.jsonl:1: a trace needs a 'response'"),
    ("", "no usable traces"),
])
def test_bad_input_is_one_line_error(tmp_path, content, expected):
    path = tmp_path / "traces.jsonl"
    path.write_text(content)
    result = subprocess.run([sys.executable, "-m", "molesyn_lib.cli", "graph", str(path), "--out",
                             str(tmp_path / "g.json")], capture_output=True, text=True)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_graph_file_is_one_line_error(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2
    assert "a.json: no such file" in capsys.readouterr().err
