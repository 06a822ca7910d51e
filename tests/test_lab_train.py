"""Lab students: token budgets, the TRL train/eval loop on a micro setting, save/load, the CLI, cached runs."""
from __future__ import annotations

import json
import math

import pytest

from molesyn_lib.cli import main
from molesyn_lib.errors import InputError
from molesyn_lib.lab.student import TrainConfig, final_answer_line, sft_rows
from molesyn_lib.lab.tasks import TaskConfig, make_splits
from molesyn_lib.lab.teachers import Teacher
from molesyn_lib.traces import Trace

K2 = TaskConfig(length=2)


def test_token_budget_sets_the_number_of_steps():
    config = TrainConfig(token_budget=10_000, batch_size=10)
    assert config.steps_for([50] * 100) == 20
    assert config.steps_for([100] * 100) == 10  # longer traces: fewer steps for the same supervision
    assert TrainConfig(token_budget=None, epochs=2, batch_size=10).steps_for([5] * 100) == 20
    assert TrainConfig(max_steps=7).steps_for([5]) == 7


def test_sft_rows_from_teacher_and_molesyn_traces():
    splits = make_splits(3, 1, K2)
    rows = sft_rows(Teacher("r1").traces(splits.train, 0, K2))
    assert all(r["prompt"].startswith("Q:") and r["completion"].endswith(f";A {t.answer}")
               for r, t in zip(rows, splits.train))
    synth = Trace("x", steps=["3+4=7", "\\boxed{7}"], question="3+4 (mod 10)", final="\\boxed{7}")
    assert sft_rows([synth]) == [{"prompt": "Q:3+4>", "completion": "3+4=7;A 7"}]
    assert final_answer_line(Trace("y", steps=["a"], final="no answer")) is None
    with pytest.raises(InputError, match="no final answer"):
        sft_rows([Trace("z", steps=["3+4=7"], question="3+4 (mod 10)", source="f.jsonl:4")])


def test_micro_train_eval_loop_save_and_load(tmp_path):
    from molesyn_lib.lab.evaluate import BehaviorProbe, EvalConfig, evaluate_student
    from molesyn_lib.lab.student import build_student, load_student, train_student

    splits = make_splits(300, 20, K2)
    traces = Teacher("r1").traces(splits.train, 0, K2)
    student = build_student("micro", seed=0)
    probe = BehaviorProbe(student, splits.test[:8], n_points=2)
    result = train_student(student, sft_rows(traces), TrainConfig(max_steps=12, batch_size=8, seed=0),
                           callbacks=[probe])
    assert result.steps == 12 and result.completion_tokens > 0 and math.isfinite(result.train_loss)
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert [p["step"] for p in probe.records] == [6.0, 12.0]
    report = evaluate_student(student, splits.test, EvalConfig(inject=5, keep_samples=5),
                              references={"r1": Teacher("r1").target_graph()})
    metrics = report.metrics
    for key in ("acc_greedy", "acc_sampled", "no_answer_sampled", "step_error_sampled", "pearson_r1", "kl_r1",
                "behavior_entropy", "repair_rate", "repair_fix_rate", "chars_greedy"):
        assert key in metrics
    assert 0 <= metrics["acc_greedy"] <= 1 and metrics["inject_n"] == 5 and len(report.samples) == 5
    assert report.student_graph.transition.shape == (4, 4)
    greedy = student.generate([t.prompt for t in splits.test[:4]], max_new_tokens=12)
    again = student.generate([t.prompt for t in splits.test[:4]], temperature=1.0, max_new_tokens=12, seed=3)
    assert again == student.generate([t.prompt for t in splits.test[:4]], temperature=1.0, max_new_tokens=12, seed=3)
    student.save(tmp_path / "ckpt")
    loaded = load_student(tmp_path / "ckpt")
    assert loaded.generate([t.prompt for t in splits.test[:4]], max_new_tokens=12) == greedy
    assert loaded.meta["phases"][0]["steps"] == 12 and len(losses) >= 0
    second = load_student(tmp_path / "ckpt")  # every load is a private copy, never a model shared with others
    assert second.model is not loaded.model and not loaded.model.training
    from molesyn_lib import models
    assert not any(str((tmp_path / "ckpt").resolve()) == path for path, _ in models._LOADED)
    with pytest.raises(InputError, match="not a lab student"):
        load_student(tmp_path)


def test_cli_train_and_eval(tmp_path, capsys):
    data = tmp_path / "tr.jsonl"
    assert main(["lab", "traces", "--teacher", "instruct", "--n", "200", "--task-length", "2", "--out",
                 str(data)]) == 0
    assert main(["lab", "train", "--data", str(data), "--out", str(tmp_path / "st"), "--student", "micro",
                 "--steps", "5", "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["lab", "eval", str(tmp_path / "st"), "--n", "10", "--inject", "3", "--graph-out",
                 str(tmp_path / "g.json")]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["task"]["length"] == 2 and "accuracy" in record and len(record["graph"]["transition"]) == 4
    assert (tmp_path / "g.json").is_file()
    prompts = (tmp_path / "st" / "train_prompts.txt").read_text().split()
    assert len(prompts) == 200
    assert main(["lab", "eval", str(tmp_path), "--n", "3"]) == 2


@pytest.mark.slow
def test_run_one_is_cached_by_config(tmp_cache):
    from dataclasses import replace

    from molesyn_lib.lab.experiments import Phase, RunConfig, run_grid, run_one, summarize

    config = RunConfig(phases=(Phase(("r1",), 100),), task=K2, n_train=100, n_test=10, student="micro",
                       token_budget=3000, batch_size=8, inject=4, probe_points=2, probe_tasks=4,
                       references=("r1", "instruct"), condition="micro r1")
    first = run_one(config)
    assert not first["cached"] and first["steps"] >= 1 and "pearson_r1" in first and len(first["trajectory"]) == 2
    second = run_one(replace(config, condition="another label"))
    assert second["cached"] and second["condition"] == "another label"
    assert second["acc_greedy"] == first["acc_greedy"] and second["student_graph"] == first["student_graph"]
    seeds = run_grid([config, replace(config, seed=1)], workers=1, progress=False)
    assert [r["seed"] for r in seeds] == [0, 1] and seeds[0]["cached"] and not seeds[1]["cached"]
    table = summarize(seeds, metrics=("acc_greedy",))
    assert table.loc[0, "n"] == 2 and "s0=" in table.loc[0, "seeds"]
