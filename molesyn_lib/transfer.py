"""The distribution-transfer graph of a corpus: the paper's "molecular structure" of Long CoT.

For a corpus of behaviour sequences (one per trace) the graph holds the 4x4 transition counts between consecutive
steps, the row-normalised transition matrix ``P(next | current)`` and the marginal behaviour distribution, over the
states N, D, R, E in that order. Tools here compare graphs (Pearson correlation of the transition matrices, as in the
paper's Figure 5; Jensen-Shannon distances), measure how stable a corpus's graph is under resampling (bootstrap), and
compute entropies. Graphs serialise to the ``GRAPH.json`` format used by the command line.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import pearsonr

from .behaviors import STATE_INDEX, STATES
from .errors import InputError
from .safeio import read_json_file, write_json

N_STATES = len(STATES)


def encode(sequence: Sequence[str]) -> np.ndarray:
    """Behaviour codes -> integer array (raises ``ValueError`` naming a bad code)."""
    try:
        return np.fromiter((STATE_INDEX[b] for b in sequence), dtype=np.int64, count=len(sequence))
    except KeyError as exc:
        raise ValueError(f"unknown behaviour {exc.args[0]!r}; expected one of {', '.join(STATES)}") from None


def transition_counts(sequences: Iterable[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Count consecutive-step transitions and step behaviours: ``(counts 4x4, behaviour counts 4)``."""
    counts = np.zeros((N_STATES, N_STATES), dtype=np.int64)
    totals = np.zeros(N_STATES, dtype=np.int64)
    for sequence in sequences:
        codes = encode(sequence)
        if codes.size == 0:
            continue
        totals += np.bincount(codes, minlength=N_STATES)
        if codes.size > 1:
            np.add.at(counts, (codes[:-1], codes[1:]), 1)
    return counts, totals


