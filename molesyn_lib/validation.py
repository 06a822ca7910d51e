"""Validation of behaviour labellers against human labels, and the inter-annotator ceiling.

:func:`label_report` compares two label sequences (per-class precision/recall/F1, macro-F1, accuracy, Cohen's kappa,
confusion matrix). :func:`validate_labeler` runs a labeller on annotated documents; :func:`cross_validate_embedding`
gives leave-documents-out scores for the trained embedding labeller (never scored on its own training documents);
:func:`inter_annotator` measures how well two human annotators agree on shared documents, which bounds what any
labeller can reach.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from .annotations import AnnotatedDoc, shared_documents
from .behaviors import STATES
from .labelers.base import Labeler, label_corpus
from .traces import Trace


@dataclass
class LabelReport:
    """Agreement between gold and predicted behaviours.

    Attributes:
        per_class: DataFrame indexed by behaviour with precision, recall, f1, support.
        macro_f1: unweighted mean F1 over the behaviours present in gold or prediction.
        accuracy: share of steps with identical labels.
        kappa: Cohen's kappa.
        confusion: DataFrame, rows = gold, columns = predicted.
        n_steps: number of compared steps.
    """

    per_class: pd.DataFrame
    macro_f1: float
    accuracy: float
    kappa: float
    confusion: pd.DataFrame
    n_steps: int

    def summary(self) -> dict[str, float]:
        return {"macro_f1": self.macro_f1, "accuracy": self.accuracy, "kappa": self.kappa, "n_steps": self.n_steps,
                **{f"f1_{b}": float(self.per_class.loc[b, "f1"]) for b in STATES}}


def label_report(gold: Sequence[str], predicted: Sequence[str]) -> LabelReport:
    """Compare two flat label sequences over N, D, R, E."""
    if len(gold) != len(predicted):
        raise ValueError(f"gold has {len(gold)} labels, prediction {len(predicted)}")
    if not gold:
        raise ValueError("no labels to compare")
    labels = list(STATES)
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    per_class = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support}, index=labels)
    per_class.index.name = "behavior"
    confusion = pd.DataFrame(confusion_matrix(gold, predicted, labels=labels), index=labels, columns=labels)
    confusion.index.name = "gold"
    confusion.columns.name = "predicted"
    present = [b for b in labels if b in set(gold) | set(predicted)]
    return LabelReport(
        per_class=per_class, macro_f1=float(per_class.loc[present, "f1"].mean()),
        accuracy=float(np.mean(np.asarray(gold) == np.asarray(predicted))),
        kappa=float(cohen_kappa_score(gold, predicted, labels=labels)), confusion=confusion, n_steps=len(gold),
    )


def _gold_traces(docs: Sequence[AnnotatedDoc] | Sequence[Trace]) -> list[Trace]:
    return [d.to_trace() if isinstance(d, AnnotatedDoc) else d for d in docs]


def validate_labeler(labeler: Labeler, docs: Sequence[AnnotatedDoc] | Sequence[Trace]) -> LabelReport:
    """Label the documents' steps with ``labeler`` and compare with their gold ``behaviors``."""
    traces = _gold_traces(docs)
    predicted = label_corpus(traces, labeler)
    return label_report([b for t in traces for b in t.behaviors or []], [b for p in predicted for b in p])


def cross_validate_embedding(docs: Sequence[AnnotatedDoc] | Sequence[Trace], n_splits: int = 5, seed: int = 0,
                             **options: object) -> LabelReport:
    """Leave-documents-out cross-validation of the embedding classifier (documents shuffled with ``seed``)."""
    from .labelers.embedding import EmbeddingLabeler

    traces = _gold_traces(docs)
    order = np.random.default_rng(seed).permutation(len(traces))
    folds = np.array_split(order, min(n_splits, len(traces)))
    gold: list[str] = []
    predicted: list[str] = []
    for fold in folds:
        held_out = set(fold.tolist())
        train = [t for i, t in enumerate(traces) if i not in held_out]
        test = [traces[i] for i in sorted(held_out)]
        labeler = EmbeddingLabeler(train_docs=train, cache_model=False, **options).fit(train)  # type: ignore[arg-type]
        for trace, labels in zip(test, labeler.label(test)):
            gold.extend(trace.behaviors or [])
            predicted.extend(labels)
    return label_report(gold, predicted)


def inter_annotator(first: Sequence[AnnotatedDoc], second: Sequence[AnnotatedDoc]) -> LabelReport:
    """Agreement of two annotators on their shared documents (second annotator's labels as 'gold')."""
    pairs = shared_documents(first, second)
    if not pairs:
        raise ValueError("the two annotators share no documents with identical node spans")
    return label_report([b for _, d in pairs for b in d.behaviors], [b for a, _ in pairs for b in a.behaviors])
