"""Information flow along a trace: per-step semantic entropy and its changes (the paper's Appendix D.3 analysis).

The paper maps each step to a "semantic probability representation" and compares how entropy changes from step to
step: on human reasoning 81.3 % of steps change it by less than 0.1, on DeepSeek-R1 76.1 % change it by more than
0.1 (an oscillation between high-entropy search and low-entropy checking). It does not publish its estimator, so
molesyn uses this documented one:

1. **Semantic prototypes.** Step embeddings (MiniLM) of a reference pool are clustered with k-means into ``k``
   prototypes (default 16, seeded). The same prototypes serve every corpus being compared, so entropies are on one
   scale.
2. **Step distribution.** Step *t* becomes ``p_t = softmax(cos(e_t, c_j) / tau)`` over the prototypes ``c_j``
   (``tau`` = 0.05): a peaked distribution for a step that sits squarely in one semantic region, a flat one for a
   step that mixes several.
3. **Entropy.** ``I_t = H(p_t) / log2(k)`` in [0, 1] (normalised Shannon entropy). ``dI_t = I_t - I_{t-1}``.
4. **Statistics.** Share of steps with ``|dI_t| < 0.1`` (smooth, "uniform" flow) and with ``|dI_t| > 0.1``
   (oscillation), the mean ``|dI|``, and the phase-space slope ``m_t = (dI_t - dI_{t-1}) / (I_t - I_{t-1})`` as in
   the paper, summarised by the share of steps in its "exploration" (``m_t > 0.6`` and ``dI_t > 0.05``) and
   "validation" (``|m_t| < 0.1`` and ``|dI_t| < 0.05``) regions.

The 0.1 threshold is the paper's; the scale of ``dI`` depends on ``tau`` and ``k``, so absolute shares are only
comparable between corpora measured with the same prototypes, which is how the chapters use them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .traces import Trace


@dataclass
class SemanticPrototypes:
    """k-means prototypes of step embeddings and the softmax temperature of the step distributions."""

    centroids: np.ndarray
    tau: float = 0.05

    @classmethod
    def fit(cls, vectors: np.ndarray, k: int = 16, seed: int = 0, tau: float = 0.05) -> SemanticPrototypes:
        from sklearn.cluster import KMeans

        vectors = np.asarray(vectors, dtype=float)
        if len(vectors) < k:
            raise ValueError(f"need at least k={k} step embeddings to fit prototypes, got {len(vectors)}")
        centroids = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(vectors).cluster_centers_
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        return cls(centroids=centroids, tau=tau)

    def distributions(self, vectors: np.ndarray) -> np.ndarray:
        """``p_t`` for each row of ``vectors`` (n x k)."""
        logits = np.asarray(vectors, dtype=float) @ self.centroids.T / self.tau
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def entropies(self, vectors: np.ndarray) -> np.ndarray:
        """Normalised entropy ``I_t`` of each step."""
        p = self.distributions(vectors)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
        return h / np.log2(self.centroids.shape[0])


@dataclass
class EntropyDynamics:
    """Pooled entropy-change statistics of a corpus (see module docstring)."""

    n_changes: int
    share_small: float
    share_large: float
    mean_abs_change: float
    mean_entropy: float
    share_exploration: float
    share_validation: float

    def summary(self) -> dict[str, float]:
        return dict(self.__dict__)


def entropy_changes(entropies: np.ndarray) -> np.ndarray:
    """``dI_t`` for t >= 1."""
    return np.diff(np.asarray(entropies, dtype=float))


def phase_slopes(entropies: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """``(m_t, dI_t)`` for t >= 2, with ``m_t = (dI_t - dI_{t-1}) / (I_t - I_{t-1})`` (0 where the denominator is 0)."""
    change = entropy_changes(entropies)
    if change.size < 2:
        return np.zeros(0), np.zeros(0)
    numerator = change[1:] - change[:-1]
    denominator = change[1:]
    slopes = np.where(np.abs(denominator) > eps, numerator / np.where(np.abs(denominator) > eps, denominator, 1),
                      0.0)
    return slopes, change[1:]


def corpus_dynamics(per_trace_entropies: Sequence[np.ndarray], threshold: float = 0.1) -> EntropyDynamics:
    """Pool the per-trace entropy sequences of a corpus into :class:`EntropyDynamics`."""
    changes = [entropy_changes(e) for e in per_trace_entropies if len(e) > 1]
    pooled = np.concatenate(changes) if changes else np.zeros(0)
    slopes, deltas = zip(*[phase_slopes(e) for e in per_trace_entropies]) if per_trace_entropies else ((), ())
    slope_all = np.concatenate(slopes) if slopes else np.zeros(0)
    delta_all = np.concatenate(deltas) if deltas else np.zeros(0)
    n = pooled.size
    n_slopes = slope_all.size
    return EntropyDynamics(
        n_changes=int(n),
        share_small=float(np.mean(np.abs(pooled) < threshold)) if n else float("nan"),
        share_large=float(np.mean(np.abs(pooled) > threshold)) if n else float("nan"),
        mean_abs_change=float(np.mean(np.abs(pooled))) if n else float("nan"),
        mean_entropy=float(np.mean(np.concatenate([np.asarray(e) for e in per_trace_entropies])))
        if per_trace_entropies else float("nan"),
        share_exploration=float(np.mean((slope_all > 0.6) & (delta_all > 0.05))) if n_slopes else float("nan"),
        share_validation=float(np.mean((np.abs(slope_all) < 0.1) & (np.abs(delta_all) < 0.05))) if n_slopes
        else float("nan"),
    )


def trace_entropies(traces: Sequence[Trace], encoder: object, prototypes: SemanticPrototypes) -> list[np.ndarray]:
    """Per-step entropies of each trace (``encoder.encode(texts)`` gives normalised step embeddings)."""
    vectors = encoder.encode([s for t in traces for s in t.steps])  # type: ignore[attr-defined]
    out, offset = [], 0
    for trace in traces:
        n = len(trace.steps)
        out.append(prototypes.entropies(vectors[offset:offset + n]) if n else np.zeros(0))
        offset += n
    return out
