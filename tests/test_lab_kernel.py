"""The lab-run kernel: the three experiments that train lab students (lab runs, protection runs, RL
initialisations) all write their data, train and evaluate through it, share one data-source vocabulary and one
version constant; the instruct teacher slips like the strong teachers."""
from __future__ import annotations

from dataclasses import replace

import pytest

from molesyn_lib.lab import kernel
from molesyn_lib.lab.experiments import Phase, RunConfig, run_one
from molesyn_lib.lab.tasks import TaskConfig, make_splits
from molesyn_lib.lab.teachers import INSTRUCT_SLIP_RATE, get_teacher
from molesyn_lib.protection import ProtectionRun, run_protection
from molesyn_lib.rl.experiments import INITS, SFTConfig, init_checkpoint, init_key, sft_traces

TASK = TaskConfig(length=2)


def micro_run(teacher: str = "r1") -> RunConfig:
    return RunConfig(phases=(Phase((teacher,), 40),), task=TASK, n_train=40, n_test=6, student="micro",
                     token_budget=600, inject=2, probe_points=0, references=("r1",))


@pytest.fixture
def kernel_calls(monkeypatch):
    """Record every call of the kernel's trainer (and still train)."""
    calls: list[tuple[str, int]] = []
    train = kernel.train_phases

    def recording(student_name, seed, phases, *args, **kwargs):
        calls.append((student_name, len(phases)))
        return train(student_name, seed, phases, *args, **kwargs)

    monkeypatch.setattr(kernel, "train_phases", recording)
    import molesyn_lib.lab.experiments as experiments
    import molesyn_lib.protection as protection
    import molesyn_lib.rl.experiments as rl_experiments
    for module in (experiments, protection, rl_experiments):
        monkeypatch.setattr(module, "train_phases", recording)
    return calls


@pytest.mark.slow
def test_all_three_experiments_train_through_the_kernel(tmp_cache, kernel_calls):
    run = micro_run()
    record = run_one(run, cache=False)
    protected = run_protection(ProtectionRun(run, "keep_every", 0.5), cache=False)
    init_checkpoint("molesyn", SFTConfig(task=TASK, n_train=40, n_test=6, student="micro", steps=2, batch_size=8),
                    cache=False)
    assert kernel_calls == [("micro", 1), ("micro", 1), ("micro", 1)]
    for rec in (record, protected):
        assert {"acc_greedy", "data_accuracy", "data_chars", "train_seconds", "eval_seconds", "student_graph",
                "reference_graphs", "samples"} <= set(rec)
    assert protected["data_accuracy_original"] == record["data_accuracy"]


def test_one_version_constant_is_in_every_cache_key(monkeypatch):
    run = micro_run()
    sft = SFTConfig(task=TASK, n_train=40, n_test=6, student="micro", steps=2)
    before = (run.key(), ProtectionRun(run).key(), init_key(INITS["distill"], sft))
    monkeypatch.setattr("molesyn_lib.lab.experiments.LAB_VERSION", "test-bump")
    monkeypatch.setattr("molesyn_lib.protection.LAB_VERSION", "test-bump")
    monkeypatch.setattr("molesyn_lib.rl.experiments.LAB_VERSION", "test-bump")
    after = (run.key(), ProtectionRun(run).key(), init_key(INITS["distill"], sft))
    assert all(b != a for b, a in zip(before, after))


def test_rl_initialisations_use_the_kernels_data_sources():
    sft = SFTConfig(task=TASK, n_train=30, n_test=6, student="micro", steps=2)
    tasks = make_splits(30, 6, TASK, sft.task_seed).train
    assert INITS["molesyn"].data_source == "molesyn:r1" and INITS["distill"].data_source == "r1"
    walk = sft_traces(INITS["molesyn"], sft, tasks)
    same = kernel.source_traces("molesyn:r1", tasks, seed=sft.seed, task_config=TASK)
    assert [t.steps for t in walk] == [t.steps for t in same]
    slippery = replace(INITS["molesyn"], writer_slip_rate=0.9)
    assert init_key(slippery, sft) != init_key(INITS["molesyn"], sft)


def test_instruct_teacher_slips_at_the_teachers_rate_and_cannot_repair():
    spec = get_teacher("instruct")
    assert spec.slip_rate == INSTRUCT_SLIP_RATE == get_teacher("r1").slip_rate and not spec.repair
    config = TaskConfig(length=3, operators="+")
    tasks = make_splits(600, 6, config, 1234).train
    instruct = kernel.source_traces("instruct", tasks, seed=0, task_config=config)
    r1 = kernel.source_traces("r1", tasks, seed=0, task_config=config)
    assert 0.45 < kernel.data_accuracy(instruct) < 0.8  # 1 - 0.85**3 = 0.39 wrong, up to sampling
    assert kernel.data_accuracy(r1) > 0.95  # r1 repairs its slips by reflection
    assert not any("R" in (t.behaviors or []) or "E" in (t.behaviors or []) for t in instruct)


@pytest.mark.slow
def test_a_cue_syntax_run_writes_trains_and_evaluates_in_the_cue_syntax(tmp_cache, monkeypatch):
    from molesyn_lib.lab import evaluate
    from molesyn_lib.lab.experiments import phase_traces

    run = replace(micro_run("qwq"), syntax="cue")
    traces = phase_traces(run.phases[0], run, make_splits(40, 6, TASK, run.task_seed).train, 0)
    assert not any("[" in step or "~" in step for t in traces for step in t.steps)  # no marked R/E forms
    assert any(b in ("R", "E") for t in traces for b in t.behaviors)
    seen: list[str] = []
    evaluate_student = evaluate.evaluate_student

    def recording(student, tasks, config, *args, **kwargs):
        seen.append(config.syntax)
        return evaluate_student(student, tasks, config, *args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_student", recording)
    record = run_one(run, cache=False)
    assert seen == ["cue"] and record["syntax"] == "cue" and record["key"] != micro_run("qwq").key()


def test_accuracy_by_size_groups_seeds_in_order():
    from molesyn_lib.lab.experiments import accuracy_by_size

    records = [{"n_traces": 500, "keywords": "removed", "seed": 1, "acc_greedy": 0.3},
               {"n_traces": 500, "keywords": "removed", "seed": 0, "acc_greedy": 0.2},
               {"n_traces": 500, "keywords": "original", "seed": 0, "acc_greedy": 0.5}]
    assert accuracy_by_size(records) == {"500": {"removed": [0.2, 0.3], "original": [0.5]}}
