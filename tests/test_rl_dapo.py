"""DAPO in substance: clipping that can bind (num_iterations > 1), dynamic sampling emulated by filtering
zero-spread groups, and the overlong penalty on by default; micro students on CPU, a few seconds each."""
from __future__ import annotations

from typing import Any

import pytest
import torch
from lab_students import micro_sft_student

from molesyn_lib.errors import MolesynError
from molesyn_lib.rl.trainer import (
    FILTERED_KEY,
    RLConfig,
    filter_zero_spread,
    grpo_config,
    make_trainer,
    reward_functions,
    zero_spread_groups,
)


@pytest.fixture(scope="module")
def micro_setting():
    return micro_sft_student(60, 8, 4)


def fresh(micro_setting, tmp_path):
    from molesyn_lib.lab.student import load_student

    student, splits = micro_setting
    return load_student(student.save(tmp_path / "init")), splits  # deepcopy would keep TRL's patched forward


def length_reward(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
    """A reward with spread in every group of sampled completions (their length)."""
    return [float(len(c)) for c in completions]


def spy_losses(trainer: Any) -> list[dict[str, Any]]:
    """Wrap ``trainer._compute_loss`` to record, per update, its inputs and max |log pi - log pi_old| per token."""
    seen: list[dict[str, Any]] = []
    original = trainer._compute_loss

    def spy(model: Any, inputs: dict[str, Any]) -> Any:
        old = inputs.get("old_per_token_logps")
        record: dict[str, Any] = {"inputs": inputs, "old": old is not None, "max_log_ratio": 0.0}
        if old is not None:
            with torch.no_grad():
                ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
                attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
                new, _, _ = trainer._get_per_token_logps_and_entropies(model, ids, attention,
                                                                       inputs["completion_ids"].size(1))
            mask = inputs["completion_mask"].bool()
            record["max_log_ratio"] = float((new - old)[mask].abs().max()) if mask.any() else 0.0
        seen.append(record)
        return original(model, inputs)

    trainer._compute_loss = spy
    return seen


def run_trainer(micro_setting, tmp_path, rewards: list[Any], **overrides: Any) -> tuple[list[dict[str, Any]], Any]:
    student, splits = fresh(micro_setting, tmp_path)
    config = RLConfig(**{"steps": 4, "prompts_per_step": 2, "num_generations": 4, "learning_rate": 5e-2,
                         "max_completion_length": 12, **overrides})
    args = grpo_config(config, str(tmp_path / "trl"), 12, [1.0] * len(rewards))
    trainer = make_trainer(student, splits.train, config, rewards, args)
    seen = spy_losses(trainer)
    trainer.train()
    return seen, trainer.state.log_history


def logged(history: list[dict[str, Any]], key: str) -> list[float]:
    return [h[key] for h in history if h.get(key) is not None]


# ------------------------------------------------------------------------------------------ (a) clipping can bind
def test_on_policy_updates_have_ratio_one_and_never_clip(micro_setting, tmp_path):
    seen, history = run_trainer(micro_setting, tmp_path, [length_reward], num_iterations=1)
    assert len(seen) == 4 and not any(s["old"] for s in seen)  # TRL uses log pi.detach(): ratio exactly 1
    clip = logged(history, "clip_ratio/region_mean")
    assert len(clip) == 4 and all(c == 0.0 for c in clip)


def test_reused_generation_batches_go_off_policy_and_clip(micro_setting, tmp_path):
    seen, history = run_trainer(micro_setting, tmp_path, [length_reward], num_iterations=2)
    assert all(s["old"] for s in seen)  # TRL keeps the generation-time log-probs as pi_old
    first, second = seen[0::2], seen[1::2]  # the first pass on a batch is on-policy, the second is not
    assert all(s["max_log_ratio"] < 1e-4 for s in first)
    assert all(s["max_log_ratio"] > 1e-3 for s in second)
    clip = logged(history, "clip_ratio/region_mean")
    assert len(clip) == 4 and max(clip) > 0 and {"clip_ratio/high_mean", "clip_ratio/low_mean"} <= set(history[0])


def test_steps_per_generation_splits_one_generation_into_off_policy_steps(micro_setting, tmp_path):
    seen, _ = run_trainer(micro_setting, tmp_path, [length_reward], num_iterations=1, steps_per_generation=2)
    assert all(s["old"] for s in seen) and all(s["inputs"]["completion_mask"].shape[0] == 8 for s in seen)
    assert seen[1]["max_log_ratio"] > 1e-3


# ------------------------------------------------------------------------------------------ (b) dynamic sampling
def fake_batch() -> dict[str, Any]:
    lengths = [3, 5, 2, 4, 1, 6, 2, 3]
    mask = torch.tensor([[1] * n + [0] * (6 - n) for n in lengths])
    return {"completion_mask": mask, "advantages": torch.tensor([0.0] * 4 + [-1.0, 1.0, -1.0, 1.0]),
            "num_items_in_batch": mask.sum(), "completion_ids": torch.ones_like(mask)}


def test_zero_spread_groups_are_found_within_tolerance():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.3, 0.3 + 1e-9, 0.3, 0.3])
    assert zero_spread_groups(rewards, 4).tolist() == [True, False, True]
    with pytest.raises(MolesynError, match="groups of 4"):
        zero_spread_groups(torch.zeros(6), 4)


