"""Labellers: registry, lexical rules, embedding classifier mechanics (fake encoder), gold labeller."""
from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest

from molesyn_lib.embeddings import EmbeddingCache, StepEncoder
from molesyn_lib.errors import CacheError, InputError
from molesyn_lib.labelers import available_labelers, get_labeler, label_corpus
from molesyn_lib.labelers.embedding import EmbeddingLabeler
from molesyn_lib.traces import Trace


def test_registry():
    assert {"lexical", "embedding", "llm", "gold"} <= set(available_labelers())
    with pytest.raises(ValueError, match="unknown labeller 'nope'"):
        get_labeler("nope")


@pytest.mark.parametrize("step, expected", [
    ("Wait, let me double-check the second equation: 3 * 7 is 21, not 24.", "R"),
    ("Let me verify by plugging x = 2 back into the equation.", "R"),
    ("Alternatively, maybe we can use generating functions instead.", "E"),
    ("What if the triangle is obtuse? Then the circumcenter lies outside.", "E"),
    ("Hmm, maybe there's another way to count these paths.", "E"),
    ("Therefore, since both factors are positive, x must be greater than 3.", "D"),
    ("So the total number of arrangements is 5! / 2 = 60.", "D"),
    ("12 + 30 = 42", "N"),
])
def test_lexical_rules(step, expected):
    assert get_labeler("lexical").label_step(step, position=3) == expected


def test_lexical_first_step_is_normal_unless_cued():
    labeler = get_labeler("lexical")
    assert labeler.label_step("The problem asks for the number of divisors of 360.", 0) == "N"
    assert labeler.label_step("Wait, let me double-check the problem statement first.", 0) == "R"


def test_label_corpus_checks_shapes():
    traces = [Trace("a", ["So x = 2.", "Wait, check."]), Trace("b", ["Alternatively, try y."])]
    labels = label_corpus(traces, "lexical")
    assert [len(x) for x in labels] == [2, 1]

    class Broken:
        name = "broken"

        def label(self, traces):
            return [["N"] for _ in traces]

    with pytest.raises(RuntimeError, match="returned 1 labels for 2 steps"):
        label_corpus(traces, Broken())


def test_gold_labeler():
    assert get_labeler("gold").label([Trace("a", ["x"], behaviors=["E"])]) == [["E"]]
    with pytest.raises(InputError, match="has no 'gold' behaviours"):
        get_labeler("gold").label([Trace("a", ["x"], source="f.jsonl:3")])


class FakeEncoder(StepEncoder):
    """A deterministic stand-in for MiniLM: bag of hashed words, normalised (no model load)."""

    def encode_raw(self, texts):
        out = np.zeros((len(texts), 64), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.strip(".,:").encode()).hexdigest(), 16) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _toy_traces(n=30, seed=0):
    rng = np.random.default_rng(seed)
    templates = {"N": "compute {a} plus {b} equals value", "D": "therefore it follows that {a} implies {b}",
                 "R": "wait let me check step {a} again carefully", "E": "alternatively maybe try another route {b}"}
    traces = []
    for t in range(n):
        behaviors = list(rng.choice(list("NDRE"), size=8))
        steps = [templates[b].format(a=rng.integers(9), b=rng.integers(9)) for b in behaviors]
        traces.append(Trace(f"t{t}", steps, behaviors=behaviors))
    return traces


def test_embedding_classifier_learns_and_caches(tmp_cache):
    encoder = FakeEncoder(cache_path=tmp_cache / "emb.sqlite", show_progress=False)
    train, test = _toy_traces(30, 0), _toy_traces(10, 1)
    labeler = EmbeddingLabeler(encoder=encoder, train_docs=train, cache_model=True)
    predicted = labeler.label(test)
    accuracy = np.mean([p == g for t, ps in zip(test, predicted) for p, g in zip(ps, t.behaviors)])
    assert accuracy > 0.9
    assert encoder.misses > 0
    misses = encoder.misses
    again = EmbeddingLabeler(encoder=encoder, train_docs=train, cache_model=True)
    assert again.label(test) == predicted
    assert encoder.misses == misses  # every vector came from the cache the second time
    assert len(list((tmp_cache / "labelers").glob("embedding-*.pkl"))) == 1


def test_embedding_prototype_mode(tmp_cache):
    encoder = FakeEncoder(cache_path=tmp_cache / "emb.sqlite", show_progress=False)
    labels = EmbeddingLabeler(mode="prototype", encoder=encoder).label(_toy_traces(2))
    assert all(set(x) <= set("NDRE") for x in labels)


def test_embedding_cache_unwritable(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(CacheError, match="cannot open the embedding cache"):
        EmbeddingCache(blocker / "sub" / "emb.sqlite")


@pytest.mark.slow
def test_real_minilm_encoder_and_cache(tmp_cache):
    encoder = StepEncoder(cache_path=tmp_cache / "emb.sqlite", show_progress=False)
    vectors = encoder.encode(["A man is eating food.", "A man is eating a piece of bread.",
                              "A woman is playing violin."])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > 0.6 > vectors[0] @ vectors[2]
    again = encoder.encode(["A woman is playing violin."])
    np.testing.assert_allclose(again[0], vectors[2], atol=1e-6)
    assert encoder.hits == 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_classifier_pickle_is_refitted_not_a_traceback(tmp_cache, damage):
    """A cached classifier pickle cut short (a killed run before atomic writes, a full disk) or overwritten is
    detected on load: the labeller refits, labels as before and replaces the file with a complete one."""
    encoder = FakeEncoder(cache_path=tmp_cache / "emb.sqlite", show_progress=False)
    train, test = _toy_traces(30, 0), _toy_traces(10, 1)
    predicted = EmbeddingLabeler(encoder=encoder, train_docs=train, cache_model=True).label(test)
    (path,) = (tmp_cache / "labelers").glob("embedding-*.pkl")
    good = path.read_bytes()
    path.write_bytes({"truncated": good[: len(good) // 2], "garbage": b"not a pickle at all", "empty": b""}[damage])
    assert EmbeddingLabeler(encoder=encoder, train_docs=train, cache_model=True).label(test) == predicted
    assert pickle.loads(path.read_bytes()) is not None  # the damaged file was replaced by a complete one


def test_interrupted_encoding_keeps_the_chunks_it_finished(tmp_cache):
    """The embedding cache stores each encoded chunk as it completes: a run stopped by Ctrl-C in its third chunk
    leaves two chunks cached, and the rerun encodes only the rest."""

    class InterruptedEncoder(FakeEncoder):
        calls = 0

        def encode_raw(self, texts):
            type(self).calls += 1
            if type(self).calls == 3:
                raise KeyboardInterrupt
            return super().encode_raw(texts)

    texts = [f"step number {i} of a long trace" for i in range(50)]
    encoder = InterruptedEncoder(cache_path=tmp_cache / "emb.sqlite", batch_size=1, show_progress=False)  # chunks of 8
    with pytest.raises(KeyboardInterrupt):
        encoder.encode(texts)
    rerun = FakeEncoder(cache_path=tmp_cache / "emb.sqlite", batch_size=1, show_progress=False)
    vectors = rerun.encode(texts)
    assert rerun.hits == 16 and rerun.misses == 34
    assert np.allclose(vectors, FakeEncoder(cache=False).encode(texts))