def normalise_rows(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Row-normalise a count matrix; a row with no mass (and no smoothing) becomes uniform."""
    counts = np.asarray(counts, dtype=float) + smoothing
    sums = counts.sum(axis=1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / counts.shape[1])
    return np.where(sums > 0, counts / np.where(sums > 0, sums, 1.0), uniform)


@dataclass
class TransferGraph:
    """A corpus's behaviour transfer graph.

    Attributes:
        counts: 4x4 transition counts, ``counts[i, j]`` = number of steps of behaviour ``i`` followed by ``j``.
        behavior_counts: number of steps of each behaviour.
        n_traces: traces that contributed.
        labeler: the labeller that produced the behaviours (provenance).
        name: a display name (model or corpus).
        smoothing: additive smoothing used by :attr:`transition` (0 = maximum likelihood).
    """

    counts: np.ndarray
    behavior_counts: np.ndarray
    n_traces: int = 0
    labeler: str | None = None
    name: str | None = None
    smoothing: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_sequences(cls, sequences: Iterable[Sequence[str]], **kwargs: Any) -> TransferGraph:
        """Estimate the graph from behaviour sequences (one list of N/D/R/E per trace)."""
        sequences = [list(s) for s in sequences]
        counts, totals = transition_counts(sequences)
        return cls(counts=counts, behavior_counts=totals, n_traces=sum(1 for s in sequences if s), **kwargs)

    @classmethod
    def from_matrix(cls, transition: np.ndarray | Sequence[Sequence[float]], marginal: Sequence[float] | None = None,
                    name: str | None = None) -> TransferGraph:
        """A graph given directly by its transition matrix (and marginal); counts are scaled probabilities."""
        transition = np.asarray(transition, dtype=float)
        if transition.shape != (N_STATES, N_STATES) or np.any(transition < 0):
            raise ValueError("transition must be a non-negative 4x4 matrix")
        transition = normalise_rows(transition)
        marginal_arr = stationary_distribution(transition) if marginal is None else np.asarray(marginal, float)
        marginal_arr = marginal_arr / marginal_arr.sum()
        scale = 1_000_000
        counts = np.rint(transition * marginal_arr[:, None] * scale).astype(np.int64)
        graph = cls(counts=counts, behavior_counts=np.rint(marginal_arr * scale).astype(np.int64), name=name)
        graph._transition = transition
        graph._marginal = marginal_arr
        return graph

    # cached overrides for graphs given as probabilities
    _transition: np.ndarray | None = field(default=None, repr=False, compare=False)
    _marginal: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def transition(self) -> np.ndarray:
        """``P(next | current)``, rows summing to 1."""
        if self._transition is not None:
            return self._transition
        return normalise_rows(self.counts, self.smoothing)

    @property
    def marginal(self) -> np.ndarray:
        """Share of steps of each behaviour."""
        if self._marginal is not None:
            return self._marginal
        total = self.behavior_counts.sum()
        return self.behavior_counts / total if total else np.full(N_STATES, 1.0 / N_STATES)

    @property
    def n_steps(self) -> int:
        return int(self.behavior_counts.sum())

    def marginal_dict(self) -> dict[str, float]:
        return {s: float(v) for s, v in zip(STATES, self.marginal)}

    def entropy(self) -> float:
        """Shannon entropy (bits) of the marginal behaviour distribution."""
        return shannon_entropy(self.marginal)

    def entropy_rate(self) -> float:
        """Entropy rate (bits per step) of the Markov chain: sum_i pi_i H(P[i, :])."""
        return float(sum(p * shannon_entropy(row) for p, row in zip(self.marginal, self.transition)))

    def to_dict(self) -> dict[str, Any]:
        """The ``GRAPH.json`` record (see :func:`load_graph`)."""
        return {
            "states": list(STATES),
            "transition": np.round(self.transition, 10).tolist(),
            "marginal": np.round(self.marginal, 10).tolist(),
            "counts": self.counts.astype(int).tolist(),
            "n_traces": int(self.n_traces),
            "n_steps": self.n_steps,
            "labeler": self.labeler,
            "name": self.name,
            **({"meta": self.meta} if self.meta else {}),
        }

    def save(self, path: str | Path) -> Path:
        """Write the ``GRAPH.json`` record atomically as strict JSON (:func:`molesyn_lib.safeio.write_json`)."""
        return write_json(path, self.to_dict(), indent=2)

    def sample_next(self, current: str, rng: np.random.Generator) -> str:
        """Sample the behaviour after ``current`` from ``P(. | current)``."""
        return STATES[int(rng.choice(N_STATES, p=self.transition[STATE_INDEX[current]]))]

    def sample_start(self, rng: np.random.Generator) -> str:
        """Sample a start behaviour from the marginal distribution."""
        return STATES[int(rng.choice(N_STATES, p=self.marginal))]


def _numbers(value: Any, field_name: str, shape: tuple[int, ...], path: str | Path, integer: bool = False,
             ) -> np.ndarray:
    """``value`` as a float array of ``shape``: nested lists of JSON numbers (no strings or booleans), finite and
    non-negative (and whole numbers when ``integer``); :class:`InputError` naming ``field_name`` otherwise."""
    size = "x".join(str(n) for n in shape)
    kind = "whole numbers" if integer else "numbers"

    def valid(item: Any, depth: int) -> bool:
        if depth == len(shape):
            return isinstance(item, (int, float)) and not isinstance(item, bool)
        return isinstance(item, list) and len(item) == shape[depth] and all(valid(x, depth + 1) for x in item)

    if not valid(value, 0):
        raise InputError(f"'{field_name}' must be a non-negative {size} {'matrix' if len(shape) == 2 else 'list'} "
                         f"of {kind}, got {_describe(value)}", path)
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise InputError(f"'{field_name}' holds NaN or infinite values", path)
    if np.any(array < 0):
        raise InputError(f"'{field_name}' holds negative values", path)
    if integer and np.any(array != np.rint(array)):
        raise InputError(f"'{field_name}' must hold whole numbers (counts)", path)
    return array


def _describe(value: Any) -> str:
    """A short description of a JSON value for error messages (type and, for lists, the shape)."""
    if isinstance(value, list):
        inner = value[0] if value else None
        if isinstance(inner, list):
            return f"a list of {len(value)} lists" + (f" of {len(inner)}" if all(
                isinstance(row, list) and len(row) == len(inner) for row in value) else " of different lengths")
        return f"a list of {len(value)} items" if all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value) else "a list with non-numbers"
    return "nothing" if value is None else f"a {type(value).__name__}"


def _whole(record: dict[str, Any], field_name: str, path: str | Path) -> int | None:
    value = record.get(field_name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 0:
        raise InputError(f"'{field_name}' must be a non-negative whole number, got {value!r}", path)
    return int(value)


def _text(record: dict[str, Any], field_name: str, path: str | Path) -> str | None:
    value = record.get(field_name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"'{field_name}' must be a string, got a {type(value).__name__}", path)
    return value


def graph_from_dict(record: dict[str, Any], path: str | Path = "<memory>") -> TransferGraph:
    """Read a ``GRAPH.json`` record (``states``, ``transition`` and optionally ``counts``, ``marginal``...).

    Every field is checked: ``transition`` a finite non-negative 4x4 matrix whose rows sum to 1; ``counts`` a 4x4
    matrix of non-negative whole numbers; ``marginal`` 4 finite non-negative numbers with a positive sum;
    ``n_steps``/``n_traces`` non-negative whole numbers; ``labeler``/``name`` strings; ``meta`` an object. A bad
    field raises :class:`InputError` naming the file and the field.
    """
    if not isinstance(record, dict):
        raise InputError("a graph file must hold a JSON object", path)
    states = record.get("states", list(STATES))
    if not isinstance(states, list) or states != list(STATES):
        raise InputError(f"graph states must be {list(STATES)}, got {states!r}", path)
    if "transition" not in record:
        raise InputError("graph needs a 4x4 numeric 'transition' matrix", path)
    transition = _numbers(record["transition"], "transition", (N_STATES, N_STATES), path)
    sums = transition.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        bad = int(np.argmax(np.abs(sums - 1.0)))
        raise InputError(f"'transition' rows must each sum to 1 (row {STATES[bad]} sums to {sums[bad]:.6g})", path)
    counts = _numbers(record["counts"], "counts", (N_STATES, N_STATES), path, integer=True) \
        if record.get("counts") is not None else None
    marginal = _numbers(record["marginal"], "marginal", (N_STATES,), path) \
        if record.get("marginal") is not None else None
    if marginal is not None and not marginal.sum() > 0:
        raise InputError("'marginal' must have a positive sum (it is all zeros)", path)
    n_steps, n_traces = _whole(record, "n_steps", path), _whole(record, "n_traces", path)
    labeler, name = _text(record, "labeler", path), _text(record, "name", path)
    meta = record.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InputError(f"'meta' must be an object, got a {type(meta).__name__}", path)
    if counts is not None and marginal is not None:
        steps = n_steps or int(counts.sum()) or 1
        graph = TransferGraph(counts=counts.astype(np.int64),
                              behavior_counts=np.rint(marginal / marginal.sum() * steps).astype(np.int64),
                              n_traces=n_traces or 0, labeler=labeler, name=name, meta=meta or {})
        graph._transition = transition
        graph._marginal = marginal / marginal.sum()
        return graph
    graph = TransferGraph.from_matrix(transition, marginal, name=name)
    graph.labeler = labeler
    if not np.all(np.isfinite(graph.marginal)) or not graph.marginal.sum() > 0:
        raise InputError("'transition' has no stationary distribution; give a 'marginal'", path)
    return graph


def load_graph(path: str | Path) -> TransferGraph:
    """Load a ``GRAPH.json`` file written by :meth:`TransferGraph.save` or ``molesyn graph``.

    Unreadable files (missing, a directory, bad gzip, not UTF-8, invalid or too deeply nested JSON; a UTF-8 BOM is
    accepted) and invalid fields (:func:`graph_from_dict`) raise :class:`InputError` naming the file.
    """
    record = read_json_file(path)
    if not isinstance(record, dict):
        raise InputError("a graph file must hold a JSON object", path)
    return graph_from_dict(record, path)


def shannon_entropy(probabilities: Sequence[float] | np.ndarray) -> float:
    """Shannon entropy in bits (zeros ignored)."""
    p = np.asarray(probabilities, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) if p.size else 0.0


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """The stationary distribution of a row-stochastic matrix (left eigenvector of eigenvalue 1)."""
    values, vectors = np.linalg.eig(np.asarray(transition, dtype=float).T)
    vector = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    vector = np.abs(vector)
    return vector / vector.sum()


def pearson(a: TransferGraph | np.ndarray, b: TransferGraph | np.ndarray) -> float:
    """Pearson correlation between two graphs' flattened transition matrices (the paper's Figure 5 statistic)."""
    x = (a.transition if isinstance(a, TransferGraph) else np.asarray(a, float)).ravel()
    y = (b.transition if isinstance(b, TransferGraph) else np.asarray(b, float)).ravel()
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(pearsonr(x, y).statistic)


def pearson_with_p(a: TransferGraph, b: TransferGraph) -> tuple[float, float]:
    """Pearson r and its two-sided p-value (16 matrix cells) between two graphs; both NaN (undefined) when either
    transition matrix is constant, e.g. all rows uniform."""
    x, y = a.transition.ravel(), b.transition.ravel()
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan"), float("nan")
    result = pearsonr(x, y)
    return float(result.statistic), float(result.pvalue)


def js_distance(a: TransferGraph, b: TransferGraph, what: str = "transition") -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the marginals, or the marginal-weighted mean over the
    transition rows (``what="transition"``)."""
    if what == "marginal":
        return float(jensenshannon(a.marginal, b.marginal, base=2))
    weights = (a.marginal + b.marginal) / 2
    rows = [jensenshannon(ra, rb, base=2) for ra, rb in zip(a.transition, b.transition)]
    return float(np.dot(weights, rows) / weights.sum())


