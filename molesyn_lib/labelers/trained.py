"""The ``trained`` labeller (the default): frozen MiniLM step embeddings in context plus a small trained head.

It is trained on molesyn's annotated corpus of real steps (``annotation/``, 3,000+ steps of R1 / QwQ / gpt-oss /
V3 / Qwen2.5-Instruct, R1-distilled and instruct models and human solutions, two annotation passes and an
adjudication; see ``annotation/DATASHEET.md``). Features of step *t* of a trace (:func:`context_features`):

* the embeddings of step *t*, of step *t-1* and of step *t+1* (zeros past either end): what the step says and what
  it answers to or leads into;
* its cosine similarity to the previous step and to the step before that (a reflection *traces back* to what it
  checks; an exploration *departs* from it);
* the lexical labeller's cue scores (R, E, D) of the step, relative position, log length, first/last flags;
* TF-IDF word n-grams of the step, of its opening, and of the openings of its neighbours (:data:`TEXT_BLOCKS`):
  the opening words carry the discourse move, and they measured to add most (``benchmarks/README.md``).

The head is one multinomial logistic regression (balanced class weights) over those blocks, stored as plain arrays
and vocabularies in a small compressed ``.npz`` file (:data:`HEAD_PATH`, about 1 MB): no pickle, no copy of the
encoder. Frozen embeddings alone, an MLP head, stacking neighbour predictions and a fine-tuned cross-encoder were
measured against it (same document folds) and did not do better enough to pay for themselves. ``molesyn labeler train`` rebuilds it from the
corpus in one command (the embeddings are cached). :meth:`TrainedLabeler.predict_proba` gives a probability per
class; :meth:`TrainedLabeler.label` the most probable behaviour.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..behaviors import STATES
from ..embeddings import StepEncoder, default_encoder
from ..errors import InputError
from ..traces import Trace
from .base import register_labeler
from .lexical import LexicalLabeler

#: The committed head (trained by ``molesyn labeler train``).
HEAD_PATH = Path(__file__).with_name("heads") / "trained-v1.npz"
#: Bump when the feature layout changes (a head stores the version it was trained with).
FEATURE_VERSION = 1
N_EXTRA = 9


def _doc_and_indices(trace: Trace) -> tuple[list[str], list[int]]:
    """The step list to take context from and the indices of the trace's own steps in it. A window of the
    annotated corpus carries its whole document in ``meta["doc_steps"]`` (so the first step has its real
    predecessor); any other trace is its own document."""
    doc = trace.meta.get("doc_steps") if isinstance(trace.meta, dict) else None
    if doc:
        offset = int(trace.meta.get("offset", 0))
        return list(doc), list(range(offset, offset + len(trace.steps)))
    return list(trace.steps), list(range(len(trace.steps)))


def context_features(encoder: StepEncoder, traces: Sequence[Trace],
                     lexical: LexicalLabeler | None = None) -> np.ndarray:
    """The feature matrix of every step of ``traces`` (rows in trace order, then step order)."""
    lexical = lexical or LexicalLabeler()
    docs = [_doc_and_indices(t) for t in traces]
    # encode only what the features read: each step, the two before it and the one after it (each text once)
    needed: dict[str, None] = {}
    for doc, indices in docs:
        for i in indices:
            for j in range(max(i - 2, 0), min(i + 2, len(doc))):
                needed.setdefault(doc[j], None)
    texts = list(needed)
    vectors = encoder.encode(texts) if texts else np.zeros((0, 384), np.float32)
    dim = vectors.shape[1] if len(vectors) else 384
    row_of = {text: i for i, text in enumerate(texts)}
    zero = np.zeros(dim, np.float32)
    rows: list[np.ndarray] = []
    for doc, indices in docs:
        n = len(doc)
        for i in indices:
            own = vectors[row_of[doc[i]]]
            previous = vectors[row_of[doc[i - 1]]] if i > 0 else zero
            before = vectors[row_of[doc[i - 2]]] if i > 1 else zero
            following = vectors[row_of[doc[i + 1]]] if i + 1 < n else zero
            scores = lexical.scores(doc[i])
            extra = np.array([float(own @ previous), float(own @ before), scores["R"], scores["E"], scores["D"],
                              i / max(n - 1, 1), np.log1p(len(doc[i])) / 8.0, float(i == 0), float(i == n - 1)],
                             np.float32)
            rows.append(np.concatenate([own, previous, following, extra]))
    return np.vstack(rows) if rows else np.zeros((0, 3 * dim + N_EXTRA), np.float32)


# -- text features: TF-IDF n-grams of the step and of the openings of its neighbours --------------------------------
#: (name, offset of the step read, characters read (None = all), n-gram range, vocabulary cap). The opening of a step
#: carries its discourse move ("Let me verify", "Alternatively", "So"); the whole step carries its content.
TEXT_BLOCKS: tuple[tuple[str, int, int | None, tuple[int, int], int], ...] = (
    ("step", 0, None, (1, 2), 20000),
    ("step opening", 0, 80, (1, 3), 20000),
    ("previous opening", -1, 80, (1, 2), 8000),
    ("next opening", 1, 80, (1, 2), 8000),
)


def block_texts(traces: Sequence[Trace], offset: int, chars: int | None) -> list[str]:
    """For every step of ``traces`` (in feature-row order), the text of the step ``offset`` away in its document
    (first ``chars`` characters; empty past either end)."""
    out: list[str] = []
    for trace in traces:
        doc, indices = _doc_and_indices(trace)
        for i in indices:
            j = i + offset
            text = doc[j] if 0 <= j < len(doc) else ""
            out.append(text[:chars] if chars else text)
    return out


def _vectorizer(ngrams: tuple[int, int], vocabulary: dict[str, int] | None = None, cap: int | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=ngrams, sublinear_tf=True, min_df=2 if vocabulary is None else 1,
                           max_features=cap if vocabulary is None else None, vocabulary=vocabulary)


# -- the head: one multinomial logistic regression over text blocks and dense context features ----------------------
@dataclass
class Head:
    """The trained head, stored as plain arrays.

    Attributes:
        mean, scale: standardisation of the dense features (:func:`context_features`).
        dense_weight: factor on the standardised dense block (balances it against the unit-norm TF-IDF blocks).
        vocabularies, idf: one TF-IDF vocabulary and idf vector per :data:`TEXT_BLOCKS` entry.
        W, b: logistic-regression weights over ``[text blocks..., dense]`` and intercepts, one column per class.
        classes: the class order of ``W``'s columns.
    """

    mean: np.ndarray
    scale: np.ndarray
    dense_weight: float
    vocabularies: list[dict[str, int]]
    idf: list[np.ndarray]
    W: np.ndarray
    b: np.ndarray
    classes: tuple[str, ...] = STATES
    meta: dict[str, Any] = field(default_factory=dict)

    def design(self, traces: Sequence[Trace], dense: np.ndarray) -> Any:
        """The sparse design matrix of ``traces`` (dense features precomputed)."""
        import scipy.sparse as sp

        blocks = []
        for (_name, offset, chars, ngrams, _cap), vocabulary, idf in zip(TEXT_BLOCKS, self.vocabularies, self.idf):
            vectorizer = _vectorizer(ngrams, vocabulary=vocabulary)
            vectorizer.idf_ = idf
            blocks.append(vectorizer.transform(block_texts(traces, offset, chars)))
        blocks.append(sp.csr_matrix((np.asarray(dense, np.float32) - self.mean) / self.scale * self.dense_weight))
        return sp.hstack(blocks).tocsr()

    def predict_proba_design(self, design: Any) -> np.ndarray:
        z = np.asarray(design @ self.W) + self.b
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"mean": self.mean.astype(np.float32), "scale": self.scale.astype(np.float32),
                                         "W": self.W.astype(np.float32), "b": self.b.astype(np.float32)}
        for k, idf in enumerate(self.idf):
            arrays[f"idf{k}"] = idf.astype(np.float32)
        arrays["meta"] = np.array(json.dumps({**self.meta, "classes": list(self.classes),
                                              "dense_weight": self.dense_weight, "vocabularies": self.vocabularies}))
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        return path


def load_head(path: str | Path) -> Head:
    """Load a head written by :meth:`Head.save`; a damaged or foreign file is one clear :class:`InputError`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            head = Head(mean=data["mean"], scale=data["scale"], dense_weight=float(meta["dense_weight"]),
                        vocabularies=[dict(v) for v in meta["vocabularies"]],
                        idf=[data[f"idf{k}"] for k in range(len(meta["vocabularies"]))], W=data["W"], b=data["b"],
                        classes=tuple(meta["classes"]), meta=meta)
    except FileNotFoundError:
        raise InputError("no such file (train the head with `molesyn labeler train`)", path) from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a molesyn labeller head ({type(exc).__name__}: {exc}); rebuild it with "
                         "`molesyn labeler train`", path) from None
    if int(meta.get("feature_version", -1)) != FEATURE_VERSION:
        raise InputError(f"head was trained with feature version {meta.get('feature_version')}, this molesyn uses "
                         f"{FEATURE_VERSION}; rebuild it with `molesyn labeler train`", path)
    return head


