"""Chapter 1's decision rules return each of their verdicts for suitable inputs, and the order nulls behave."""
from __future__ import annotations

import numpy as np

from molesyn_lib.transfer import (TransferGraph, centred_pearson, pair_with_null, shuffle_within,
                                  split_half_stability)
from molesyn_lib.verdicts import correlation_verdict, null_verdict, stability_verdict


def _pairs(rs, ps, n=50):
    return [{"r": r, "p_centred_null": p, "n_min": n} for r, p in zip(rs, ps)]


def test_correlation_verdict_can_return_every_verdict():
    assert correlation_verdict(_pairs([0.95, 0.93, 0.91], [0.01, 0.01, 0.02])) == "reproduced"
    assert correlation_verdict(_pairs([0.95, 0.93, 0.91], [0.01, 0.40, 0.02])) == "partly"  # composition only
    assert correlation_verdict(_pairs([0.95, 0.85, 0.80], [0.01, 0.01, 0.01])) == "partly"
    assert correlation_verdict(_pairs([0.85, 0.80, 0.70], [0.01, 0.01, 0.01])) == "not reproduced"
    assert correlation_verdict(_pairs([0.95, 0.95, 0.95], [0.01] * 3, n=3)) == "not tested"
    assert correlation_verdict([]) == "not tested"


def test_stability_verdict_can_return_every_verdict():
    assert stability_verdict({"R1": {10: 0.9, 50: 0.96}, "QwQ": {10: 0.97}}) == "reproduced"
    assert stability_verdict({"R1": {10: 0.9, 50: 0.93}, "QwQ": {10: 0.97}}) == "not tested"  # corpus too small
    assert stability_verdict({"R1": {1000: 0.9, 2500: 0.93}, "QwQ": {2500: 0.97}}) == "not reproduced"
    assert stability_verdict({}) == "not tested"


def test_null_verdict_can_return_every_verdict():
    null = list(np.linspace(0.2, 0.4, 50))
    assert null_verdict(0.6, null, n_events=40)[0] == "reproduced"
    assert null_verdict(0.35, null, n_events=40)[0] == "partly"
    assert null_verdict(0.25, null, n_events=40)[0] == "not reproduced"
    assert null_verdict(0.6, null, n_events=3)[0] == "not tested"
    assert null_verdict(0.6, null[:10], n_events=40)[0] == "not tested"  # 10 draws cannot give p < 0.05
    verdict, p = null_verdict(0.6, null, n_events=40)
    assert verdict == "reproduced" and p == 1 / 51


def test_order_shuffle_keeps_composition_and_the_null_removes_order_structure():
    rng = np.random.default_rng(0)
    # a strongly ordered corpus: blocks N N D D R R E E repeated
    seqs = [list("NNDDRREE" * 4) for _ in range(20)]
    shuffled = shuffle_within(seqs, rng)
    assert [sorted(s) for s in shuffled] == [sorted(s) for s in seqs]
    real = TransferGraph.from_sequences(seqs)
    assert np.isclose(centred_pearson(real, real), 1.0)
    result = pair_with_null(seqs, [list("NNDDRREE" * 4) for _ in range(20)], repeats=50, seed=0).summary()
    assert result["r"] > 0.99 and result["r_centred"] > 0.99
    assert result["p_centred_null"] < 0.05 and result["r_null_mean"] < result["r"]
    # two corpora that share composition but not order: the raw r stays high, the centred r does not
    other = [list("NRDENRDE" * 4) for _ in range(20)]
    mixed = pair_with_null(seqs, other, repeats=50, seed=0).summary()
    assert mixed["r_centred"] < 0.5


def test_split_half_uses_disjoint_samples_and_skips_sizes_above_half():
    seqs = [list("NDRE" * 3) for _ in range(30)]
    out = split_half_stability(seqs, [5, 10, 15, 20], repeats=5, seed=0)
    assert sorted(out) == [5, 10, 15]
    assert all(np.isclose(v, 1.0) for values in out.values() for v in values)
