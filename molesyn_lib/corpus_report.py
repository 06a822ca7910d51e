"""The computations behind ``molesyn report``: what the toolkit can say about one user's corpus.

Each function is one section of the report notebook (``molesyn_lib/templates/report.ipynb``), so that a cell is one
call and the notebook stays readable when users open it:

* :func:`label_with_cache`: labels (and, for labellers with ``predict_proba``, each step's confidence), cached on disk
  by a hash of the labeller and the steps, so a rerun of the report does not label again;
* :func:`marginal_intervals`: the behaviour distribution with trace-bootstrap percentile intervals;
* :func:`load_reference` / :func:`reference_comparison`: the shipped reference graphs of R1 / QwQ-32B / gpt-oss-120b
  (``molesyn_lib/reference_graphs/*.json``, written by ``scripts/reference_graphs.py`` with their labeller and
  provenance) and the Pearson correlation of the corpus's graph with each, beside the within-trace order-shuffled
  null (:func:`molesyn_lib.transfer.pair_with_null`);
* :func:`typical_trace`, :func:`step_statistics`, :func:`least_sure_steps`: the molecule of a typical trace, step
  length and truncation statistics, and the steps the labeller was least sure about.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .behaviors import STATES
from .config import cache_dir
from .errors import InputError, UnknownNameError
from .labelers import Labeler
from .traces import Corpus, Trace
from .transfer import TransferGraph, load_graph, pair_with_null, pearson_with_p

#: Where the reference graphs live (one ``<name>.json`` per reference; the name is the ``--against`` key).
REFERENCE_DIR = Path(__file__).with_name("reference_graphs")


def available_references() -> list[str]:
    """Names of the shipped reference graphs (``r1``, ``qwq``, ``oss``)."""
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.json"))


@dataclass
class Reference:
    """A shipped reference graph and the label sequences it was estimated from.

    Attributes:
        key: the ``--against`` name.
        graph: the transfer graph (``graph.labeler`` and ``graph.meta["provenance"]`` say how it was made).
        sequences: one list of N/D/R/E per reference trace (for the order-shuffled null).
    """

    key: str
    graph: TransferGraph
    sequences: list[list[str]]

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.graph.meta.get("provenance") or {})


def load_reference(key: str) -> Reference:
    """The reference graph ``key`` (:class:`UnknownNameError` listing the shipped ones)."""
    path = REFERENCE_DIR / f"{key}.json"
    if not path.is_file():
        raise UnknownNameError(f"unknown reference graph {key!r}; expected one of {', '.join(available_references())}")
    graph = load_graph(path)
    sequences = [list(s) for s in graph.meta.get("sequences") or []]
    return Reference(key=key, graph=graph, sequences=sequences)


@dataclass
class Labelled:
    """Labels of a corpus: one behaviour list per trace, and per step the labeller's probability of that label
    (``None`` for labellers without probabilities)."""

    labels: list[list[str]]
    confidence: list[list[float]] | None
    cached: bool = False


def _labels_key(corpus: Sequence[Trace], labeler: Labeler) -> str:
    digest = hashlib.sha256(f"{labeler.name}|{__version__}|{type(labeler).__qualname__}".encode())
    head = getattr(labeler, "head_path", None)
    if head is not None:
        digest.update(str(head).encode())
    for trace in corpus:
        digest.update(json.dumps([trace.trace_id, trace.steps], ensure_ascii=False).encode())
    return digest.hexdigest()[:24]


def label_with_cache(corpus: Sequence[Trace], labeler: Labeler, use_cache: bool = True) -> Labelled:
    """Label ``corpus`` (with per-step confidence when the labeller has ``predict_proba``), reusing the cached
    result of an identical earlier call (same labeller, same steps) under ``<cache>/report``."""
    path = cache_dir() / "report" / f"labels-{_labels_key(corpus, labeler)}.json"
    if use_cache and path.is_file():
        record = json.loads(path.read_text())
        return Labelled(labels=record["labels"], confidence=record["confidence"], cached=True)
    predict = getattr(labeler, "predict_proba", None)
    if callable(predict):
        probabilities = predict(list(corpus))
        labels = [[STATES[int(k)] for k in np.argmax(p, axis=1)] if len(p) else [] for p in probabilities]
        confidence: list[list[float]] | None = [np.round(p.max(axis=1), 4).tolist() if len(p) else []
                                                for p in probabilities]
    else:
        labels = labeler.label(list(corpus))
        confidence = None
    for trace, trace_labels in zip(corpus, labels):
        if len(trace_labels) != len(trace.steps):
            raise RuntimeError(f"labeller {labeler.name} returned {len(trace_labels)} labels for {len(trace.steps)} "
                               f"steps of trace {trace.trace_id}")
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"labeler": labeler.name, "labels": labels, "confidence": confidence}))
        tmp.replace(path)
    return Labelled(labels=labels, confidence=confidence)


def marginal_intervals(sequences: Sequence[Sequence[str]], repeats: int = 200, level: float = 0.95,
                       seed: int = 0) -> pd.DataFrame:
    """Share of steps of each behaviour with a percentile interval from resampling whole traces (steps of one
    trace are not independent): columns ``share``, ``low``, ``high``, ``steps``, index N/D/R/E."""
    sequences = [list(s) for s in sequences if len(s)]
    if not sequences:
        raise InputError("no labelled steps to summarise")
    counts = np.array([[s.count(b) for b in STATES] for s in sequences], dtype=float)
    share = counts.sum(axis=0) / counts.sum()
    rng = np.random.default_rng(seed)
    draws = np.empty((repeats, len(STATES)))
    for r in range(repeats):
        sample = counts[rng.integers(0, len(counts), len(counts))].sum(axis=0)
        draws[r] = sample / sample.sum()
    alpha = (1 - level) / 2
    return pd.DataFrame({"share": share, "low": np.quantile(draws, alpha, axis=0),
                         "high": np.quantile(draws, 1 - alpha, axis=0),
                         "steps": counts.sum(axis=0).astype(int)}, index=list(STATES))


def reference_comparison(sequences: Sequence[Sequence[str]], references: Sequence[Reference], repeats: int = 200,
                         seed: int = 0) -> pd.DataFrame:
    """For each reference: Pearson r (and its 16-cell p-value) between the corpus's and the reference's transition
    matrices, the within-trace order-shuffled null (both corpora shuffled: mean, 95th percentile and the share of
    null draws at or above r), and the centred r (order structure beyond composition) with its null p."""
    sequences = [list(s) for s in sequences if len(s)]
    graph = TransferGraph.from_sequences(sequences)
    rows = []
    for ref in references:
        r, p = pearson_with_p(graph, ref.graph)
        row: dict[str, Any] = {"reference": ref.graph.name or ref.key, "r": r, "p (16 cells)": p}
        if ref.sequences:
            null = pair_with_null(sequences, ref.sequences, repeats=repeats, seed=seed).summary()
            row.update({"null r mean": null["r_null_mean"], "null r p95": null["r_null_p95"],
                        "p (order null)": null["p_null"], "centred r": null["r_centred"],
                        "p (centred null)": null["p_centred_null"]})
        row["labeller"] = ref.graph.labeler
        row["reference traces"] = ref.graph.n_traces
        rows.append(row)
    return pd.DataFrame(rows).set_index("reference") if rows else pd.DataFrame()


def typical_trace(corpus: Sequence[Trace], trace_id: str | None = None) -> int:
    """Index of the trace ``trace_id``, or of the trace whose step count is closest to the corpus median."""
    if trace_id is not None:
        for index, trace in enumerate(corpus):
            if trace.trace_id == trace_id:
                return index
        raise InputError(f"no trace with id {trace_id!r} in the corpus")
    lengths = np.array([len(t.steps) for t in corpus])
    return int(np.argmin(np.abs(lengths - np.median(lengths))))


def step_statistics(corpus: Corpus) -> pd.DataFrame:
    """Per model and overall: traces, truncated (count and share), steps per trace (median, 10th and 90th
    percentile), characters per step (median, 90th percentile)."""
    def row(traces: Sequence[Trace]) -> dict[str, Any]:
        lengths = np.array([len(t.steps) for t in traces])
        chars = np.array([len(s) for t in traces for s in t.steps])
        truncated = sum(t.truncated for t in traces)
        return {"traces": len(traces), "truncated": truncated, "truncated share": truncated / len(traces),
                "steps/trace median": float(np.median(lengths)), "steps/trace p10": float(np.percentile(lengths, 10)),
                "steps/trace p90": float(np.percentile(lengths, 90)), "chars/step median": float(np.median(chars)),
                "chars/step p90": float(np.percentile(chars, 90))}

    rows = {model: row(corpus.by_model(model)) for model in corpus.models} if len(corpus.models) > 1 else {}
    rows["all"] = row(corpus)
    return pd.DataFrame.from_dict(rows, orient="index")


def least_sure_steps(corpus: Sequence[Trace], labelled: Labelled, k: int = 10, width: int = 160) -> pd.DataFrame:
    """The ``k`` steps with the lowest label confidence (empty when the labeller gives none)."""
    if labelled.confidence is None:
        return pd.DataFrame()
    rows = [(conf, trace.trace_id, i, label, text)
            for trace, labels, confs in zip(corpus, labelled.labels, labelled.confidence)
            for i, (text, label, conf) in enumerate(zip(trace.steps, labels, confs))]
    rows.sort(key=lambda r: r[0])
    return pd.DataFrame([{"confidence": c, "trace": t, "step": i, "label": b,
                          "text": " ".join(x.split())[:width]} for c, t, i, b, x in rows[:k]])


def confidence_summary(labelled: Labelled) -> pd.DataFrame:
    """Mean and quartiles of the label confidence per assigned behaviour (empty without confidences)."""
    if labelled.confidence is None:
        return pd.DataFrame()
    frame = pd.DataFrame({"label": [b for s in labelled.labels for b in s],
                          "confidence": [c for s in labelled.confidence for c in s]})
    return frame.groupby("label")["confidence"].describe()[["count", "mean", "25%", "50%", "75%"]].reindex(
        [b for b in STATES if b in set(frame["label"])])
