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


def document_folds(traces: Sequence[Trace], n_splits: int = 5, seed: int = 0) -> list[list[int]]:
    """Folds of trace indices such that all windows/traces of one source document share a fold (documents shuffled
    with ``seed``). The document of a trace is ``meta["source"]#meta["doc_id"]`` when present, else its id."""
    docs = [f"{t.meta.get('source', '')}#{t.meta.get('doc_id', t.trace_id)}" for t in traces]
    unique = list(dict.fromkeys(docs))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[k]: f for f, chunk in enumerate(np.array_split(order, min(n_splits, len(unique))))
               for k in chunk.tolist()}
    folds: list[list[int]] = [[] for _ in range(min(n_splits, len(unique)))]
    for i, doc in enumerate(docs):
        folds[fold_of[doc]].append(i)
    return folds


def cross_validate_trained(traces: Sequence[Trace], n_splits: int = 5, seed: int = 0, C: float | None = None,
                           dense_weight: float | None = None, extra_train: Sequence[Trace] = (),
                           encoder: object | None = None) -> tuple[LabelReport, list[list[str]]]:
    """Leave-documents-out cross-validation of the trained labeller on gold ``traces`` (all windows of a document in
    one fold; ``extra_train`` traces are added to every training fold, never scored). Returns the report and the
    out-of-fold labels per trace."""
    from .embeddings import default_encoder
    from .labelers.trained import TRAINED_DEFAULTS, TrainedLabeler, context_features, fit_head

    encoder = encoder or default_encoder()
    options = {"C": TRAINED_DEFAULTS["C"] if C is None else C,
               "dense_weight": TRAINED_DEFAULTS["dense_weight"] if dense_weight is None else dense_weight,
               "seed": seed}
    traces = list(traces)
    extra = list(extra_train)
    dense = context_features(encoder, traces + extra)  # type: ignore[arg-type]
    owner = np.array([i for i, t in enumerate(traces + extra) for _ in t.steps])
    out: list[list[str]] = [[] for _ in traces]
    for fold in document_folds(traces, n_splits, seed):
        held = set(fold)
        train_ids = [i for i in range(len(traces)) if i not in held] + list(range(len(traces), len(traces) + len(extra)))
        rows = np.isin(owner, train_ids)
        train_traces = [(traces + extra)[i] for i in train_ids]
        labeler = TrainedLabeler(encoder=encoder,  # type: ignore[arg-type]
                                 head=fit_head(train_traces, dense[rows], **options))
        test = [traces[i] for i in sorted(held)]
        for i, labels in zip(sorted(held), labeler.label(test)):
            out[i] = labels
    gold = [b for t in traces for b in t.behaviors or []]
    return label_report(gold, [b for labels in out for b in labels]), out


def inter_annotator(first: Sequence[AnnotatedDoc], second: Sequence[AnnotatedDoc]) -> LabelReport:
    """Agreement of two annotators on their shared documents (second annotator's labels as 'gold')."""
    pairs = shared_documents(first, second)
    if not pairs:
        raise ValueError("the two annotators share no documents with identical node spans")
    return label_report([b for _, d in pairs for b in d.behaviors], [b for a, _ in pairs for b in a.behaviors])


def pass_agreement(traces: Sequence[Trace], first: str = "a", second: str = "b") -> LabelReport:
    """Agreement of two annotation passes of the annotated corpus (``meta["pass_labels"]`` per trace)."""
    gold = [lab for t in traces for lab in t.meta["pass_labels"][second]]
    other = [lab for t in traces for lab in t.meta["pass_labels"][first]]
    return label_report(gold, other)


def validation_suite(labelers: dict[str, Labeler], references: dict[str, Sequence[Trace]],
                     out_of_fold: dict[tuple[str, str], list[list[str]]] | None = None,
                     exclude: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset()) -> pd.DataFrame:
    """Macro-F1 (and per-class F1, kappa) of every labeller on every reference set: one row per (labeller,
    reference). ``out_of_fold[(labeller, reference)]`` supplies predictions made without seeing the reference's
    documents (cross-validation), used instead of running the labeller on its own training data; pairs in
    ``exclude`` (a labeller trained on that reference) are left out."""
    rows = []
    for ref_name, traces in references.items():
        traces = list(traces)
        gold = [b for t in traces for b in t.behaviors or []]
        for lab_name, labeler in labelers.items():
            if (lab_name, ref_name) in exclude:
                continue
            if out_of_fold and (lab_name, ref_name) in out_of_fold:
                predicted = [b for seq in out_of_fold[(lab_name, ref_name)] for b in seq]
            else:
                predicted = [b for seq in label_corpus(traces, labeler) for b in seq]
            rows.append({"labeller": lab_name, "reference": ref_name, **label_report(gold, predicted).summary()})
    return pd.DataFrame(rows)


def labels_on_shared_steps(gold_traces: Sequence[Trace], other_traces: Sequence[Trace]) -> tuple[list[str], list[str]]:
    """Gold and other labels of the steps both sets hold: same document (``meta["doc_id"]`` or trace id) and the
    same step text. Used to score a labelling that exists only for some documents (the Gemini silver graphs)."""
    other_by_doc: dict[str, dict[str, str]] = {}
    for trace in other_traces:
        other_by_doc[trace.trace_id] = dict(zip(trace.steps, trace.behaviors or []))
    gold: list[str] = []
    other: list[str] = []
    for trace in gold_traces:
        found = other_by_doc.get(str(trace.meta.get("doc_id", trace.trace_id)))
        if not found:
            continue
        for text, label in zip(trace.steps, trace.behaviors or []):
            if text in found:
                gold.append(label)
                other.append(found[text])
    return gold, other