def kl_divergence(p: TransferGraph, q: TransferGraph, smoothing: float = 1e-3) -> float:
    """KL(p || q) in bits between the two chains' transition rows, weighted by p's marginal (smoothed q)."""
    qt = normalise_rows(q.transition + smoothing)
    pt = p.transition
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pt > 0, pt * np.log2(pt / qt), 0.0)
    return float(np.dot(p.marginal, terms.sum(axis=1)))


def correlation_matrix(graphs: dict[str, TransferGraph]) -> tuple[list[str], np.ndarray]:
    """Pairwise Pearson correlations of named graphs: ``(names, matrix)``."""
    names = list(graphs)
    matrix = np.array([[pearson(graphs[a], graphs[b]) for b in names] for a in names])
    return names, matrix


@dataclass
class StabilityCurve:
    """Bootstrap stability of a corpus's graph versus the number of sampled traces.

    ``r_full[k]``: Pearson r between graphs of ``sizes[k]`` resampled traces and the full-corpus graph, one value per
    repeat; ``r_pair[k]``: Pearson r between two independent resamples of that size.
    """

    sizes: list[int]
    r_full: list[list[float]]
    r_pair: list[list[float]]

    def summary(self) -> list[dict[str, float]]:
        return [{"n": n, "r_full_mean": float(np.nanmean(f)), "r_full_p05": float(np.nanpercentile(f, 5)),
                 "r_pair_mean": float(np.nanmean(p)), "r_pair_p05": float(np.nanpercentile(p, 5))}
                for n, f, p in zip(self.sizes, self.r_full, self.r_pair)]


