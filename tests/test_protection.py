"""Tests of the Chapter 5 helpers: the lead-sentences stand-in summariser, compression sweeps (equal to the curve
helper, bootstrap over traces), lab-trace compression and cached protection runs on a micro student."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from molesyn_lib.backends import GenerationRequest
from molesyn_lib.compress import SUMMARY_PROMPT, compression_curve, get_compressor
from molesyn_lib.errors import MolesynError
from molesyn_lib.protection import (
    ProtectionRun,
    compress_lab_traces,
    lead_sentences,
    lead_sentences_responder,
    lead_summary_options,
    protection_grid,
    run_protection,
    run_protection_grid,
    sweep_compression,
)
from molesyn_lib.traces import Trace


@dataclass
class WordCounter:
    """One token per whitespace-separated word."""

    name: str = "words"

    def count(self, text: str) -> int:
        return len(text.split())


STEPS = ["Compute 2 + 3 = 5. Then write it down.", "Wait, let me check: 2 + 3 = 5.", "Therefore the total is 5.",
         "Alternatively, try 3 + 2.", "Hmm, maybe I made a mistake earlier.", "So the answer is 5.",
         "Let me verify once more: 5 is right.", "Thus 5 times 1 is 5, which means the result holds."]


def corpus(n: int = 6) -> list[Trace]:
    """Traces with different step orders (so their lexical labels differ)."""
    rng = np.random.default_rng(0)
    return [Trace(trace_id=f"t{i}", steps=[STEPS[j] for j in rng.permutation(len(STEPS))[: 4 + i % 4]],
                  question="What is 2 + 3?", final="\\boxed{5}") for i in range(n)]


def test_lead_sentences_keeps_leading_sentences_within_the_budget():
    text = "One two three. Four five six seven.\nEight nine."
    assert lead_sentences(text, 3) == ["One two three."]
    assert lead_sentences(text, 7) == ["One two three.", "Four five six seven."]
    assert lead_sentences(text, 100) == ["One two three.", "Four five six seven.", "Eight nine."]
    assert lead_sentences(text, 2) == ["One two"]  # the first sentence alone is cut to the budget


def test_lead_responder_reads_the_summary_prompt_and_rejects_other_requests():
    prompt = SUMMARY_PROMPT.format(question="q", part=1, parts=1, chunk="A b c. D e.\n\nF g h i.", words=5)
    request = GenerationRequest(messages=({"role": "user", "content": prompt},), max_new_tokens=50)
    assert lead_sentences_responder(request) == "A b c.\nD e."
    with pytest.raises(MolesynError, match="summary prompts only"):
        lead_sentences_responder(GenerationRequest(messages=({"role": "user", "content": "hello"},),
                                                   max_new_tokens=5))


def test_summarize_with_the_stand_in_reduces_tokens_more_at_higher_strength(tmp_cache):
    traces = corpus(3)
    compressor = get_compressor("summarize", tokenizer=WordCounter(), chunk_tokens=12, **lead_summary_options())
    weak, strong = (compressor.compress_batch(traces, s) for s in (0.25, 0.75))
    for result in (*weak, *strong):
        original = " ".join(result.original.steps)
        assert all(" ".join(step.split()) in " ".join(original.split()) for step in result.trace.steps)
    assert 0 < np.mean([c.token_reduction for c in weak]) < np.mean([c.token_reduction for c in strong])


@pytest.mark.parametrize("method", ["extractive", "merge", "truncate", "keep_every"])
def test_sweep_rows_equal_the_compression_curve(method):
    traces, strengths = corpus(), [0.0, 0.3, 0.6, 0.9]
    sweep = sweep_compression(traces, [method], strengths, tokenizer=WordCounter(), progress=False)
    expected = compression_curve(traces, method, strengths, tokenizer=WordCounter(), progress=False)
    for ours, theirs in zip(sweep.rows(), expected, strict=True):
        for key in ("strength", "token_reduction", "token_reduction_mean", "n_steps", "n_steps_original",
                    "n_traces", "js_transition", "js_marginal", "original_tokens", "compressed_tokens"):
            assert ours[key] == pytest.approx(theirs[key]), key
        assert ours["pearson"] == pytest.approx(theirs["pearson"], nan_ok=True)


def test_sweep_rows_on_a_resample_equal_the_curve_on_the_resampled_traces():
    traces = corpus()
    sweep = sweep_compression(traces, ["extractive"], [0.5], tokenizer=WordCounter(), progress=False)
    sample = [0, 0, 3, 5, 5, 5]
    expected = compression_curve([traces[i] for i in sample], "extractive", [0.5], tokenizer=WordCounter(),
                                 progress=False)[0]
    row = sweep.rows(sample)[0]
    for key in ("token_reduction", "pearson", "js_transition", "js_marginal", "n_steps"):
        assert row[key] == pytest.approx(expected[key]), key


def test_bootstrap_points_are_seeded_and_cover_every_method_and_repeat():
    sweep = sweep_compression(corpus(), ["truncate", "keep_every"], [0.0, 0.25, 0.5, 0.75], tokenizer=WordCounter(),
                              progress=False)
    points = sweep.bootstrap_points(target=0.45, repeats=5, seed=3)
    assert len(points) == 10 and {p["method"] for p in points} == {"truncate", "keep_every"}
    assert points == sweep.bootstrap_points(target=0.45, repeats=5, seed=3)
    assert points != sweep.bootstrap_points(target=0.45, repeats=5, seed=4)
    reached = [p for p in points if p["reachable"]]
    assert reached and all(0.0 <= p["js_marginal"] <= 1.0 and 0.0 < p["strength"] < 1.0 for p in reached)


def test_compress_lab_traces_uses_gold_behaviours_and_keeps_the_answer():
    from molesyn_lib.lab import Teacher, make_splits, render_completion

    traces = Teacher("r1", calibrate=False).traces(make_splits(40, 5).train, seed=0)
    compressed = compress_lab_traces(traces, "extractive", 1.0, valid_chains=False)  # the compressor's own choice
    for result in compressed:
        assert result.trace.behaviors == [b for b in result.original.behaviors if b == "D"] or \
            len(result.trace.steps) == 1
        assert result.trace.final == result.original.final and result.tokenizer == "lab-char"
    assert all(render_completion(c.trace.steps, c.trace.final).endswith(";" + t.final)
               for c, t in zip(compressed, traces))
    single = [c for c in compressed if len(c.trace.steps) == 1]  # one token per character of the kept step
    assert single and all(c.compressed_tokens == len(c.trace.steps[0]) for c in single)
    with pytest.raises(MolesynError, match="not 'merge'"):
        compress_lab_traces(traces, "merge", 0.5)


def test_protection_runs_validate_and_key_by_content():
    runs = protection_grid("smoke", "r1", methods=("extractive", "truncate"), strengths=(0.5,), seeds=(0, 1))
    assert [(r.method, r.strength, r.seed) for r in runs] == [
        ("none", 0.0, 0), ("none", 0.0, 1), ("extractive", 0.5, 0), ("extractive", 0.5, 1), ("truncate", 0.5, 0),
        ("truncate", 0.5, 1)]
    assert len({r.key() for r in runs}) == 6 and runs[0].base.probe_points == 0
    relabelled = ProtectionRun(runs[2].base, "extractive", 0.5, condition="another label")
    assert relabelled.key() == runs[2].key() and relabelled.label() == "another label"
    with pytest.raises(MolesynError, match="unknown lab compression"):
        ProtectionRun(runs[0].base, "summarize", 0.5)
    with pytest.raises(MolesynError, match="strength 0"):
        ProtectionRun(runs[0].base, "none", 0.5)


@pytest.mark.slow
def test_protection_run_trains_at_equal_budget_and_is_cached(tmp_cache):
    from molesyn_lib.lab import TaskConfig

    runs = protection_grid("smoke", "r1", methods=("extractive",), strengths=(0.75,), seeds=(0,),
                           task=TaskConfig(length=2), n_train=100, n_test=10, student="micro", token_budget=3000,
                           inject=4, references=("r1",))
    full, compressed = run_protection_grid(runs, workers=1, progress=False)
    assert not full["cached"] and full["supervised_token_reduction"] == 0.0 and full["data_pearson_original"] > 0.99
    assert compressed["supervised_token_reduction"] > 0.1 and compressed["step_token_reduction"] > 0.1
    side = {name: r["data_share_R"] + r["data_share_E"] for name, r in (("full", full), ("compressed", compressed))}
    assert side["compressed"] < 0.5 * side["full"]
    for record in (full, compressed):  # equal supervised-token budgets (up to one batch)
        assert abs(record["completion_tokens"] - 3000) <= 8 * record["supervised_tokens_per_trace"]
        assert {"acc_greedy", "pearson_r1", "pearson_data", "pearson_original", "share_R"} <= set(record)
    again = run_protection(ProtectionRun(runs[1].base, "extractive", 0.75, condition="x"))
    assert again["cached"] and again["condition"] == "x" and again["student_graph"] == compressed["student_graph"]


def test_point_intervals_bracket_the_point_estimate():
    sweep = sweep_compression(corpus(12), ["extractive", "merge"], [0.0, 0.25, 0.5, 0.75, 1.0],
                              tokenizer=WordCounter(), progress=False)
    rows = {r["method"]: r for r in sweep.point_intervals(target=0.2, repeats=30, seed=0, level=0.9)}
    extractive = rows["extractive"]
    assert extractive["reachable"] and extractive["reachable_share"] > 0.5
    assert extractive["js_marginal_lo"] <= extractive["js_marginal"] <= extractive["js_marginal_hi"]
    merge = rows["merge"]  # merging removes boundaries, not text: it never reaches a 20% reduction
    assert not merge["reachable"] and merge["reachable_share"] == 0.0 and merge["pearson_lo"] is None
