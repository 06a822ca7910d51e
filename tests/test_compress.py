"""Tests of the compressors (selected steps, provenance, exact token reductions), the summariser with a fake and a mock
backend, the structure-disruption measures, the curve helpers and the ``molesyn compress`` command."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from molesyn_lib.cli import main
from molesyn_lib.compress import (
    CompressedTrace,
    HFTokenCounter,
    RegexTokenCounter,
    SummarizeCompressor,
    available_compressors,
    compression_curve,
    get_compressor,
    get_token_counter,
    reduction_point,
    save_compressed,
    split_sentences,
    stride_starts,
    structure_disruption,
    trace_tokens,
)
from molesyn_lib.errors import MolesynError
from molesyn_lib.traces import Trace, load_traces


@dataclass
class WordCounter:
    """Test token counter: one token per whitespace-separated word (the step separator costs nothing)."""

    name: str = "words"

    def count(self, text: str) -> int:
        return len(text.split())


STEPS = ["Compute 2 + 3 = 5.",                 # N, 6 words
         "Wait, let me check: 2 + 3 = 5.",     # R, 9 words
         "Therefore the total is 5.",          # D, 5 words
         "Alternatively, try 3 + 2.",          # E, 5 words
         "So the answer is 5."]                # D, 5 words
LABELS = ["N", "R", "D", "E", "D"]
TOTAL_WORDS = 30


def make_trace(behaviors: list[str] | None = None, steps: list[str] | None = None) -> Trace:
    return Trace(trace_id="t1", steps=list(steps or STEPS), model="teacher", question="What is 2 + 3?", answer="5",
                 final="\\boxed{5}", behaviors=behaviors)


def kept_words(indices: list[int]) -> int:
    return sum(len(STEPS[i].split()) for i in indices)


def test_registry_lists_every_method():
    assert set(available_compressors()) == {"extractive", "merge", "truncate", "keep_every", "summarize"}
    with pytest.raises(MolesynError, match="unknown compression method"):
        get_compressor("zip")


def test_regex_proxy_counts_exactly():
    counter = RegexTokenCounter()
    assert counter.count("Compute 2 + 3 = 5.") == 7          # Compute, 2, +, 3, =, 5, .
    assert counter.count("Alternatively, 12") == 5           # Alternat|ively (13 letters = 2), ",", 1, 2
    assert counter.count("") == 0
    assert trace_tokens(["ab", "cd"], counter) == 2           # the blank-line separator has no token in the proxy


def test_hf_tokenizer_counter_counts_real_tokens():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(["<unk>", *"abcdefghijklmnopqrstuvwxyz .\n"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    counter = get_token_counter(tokenizer)
    assert isinstance(counter, HFTokenCounter)
    assert counter.count("ab c.") == 5                        # one token per character
    assert trace_tokens(["ab", "cd"], counter) == 6           # 2 + 2 + the two-character separator


def test_stride_starts_keep_a_share_of_one_minus_strength():
    assert stride_starts(10, 0.0) == list(range(10))
    assert stride_starts(10, 0.5) == [0, 2, 4, 6, 8]
    assert stride_starts(10, 0.6) == [0, 2, 5, 7]           # stride 2.5
    assert stride_starts(8, 0.25) == [0, 1, 2, 4, 5, 6]     # stride 4/3: every 4th step dropped
    assert stride_starts(10, 1.0) == [0] and stride_starts(0, 0.5) == []


def test_truncate_keeps_a_prefix_with_exact_reduction():
    result = get_compressor("truncate", tokenizer=WordCounter()).compress(make_trace(), 0.5)
    assert result.trace.steps == STEPS[:3]                    # floor(0.5 * 5) = 2 removed
    assert result.provenance == [[0], [1], [2]]
    assert (result.original_tokens, result.compressed_tokens) == (TOTAL_WORDS, kept_words([0, 1, 2]))
    assert result.token_reduction == pytest.approx(1 - 20 / 30)
    assert get_compressor("truncate", tokenizer=WordCounter()).compress(make_trace(), 1.0).trace.steps == STEPS[:1]


def test_keep_every_keeps_every_kth_step():
    compressor = get_compressor("keep_every", tokenizer=WordCounter())
    assert compressor.compress(make_trace(), 0.5).provenance == [[0], [2], [4]]
    quarter = compressor.compress(make_trace(), 0.75)
    assert quarter.provenance == [[0], [4]]
    assert quarter.token_reduction == pytest.approx(1 - kept_words([0, 4]) / TOTAL_WORDS)
    assert compressor.compress(make_trace(), 1.0).provenance == [[0]]


def test_extractive_drops_reflection_and_exploration_first_then_normal():
    compressor = get_compressor("extractive", tokenizer=WordCounter())
    # R/E/N steps: 3; strength 0.5 -> floor(1.5) = 1 removed: the first of the evenly spaced R/E steps (step 1)
    half = compressor.compress(make_trace(), 0.5, LABELS)
    assert half.provenance == [[0], [2], [3], [4]]
    assert half.token_reduction == pytest.approx(9 / 30)
    # strength 2/3 -> 2 removed: both R and E
    assert compressor.compress(make_trace(), 2 / 3, LABELS).provenance == [[0], [2], [4]]
    # strength 1: only the deep-reasoning backbone remains
    full = compressor.compress(make_trace(), 1.0, LABELS)
    assert full.trace.steps == [STEPS[2], STEPS[4]]
    assert full.token_reduction == pytest.approx(1 - 10 / 30)


def test_extractive_uses_trace_labels_and_carries_them_over():
    result = get_compressor("extractive", tokenizer=WordCounter()).compress(make_trace(LABELS), 2 / 3)
    assert result.trace.behaviors == ["N", "D", "D"]


def test_extractive_labels_with_a_labeller_when_no_behaviours_are_given():
    compressor = get_compressor("extractive", tokenizer=WordCounter(), labeler="lexical")
    result = compressor.compress(make_trace(), 1.0)
    assert 1 <= len(result.trace.steps) < len(STEPS)


def test_merge_concatenates_runs_and_deduplicates_repeated_sentences():
    steps = ["A one. B two.", "B two. C three.", "D four."]
    trace = make_trace(steps=steps)
    result = get_compressor("merge", tokenizer=WordCounter()).compress(trace, 0.5)  # groups of 2
    assert result.trace.steps == ["A one. B two. C three.", "D four."]
    assert result.provenance == [[0, 1], [2]]
    assert result.token_reduction == pytest.approx(1 - 8 / 10)
    assert result.trace.behaviors is None                     # merged steps have no single gold label
    plain = get_compressor("merge", tokenizer=WordCounter(), dedup="none").compress(trace, 0.5)
    assert plain.trace.steps[0] == "A one. B two. B two. C three."
    assert plain.token_reduction == 0.0
    across = get_compressor("merge", tokenizer=WordCounter(), dedup="trace").compress(
        make_trace(steps=["A one.", "B two.", "A one. E five."]), 0.5)
    assert across.trace.steps == ["A one. B two.", "E five."]


def test_split_sentences_round_trips():
    text = "First. Second!\nThird line\n\nFourth? end"
    assert "".join(split_sentences(text)) == text
    assert len(split_sentences(text)) == 5


def test_strength_zero_is_identity_and_out_of_range_is_rejected():
    class Exploding:
        def generate(self, requests):
            raise AssertionError("no generation at strength 0")

    for method, options in [("truncate", {}), ("keep_every", {}), ("merge", {}), ("extractive", {}),
                            ("summarize", {"backend": Exploding()})]:
        result = get_compressor(method, tokenizer=WordCounter(), **options).compress(make_trace(LABELS), 0.0)
        assert result.trace.steps == STEPS and result.token_reduction == 0.0
    with pytest.raises(MolesynError, match=r"\[0, 1\]"):
        get_compressor("truncate", tokenizer=WordCounter()).compress(make_trace(), 1.5)


@dataclass
class FakeBackend:
    """Answers every summarisation request with two list lines and records the requests."""

    requests: list = field(default_factory=list)
    name: str = "fake"
    identity: str = "fake"

    def generate(self, requests):
        self.requests += list(requests)
        return [f"- summary {len(self.requests) - len(requests) + i}.\n\n2) result kept." for i in range(len(requests))]


def test_summarize_chunks_prompts_and_keeps_provenance():
    backend = FakeBackend()
    compressor = SummarizeCompressor(backend=backend, chunk_tokens=12, tokenizer=WordCounter())
    result = compressor.compress(make_trace(), 0.6)
    # chunks of >= 12 words: [0, 1] (15), [2, 3, 4] (15)
    assert compressor.chunks(make_trace()) == [[0, 1], [2, 3, 4]]
    assert len(backend.requests) == 2
    prompt = backend.requests[0].messages[-1]["content"]
    assert "What is 2 + 3?" in prompt and STEPS[1] in prompt and "Part 1 of 2" in prompt
    # target 0.4 * 15 = 6 tokens, floored at 8; asked in words: 0.75 * 8 = 6
    assert "at most 6 words" in prompt
    assert backend.requests[0].max_new_tokens == int(1.5 * 8) + 16
    assert result.trace.steps == ["summary 0.", "result kept.", "summary 1.", "result kept."]
    assert result.provenance == [[0, 1], [0, 1], [2, 3, 4], [2, 3, 4]]
    assert result.token_reduction == pytest.approx(1 - 8 / 30)


def test_summarize_through_the_mock_backend_and_its_cache(tmp_cache):
    compressor = get_compressor("summarize", backend="mock", script=["Short summary. Result 5."], chunk_tokens=10,
                                tokenizer=WordCounter())
    first = compressor.compress(make_trace(), 0.5)
    assert first.trace.steps and all(s == "Short summary. Result 5." for s in first.trace.steps)
    assert compressor.backend.misses == len(first.trace.steps)
    again = get_compressor("summarize", backend="mock", script=["Short summary. Result 5."], chunk_tokens=10,
                           tokenizer=WordCounter())
    second = again.compress(make_trace(), 0.5)
    assert second.trace.steps == first.trace.steps
    assert again.backend.hits == len(first.trace.steps) and again.backend.misses == 0


def test_compressed_traces_round_trip_through_jsonl(tmp_path):
    results = [get_compressor("keep_every", tokenizer=WordCounter()).compress(make_trace(LABELS), 0.5)]
    path = tmp_path / "out.jsonl"
    assert save_compressed(results, path) == 1
    loaded = load_traces(path)
    assert loaded[0].steps == results[0].trace.steps
    assert loaded[0].behaviors == ["N", "D", "D"]
    info = loaded[0].meta["compression"]
    assert info["method"] == "keep_every" and info["provenance"] == [[0], [2], [4]]
    assert info["token_reduction"] == pytest.approx(results[0].token_reduction)


def test_structure_disruption_identity_and_change():
    labels = [["N", "D", "R", "D", "E", "N"], ["N", "E", "D", "R", "N"]]
    same = structure_disruption(labels, labels)
    assert same["pearson"] == pytest.approx(1.0)
    assert same["js_transition"] == pytest.approx(0.0, abs=1e-9)
    assert same["js_marginal"] == pytest.approx(0.0, abs=1e-9)
    changed = structure_disruption(labels, [["N", "D", "D", "D"], ["N", "D"]])
    assert changed["pearson"] < 0.9 and changed["js_transition"] > 0.1 and changed["js_marginal"] > 0.1


def test_compression_curve_rows_and_identity_point():
    traces = [make_trace(), Trace(trace_id="t2", steps=STEPS[::-1], question="q")]
    rows = compression_curve(traces, "truncate", [0.0, 0.5], labeler="lexical", tokenizer=WordCounter(),
                             progress=False)
    assert [r["strength"] for r in rows] == [0.0, 0.5]
    assert rows[0]["token_reduction"] == 0.0 and rows[0]["pearson"] == pytest.approx(1.0)
    assert rows[0]["js_transition"] == pytest.approx(0.0, abs=1e-9)
    assert rows[1]["token_reduction"] > 0 and rows[1]["n_steps"] == 6 and rows[1]["n_steps_original"] == 10
    assert {"method", "tokenizer", "labeler", "js_marginal", "n_traces"} <= set(rows[1])


def test_reduction_point_interpolates_and_reports_unreachable():
    rows = [{"method": "m", "strength": s, "token_reduction": r, "pearson": p, "js_transition": j,
             "js_marginal": j, "n_steps": n}
            for s, r, p, j, n in [(0.0, 0.0, 1.0, 0.0, 10), (0.4, 0.3, 0.9, 0.1, 8), (0.8, 0.6, 0.5, 0.3, 4)]]
    point = reduction_point(rows, 0.45)[0]
    assert point["reachable"] and point["strength"] == pytest.approx(0.6)
    assert point["pearson"] == pytest.approx(0.7) and point["n_steps"] == pytest.approx(6)
    far = reduction_point(rows, 0.9)[0]
    assert not far["reachable"] and far["strength"] is None and far["max_token_reduction"] == 0.6


def _write_traces(path, traces):
    path.write_text("".join(json.dumps({"id": t.trace_id, "question": t.question, "steps": t.steps}) + "\n"
                            for t in traces))


def test_cli_round_trip(tmp_path, capsys):
    source = tmp_path / "traces.jsonl"
    _write_traces(source, [make_trace(), Trace(trace_id="t2", steps=STEPS[::-1], question="q")])
    out = tmp_path / "compressed.jsonl"
    code = main(["compress", str(source), "--method", "keep_every", "--strength", "0.5", "--tokenizer", "regex",
                 "--json", "--out", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    loaded = load_traces(out)
    assert len(loaded) == 2 and loaded[0].steps == [STEPS[0], STEPS[2], STEPS[4]]
    counter = RegexTokenCounter()
    before = 2 * trace_tokens(STEPS, counter)
    after = trace_tokens(loaded[0].steps, counter) + trace_tokens(loaded[1].steps, counter)
    assert result["token_reduction"] == pytest.approx(1 - after / before)
    assert result["tokenizer"] == "regex" and -1.0 <= result["pearson"] <= 1.0


@pytest.mark.parametrize("argv_tail, message", [
    (["--strength", "1.5"], "strength must be in [0, 1]"),
    (["--labeler", "nope"], "unknown labeller 'nope'"),
])
def test_cli_bad_options_are_one_line_errors(tmp_path, capsys, argv_tail, message):
    source = tmp_path / "traces.jsonl"
    _write_traces(source, [make_trace()])
    code = main(["compress", str(source), "--method", "truncate", "--tokenizer", "regex", "--out",
                 str(tmp_path / "o.jsonl"), *argv_tail])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("molesyn: error:") and message in err[-1]
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_bad_input_names_file_and_line(tmp_path, capsys):
    source = tmp_path / "broken.jsonl"
    source.write_text(json.dumps({"id": "a", "steps": ["x y z"]}) + "\n{not json\n")
    code = main(["compress", str(source), "--method", "truncate", "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"{source}:2:" in err[0]


def test_compressed_trace_reduction_of_empty_original():
    empty = CompressedTrace(trace=make_trace(), original=make_trace(), method="m", strength=0.5, provenance=[],
                            original_tokens=0, compressed_tokens=0, tokenizer="words")
    assert empty.token_reduction == 0.0


@pytest.mark.data
def test_curve_on_real_traces_truncate_tracks_strength():
    from molesyn_lib.sources import load_reasoningflow_traces

    corpus = load_reasoningflow_traces(files=("aime2024_5models.jsonl",), models=("QwQ-32B",), per_model_limit=3)
    rows = compression_curve(corpus, "truncate", [0.0, 0.5], tokenizer="regex", progress=False)
    assert rows[0]["pearson"] == pytest.approx(1.0)
    assert 0.3 < rows[1]["token_reduction"] < 0.7          # about half of the steps, about half of the tokens
    assert rows[1]["n_steps"] < rows[0]["n_steps"]