def test_filtered_group_leaves_the_loss_and_the_token_normaliser():
    batch = fake_batch()
    out = filter_zero_spread(batch, torch.tensor([True, False]), group_size=4)
    assert out["completion_mask"][:4].sum() == 0
    assert torch.equal(out["completion_mask"][4:], batch["completion_mask"][4:])
    assert int(out["num_items_in_batch"]) == 1 + 6 + 2 + 3  # only the kept group's tokens
    per_token_loss = torch.full((8, 6), 2.0)  # TRL's dapo loss: sum over masked tokens / num_items_in_batch
    loss = (per_token_loss * out["completion_mask"]).sum() / out["num_items_in_batch"].clamp(min=1)
    assert float(loss) == pytest.approx(2.0)  # unfiltered, the 14 zero-advantage tokens would dilute it to 12/26
    assert int(batch["num_items_in_batch"]) == 26  # the input is not modified


def test_an_all_zero_spread_batch_has_no_tokens_and_zero_loss():
    out = filter_zero_spread(fake_batch(), torch.tensor([True, True]), group_size=4)
    assert int(out["num_items_in_batch"]) == 0 and float(out["advantages"].abs().sum()) == 0
    loss = (torch.ones(8, 6) * out["completion_mask"]).sum() / out["num_items_in_batch"].clamp(min=1)
    assert float(loss) == 0.0


def test_trainer_masks_zero_spread_groups_out_of_each_update(micro_setting, tmp_path):
    constant: dict[str, str] = {}

    def half_constant(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        constant.setdefault("prompt", prompts[0])  # the first prompt's group scores 1.0 whatever it writes
        return [1.0 if p == constant["prompt"] else float(len(c)) for p, c in zip(prompts, completions)]

    seen, history = run_trainer(micro_setting, tmp_path, [half_constant], steps=1, num_iterations=1)
    inputs = seen[0]["inputs"]
    kept = inputs["completion_mask"].sum(dim=1) > 0
    assert int(kept.sum()) == 4  # the other group only (its completions have at least one token)
    assert int(inputs["num_items_in_batch"]) == int(inputs["completion_mask"].sum())
    assert logged(history, FILTERED_KEY) == [0.5]


def test_a_batch_with_no_spread_trains_without_crashing(micro_setting, tmp_path):
    from molesyn_lib.lab.student import build_student
    from molesyn_lib.rl.trainer import train_rl

    _, splits = micro_setting
    student = build_student("micro", seed=1)  # untrained: never answers, so every correctness reward is 0
    before = [p.detach().clone() for p in student.model.parameters()]
    config = RLConfig(steps=2, prompts_per_step=2, num_generations=2, max_completion_length=8, overlong=False,
                      eval_every=2, eval_greedy=False)
    result = train_rl(student, splits.train, splits.test[:2], config)
    assert [s["frac_filtered"] for s in result.steps] == [1.0, 1.0]
    assert [s["fresh"] for s in result.steps] == [1.0, 0.0]  # num_iterations=2: step 2 reuses step 1's batch
    assert all(s["trl_loss"] == 0.0 for s in result.steps) and "trl_clip_ratio_region_mean" in result.steps[1]
    assert all(torch.equal(a, b) for a, b in zip(before, student.model.parameters()))


# ------------------------------------------------------------------------------------------ (c) DAPO defaults
def test_dapo_defaults_reuse_batches_filter_groups_and_punish_overlong_completions():
    config = RLConfig()
    assert (config.num_iterations, config.dynamic_sampling, config.overlong) == (2, True, True)
    args = grpo_config(config, "/tmp/unused", 96, [1.0, 1.0])
    assert (args.num_iterations, args.steps_per_generation, args.gradient_accumulation_steps) == (2, 1, 1)
    rewards = {name: function for name, function, _ in reward_functions(config, 96)}
    assert list(rewards) == ["correct", "overlong"]
    ids = [[1] * 50, [1] * 80, [1] * 90, [1] * 96]
    assert rewards["overlong"](completion_ids=ids) == [0.0, 0.0, pytest.approx(-0.625), -1.0]  # soft zone 80-96
    with pytest.raises(MolesynError, match="at least 1"):
        RLConfig(num_iterations=0)


def test_the_standard_profile_runs_dapo_for_at_least_200_steps():
    from molesyn_lib.rl.experiments import PROFILES

    rl = PROFILES["standard"].rl
    assert rl.steps >= 200 and rl.num_iterations > 1 and rl.dynamic_sampling and rl.overlong
    assert (rl.epsilon, rl.epsilon_high, rl.beta, rl.loss_type) == (0.2, 0.28, 0.0, "dapo")
    assert len(PROFILES["standard"].seeds) >= 3
