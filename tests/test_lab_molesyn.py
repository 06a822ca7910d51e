"""MOLE-SYN walks as lab data sources: graphs, cache keys, traces."""
from __future__ import annotations

import numpy as np
import pytest

from molesyn_lib.lab import experiments as ex
from molesyn_lib.lab import kernel
from molesyn_lib.lab.grammar import parse_completion, replay
from molesyn_lib.lab.tasks import TaskConfig, make_splits
from molesyn_lib.transfer import TransferGraph, pearson


def test_walk_graphs():
    oss = kernel.walk_graph("molesyn:oss")
    np.testing.assert_allclose(oss.transition.sum(axis=1), 1.0)
    np.testing.assert_allclose(kernel.walk_graph("molesyn:uniform").transition, 0.25)
    shuffled = kernel.walk_graph("molesyn:shuffled-oss")
    assert sorted(np.round(shuffled.transition.ravel(), 6)) != sorted(np.round(oss.transition.ravel(), 6)) or \
        pearson(shuffled, oss) < 0.9
    assert kernel.is_molesyn("molesyn:qwq") and not kernel.is_molesyn("qwq")


def test_molesyn_phase_traces_follow_the_walk_and_keys_differ():
    config = ex.profile("smoke").base(phases=(ex.Phase(("molesyn:oss",), 400),))
    splits = make_splits(400, 10, TaskConfig(length=3))
    traces = ex.phase_traces(config.phases[0], config, splits.train, 0)
    assert len(traces) == 400 and all(t.behaviors and len(t.behaviors) == len(t.steps) for t in traces)
    for trace in traces[:20]:
        parsed = parse_completion(" ; ".join(trace.steps) + " ; " + trace.final)
        assert parsed.answer is not None
    walk = TransferGraph.from_sequences([t.meta["requested"] for t in traces])
    assert pearson(walk, kernel.walk_graph("molesyn:oss")) > 0.8
    other = ex.profile("smoke").base(phases=(ex.Phase(("molesyn:uniform",), 400),))
    assert config.key() != other.key()
    assert config.key() == ex.profile("smoke").base(phases=(ex.Phase(("molesyn:oss",), 400),)).key()
