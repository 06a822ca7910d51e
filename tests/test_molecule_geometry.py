"""Molecule construction (bond typing) and the folding statistics."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from molesyn_lib.geometry import FoldingStats, cluster_steps, folding_stats, tsne_coordinates
from molesyn_lib.molecule import bond_counts, bonds, build_molecule
from molesyn_lib.plots import draw_molecule, transition_heatmaps, tsne_trace
from molesyn_lib.traces import Trace
from molesyn_lib.transfer import TransferGraph

STEPS = ["Let x be the number of apples and y the pears.", "Then x + y = 10 and 2x = y.",
         "So 3x = 10, which gives x = 10/3.", "Wait, x + y = 10 and 2x = y: check the apples count again.",
         "Alternatively, maybe count pears with a ratio argument.", "So y = 20/3."]


def test_bonds_by_behaviour():
    trace = Trace("t", STEPS, behaviors=["N", "D", "D", "R", "E", "D"])
    molecule = build_molecule(trace)
    assert molecule.number_of_nodes() == 6
    covalent = {(u, v) for u, v, _ in bonds(molecule, "covalent")}
    assert covalent == {(0, 1), (1, 2), (4, 5)}
    hydrogen = bonds(molecule, "hydrogen")
    assert len(hydrogen) == 1 and hydrogen[0][0] == 3 and hydrogen[0][1] == 1  # revisits "x + y = 10 and 2x = y"
    vdw = bonds(molecule, "vdw")
    assert [(u, v) for u, v, _ in vdw] == [(2, 4)]  # branches away from the last deep-reasoning step
    assert bond_counts(molecule)["sequence"] == 2  # (2, 3) and (3, 4) carry no bond of their own


def test_molecule_with_vectors_and_threshold():
    vectors = np.eye(6)
    vectors[3] = vectors[0]
    molecule = build_molecule(Trace("t", STEPS, behaviors=["N", "N", "N", "R", "N", "N"]), vectors=vectors)
    assert [(u, v) for u, v, _ in bonds(molecule, "hydrogen")] == [(3, 0)]
    none = build_molecule(Trace("t", STEPS, behaviors=["N", "N", "N", "R", "N", "N"]), vectors=np.eye(6))
    assert bonds(none, "hydrogen") == []
    with pytest.raises(ValueError, match="behaviours for"):
        build_molecule(Trace("t", STEPS), behaviors=["N"])


def test_folding_stats_on_constructed_geometry():
    # clusters: steps 0-1 in A, 2-3 in B, step 4 (R) returns to A, step 5 (E) jumps to a new region C
    a, b, c = np.eye(3)
    vectors = np.array([a, a * 0.99 + b * 0.01, b, b, a, c], dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stats = folding_stats(["N", "D", "N", "D", "R", "E"], vectors, threshold=0.3)
    assert stats.deep_locality == 1.0
    assert stats.reflection_return == 1.0
    assert stats.exploration_jump == pytest.approx(1.0) and stats.exploration_jump_ratio > 1
    pooled = stats + stats
    assert pooled.deep_total == 2 * stats.deep_total and pooled.deep_locality == 1.0
    assert np.isnan(FoldingStats().deep_locality)


def test_clusters_and_tsne_shapes():
    vectors = np.random.default_rng(0).normal(size=(12, 8))
    assert cluster_steps(vectors).shape == (12,)
    assert tsne_coordinates(vectors, dims=2, seed=0).shape == (12, 2)
    np.testing.assert_allclose(tsne_coordinates(vectors, seed=0), tsne_coordinates(vectors, seed=0))


def test_plots_render():
    trace = Trace("t", STEPS, behaviors=["N", "D", "D", "R", "E", "D"])
    assert draw_molecule(build_molecule(trace)).axes
    graph = TransferGraph.from_sequences([trace.behaviors])
    assert len(transition_heatmaps({"a": graph, "b": graph}).axes) == 2
    assert tsne_trace(np.random.default_rng(0).normal(size=(6, 2)), trace.behaviors).axes


def test_entropy_dynamics_estimator():
    from molesyn_lib.entropy_dynamics import SemanticPrototypes, corpus_dynamics, phase_slopes

    rng = np.random.default_rng(0)
    centroids = np.eye(4)
    prototypes = SemanticPrototypes(centroids=centroids, tau=0.05)
    peaked = prototypes.entropies(centroids)  # a step exactly on one prototype: low entropy
    flat = prototypes.entropies(np.full((1, 4), 0.5))  # equally close to all: maximal entropy
    assert np.all(peaked < 0.01) and flat[0] == pytest.approx(1.0)
    smooth = [np.full(20, 0.3) + rng.normal(0, 0.01, 20)]
    oscillating = [np.tile([0.1, 0.9], 10)]
    assert corpus_dynamics(smooth).share_small == 1.0
    assert corpus_dynamics(oscillating).share_large == 1.0
    slopes, deltas = phase_slopes(np.array([0.0, 0.5, 0.5, 1.0]))
    np.testing.assert_allclose(deltas, [0.0, 0.5])
    np.testing.assert_allclose(slopes, [0.0, 1.0])
    fitted = SemanticPrototypes.fit(rng.normal(size=(50, 8)), k=5, seed=0)
    assert fitted.centroids.shape == (5, 8)
    with pytest.raises(ValueError, match="at least k=5"):
        SemanticPrototypes.fit(rng.normal(size=(3, 8)), k=5)
