"""Tests of MOLE-SYN synthesis (molesyn_lib.synth) with the mock backend, and of the ``synth``/``fidelity`` CLI."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.stats import chisquare

from molesyn_lib.backends import CachedBackend, GenerationRequest, MockBackend
from molesyn_lib.behaviors import DEFINITIONS, INSTRUCTIONS, STATE_INDEX, STATES
from molesyn_lib.cli import main
from molesyn_lib.labelers import DEFAULT_LABELER
from molesyn_lib.sources import Question
from molesyn_lib.synth import (
    SynthConfig,
    clean_step,
    extract_boxed,
    fidelity,
    grade_answer,
    step_prompt,
    synthesize,
    to_hf_dataset,
    walk_plan,
)
from molesyn_lib.traces import load_traces, save_traces
from molesyn_lib.transfer import TransferGraph, load_graph

P = np.array([[0.1, 0.6, 0.2, 0.1], [0.3, 0.3, 0.3, 0.1], [0.5, 0.1, 0.1, 0.3], [0.2, 0.2, 0.2, 0.4]])
GRAPH = TransferGraph.from_matrix(P, name="test-graph")


def questions(n: int, answer: str | None = "7") -> list[Question]:
    return [Question(question_id=f"q{i}", question=f"Tom has {i} apples and buys 7 more. How many?", answer=answer)
            for i in range(n)]


def steps_so_far(request: GenerationRequest) -> int:
    """Number of steps already in a transcript-style prompt (lines after the last 'Question:' line, minus the tag)."""
    text = request.prompt or request.chat()[-1]["content"]
    return text[text.rindex("Question:"):].count("\n") - 1 if request.prompt else 0


def never_answers(request: GenerationRequest) -> str:
    if (request.prompt or "").endswith("\\boxed{"):
        return "7"
    return f"Step {request.seed} looks at the apples."


def answers_at(position: int, answer: str = "7"):
    def responder(request: GenerationRequest) -> str:
        if steps_so_far(request) >= position:
            return f"So there are {answer} apples. \\boxed{{{answer}}}"
        return f"Count {request.seed} apples carefully."
    responder.__qualname__ = f"answers_at_{position}_{answer}"
    return responder


# ------------------------------------------------------------------------------------------------------ walk plans
def test_walk_plan_depends_only_on_seed_and_index():
    config = SynthConfig(max_steps=10, seed=3)
    assert walk_plan(GRAPH, config, 5) == walk_plan(GRAPH, config, 5)
    assert walk_plan(GRAPH, config, 5) != walk_plan(GRAPH, config, 6) or walk_plan(GRAPH, config, 5) != \
        walk_plan(GRAPH, config, 7)
    assert walk_plan(GRAPH, SynthConfig(max_steps=10, seed=4), 5) != walk_plan(GRAPH, config, 5)
    assert all(walk_plan(GRAPH, SynthConfig(start="E", max_steps=3), i)[0] == "E" for i in range(20))


def test_walk_statistics_match_the_graph():
    config = SynthConfig(max_steps=30, seed=1)
    plans = [walk_plan(GRAPH, config, i) for i in range(300)]
    counts = TransferGraph.from_sequences(plans).counts
    for row, state in enumerate(STATES):
        observed = counts[row]
        result = chisquare(observed, observed.sum() * P[row])
        assert result.pvalue > 1e-3, (state, observed, P[row])
    starts = np.bincount([STATE_INDEX[p[0]] for p in plans], minlength=4)
    assert chisquare(starts, starts.sum() * GRAPH.marginal).pvalue > 1e-3


def test_synthesized_requested_behaviours_follow_the_walk():
    traces = synthesize(questions(120), GRAPH, MockBackend(responder=never_answers, label="never"),
                        SynthConfig(max_steps=12), progress=False)
    requested = TransferGraph.from_sequences([t.behaviors for t in traces])
    assert np.abs(requested.transition - P).max() < 0.08
    for index, trace in enumerate(traces):
        assert trace.behaviors == walk_plan(GRAPH, SynthConfig(max_steps=12), index)


# ------------------------------------------------------------------------------------------------------ synthesis
def test_seeded_reproducibility():
    config = SynthConfig(max_steps=6, seed=7)
    first = synthesize(questions(8), GRAPH, MockBackend(), config, progress=False)
    again = synthesize(questions(8), GRAPH, MockBackend(), config, progress=False)
    assert [t.to_record() for t in first] == [t.to_record() for t in again]
    other = synthesize(questions(8), GRAPH, MockBackend(), SynthConfig(max_steps=6, seed=8), progress=False)
    assert [t.steps for t in other] != [t.steps for t in first]


def test_stops_at_a_boxed_answer():
    traces = synthesize(questions(3), GRAPH, MockBackend(responder=answers_at(2)), SynthConfig(max_steps=8),
                        progress=False)
    for trace in traces:
        assert len(trace.steps) == 3 and trace.meta["stop_reason"] == "boxed"
        assert trace.final == "\\boxed{7}" and trace.meta["correct"] is True and not trace.meta["forced_answer"]
        assert len(trace.behaviors) == 3


def test_min_steps_re_asks_early_answers():
    config = SynthConfig(max_steps=8, min_steps=3, max_retries=1)
    traces = synthesize(questions(2), GRAPH, MockBackend(responder=answers_at(0)), config, progress=False)
    for trace in traces:
        # positions 0 and 1 are re-asked once, then kept without the box; position 2 may answer
        assert len(trace.steps) == 3 and trace.meta["stop_reason"] == "boxed"
        assert "\\boxed" not in trace.steps[0] and "\\boxed" not in trace.steps[1]
        assert trace.meta["retries"] == 2 and len(trace.meta["early_answers"]) == 4


def test_max_steps_and_forced_answer():
    backend = MockBackend(responder=never_answers, label="never")
    traces = synthesize(questions(4), GRAPH, backend, SynthConfig(max_steps=5), progress=False)
    assert all(len(t.steps) == 5 and t.meta["stop_reason"] == "max_steps" for t in traces)
    assert all(t.final == "\\boxed{7}" and t.meta["forced_answer"] for t in traces)
    assert backend.calls == 6  # one call per walk position (all walks batched) + one for the final answers
    unforced = synthesize(questions(4), GRAPH, backend, SynthConfig(max_steps=5, force_answer=False),
                          progress=False)
    assert all(t.final is None and t.meta["correct"] is False for t in unforced)


def test_one_backend_call_per_position_with_all_active_walks():
    sizes = []

    class Recording(MockBackend):
        def generate(self, requests):
            sizes.append(len(requests))
            return super().generate(requests)

    synthesize(questions(5), GRAPH, Recording(responder=answers_at(2)), SynthConfig(max_steps=8), progress=False)
    assert sizes == [5, 5, 5]


def test_degenerate_steps_are_retried_then_the_walk_ends():
    backend = MockBackend(responder=lambda r: "   ", label="empty")
    traces = synthesize(questions(3), GRAPH, backend, SynthConfig(max_steps=5, max_retries=2), progress=False)
    assert traces == [] and backend.calls == 3
    repeating = MockBackend(responder=lambda r: "The same step again.", label="same")
    traces = synthesize(questions(2), GRAPH, repeating, SynthConfig(max_steps=5, max_retries=1), progress=False)
    assert all(t.steps == ["The same step again."] and t.meta["stop_reason"] == "degenerate" for t in traces)


def test_filter_correct_uses_math_verify_and_strings():
    qs = [Question("a", "Q a?", "18"), Question("b", "Q b?", "\\frac{1}{2}"), Question("c", "Q c?", "5"),
          Question("d", "Q d?", None)]
    answers = {"Q a?": "18.0", "Q b?": "0.5", "Q c?": "6", "Q d?": "1"}

    def responder(request):
        question = re.findall(r"Question: (.*)", request.prompt)[-1]
        return f"Done. \\boxed{{{answers[question]}}}" if steps_so_far(request) >= 1 else f"Think {request.seed}."
    responder.__qualname__ = "filter-responder"
    traces = synthesize(qs, GRAPH, MockBackend(responder=responder), SynthConfig(max_steps=4, filter_correct=True),
                        progress=False)
    assert [t.meta["question_id"] for t in traces] == ["a", "b"]


def test_answers_and_grading():
    assert extract_boxed("a \\boxed{\\frac{1}{2}} b \\boxed{x^{2}}") == "x^{2}"
    assert extract_boxed("\\boxed{unclosed") is None and extract_boxed(None) is None
    assert grade_answer("1,000", "1000") and grade_answer("$18$", "18") and grade_answer("\\dfrac{1}{2}", "0.5")
    assert grade_answer("17", "18") is False and grade_answer(None, "1") is False and grade_answer("1", None) is None


def test_clean_step():
    assert clean_step("Self-reflection: Wait, 2 + 2 = 4. And then") == "Wait, 2 + 2 = 4."
    assert clean_step("**Step 3:** So 5.\nQuestion: echo of the prompt") == "So 5."
    assert clean_step("- Deep reasoning: hence x = 2") == "hence x = 2"
    assert clean_step("  ") is None and clean_step("...") is None
    assert clean_step("Tom has 3 apples and buys", question="Tom has 3 apples and buys 7 more.") is None
    assert clean_step("So we get 12 apples.", previous=["So we get 12 apples!"]) is None
    assert clean_step("So we get 13 pears.", previous=["So we get 12 apples."]) == "So we get 13 pears."


def test_prompt_styles():
    steps, behaviors = ["First step.", "Second step."], ["N", "D"]
    paper = step_prompt("What is 2+2?", steps, behaviors, "R", SynthConfig(few_shot=False))
    system, user = paper.messages
    assert all(d in system["content"] for d in DEFINITIONS.values())
    assert "You should conduct Self-reflection behavior now." in system["content"]
    assert INSTRUCTIONS["R"] in system["content"] and "\\boxed{}" in system["content"]
    assert "What is 2+2?" in user["content"] and "Second step." in user["content"]
    chat = step_prompt("What is 2+2?", steps, behaviors, "E", SynthConfig(prompt_style="few_shot_chat"),
                       allow_answer=False)
    assert "ONE short step" in chat.messages[0]["content"] and "Alternatively" in chat.messages[0]["content"]
    assert "Do not give the final answer yet." in chat.messages[0]["content"]
    transcript = step_prompt("What is 2+2?", steps, behaviors, "E", SynthConfig())
    assert transcript.prompt.endswith("Question: What is 2+2?\nNormal operation: First step.\n"
                                      "Deep reasoning: Second step.\nSelf-exploration:")
    assert transcript.stop == ("\n",)
    clipped = step_prompt("Q?", ["a" * 50, "b" * 50, "c" * 50], ["N"] * 3, "N", SynthConfig(max_rationale_chars=60))
    assert "a" * 50 not in clipped.prompt and "c" * 50 in clipped.prompt
    with pytest.raises(ValueError):
        SynthConfig(prompt_style="nope")
    with pytest.raises(ValueError):
        SynthConfig(start="X")


def test_cue_prefix_starts_steps_with_a_cue_of_their_behaviour():
    from molesyn_lib.synth import CUE_PREFIXES

    config = SynthConfig(max_steps=6, cue_prefix=True)
    prompt = step_prompt("Q?", [], [], "R", config)
    assert prompt.prefix in CUE_PREFIXES["R"] and prompt.prompt.endswith(f"Self-reflection: {prompt.prefix}")
    traces = synthesize(questions(4), GRAPH, MockBackend(responder=lambda r: f" the value {r.seed} holds.",
                                                         label="continuation"), config, progress=False)
    for trace in traces:
        for behavior, step in zip(trace.behaviors, trace.steps):
            assert any(step.startswith(cue) for cue in CUE_PREFIXES[behavior])
            assert step.endswith(" holds.") and "  " not in step


def test_traces_round_trip_and_hf_dataset(tmp_path):
    traces = synthesize(questions(3), GRAPH, MockBackend(responder=answers_at(2)), SynthConfig(max_steps=6),
                        progress=False)
    path = tmp_path / "t.jsonl"
    save_traces(traces, path)
    loaded = load_traces(path)
    assert [t.steps for t in loaded] == [t.steps for t in traces]
    assert [t.behaviors for t in loaded] == [t.behaviors for t in traces]
    assert loaded[0].model == "molesyn-test-graph" and loaded[0].meta["graph"] == "test-graph"
    assert loaded[0].meta["config"]["max_steps"] == 6 and loaded[0].meta["walk"] == 0
    dataset = to_hf_dataset(loaded)
    assert set(dataset.column_names) >= {"prompt", "completion", "answer"}
    row = dataset[0]
    assert row["prompt"] == traces[0].question
    assert row["completion"] == ("<think>\n" + "\n\n".join(traces[0].steps) + "\n</think>\n\n\\boxed{7}")
    chat = to_hf_dataset(loaded, conversational=True)[0]
    assert chat["prompt"][0]["role"] == "user" and chat["completion"][0]["role"] == "assistant"


def test_resume_through_the_cache(tmp_path):
    config = SynthConfig(max_steps=6)
    crashing = CachedBackend(MockBackend(fail_after=12), cache_dir=tmp_path, chunk_size=4, progress=False)
    with pytest.raises(RuntimeError):
        synthesize(questions(8), GRAPH, crashing, config, progress=False)
    inner = MockBackend()
    resumed = synthesize(questions(8), GRAPH, CachedBackend(inner, cache_dir=tmp_path, progress=False), config,
                         progress=False)
    fresh_backend = MockBackend()
    fresh = synthesize(questions(8), GRAPH, fresh_backend, config, progress=False)
    assert [t.to_record() for t in resumed] == [t.to_record() for t in fresh]
    assert inner.stats.requests == fresh_backend.stats.requests - 12  # the 12 answered before the crash are reused


# ------------------------------------------------------------------------------------------------------ fidelity
class OracleLabeler:
    name = "oracle"

    def label(self, traces):
        return [list(t.behaviors) for t in traces]


class ConstantLabeler:
    name = "constant"

    def label(self, traces):
        return [["N"] * len(t.steps) for t in traces]


def test_fidelity_measures():
    traces = synthesize(questions(60), GRAPH, MockBackend(), SynthConfig(max_steps=10), progress=False)
    oracle = fidelity(traces, GRAPH, OracleLabeler())
    assert oracle.agreement["all"] == 1.0 and oracle.pearson_labelled == oracle.pearson_requested
    assert oracle.pearson_requested > 0.8
    assert 0 < oracle.answer_rate <= 1 and oracle.mean_steps == np.mean([len(t.steps) for t in traces])
    constant = fidelity(traces, GRAPH, ConstantLabeler())
    assert constant.agreement["N"] == 1.0 and constant.agreement["D"] == 0.0
    assert constant.pearson_labelled < oracle.pearson_labelled - 0.5
    lexical = fidelity(traces, GRAPH, "lexical")
    assert lexical.labeler == "lexical" and 0 <= lexical.agreement["all"] <= 1
    assert "pearson" in lexical.summary() and json.dumps(lexical.to_dict(), default=float)


# ----------------------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def cli_files(tmp_path):
    graph_path = GRAPH.save(tmp_path / "graph.json")
    questions_path = tmp_path / "q.jsonl"
    questions_path.write_text("".join(json.dumps({"question": f"Ann has {i} pens and gets 3 more. How many?",
                                                  "answer": f"The total.\n#### {i + 3}"}) + "\n" for i in range(6)))
    return tmp_path, graph_path, questions_path


def test_cli_synth_and_fidelity_end_to_end(cli_files, capsys):
    tmp_path, graph_path, questions_path = cli_files
    out = tmp_path / "traces.jsonl"
    args = ["synth", "--graph", str(graph_path), "--questions", str(questions_path), "--backend", "mock", "--n", "4",
            "--max-steps", "5", "--seed", "1", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "wrote 4 traces" in first and "0 hits" in first
    traces = load_traces(out)
    assert len(traces) == 4 and all(1 <= len(t.steps) <= 5 for t in traces)
    assert traces[0].answer == "3" and load_graph(graph_path).name == "test-graph"
    assert main(args) == 0
    assert ", 0 generated" in capsys.readouterr().out  # the rerun is served from the cache
    assert main(["fidelity", str(out), "--graph", str(graph_path), "--json", str(tmp_path / "f.json")]) == 0
    printed = capsys.readouterr().out
    assert f"pearson(labelled graph [{DEFAULT_LABELER}], target)" in printed and "agreement" in printed
    assert json.loads((tmp_path / "f.json").read_text())["n_traces"] == 4


def test_cli_bad_inputs_give_one_line_errors(cli_files, capsys):
    tmp_path, graph_path, questions_path = cli_files
    base = ["synth", "--graph", str(graph_path), "--backend", "mock", "--out", str(tmp_path / "o.jsonl"), "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(base + ["--questions", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.jsonl: no such file" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?", "answer": "1"}\n{"question": "broken\n')
    assert main(base + ["--questions", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2: not valid JSON" in err
    noq = tmp_path / "noq.jsonl"
    noq.write_text('{"answer": "1"}\n')
    assert main(base + ["--questions", str(noq)]) == 2
    assert f"{noq}:1:" in capsys.readouterr().err
    assert main(["synth", "--graph", str(tmp_path / "nograph.json"), "--questions", str(questions_path),
                 "--backend", "mock", "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "nograph.json: no such file" in capsys.readouterr().err
    assert main(base + ["--questions", str(questions_path), "--backend", "nope"]) == 2
    assert "unknown generation backend 'nope'" in capsys.readouterr().err
    assert main(base + ["--questions", str(questions_path), "--min-steps", "9", "--max-steps", "3"]) == 2
    assert "bad synthesis settings" in capsys.readouterr().err


def test_cli_lab_backend_missing_is_a_clear_error(cli_files, capsys, monkeypatch):
    from molesyn_lib import backends

    tmp_path, graph_path, questions_path = cli_files
    monkeypatch.delitem(backends.BACKENDS, "lab", raising=False)
    monkeypatch.setitem(backends.PLUGIN_MODULES, "lab", "molesyn_lib.no_such_lab_module")
    assert main(["synth", "--graph", str(graph_path), "--questions", str(questions_path), "--backend", "lab",
                 "--out", str(tmp_path / "o.jsonl"), "--no-cache", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'lab' generation backend is not registered" in err and "not installed" in err


def test_cli_lab_backend_when_present(tmp_path, capsys):
    from molesyn_lib.backends import available_backends, get_backend

    try:
        get_backend("lab")
    except Exception:  # noqa: BLE001 - the lab engineer's module may not be there yet
        pytest.skip("no lab backend registered")
    assert "lab" in available_backends()
    questions_path = tmp_path / "lab.jsonl"
    questions_path.write_text('{"question": "1+8-3 (mod 10)", "answer": "6"}\n{"question": "4+4 (mod 10)", '
                              '"answer": "8"}\n')
    out = tmp_path / "lab_traces.jsonl"
    assert main(["synth", "--graph", str(GRAPH.save(tmp_path / "g.json")), "--questions", str(questions_path),
                 "--backend", "lab", "--max-steps", "8", "--out", str(out), "--no-cache", "--quiet"]) == 0
    traces = load_traces(out)
    assert len(traces) == 2 and all(t.steps for t in traces)


# ------------------------------------------------------------------------------------------------------ SmolLM2
@pytest.mark.slow
def test_smollm2_synthesis_two_questions_three_steps(tmp_path):
    from molesyn_lib.backends import get_backend

    backend = get_backend("transformers", batch_size=2, progress=False)
    config = SynthConfig(max_steps=3, min_steps=1, max_new_tokens=24)
    traces = synthesize(questions(2), GRAPH, backend, config, progress=False)
    assert backend.stats.requests >= 2
    for trace in traces:
        assert 1 <= len(trace.steps) <= 3 and all(s.strip() for s in trace.steps)
        assert trace.behaviors == walk_plan(GRAPH, config, trace.meta["walk"])[:len(trace.steps)]
    assert to_hf_dataset(traces).num_rows == len(traces)
