"""The molecule of one trace: a networkx graph of its steps with typed bonds.

Nodes are steps (attributes ``behavior``, ``text``, ``position``). Every consecutive pair is joined by an edge
typed ``sequence`` (the order of writing) unless one of the paper's bonds joins the same pair:

* **covalent** ``(i-1) -> i`` when step ``i`` is Deep reasoning: it extends the deductive chain;
* **hydrogen** ``i -> j`` from a Self-reflection step ``i`` to the earlier step ``j < i - 1`` it revisits, found as the
  most similar earlier step (cosine of step embeddings when vectors are given, else token Jaccard overlap), kept only if
  the similarity reaches ``hydrogen_threshold``;
* **van der Waals** ``j -> i`` from the step an Exploration step ``i`` branches away from (the latest Deep-reasoning
  step before it, else its predecessor); the ``jump`` attribute is the semantic distance between the two.

Edge attributes: ``bond`` (one of the four types), ``similarity`` and ``distance`` (in steps).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import networkx as nx
import numpy as np

from .traces import Trace

BOND_TYPES = ("sequence", "covalent", "hydrogen", "vdw")
_TOKEN_RE = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?|[=+\-*/^]")


def _tokens(text: str) -> set[str]:
    return {t.lower() for t in _TOKEN_RE.findall(text)}


def jaccard_similarity_matrix(steps: Sequence[str]) -> np.ndarray:
    """Pairwise token-set Jaccard similarity of steps."""
    token_sets = [_tokens(s) for s in steps]
    n = len(steps)
    sim = np.eye(n)
    for i in range(n):
        for j in range(i):
            union = len(token_sets[i] | token_sets[j])
            sim[i, j] = sim[j, i] = len(token_sets[i] & token_sets[j]) / union if union else 0.0
    return sim


def build_molecule(trace: Trace, behaviors: Sequence[str] | None = None, vectors: np.ndarray | None = None,
                   hydrogen_threshold: float | None = None) -> nx.DiGraph:
    """Build the molecule of ``trace`` (behaviours default to ``trace.behaviors``; ``vectors``: step embeddings).

    ``hydrogen_threshold`` defaults to 0.5 for embeddings and 0.2 for token overlap.
    """
    behaviors = list(behaviors if behaviors is not None else trace.behaviors or [])
    if len(behaviors) != len(trace.steps):
        raise ValueError(f"{len(behaviors)} behaviours for {len(trace.steps)} steps in trace {trace.trace_id}")
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=float)
        sim = vectors @ vectors.T
        threshold = 0.5 if hydrogen_threshold is None else hydrogen_threshold
    else:
        sim = jaccard_similarity_matrix(trace.steps)
        threshold = 0.2 if hydrogen_threshold is None else hydrogen_threshold
    graph = nx.DiGraph(trace_id=trace.trace_id, model=trace.model)
    for i, (text, behavior) in enumerate(zip(trace.steps, behaviors)):
        graph.add_node(i, behavior=behavior, text=text, position=i)
    last_deep: int | None = None
    for i, behavior in enumerate(behaviors):
        if i > 0:
            graph.add_edge(i - 1, i, bond="sequence", similarity=float(sim[i, i - 1]), distance=1)
        if behavior == "D" and i > 0:
            graph.add_edge(i - 1, i, bond="covalent", similarity=float(sim[i, i - 1]), distance=1)
        elif behavior == "R" and i > 1:
            j = int(np.argmax(sim[i, : i - 1]))
            if sim[i, j] >= threshold:
                graph.add_edge(i, j, bond="hydrogen", similarity=float(sim[i, j]), distance=i - j)
        elif behavior == "E" and i > 0:
            j = last_deep if last_deep is not None else i - 1
            graph.add_edge(j, i, bond="vdw", similarity=float(sim[i, j]), distance=i - j,
                           jump=float(1.0 - sim[i, j]))
        if behavior == "D":
            last_deep = i
    return graph


def bonds(graph: nx.DiGraph, bond: str) -> list[tuple[int, int, dict]]:
    """The edges of one bond type (edges of a DiGraph are unique per pair, so later types overwrite ``sequence``)."""
    return [(u, v, d) for u, v, d in graph.edges(data=True) if d.get("bond") == bond]


def bond_counts(graph: nx.DiGraph) -> dict[str, int]:
    """Number of bonds of each type (a consecutive pair that is also covalent counts as covalent)."""
    return {bond: len(bonds(graph, bond)) for bond in BOND_TYPES}