#: The head's settings, chosen by leave-documents-out cross-validation (``benchmarks/README.md``).
TRAINED_DEFAULTS: dict[str, Any] = {"C": 1.0, "dense_weight": 0.05}


def fit_head(traces: Sequence[Trace], dense: np.ndarray, C: float = 1.0, dense_weight: float = 0.05, seed: int = 0,
             meta: dict[str, Any] | None = None) -> Head:
    """Fit the head on gold ``traces`` (their ``behaviors``) whose dense features are ``dense``."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    y = np.array([b for t in traces for b in t.behaviors or []])
    if len(y) != len(dense):
        raise ValueError(f"{len(y)} gold labels for {len(dense)} feature rows")
    if len(set(y)) < 2:
        raise ValueError("fit_head needs at least two behaviours among the gold labels")
    scaler = StandardScaler().fit(dense)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0).astype(np.float32)
    vocabularies, idfs, blocks = [], [], []
    for _name, offset, chars, ngrams, cap in TEXT_BLOCKS:
        texts = block_texts(traces, offset, chars)
        vectorizer = _vectorizer(ngrams, cap=cap)
        try:
            blocks.append(vectorizer.fit_transform(texts))
            vocabularies.append({str(k): int(v) for k, v in vectorizer.vocabulary_.items()})
            idfs.append(vectorizer.idf_.astype(np.float32))
        except ValueError:  # too little text for min_df=2 (tiny training sets): an empty block
            blocks.append(sp.csr_matrix((len(texts), 0)))
            vocabularies.append({})
            idfs.append(np.zeros(0, np.float32))
    mean = scaler.mean_.astype(np.float32)
    blocks.append(sp.csr_matrix((dense - mean) / scale * dense_weight))
    X = sp.hstack(blocks).tocsr()
    model = LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed).fit(X, y)
    classes = tuple(str(c) for c in model.classes_)
    W, b = model.coef_.T.astype(np.float32), model.intercept_.astype(np.float32)
    if len(classes) == 2:  # sklearn's binary form has one column; make it a two-class softmax
        W, b = np.hstack([-W / 2, W / 2]), np.array([-b[0] / 2, b[0] / 2], np.float32)
    return Head(mean=mean, scale=scale, dense_weight=dense_weight, vocabularies=vocabularies, idf=idfs, W=W, b=b,
                classes=classes, meta={"C": C, "seed": seed, "feature_version": FEATURE_VERSION, **(meta or {})})


def cross_validate_head_on(traces: Sequence[Trace], train: Sequence[int], test: Sequence[int],
                           encoder: StepEncoder | None = None, **options: Any) -> Any:
    """Fit on the traces at indices ``train``, score on those at ``test`` (a :class:`LabelReport`)."""
    from ..validation import label_report

    labeler = TrainedLabeler(encoder=encoder)
    train_traces, test_traces = [traces[i] for i in train], [traces[i] for i in test]
    assert labeler.encoder is not None
    labeler.head = fit_head(train_traces, context_features(labeler.encoder, train_traces), **options)
    predicted = labeler.label(test_traces)
    return label_report([b for t in test_traces for b in t.behaviors or []], [b for p in predicted for b in p])


def training_digest(traces: Sequence[Trace]) -> str:
    """A short hash of training traces (ids, texts, labels) stored in the head's metadata."""
    payload = json.dumps([(t.trace_id, t.steps, t.behaviors) for t in traces], ensure_ascii=False)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


