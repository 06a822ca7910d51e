"""The full profile's code paths at micro scale, so a first GPU run does not fail on a path nobody ran.

The full profile (``params/full.yaml``) differs from the CPU profiles in its students (``base`` in the lab,
``small`` in RL), bfloat16 mixed precision, more than one worker, all torch threads per RL process, and a real model
as the Chapter 5 summariser. Each test keeps those settings and shrinks only the sizes (tasks, tokens, steps).
bfloat16 runs on CPU through autocast here; on a GPU the same flag goes to CUDA.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import yaml

from molesyn_lib import book

pytestmark = pytest.mark.slow


def full_parameters(chapter: str) -> dict:
    layout = book.BookLayout.at(book.find_root())
    return book.load_profile_parameters(layout, "full", book.discover_chapters(layout))[chapter]


def test_full_yaml_names_the_settings_these_tests_exercise():
    text = yaml.safe_load((book.find_root() / "params" / "full.yaml").read_text())
    assert text["04_rl_stability"]["student"] == "small" and text["04_rl_stability"]["bf16"] is True
    assert text["05_protection"]["summarize_backend"] == "transformers" and text["05_protection"]["lab_bf16"] is True
    assert text["04_rl_stability"]["workers"] > 1 and text["03_mole_syn"]["workers"] > 1


def test_full_lab_profile_trains_the_base_student(tmp_cache):
    from molesyn_lib.lab import experiments as ex

    full = ex.profile("full")
    assert full.student == "base" and full.batch_size == 64
    config = full.base(n_train=40, n_test=4, token_budget=600, inject=2, probe_points=0, phases=(ex.Phase(("r1",), 40),))
    [record] = ex.run_grid([config], workers=1, progress=False)
    assert record["student"] == "base" and record["params"] > 5_000_000
    assert record["steps"] > 0 and 0.0 <= record["acc_greedy"] <= 1.0 and math.isfinite(record["train_loss"])


def test_full_lab_settings_bf16_and_two_workers_at_micro_size(tmp_cache):
    # bfloat16 on CPU is emulated and slow for the base student, so the flag is exercised on the micro student
    from molesyn_lib.lab import experiments as ex

    config = ex.profile("full").base(student="micro", n_train=40, n_test=4, token_budget=600, inject=2,
                                     probe_points=1, probe_tasks=2, phases=(ex.Phase(("r1",), 40),), bf16=True)
    records = ex.run_grid([config, replace(config, seed=1)], workers=2, progress=False)
    assert [r["seed"] for r in records] == [0, 1] and all(r["steps"] > 0 for r in records)
    assert all(math.isfinite(r["train_loss"]) for r in records)


def test_full_rl_profile_runs_the_small_student_with_all_threads_and_bf16(tmp_cache):
    from molesyn_lib.rl import experiments as rx

    full = rx.profile("full")
    assert full.sft.student == "small" and full.rl.threads is None and full.rl.bf16 and full.sft.bf16
    sft = replace(full.sft, n_train=60, n_test=10, steps=3, batch_size=8)
    rl = replace(full.rl, steps=2, prompts_per_step=2, num_generations=2, eval_every=2, max_completion_length=16)
    configs = rx.grid(full, inits=["instruct"], seeds=[0, 1], sft=sft, rl=rl, n_eval=4, n_prompts=20)
    records = rx.run_rl_grid(configs, workers=2, progress=False)
    assert [r["init"] for r in records] == ["instruct", "instruct"] and [r["seed"] for r in records] == [0, 1]
    assert all(len(r["steps"]) == 2 and r["evals"] for r in records)


def test_full_chapter5_summariser_runs_smollm2_through_transformers(tmp_cache):
    from molesyn_lib.compress import get_compressor
    from molesyn_lib.traces import Trace

    params = full_parameters("05_protection")
    compressor = get_compressor("summarize", backend=params["summarize_backend"], model=params["summarize_model"],
                                device="cpu", progress=False, chunk_tokens=64)
    trace = Trace(trace_id="t", question="What is 3 + 4?", answer="7",
                  steps=["We add 3 and 4 to get 7.", "Wait, check: 3 + 4 = 7.",
                         "Alternatively, count up from 4: 5, 6, 7.", "So the answer is 7."])
    compressed = compressor.compress(trace, 0.5)
    assert compressed.method == "summarize" and compressed.trace.steps
    assert all(isinstance(s, str) and s.strip() for s in compressed.trace.steps)
    assert sorted(i for p in compressed.provenance for i in p) == [0, 1, 2, 3]
