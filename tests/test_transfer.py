"""Transfer graphs: counts, normalisation, JSON round trip, correlation, divergences, bootstrap stability."""
from __future__ import annotations

import json

import numpy as np
import pytest

from molesyn_lib.errors import InputError
from molesyn_lib.transfer import (
    TransferGraph,
    bootstrap_stability,
    js_distance,
    kl_divergence,
    load_graph,
    pearson,
    shannon_entropy,
    stationary_distribution,
)


def test_counts_transition_marginal():
    graph = TransferGraph.from_sequences([["N", "D", "D", "R"], ["E", "N"]])
    assert graph.counts[0, 1] == 1 and graph.counts[1, 1] == 1 and graph.counts[1, 2] == 1 and graph.counts[3, 0] == 1
    assert graph.counts.sum() == 4 and graph.n_traces == 2 and graph.n_steps == 6
    np.testing.assert_allclose(graph.transition.sum(axis=1), 1.0)
    np.testing.assert_allclose(graph.transition[1], [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(graph.transition[2], [0.25] * 4)  # R never followed by anything: uniform row
    np.testing.assert_allclose(graph.marginal, [2 / 6, 2 / 6, 1 / 6, 1 / 6])


def test_unknown_behaviour_rejected():
    with pytest.raises(ValueError, match="unknown behaviour 'X'"):
        TransferGraph.from_sequences([["N", "X"]])


def test_json_roundtrip(tmp_path):
    graph = TransferGraph.from_sequences([["N", "D", "R", "E", "N", "D"]] * 3, labeler="lexical", name="t")
    path = graph.save(tmp_path / "g.json")
    record = json.loads(path.read_text())
    assert record["states"] == ["N", "D", "R", "E"] and record["n_traces"] == 3 and record["labeler"] == "lexical"
    again = load_graph(path)
    np.testing.assert_allclose(again.transition, graph.transition)
    np.testing.assert_allclose(again.marginal, graph.marginal)
    assert pearson(graph, again) == pytest.approx(1.0)


def test_graph_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"transition": [[1, 0], [0, 1]]}')
    with pytest.raises(InputError, match="bad.json: 'transition' must be a non-negative 4x4"):
        load_graph(bad)
    bad.write_text('{"transition": [[0.5, 0, 0, 0]] * 4}'.replace(" * 4", ""))
    with pytest.raises(InputError, match="bad.json"):
        load_graph(bad)
    bad.write_text("{")
    with pytest.raises(InputError, match="bad.json:1: not valid JSON"):
        load_graph(bad)


def test_from_matrix_and_sampling():
    transition = np.array([[0.1, 0.6, 0.2, 0.1], [0.2, 0.5, 0.2, 0.1], [0.3, 0.3, 0.3, 0.1], [0.4, 0.4, 0.1, 0.1]])
    graph = TransferGraph.from_matrix(transition)
    np.testing.assert_allclose(graph.marginal, stationary_distribution(transition))
    rng = np.random.default_rng(0)
    walk = [graph.sample_start(rng)]
    for _ in range(20000):
        walk.append(graph.sample_next(walk[-1], rng))
    estimated = TransferGraph.from_sequences([walk])
    np.testing.assert_allclose(estimated.transition, transition, atol=0.03)
    assert pearson(estimated, graph) > 0.98


def test_divergences_and_entropy():
    a = TransferGraph.from_sequences([["N", "D"] * 50])
    b = TransferGraph.from_sequences([["R", "E"] * 50])
    assert js_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert js_distance(a, b, "marginal") == pytest.approx(1.0)
    assert kl_divergence(a, a) == pytest.approx(0.0, abs=0.01) and kl_divergence(a, b) > 1
    assert shannon_entropy([0.25] * 4) == pytest.approx(2.0) and shannon_entropy([1, 0, 0, 0]) == 0.0
    assert a.entropy() == pytest.approx(1.0)


def test_bootstrap_stability_increases_with_size():
    rng = np.random.default_rng(1)
    transition = np.array([[0.5, 0.3, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1], [0.3, 0.3, 0.3, 0.1], [0.2, 0.2, 0.2, 0.4]])
    graph = TransferGraph.from_matrix(transition)
    sequences = []
    for _ in range(300):
        walk = [graph.sample_start(rng)]
        for _ in range(15):
            walk.append(graph.sample_next(walk[-1], rng))
        sequences.append(walk)
    curve = bootstrap_stability(sequences, sizes=[2, 20, 200], repeats=30, seed=0)
    means = [row["r_pair_mean"] for row in curve.summary()]
    assert means[0] < means[1] < means[2] and means[2] > 0.95
    assert curve.summary() == bootstrap_stability(sequences, sizes=[2, 20, 200], repeats=30, seed=0).summary()
