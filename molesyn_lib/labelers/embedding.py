"""The ``embedding`` labeller: MiniLM step embeddings plus a small classifier trained on human annotations.

Features of step *t*: its embedding, the previous step's embedding (context: a reflection refers back, an exploration
departs), the lexical labeller's cue scores, and the relative position and log length of the step. A standardised
multinomial logistic regression (balanced class weights) is trained on the human ReasoningFlow annotations mapped to
N/D/R/E (annotator D, 31 documents; see :mod:`molesyn_lib.annotations`). The fitted classifier is cached on disk.

``mode="prototype"`` needs no training data: each behaviour is the mean embedding of its paper definition and a few
example steps, and a step gets the behaviour of the most similar prototype.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..behaviors import DEFINITIONS, STATES
from ..config import cache_dir
from ..embeddings import StepEncoder, default_encoder
from ..traces import Trace
from .base import register_labeler
from .lexical import LexicalLabeler

#: Example steps used with the definitions to build prototypes (``mode="prototype"``).
PROTOTYPE_EXAMPLES: dict[str, tuple[str, ...]] = {
    "N": ("3 * 4 = 12, and 12 + 5 = 17.", "The problem gives a triangle with sides 3, 4 and 5.",
          "The molar mass of water is 18 g/mol."),
    "D": ("Since the sum is even, both numbers must have the same parity, so we can write them as 2a and 2b.",
          "Therefore the equation reduces to x^2 - 5x + 6 = 0, which implies x = 2 or x = 3.",
          "This means the area depends only on the height, so we need to find h first."),
    "R": ("Wait, let me double-check that calculation: 17 * 3 is 51, not 48.",
          "Hmm, that contradicts what I found earlier. Let me re-examine step two.",
          "Let me verify: plugging x = 2 back in gives 4 - 10 + 6 = 0, so it checks out."),
    "E": ("Alternatively, maybe I can approach this with generating functions instead.",
          "What if the triangle is obtuse? Let me consider that case.",
          "Another idea: perhaps we can use symmetry and only count half of the cases."),
}


def _features(encoder: StepEncoder, lexical: LexicalLabeler, traces: Sequence[Sequence[str]]) -> np.ndarray:
    flat = [step for steps in traces for step in steps]
    vectors = encoder.encode(flat)
    rows: list[np.ndarray] = []
    offset = 0
    dim = vectors.shape[1]
    for steps in traces:
        n = len(steps)
        own = vectors[offset:offset + n]
        previous = np.vstack([np.zeros((1, dim), np.float32), own[:-1]]) if n else own
        cue_scores = [lexical.scores(step) for step in steps]
        extra = np.array([
            [scores["R"], scores["E"], scores["D"], i / max(n - 1, 1), np.log1p(len(step)) / 8.0, float(i == 0)]
            for i, (step, scores) in enumerate(zip(steps, cue_scores))
        ], dtype=np.float32).reshape(n, 6)
        rows.append(np.hstack([own, previous, extra]))
        offset += n
    return np.vstack(rows) if rows else np.zeros((0, 2 * dim + 6), np.float32)


@dataclass
class EmbeddingLabeler:
    """Embedding + classifier (or prototype) labeller.

    Attributes:
        mode: ``"classifier"`` (trained on human annotations) or ``"prototype"`` (nearest behaviour prototype).
        encoder: the step encoder (default: the shared cached MiniLM encoder).
        C: inverse regularisation strength of the logistic regression.
        annotator: which human annotator's labels train the classifier (``"D"`` covers all 31 documents).
        train_docs: train on these traces (``behaviors`` = gold labels) instead of the human annotations.
        cache_model: cache the fitted classifier on disk.
    """

    mode: Literal["classifier", "prototype"] = "classifier"
    encoder: StepEncoder | None = None
    C: float = 0.5
    annotator: str = "D"
    train_docs: Sequence[Trace] | None = None
    cache_model: bool = True
    name: str = "embedding"
    _model: Any = field(default=None, init=False, repr=False)
    _prototypes: np.ndarray | None = field(default=None, init=False, repr=False)
    _lexical: LexicalLabeler = field(default_factory=LexicalLabeler, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.encoder is None:
            self.encoder = default_encoder()

    # -- classifier -------------------------------------------------------------------------------------------------
    def fit(self, traces: Sequence[Trace]) -> EmbeddingLabeler:
        """Fit the classifier on traces whose ``behaviors`` are gold labels."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        usable = [t for t in traces if t.behaviors and len(t.behaviors) == len(t.steps)]
        if not usable:
            raise ValueError("fit needs traces with gold behaviours")
        X = _features(self.encoder, self._lexical, [t.steps for t in usable])
        y = np.array([b for t in usable for b in t.behaviors])
        model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=3000, class_weight="balanced"))
        model.fit(X, y)
        self._model = model
        return self

    def _training_traces(self) -> list[Trace]:
        if self.train_docs is not None:
            return list(self.train_docs)
        from ..annotations import load_human_annotations

        return [doc.to_trace() for doc in load_human_annotations(self.annotator)]

    def _ensure_model(self) -> Any:
        if self._model is not None:
            return self._model
        traces = self._training_traces()
        digest = hashlib.sha1(json.dumps(
            [self.encoder.model_id, self.C, [(t.trace_id, t.steps, t.behaviors) for t in traces]]
        ).encode()).hexdigest()[:16]
        path = cache_dir() / "labelers" / f"embedding-{digest}.pkl"
        if self.cache_model and path.exists():
            try:
                self._model = pickle.loads(path.read_bytes())
                return self._model
            except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, OSError):
                pass  # a damaged or truncated cache file: refit below and overwrite it
        self.fit(traces)
        if self.cache_model:
            from ..safeio import write_bytes

            write_bytes(path, pickle.dumps(self._model))  # temp file + rename: never a half-written pickle
        return self._model

    # -- prototypes -------------------------------------------------------------------------------------------------
    def _ensure_prototypes(self) -> np.ndarray:
        if self._prototypes is None:
            prototypes = []
            for behavior in STATES:
                texts = [DEFINITIONS[behavior], *PROTOTYPE_EXAMPLES[behavior]]
                mean = self.encoder.encode(texts).mean(axis=0)
                prototypes.append(mean / np.linalg.norm(mean))
            self._prototypes = np.stack(prototypes)
        return self._prototypes

    # -- labelling --------------------------------------------------------------------------------------------------
    def label(self, traces: Sequence[Trace]) -> list[list[str]]:
        step_lists = [list(t.steps) for t in traces]
        if self.mode == "prototype":
            prototypes = self._ensure_prototypes()
            vectors = self.encoder.encode([s for steps in step_lists for s in steps])
            flat = [STATES[i] for i in np.argmax(vectors @ prototypes.T, axis=1)]
        else:
            model = self._ensure_model()
            X = _features(self.encoder, self._lexical, step_lists)
            flat = list(model.predict(X)) if len(X) else []
        out: list[list[str]] = []
        offset = 0
        for steps in step_lists:
            out.append([str(b) for b in flat[offset:offset + len(steps)]])
            offset += len(steps)
        return out


@register_labeler("embedding")
def make_embedding_labeler(**options: Any) -> EmbeddingLabeler:
    return EmbeddingLabeler(**options)
