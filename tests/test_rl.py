"""RL in the lab: reward functions, stability metrics on synthetic curves, a 2-step DAPO run on a micro student,
cached runs, and the ``molesyn lab rl`` command on good and bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lab_students import micro_sft_student

from molesyn_lib.cli import main
from molesyn_lib.errors import InputError, MolesynError
from molesyn_lib.rl.rewards import (
    completion_text,
    correctness_reward,
    format_reward,
    get_reward,
    overlong_reward,
    parse_gold,
    rollout_stats,
)
from molesyn_lib.rl.stability import (
    count_collapses,
    dip_and_regrowth,
    graph_drift,
    max_drawdown,
    monotonicity,
    run_stability,
    stability_table,
)
from molesyn_lib.transfer import TransferGraph

GOOD = "3+4=7;D 7*2=14=4;A 4"


# ----------------------------------------------------------------------------------------------------- rewards
def test_correctness_reward_scores_correct_wrong_missing_and_malformed():
    completions = [GOOD, "3+4=7;7*2=3;A 3", "3+4=7;7*2=4", "!!garbage~~", "", "A 4;A 5", None, 17]
    rewards = correctness_reward(["Q:3+4*2>"] * 8, completions, answer=["4"] * 8)
    assert rewards == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # the first answer line counts
    # gold answers may be ints or strings; conversational completions are read from their content
    chat = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "A 5"}]]
    assert correctness_reward([None, None], chat, answer=[4, "4"]) == [1.0, 0.0]
    assert completion_text({"content": "A 1"}) == "A 1" and completion_text(3) is None


def test_bad_gold_answers_and_mismatched_lengths_are_clear_errors():
    with pytest.raises(InputError, match="row 1.*not an integer"):
        correctness_reward(["p", "p"], [GOOD, GOOD], answer=["4", "four"])
    with pytest.raises(InputError):
        parse_gold(2.5)
    assert parse_gold(" 7 ") == 7 and parse_gold(3.0) == 3
    with pytest.raises(MolesynError, match="2 completions but 1 answers"):
        correctness_reward(["p", "p"], [GOOD, GOOD], answer=["4"])


def test_format_reward_rewards_well_formed_answered_completions():
    rewards = format_reward([], [GOOD, "3+4=7;oops;A 4", "3+4=7", "A 4", None])
    assert rewards == [1.0, 0.5, 0.0, 1.0, 0.0]


def test_overlong_reward_is_dapos_soft_punishment_and_registry():
    overlong = overlong_reward(max_completion_length=20, cache=10)
    assert overlong(completion_ids=[[1] * 5, [1] * 10, [1] * 15, [1] * 20, [1] * 25]) == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert overlong.__name__ == "overlong"
    with pytest.raises(MolesynError, match="completion_ids"):
        overlong(completions=["x"])
    with pytest.raises(MolesynError, match="cache"):
        overlong_reward(10, 10)
    assert get_reward("correct") is correctness_reward
    with pytest.raises(MolesynError, match="unknown reward"):
        get_reward("length")


def test_rollout_stats_counts_behaviours_answers_and_malformed_steps():
    stats = rollout_stats([GOOD, "3+4=7;zzz", "[3+4=7 ok];A 7"], answer=["4", "7", "7"])
    assert stats.n == 3 and stats.answered == pytest.approx(2 / 3) and stats.correct == pytest.approx(2 / 3)
    assert stats.behavior_counts == {"N": 2, "D": 1, "R": 1, "E": 0}
    assert stats.malformed == pytest.approx(1 / 5)
    assert stats.sequences == [["N", "D"], ["N"], ["R"]]
    assert stats.shares()["share_N"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------------- stability
def test_collapses_are_counted_once_per_slump_and_rearmed_after_recovery():
    assert count_collapses([0.1, 0.2, 0.3, 0.4], margin=0.1) == 0
    assert count_collapses([0.5, 0.45, 0.5, 0.42], margin=0.1) == 0  # wiggles within the margin
    assert count_collapses([0.5, 0.3, 0.2, 0.1], margin=0.1) == 1  # one long slump
    assert count_collapses([0.5, 0.3, 0.5, 0.6, 0.3], margin=0.1) == 2  # slump, recovery, new best, slump
    assert count_collapses([0.5, 0.3, 0.35, 0.2], margin=0.1) == 1  # never back within the margin: one slump
    assert count_collapses([0.5, 0.3, 0.45, 0.2], margin=0.1) == 2  # back within the margin re-arms
    assert count_collapses([0.6, float("nan"), 0.2], margin=0.1) == 1
    with pytest.raises(ValueError):
        count_collapses([0.1], margin=-1)


def test_drawdown_and_monotonicity_on_synthetic_curves():
    steps = [0, 10, 20, 30, 40]
    assert max_drawdown([0.2, 0.5, 0.3, 0.6]) == pytest.approx(0.2)
    assert max_drawdown([0.1, 0.2]) == 0.0 and math.isnan(max_drawdown([]))
    assert monotonicity(steps, [0.1, 0.2, 0.3, 0.5, 0.6]) == pytest.approx(1.0)
    assert monotonicity(steps, [0.6, 0.5, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    assert 0 < monotonicity(steps, [0.1, 0.3, 0.2, 0.4, 0.5]) < 1
    assert math.isnan(monotonicity(steps, [0.3] * 5))
    with pytest.raises(ValueError):
        monotonicity([0, 1], [0.1])
    run = run_stability(steps, [0.2, 0.5, 0.3, 0.6, 0.55], margin=0.1)
    assert (run.initial, run.final, run.best, run.collapses) == (0.2, 0.55, 0.6, 1)
    assert run.gain == pytest.approx(0.35) and run.drawdown == pytest.approx(0.2)


def test_dip_and_regrowth_describes_a_length_curve():
    shape = dip_and_regrowth(range(10), [10, 9, 8, 6, 5, 5, 6, 8, 9, 10], window=1)
    assert (shape["start"], shape["minimum"], shape["min_step"], shape["end"]) == (10, 5, 4, 10)
    assert shape["dip"] == pytest.approx(0.5) and shape["regrowth"] == pytest.approx(1.0)
    falling = dip_and_regrowth([0, 1, 2, 3], [4, 3, 2, 1], window=1)
    assert falling["min_step"] == 3 and falling["regrowth"] == 0.0
    smooth = dip_and_regrowth(range(6), [10, 0, 10, 10, 10, 10], window=3)
    assert smooth["minimum"] > 0  # the rolling mean damps a one-step spike
    assert math.isnan(dip_and_regrowth([], [])["dip"])


def test_stability_table_aggregates_seeds_per_initialisation():
    runs = [{"init": "a", "seed": s, "initial": 0.2, "final": f, "gain": f - 0.2, "collapses": c, "rho": r,
             "drift_pearson": 0.9, "drift_js": 0.1}
            for s, f, c, r in [(1, 0.6, 0, 1.0), (0, 0.4, 2, 0.5)]]
    runs.append({"init": "b", "seed": 0, "initial": 0.0, "final": 0.0, "gain": 0.0, "collapses": 0,
                 "rho": float("nan")})
    table = stability_table(runs)
    assert [row["init"] for row in table] == ["a", "b"]
    a = table[0]
    assert a["n"] == 2 and a["final_mean"] == pytest.approx(0.5) and a["final_sd"] == pytest.approx(np.std([.4, .6],
                                                                                                           ddof=1))
    assert a["collapses"] == 2 and a["runs_collapsed"] == 1 and a["rho_mean"] == pytest.approx(0.75)
    assert a["seeds"] == "s0=0.400; s1=0.600"
    assert math.isnan(table[1]["rho_mean"]) and math.isnan(table[1]["drift_js"])


def test_graph_drift_is_zero_for_the_same_structure_and_nan_without_transitions():
    graph = TransferGraph.from_sequences([["N", "D", "R", "N", "E", "D"], ["N", "N", "D"]])
    same = graph_drift(graph, graph)
    assert same["drift_pearson"] == pytest.approx(1.0) and same["drift_js"] == pytest.approx(0.0, abs=1e-9)
    other = graph_drift(graph, TransferGraph.from_sequences([["R", "R", "E", "E", "R"]]))
    assert other["drift_js"] > 0.3
    assert math.isnan(graph_drift(graph, TransferGraph.from_sequences([[]]))["drift_pearson"])


# ----------------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def micro_setting():
    return micro_sft_student(200, 12, 10)


def test_two_step_dapo_run_logs_every_step_and_evaluation(micro_setting, tmp_path):
    from molesyn_lib.lab.student import load_student
    from molesyn_lib.rl.trainer import RLConfig, grpo_config, train_rl

    trained, splits = micro_setting
    student = load_student(trained.save(tmp_path / "init"))  # a fresh copy (deepcopy keeps TRL's patched forward)
    config = RLConfig(steps=2, prompts_per_step=2, num_generations=4, learning_rate=1e-3, eval_every=1,
                      max_completion_length=24, format_weight=0.1, overlong=True,
                      overlong_cache=8, num_iterations=1)  # one generation per step (test_rl_dapo: reuse)
    args = grpo_config(config, "/tmp/unused", 24, [1.0, 0.1, 1.0])
    assert (args.loss_type, args.beta, args.epsilon, args.epsilon_high) == ("dapo", 0.0, 0.2, 0.28)
    assert args.per_device_train_batch_size == 8 and args.num_generations == 4
    before = [p.detach().clone() for p in student.model.parameters()]
    result = train_rl(student, splits.train, splits.test, config)
    assert [s["step"] for s in result.steps] == [1.0, 2.0]
    first = result.steps[0]
    for key in ("reward", "reward_correct", "reward_spread", "frac_zero_spread", "length_tokens", "answered",
                "malformed", "kl", "share_N", "share_R", "reward_format", "reward_overlong", "trl_entropy",
                "frac_filtered", "trl_clip_ratio_region_mean"):
        assert key in first, key
    assert first["kl"] == pytest.approx(0.0, abs=1e-6)  # step 1 samples from the initial policy itself
    assert 0 < first["length_tokens"] <= 24
    assert [e["step"] for e in result.evals] == [0, 1, 2]
    assert {"acc_sampled", "acc_greedy", "no_answer_sampled", "drift_pearson", "drift_js"} <= set(result.evals[-1])
    assert result.initial_graph is not None and result.steps_per_second > 0
    changed = any(not np.allclose(a, b.detach()) for a, b in zip(before, student.model.parameters()))
    assert changed == (result.steps[0]["reward_spread"] > 0 or result.steps[1]["reward_spread"] > 0)
    if result.steps[0]["reward_spread"] > 0:  # step 1 moved the policy, so step 2's rollouts differ from pi_0
        assert result.steps[1]["kl"] > 0


def test_config_validation():
    from molesyn_lib.rl.trainer import RLConfig

    with pytest.raises(MolesynError, match="num_generations >= 2"):
        RLConfig(num_generations=1)
    with pytest.raises(MolesynError, match="at least 1 step"):
        RLConfig(steps=0)


def test_rl_runs_are_cached_by_config(tmp_cache):
    from molesyn_lib.lab.tasks import TaskConfig
    from molesyn_lib.rl.experiments import (
        SFTConfig,
        grid,
        init_table,
        length_dynamics,
        run_rl,
        run_rl_grid,
        run_summary,
    )
    from molesyn_lib.rl.stability import stability_table
    from molesyn_lib.rl.trainer import RLConfig

    sft = SFTConfig(task=TaskConfig(length=2), n_train=60, n_test=20, student="micro", steps=4, batch_size=8)
    rl = RLConfig(steps=2, prompts_per_step=2, num_generations=2, eval_every=2,
                  max_completion_length=16)
    configs = grid("smoke", inits=["untrained", "instruct"], seeds=[0], sft=sft, rl=rl, n_eval=6, n_prompts=20)
    assert configs[0].key() != configs[1].key()
    records = run_rl_grid(configs, workers=1, progress=False)
    assert [r["init"] for r in records] == ["untrained", "instruct"]
    assert all(not r["cached"] for r in records)
    assert records[0]["evals"][0]["acc_sampled"] == 0.0  # a random student never answers correctly
    again = run_rl(configs[1])
    assert again["cached"] and again["steps"] == json.loads(json.dumps(records[1]["steps"]))
    table = stability_table([run_summary(r) for r in records])
    assert [row["init"] for row in table] == ["untrained", "instruct"]
    inits = init_table(records)
    assert inits[0]["sft_traces"] is None and inits[1]["sft_traces"] == 60 and 0 < inits[1]["acc_floor"] <= 1
    lengths = length_dynamics(records)
    assert [row["init"] for row in lengths] == ["untrained", "instruct"] and len(lengths[1]["seed_dips"]) == 1


# ----------------------------------------------------------------------------------------------------- CLI
def test_cli_runs_two_steps_and_writes_its_logs(tmp_path, capsys):
    out = tmp_path / "rl"
    code = main(["lab", "rl", "--init", "untrained:micro", "--steps", "2", "--seed", "1", "--out", str(out),
                 "--task-length", "2", "--prompts", "8", "--batch-prompts", "2", "--generations", "2",
                 "--eval-every", "1", "--eval-n", "4", "--max-completion-length", "12",
                 "--threads", "1", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["initial"] == 0.0
    assert len((out / "rl_steps.jsonl").read_text().splitlines()) == 2
    assert [e["step"] for e in json.loads((out / "rl_evals.json").read_text())] == [0, 1, 2]
    assert (out / "lab_student.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--init", "/no/such/dir", "--steps", "2"], "no such checkpoint directory"),
    (["--init", "untrained:micro", "--steps", "0"], "at least 1 step"),
    (["--init", "untrained:micro", "--steps", "2", "--generations", "1"], "num_generations >= 2"),
    (["--init", "untrained:nope", "--steps", "2"], "unknown student"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, argv, message):
    code = main(["lab", "rl", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and err.startswith("molesyn: error:")


def test_cli_rejects_a_directory_that_is_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["lab", "rl", "--init", str(tmp_path / "empty"), "--steps", "1", "--out", str(tmp_path / "o")]) == 2
    assert "not a lab student checkpoint" in capsys.readouterr().err