def bootstrap_stability(sequences: Sequence[Sequence[str]], sizes: Sequence[int], repeats: int = 50,
                        seed: int = 0) -> StabilityCurve:
    """Resample traces with replacement at each size and correlate with the full graph and with each other."""
    if not sequences:
        raise ValueError("bootstrap_stability needs at least one sequence")
    rng = np.random.default_rng(seed)
    per_trace = [transition_counts([s])[0] for s in sequences]
    stacked = np.stack(per_trace)
    full = normalise_rows(stacked.sum(axis=0))
    r_full: list[list[float]] = []
    r_pair: list[list[float]] = []
    for size in sizes:
        fulls, pairs = [], []
        for _ in range(repeats):
            first = normalise_rows(stacked[rng.integers(0, len(stacked), size)].sum(axis=0))
            second = normalise_rows(stacked[rng.integers(0, len(stacked), size)].sum(axis=0))
            fulls.append(pearson(first, full))
            pairs.append(pearson(first, second))
        r_full.append(fulls)
        r_pair.append(pairs)
    return StabilityCurve(sizes=list(sizes), r_full=r_full, r_pair=r_pair)


def bootstrap_pearson(first: Sequence[Sequence[str]], second: Sequence[Sequence[str]], repeats: int = 200,
                      seed: int = 0) -> np.ndarray:
    """Pearson r between the graphs of two corpora, each resampled (traces with replacement) ``repeats`` times.

    The spread of the returned values is the sampling uncertainty of the cross-corpus correlation.
    """
    if not first or not second:
        raise ValueError("bootstrap_pearson needs two non-empty corpora")
    rng = np.random.default_rng(seed)
    a = np.stack([transition_counts([s])[0] for s in first])
    b = np.stack([transition_counts([s])[0] for s in second])
    values = np.empty(repeats)
    for k in range(repeats):
        values[k] = pearson(normalise_rows(a[rng.integers(0, len(a), len(a))].sum(axis=0)),
                            normalise_rows(b[rng.integers(0, len(b), len(b))].sum(axis=0)))
    return values


