"""Chain-valid compression of lab traces: kept steps rewritten so that compressed supervision stays correct."""
from __future__ import annotations

import pytest

from molesyn_lib.lab import kernel
from molesyn_lib.lab.grammar import ChainState
from molesyn_lib.lab.tasks import TaskConfig, make_splits, task_from_expression
from molesyn_lib.lab.valid_chain import is_valid_chain, valid_chain, valid_share
from molesyn_lib.protection import compress_lab_traces

CONFIG = TaskConfig(length=3, operators="+")


@pytest.fixture(scope="module")
def r1_traces():
    tasks = make_splits(300, 6, CONFIG, 1234).train
    return kernel.source_traces("r1", tasks, seed=0, task_config=CONFIG)


def repaired_trace():
    """3+4+5+1 mod 10: a slip at step 1 (7+5=3), a detour (3+1=4), the correcting reflection, the redo."""
    task = task_from_expression("3+4+5+1")
    state = ChainState.start(task)
    state.compute("N")                 # 3+4=7
    state.compute("N", slip=1)         # 7+5=3 (should be 2)
    state.compute("N")                 # 3+1=4 (from the wrong value)
    state.reflect(1, "wait")           # wait [7+5=2 not 3]
    state.compute("N")                 # 2+1=3
    return task, state.steps, state.behaviors, state.finish()


def test_a_dropped_reflection_takes_its_detour_with_it_and_the_slip_is_written_corrected():
    task, steps, behaviors, final = repaired_trace()
    assert is_valid_chain(task, steps, final)
    kept = [0, 1, 2, 4]  # the compressor dropped the reflection
    assert not is_valid_chain(task, [steps[i] for i in kept], final)  # the raw compression teaches a wrong sum
    new_steps, new_behaviors, provenance = valid_chain(task, steps, behaviors, kept)
    assert new_steps == ["3+4=7", "7+5=2", "2+1=3"] and new_behaviors == ["N", "N", "N"]
    assert is_valid_chain(task, new_steps, final) and provenance == [[0], [1], [4]]


def test_a_kept_reflection_keeps_its_whole_repair_episode():
    task, steps, behaviors, final = repaired_trace()
    new_steps, new_behaviors, _ = valid_chain(task, steps, behaviors, [0, 3, 4])
    assert new_steps == steps and new_behaviors == behaviors  # slip and detour come back with their reflection


def test_dropped_computations_fold_into_the_next_kept_one_or_a_final_chunk():
    task, steps, behaviors, final = repaired_trace()
    new_steps, _, provenance = valid_chain(task, steps, behaviors, [4])
    assert new_steps == ["3+4+5+1=3"] and provenance == [[0, 1, 4]]
    new_steps, _, _ = valid_chain(task, steps, behaviors, [0])  # truncation: the tail becomes one chunk
    assert new_steps == ["3+4=7", "7+5+1=3"] and is_valid_chain(task, new_steps, final)


@pytest.mark.parametrize("method", ["extractive", "keep_every", "truncate"])
def test_compressed_teacher_traces_stay_valid_chains_and_still_shrink(r1_traces, method):
    raw = compress_lab_traces(r1_traces, method, 0.75, valid_chains=False)
    valid = compress_lab_traces(r1_traces, method, 0.75)
    original_share = valid_share(r1_traces)
    assert original_share > 0.95
    assert valid_share([c.trace for c in raw]) < original_share - 0.1  # what the raw compression breaks
    assert valid_share([c.trace for c in valid]) == pytest.approx(original_share)
    assert sum(c.compressed_tokens for c in valid) < 0.7 * sum(c.original_tokens for c in valid)
    for c in valid:
        assert len(c.trace.behaviors) == len(c.trace.steps) and c.trace.final == c.original.final