@dataclass
class TrainedLabeler:
    """The trained context classifier.

    Attributes:
        head_path: the ``.npz`` head (default: the committed :data:`HEAD_PATH`).
        head: an in-memory head (e.g. fresh from :func:`fit_head`); overrides ``head_path``.
        encoder: the step encoder (default: the shared cached MiniLM encoder); it must be the encoder the head was
            trained on (the quantised encoder is measured against it in ``benchmarks/``).
    """

    head_path: str | Path | None = None
    head: Head | None = None
    encoder: StepEncoder | None = None
    name: str = "trained"
    _lexical: LexicalLabeler = field(default_factory=LexicalLabeler, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.encoder is None:
            self.encoder = default_encoder()

    def _head(self) -> Head:
        if self.head is None:
            self.head = load_head(self.head_path or HEAD_PATH)
        return self.head

    def predict_proba(self, traces: Sequence[Trace]) -> list[np.ndarray]:
        """Per trace, an ``n_steps x 4`` array of probabilities in the order N, D, R, E."""
        head = self._head()
        assert self.encoder is not None
        dense = context_features(self.encoder, traces, self._lexical)
        proba = head.predict_proba_design(head.design(traces, dense)) if len(dense) else np.zeros((0, len(head.classes)))
        full = np.zeros((len(proba), len(STATES)))
        for j, c in enumerate(head.classes):
            full[:, STATES.index(c)] = proba[:, j]
        out: list[np.ndarray] = []
        offset = 0
        for trace in traces:
            out.append(full[offset:offset + len(trace.steps)])
            offset += len(trace.steps)
        return out

    def label(self, traces: Sequence[Trace]) -> list[list[str]]:
        return [[STATES[int(k)] for k in np.argmax(p, axis=1)] if len(p) else [] for p in self.predict_proba(traces)]


@register_labeler("trained")
def make_trained_labeler(**options: Any) -> TrainedLabeler:
    return TrainedLabeler(**options)


#: Extra training sets :func:`train_from_corpus` can add to the annotated corpus.
EXTRA_TRAINING = ("reasoningflow-human",)


def training_traces(corpus_path: str | Path | None = None, extra: Sequence[str] = (),
                    root: str | Path | None = None) -> list[Trace]:
    """The adjudicated corpus windows (with their document context) plus the named ``extra`` sets
    (``reasoningflow-human``: the human ReasoningFlow nodes of annotator D, mapped to N/D/R/E)."""
    from ..standoff import CORPUS_PATH, load_annotated_corpus

    traces = load_annotated_corpus(corpus_path or CORPUS_PATH, root)
    for name in extra:
        if name == "reasoningflow-human":
            from ..annotations import load_human_annotations

            traces.extend(doc.to_trace() for doc in load_human_annotations("D", root))
        else:
            raise InputError(f"unknown extra training set {name!r}; expected one of {', '.join(EXTRA_TRAINING)}")
    return traces


def train_from_corpus(out: str | Path = HEAD_PATH, corpus_path: str | Path | None = None, extra: Sequence[str] = (),
                      C: float = TRAINED_DEFAULTS["C"], dense_weight: float = TRAINED_DEFAULTS["dense_weight"],
                      seed: int = 0,
                      encoder: StepEncoder | None = None, root: str | Path | None = None) -> Head:
    """Train the head on the annotated corpus (plus ``extra`` sets) and save it to ``out`` (one command:
    ``molesyn labeler train``). Deterministic for a given corpus, encoder and seed."""
    encoder = encoder or default_encoder()
    traces = training_traces(corpus_path, extra, root)
    dense = context_features(encoder, traces)
    head = fit_head(traces, dense, C=C, dense_weight=dense_weight, seed=seed, meta={
        "encoder": encoder.model_id, "training_digest": training_digest(traces), "n_train_steps": len(dense),
        "extra": list(extra), "corpus": str(corpus_path or "annotation/corpus.jsonl")})
    head.save(out)
    return head