def centred(transition: np.ndarray, marginal: np.ndarray) -> np.ndarray:
    """A transition matrix minus what composition alone predicts (every row equal to the marginal): the part of
    P(next | current) that order carries."""
    return np.asarray(transition, float) - np.asarray(marginal, float)[None, :]


def centred_pearson(a: TransferGraph, b: TransferGraph) -> float:
    """Pearson r of the two graphs' centred transition matrices (:func:`centred`): agreement beyond composition."""
    return pearson(centred(a.transition, a.marginal), centred(b.transition, b.marginal))


def shuffle_within(sequences: Sequence[Sequence[str]], rng: np.random.Generator) -> list[list[str]]:
    """Each sequence with its steps in a random order: composition kept, order destroyed (the order null)."""
    return [list(np.asarray(list(s), dtype=object)[rng.permutation(len(s))]) for s in sequences]


@dataclass
class PairWithNull:
    """Correlation of two corpora's graphs next to the order-shuffled null.

    Attributes:
        r: Pearson r of the real graphs.
        r_null: Pearson r of the two corpora's within-trace order-shuffled graphs, one value per repeat.
        r_centred: Pearson r of the centred matrices (order structure only; the null's is about 0).
        r_centred_null: the same for the shuffled graphs.
    """

    r: float
    r_null: list[float]
    r_centred: float
    r_centred_null: list[float]

    def summary(self) -> dict[str, float]:
        null = np.asarray(self.r_null, float)
        cnull = np.asarray(self.r_centred_null, float)
        return {"r": self.r, "r_null_mean": float(np.nanmean(null)), "r_null_p95": float(np.nanpercentile(null, 95)),
                "r_excess": self.r - float(np.nanmean(null)),
                "p_null": float((1 + np.sum(null >= self.r)) / (1 + len(null))),
                "r_centred": self.r_centred, "r_centred_null_p95": float(np.nanpercentile(cnull, 95)),
                "p_centred_null": float((1 + np.sum(cnull >= self.r_centred)) / (1 + len(cnull)))}


def pair_with_null(first: Sequence[Sequence[str]], second: Sequence[Sequence[str]], repeats: int = 200,
                   seed: int = 0) -> PairWithNull:
    """Correlate two corpora's graphs and compare with ``repeats`` draws of the within-trace order-shuffled null
    (both corpora shuffled). ``p_null`` in the summary is the share of null draws at or above the real r."""
    if not first or not second:
        raise ValueError("pair_with_null needs two non-empty corpora")
    rng = np.random.default_rng(seed)
    ga, gb = TransferGraph.from_sequences(first), TransferGraph.from_sequences(second)
    r_null, c_null = [], []
    for _ in range(repeats):
        na = TransferGraph.from_sequences(shuffle_within(first, rng))
        nb = TransferGraph.from_sequences(shuffle_within(second, rng))
        r_null.append(pearson(na, nb))
        c_null.append(centred_pearson(na, nb))
    return PairWithNull(r=pearson(ga, gb), r_null=r_null, r_centred=centred_pearson(ga, gb), r_centred_null=c_null)


def split_half_stability(sequences: Sequence[Sequence[str]], sizes: Sequence[int], repeats: int = 50,
                         seed: int = 0) -> dict[int, list[float]]:
    """Pearson r between the graphs of two *disjoint* random samples of ``n`` traces (without replacement), for each
    ``n`` in ``sizes`` with ``2 n`` at most the corpus size: how stable a graph of ``n`` traces is, with no
    trace shared between the two samples."""
    rng = np.random.default_rng(seed)
    stacked = np.stack([transition_counts([s])[0] for s in sequences])
    out: dict[int, list[float]] = {}
    for n in sizes:
        if 2 * n > len(stacked):
            continue
        values = []
        for _ in range(repeats):
            order = rng.permutation(len(stacked))
            values.append(pearson(normalise_rows(stacked[order[:n]].sum(axis=0)),
                                  normalise_rows(stacked[order[n:2 * n]].sum(axis=0))))
        out[n] = values
    return out
