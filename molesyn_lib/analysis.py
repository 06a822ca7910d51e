"""Corpus-level analysis helpers used by the chapters: per-model labelling, graphs, tables.

Thin compositions of the core modules (traces, labellers, transfer graphs) so that a chapter cell is one call.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .behaviors import STATES
from .labelers import Labeler, get_labeler, label_corpus
from .labelers.base import DEFAULT_LABELER
from .traces import Corpus, Trace
from .transfer import TransferGraph


def corpus_table(corpus: Sequence[Trace], skipped: dict[str, int] | None = None) -> pd.DataFrame:
    """Per-model counts: traces, truncated, median steps and median characters of the reasoning."""
    rows = []
    models = list(dict.fromkeys(t.model or "unknown" for t in corpus))
    for model in models:
        traces = [t for t in corpus if (t.model or "unknown") == model]
        rows.append({"model": model, "traces": len(traces), "truncated": sum(t.truncated for t in traces),
                     "median steps": float(np.median([len(t.steps) for t in traces])),
                     "median chars": float(np.median([sum(len(s) for s in t.steps) for t in traces]))})
    return pd.DataFrame(rows).set_index("model")


def label_by_model(corpus: Sequence[Trace], labeler: Labeler | str = DEFAULT_LABELER) -> dict[str, list[list[str]]]:
    """Label a corpus and group the label sequences by model (order of first appearance)."""
    labeler_obj = get_labeler(labeler) if isinstance(labeler, str) else labeler
    labels = label_corpus(corpus, labeler_obj)
    grouped: dict[str, list[list[str]]] = {}
    for trace, trace_labels in zip(corpus, labels):
        grouped.setdefault(trace.model or "unknown", []).append(trace_labels)
    return grouped


def graphs_from_groups(groups: dict[str, list[list[str]]], labeler: str) -> dict[str, TransferGraph]:
    return {name: TransferGraph.from_sequences(seqs, labeler=labeler, name=name) for name, seqs in groups.items()}


def marginal_table(graphs: dict[str, TransferGraph]) -> pd.DataFrame:
    """Behaviour shares per graph, with the marginal entropy in bits."""
    frame = pd.DataFrame({name: g.marginal for name, g in graphs.items()}, index=list(STATES)).T
    frame["entropy (bits)"] = [g.entropy() for g in graphs.values()]
    frame["steps"] = [g.n_steps for g in graphs.values()]
    return frame


def subset(corpus: Corpus, models: Sequence[str]) -> Corpus:
    return Corpus((t for t in corpus if t.model in models), skipped=corpus.skipped, source=corpus.source)


def teacher_pairs_with_null(sequences: dict[str, dict[str, list[list[str]]]], models: Sequence[str],
                            short: dict[str, str] | None = None, repeats: int = 200, seed: int = 0) -> pd.DataFrame:
    """For each labelling (``sequences[labelling][model]`` = label sequences) and each pair of ``models``: the
    Pearson r of the two graphs, the within-trace order-shuffled null (mean, 95th percentile, p), and the centred
    correlation (order structure beyond composition) with its null p. One row per (labelling, pair)."""
    from .transfer import pair_with_null

    short = short or {}
    rows = []
    for labelling, by_model in sequences.items():
        present = [m for m in models if by_model.get(m)]
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                result = pair_with_null(by_model[a], by_model[b], repeats=repeats, seed=seed).summary()
                rows.append({"labelling": labelling, "pair": f"{short.get(a, a)} - {short.get(b, b)}",
                             "n_min": min(len(by_model[a]), len(by_model[b])), **result})
    return pd.DataFrame(rows)


def split_half_table(sequences: dict[str, dict[str, list[list[str]]]], models: Sequence[str], sizes: Sequence[int],
                     short: dict[str, str] | None = None, repeats: int = 50, seed: int = 0) -> pd.DataFrame:
    """Disjoint split-half stability per labelling and model: mean and 5th percentile of r between two
    non-overlapping samples of ``n`` traces."""
    from .transfer import split_half_stability

    short = short or {}
    rows = []
    for labelling, by_model in sequences.items():
        for model in models:
            if not by_model.get(model):
                continue
            for n, values in split_half_stability(by_model[model], sizes, repeats=repeats, seed=seed).items():
                rows.append({"labelling": labelling, "model": short.get(model, model), "n": n,
                             "r_mean": float(np.nanmean(values)), "r_p05": float(np.nanpercentile(values, 5))})
    return pd.DataFrame(rows)
