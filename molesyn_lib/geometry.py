"""Geometry of a trace in embedding space: clusters, the paper's three "folding" statistics, and t-SNE maps.

Each step is embedded (MiniLM, :mod:`molesyn_lib.embeddings`) and the steps of a trace are clustered
(agglomerative clustering, average linkage on cosine distance, merged while the distance is below
``cluster_threshold``). The paper's statistics (Section 3.2 of the digest; its numbers 72.56 %, 81.72 %, 5.32 come from
t-SNE space with an unstated embedding model) are operationalised as:

* **deep-reasoning locality**: share of D steps in the same cluster as the step before them;
* **reflection folding**: share of R steps whose cluster was already visited before the previous step (they land back
  in an earlier cluster);
* **exploration jump**: mean cosine distance from the previous step for E steps, divided by the same mean for all
  other steps (a ratio above 1 = longer jumps).

Each statistic comes with a *baseline* (the same quantity over all steps regardless of behaviour), so a reader can see
whether the behaviour really differs from an average step.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .traces import Trace


def cluster_steps(vectors: np.ndarray, threshold: float = 0.6) -> np.ndarray:
    """Cluster label per step (agglomerative, average linkage, cosine distance below ``threshold`` merges)."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                    distance_threshold=threshold)
    return model.fit_predict(vectors)


@dataclass
class FoldingStats:
    """Folding statistics of one or many traces (counts kept so that traces can be pooled)."""

    deep_local: int = 0
    deep_total: int = 0
    any_local: int = 0
    any_total: int = 0
    reflect_return: int = 0
    reflect_total: int = 0
    any_return: int = 0
    any_return_total: int = 0
    explore_jump_sum: float = 0.0
    explore_total: int = 0
    other_jump_sum: float = 0.0
    other_total: int = 0

    def __add__(self, other: FoldingStats) -> FoldingStats:
        return FoldingStats(**{k: getattr(self, k) + getattr(other, k) for k in self.__dataclass_fields__})

    @staticmethod
    def _ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    @property
    def deep_locality(self) -> float:
        return self._ratio(self.deep_local, self.deep_total)

    @property
    def locality_baseline(self) -> float:
        return self._ratio(self.any_local, self.any_total)

    @property
    def reflection_return(self) -> float:
        return self._ratio(self.reflect_return, self.reflect_total)

    @property
    def return_baseline(self) -> float:
        return self._ratio(self.any_return, self.any_return_total)

    @property
    def exploration_jump(self) -> float:
        return self._ratio(self.explore_jump_sum, self.explore_total)

    @property
    def other_jump(self) -> float:
        return self._ratio(self.other_jump_sum, self.other_total)

    @property
    def exploration_jump_ratio(self) -> float:
        return self._ratio(self.exploration_jump, self.other_jump)

    def summary(self) -> dict[str, float]:
        return {
            "deep_locality": self.deep_locality, "locality_baseline": self.locality_baseline,
            "reflection_return": self.reflection_return, "return_baseline": self.return_baseline,
            "exploration_jump": self.exploration_jump, "other_jump": self.other_jump,
            "exploration_jump_ratio": self.exploration_jump_ratio,
            "n_deep": self.deep_total, "n_reflect": self.reflect_total, "n_explore": self.explore_total,
        }


def folding_stats(behaviors: Sequence[str], vectors: np.ndarray, threshold: float = 0.6) -> FoldingStats:
    """Folding statistics of one trace from its behaviours and normalised step embeddings."""
    vectors = np.asarray(vectors, dtype=float)
    clusters = cluster_steps(vectors, threshold)
    stats = FoldingStats()
    seen_before: set[int] = set()
    for i, behavior in enumerate(behaviors):
        if i == 0:
            seen_before.add(int(clusters[0]))
            continue
        local = clusters[i] == clusters[i - 1]
        jump = float(1.0 - vectors[i] @ vectors[i - 1])
        stats.any_total += 1
        stats.any_local += int(local)
        earlier = {int(c) for c in clusters[: i - 1]}
        if i > 1:
            stats.any_return_total += 1
            stats.any_return += int(clusters[i] in earlier)
        if behavior == "D":
            stats.deep_total += 1
            stats.deep_local += int(local)
        if behavior == "R" and i > 1:
            stats.reflect_total += 1
            stats.reflect_return += int(clusters[i] in earlier)
        if behavior == "E":
            stats.explore_total += 1
            stats.explore_jump_sum += jump
        else:
            stats.other_total += 1
            stats.other_jump_sum += jump
    return stats


def corpus_folding_stats(traces: Sequence[Trace], labels: Sequence[Sequence[str]], encoder: object,
                         threshold: float = 0.6) -> FoldingStats:
    """Pooled folding statistics over traces (``encoder`` has ``encode(texts) -> vectors``)."""
    total = FoldingStats()
    vectors = encoder.encode([s for t in traces for s in t.steps])  # type: ignore[attr-defined]
    offset = 0
    for trace, trace_labels in zip(traces, labels):
        n = len(trace.steps)
        total = total + folding_stats(trace_labels, vectors[offset:offset + n], threshold)
        offset += n
    return total


def tsne_coordinates(vectors: np.ndarray, dims: int = 2, seed: int = 0, perplexity: float = 15.0) -> np.ndarray:
    """t-SNE map of step embeddings (perplexity clipped to the number of points)."""
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 3:
        return np.zeros((n, dims))
    return TSNE(n_components=dims, perplexity=min(perplexity, (n - 1) / 3), random_state=seed, init="pca",
                metric="cosine").fit_transform(np.asarray(vectors))


def folding_permutation_null(traces: Sequence[Trace], labels: Sequence[Sequence[str]], encoder: object,
                             repeats: int = 50, seed: int = 0, threshold: float = 0.6) -> pd.DataFrame:
    """The folding statistics with each trace's labels permuted within the trace (``repeats`` draws): what the
    three statistics look like when behaviour and position in embedding space are unrelated. One row per draw."""
    rng = np.random.default_rng(seed)
    vectors = encoder.encode([s for t in traces for s in t.steps])  # type: ignore[attr-defined]
    blocks, offset = [], 0
    for trace in traces:
        blocks.append(vectors[offset:offset + len(trace.steps)])
        offset += len(trace.steps)
    rows = []
    for _ in range(repeats):
        total = FoldingStats()
        for trace_labels, block in zip(labels, blocks):
            permuted = [trace_labels[k] for k in rng.permutation(len(trace_labels))]
            total = total + folding_stats(permuted, block, threshold)
        rows.append(total.summary())
    return pd.DataFrame(rows)
