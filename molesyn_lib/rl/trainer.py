"""DAPO-style RL of lab students with TRL's ``GRPOTrainer``, and a monitor that logs every step.

:func:`train_rl` runs RL in place on a :class:`~molesyn_lib.lab.student.Student` over lab tasks:

* **Algorithm** (:func:`grpo_config`): TRL's ``GRPOTrainer`` set up like DAPO (Yu et al. 2025): token-level loss
  (``loss_type="dapo"``), asymmetric ("clip-higher") clipping ``epsilon`` / ``epsilon_high`` (0.2 / 0.28), no KL
  term (``beta=0``, so no reference model in the loss), group-normalised advantages over ``num_generations``
  samples per prompt, and optional masking of truncated completions. The clipping binds because batches are
  reused: ``num_iterations`` (GRPO's mu; default 2) updates per generation batch and/or ``steps_per_generation``
  mini-batch steps per generation, so TRL keeps the generation-time log-probabilities as pi_old and every update
  after the first on a batch has an importance ratio away from 1 (with both at 1 every update is on-policy: ratio
  exactly 1, nothing clipped). ``steps`` counts optimiser steps, so with ``num_iterations=2`` a run of ``steps``
  steps samples ``steps / 2`` generation batches.
* **Dynamic sampling**, emulated by *filtering* (``dynamic_sampling``, default on; :func:`dapo_trainer_class`):
  after TRL scores a generation batch, groups whose total rewards are all equal (zero advantage) are masked out of
  the loss and of the dapo loss's token normaliser (:func:`filter_zero_spread`), so they neither move the policy nor
  dilute the other groups' gradient. DAPO instead re-draws prompts until the batch is full of groups with spread;
  TRL 1.16 has no hook to re-draw inside a generation batch, so here the effective batch shrinks. A batch with no
  spread at all gives loss 0 (no gradient; Adam's running moments still apply, as for TRL's zero advantages). DAPO
  filters on accuracy (all right or all wrong); the total reward is used here, so a group that differs only in its
  overlong penalty keeps that length signal.
* **Rewards**: verified correctness (:func:`~.rewards.correctness_reward`), DAPO's soft overlong punishment (on by
  default, ``overlong``: 0 up to ``budget - overlong_cache`` tokens, then linearly down to -1 at the budget;
  :func:`~.rewards.overlong_reward`) and an optional format term weighted by ``format_weight``.
* **Batches**: each optimiser step trains on ``prompts_per_step`` prompts x ``num_generations`` completions; a
  generation batch (``steps_per_generation x prompts_per_step`` prompts) is generated in one ``model.generate``
  call, then split into ``steps_per_generation`` mini-batches and reused ``num_iterations`` times.

:class:`RLMonitor` (a ``TrainerCallback``) records, **per step**: the total and correctness reward, the reward
spread within groups, the share of groups with no spread and the share filtered out by dynamic sampling
(``frac_filtered``), whether the step generated its batch (``fresh``; a step that reuses a batch repeats that
batch's rollout numbers, with no generation time and no new rollout tokens), response length (tokens and
characters), the share of completions with an answer, malformed steps, the behaviour distribution of the rollouts
(the lab's ground-truth parser), the KL divergence from the initial policy (``kl``: the per-token k3 estimator
``exp(r) - r - 1``, ``r = log pi_0 - log pi``, averaged over the tokens of ``kl_samples`` of the step's rollouts and
computed on-policy when the rewards are computed, because ``beta=0`` gives no KL of its own), TRL's logged entropy
and clip ratios (``trl_clip_ratio_region_mean``, ``_low_mean``, ``_high_mean``, ``_high_max``: shares of tokens
whose ratio left the clipping range; 0 on a batch's first update), and the generation and update times. Every
``eval_every`` steps (and at step 0 and the end) it decodes the held-out tasks by sampling at the RL temperature
(``acc_sampled``, the analogue of the paper's MATH-500 accuracy sampled at the RL temperature; same seed at every
evaluation) and greedily (``acc_greedy``), and compares the transfer graph of the training rollouts since the
previous evaluation with the initialisation's (Pearson r and Jensen-Shannon distance; the initialisation's graph is
that of its sampled held-out completions at step 0).
"""
from __future__ import annotations

import copy
import functools
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import PrinterCallback, TrainerCallback

from ..errors import MolesynError
from ..lab.evaluate import completion_metrics
from ..lab.student import Student, quiet_hf
from ..lab.tasks import ChainTask
from ..transfer import TransferGraph
from .rewards import completion_text, correctness_reward, format_reward, overlong_reward, rollout_stats
from .stability import graph_drift


@dataclass
class RLConfig:
    """RL settings (DAPO-style GRPO; see module docstring).

    Attributes:
        steps: optimiser steps.
        prompts_per_step: prompts per step; each is sampled ``num_generations`` times (>= 2, the group size).
        num_generations: completions per prompt (the group for advantages).
        learning_rate: AdamW learning rate (constant after ``warmup_steps``).
        warmup_steps: linear warm-up steps.
        loss_type: TRL loss aggregation (``dapo``: token-level, normalised by the batch's tokens).
        epsilon, epsilon_high: lower and upper clipping range of the importance ratio (DAPO's clip-higher).
        num_iterations: policy updates on each generation batch (GRPO's / DAPO's mu). With ``num_iterations`` or
            ``steps_per_generation`` above 1 the policy is updated between sampling and (some of) its updates, so
            TRL computes the old log-probabilities at generation time, the importance ratio differs from 1 and the
            clipping range can bind; with both at 1 every update is on-policy (ratio exactly 1, nothing clipped).
        steps_per_generation: optimiser steps per generation: a generation batch of ``steps_per_generation x
            prompts_per_step`` prompts is split into that many mini-batches, one step each (DAPO's rollout batch
            and mini-batches; total rollouts unchanged).
        dynamic_sampling: DAPO's dynamic sampling, emulated by *filtering*: groups whose total rewards are all
            equal (zero advantage) are masked out of the loss and of the dapo loss's token normaliser, so the step's
            effective batch shrinks instead of being refilled (see :func:`filter_zero_spread`).
        beta: KL coefficient against the initial policy in the loss (0 = none, as in DAPO).
        temperature: sampling temperature of the rollouts (and of the monitor's structure samples).
        max_completion_length: generation budget in tokens (``None``: 1.5 x the longest SFT completion + 8).
        format_weight: weight of the format reward (0 = correctness only).
        overlong: add DAPO's soft overlong punishment (on by default): 0 up to ``budget - overlong_cache``
            completion tokens, then linearly down to -1 at the budget (``max_completion_length``); ``overlong_cache``
            is the soft zone in tokens (16: tokens 80-96 of the chapter's 96-token budget), capped at budget - 1.
        mask_truncated_completions: exclude completions cut by the budget from the loss.
        scale_rewards: TRL advantage scaling (``group``, ``batch`` or ``none``).
        eval_every: held-out evaluation every this many steps (plus step 0 and the last step).
        eval_samples: sampled completions per held-out task at each evaluation (at ``temperature``).
        eval_greedy: also decode the held-out tasks greedily at each evaluation.
        kl_samples: rollouts per step (evenly spaced over the batch) on which the monitor estimates the KL to the
            initial policy (two extra forward passes each; ``0`` = all).
        seed: RL seed (prompt order, sampling).
        threads: torch threads (``None``: leave as is).
        bf16: bfloat16 mixed precision (GPU only; fp32 on CPU for reproducibility).
        progress: show TRL's progress bar.
    """

    steps: int = 40
    prompts_per_step: int = 8
    num_generations: int = 8
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    loss_type: str = "dapo"
    epsilon: float = 0.2
    epsilon_high: float = 0.28
    num_iterations: int = 2
    steps_per_generation: int = 1
    dynamic_sampling: bool = True
    beta: float = 0.0
    temperature: float = 1.0
    max_completion_length: int | None = None
    format_weight: float = 0.0
    overlong: bool = True
    overlong_cache: int = 16
    mask_truncated_completions: bool = False
    scale_rewards: str = "group"
    eval_every: int = 10
    eval_samples: int = 1
    eval_greedy: bool = True
    kl_samples: int = 16
    seed: int = 0
    threads: int | None = 1
    bf16: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise MolesynError("RL needs at least 1 step")
        if self.num_generations < 2:
            raise MolesynError("GRPO/DAPO needs num_generations >= 2 (advantages are relative within a group)")
        if self.prompts_per_step < 1:
            raise MolesynError("prompts_per_step must be at least 1")
        if self.eval_every < 1:
            raise MolesynError("eval_every must be at least 1")
        if self.num_iterations < 1 or self.steps_per_generation < 1:
            raise MolesynError("num_iterations and steps_per_generation must be at least 1")

    @property
    def completions_per_step(self) -> int:
        return self.prompts_per_step * self.num_generations

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def completion_budget(student: Student, config: RLConfig) -> int:
    """Generation budget in tokens: the config's, else 1.5 x the longest SFT completion + 8 (160 if unknown)."""
    if config.max_completion_length is not None:
        return int(config.max_completion_length)
    return student.default_max_new_tokens()


def rl_dataset(tasks: Sequence[ChainTask]) -> Any:
    """A ``datasets.Dataset`` of plain-text prompts with the gold ``answer`` (a string) and ``question``."""
    from datasets import Dataset

    if not tasks:
        raise MolesynError("no RL tasks")
    return Dataset.from_list([{"prompt": t.prompt, "answer": str(t.answer), "question": t.question} for t in tasks])


def reward_functions(config: RLConfig, max_completion_length: int) -> list[tuple[str, Callable[..., list[float]],
                                                                           float]]:
    """``(name, function, weight)`` of the rewards ``config`` asks for (correctness first)."""
    rewards: list[tuple[str, Callable[..., list[float]], float]] = [("correct", correctness_reward, 1.0)]
    if config.format_weight:
        rewards.append(("format", format_reward, float(config.format_weight)))
    if config.overlong:
        cache = min(config.overlong_cache, max_completion_length - 1)
        rewards.append(("overlong", overlong_reward(max_completion_length, cache), 1.0))
    return rewards


def grpo_config(config: RLConfig, output_dir: str, max_completion_length: int, weights: Sequence[float]) -> Any:
    """TRL's ``GRPOConfig`` for ``config`` with the project's CPU settings.

    One micro-batch per optimiser step (``gradient_accumulation_steps=1``): whenever ``steps_per_generation x
    num_iterations > 1`` TRL then computes pi_old's log-probabilities once, at generation time, with the policy that
    sampled the batch (its test ``gradient_accumulation_steps % generate_every != 0``), and reuses them on every
    update of that batch; otherwise it uses the current log-probabilities detached (ratio 1).
    """
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=output_dir, max_steps=config.steps, per_device_train_batch_size=config.completions_per_step,
        num_generations=config.num_generations, steps_per_generation=config.steps_per_generation,
        num_iterations=config.num_iterations, gradient_accumulation_steps=1,
        learning_rate=config.learning_rate, lr_scheduler_type="constant_with_warmup" if config.warmup_steps else
        "constant", warmup_steps=config.warmup_steps, loss_type=config.loss_type, epsilon=config.epsilon,
        epsilon_high=config.epsilon_high, beta=config.beta, temperature=config.temperature, top_p=1.0, top_k=0,
        max_completion_length=max_completion_length, scale_rewards=config.scale_rewards,
        mask_truncated_completions=config.mask_truncated_completions, reward_weights=list(weights),
        use_cpu=not torch.cuda.is_available(), bf16=config.bf16, activation_checkpointing=False,
        save_strategy="no", report_to="none", logging_steps=1, seed=config.seed, data_seed=config.seed,
        dataloader_num_workers=0, disable_tqdm=not config.progress, shuffle_dataset=True, log_completions=False,
    )


# --------------------------------------------------------------------------------------------- dynamic sampling
#: TRL's log key for the share of groups that :func:`filter_zero_spread` removed from a generation batch.
FILTERED_KEY = "dynamic_sampling/frac_filtered"


def zero_spread_groups(rewards: torch.Tensor, group_size: int, atol: float = 1e-6) -> torch.Tensor:
    """One bool per group of ``group_size`` consecutive rewards: ``True`` where all are equal (within ``atol``)."""
    if rewards.numel() % group_size:
        raise MolesynError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.reshape(-1, group_size)
    return (grouped - grouped[:, :1]).abs().amax(dim=1) <= atol


def filter_zero_spread(inputs: dict[str, Any], zero_spread: torch.Tensor, group_size: int) -> dict[str, Any]:
    """``inputs`` (TRL's scored batch, rows in groups) with zero-spread groups masked out of the loss.

    Their completion mask (hence their tokens in the loss and, through ``num_items_in_batch``, in the dapo loss's
    token normaliser) and advantages become 0; ``num_items_in_batch`` is recounted over the rows left (this
    process's rows; the trainer of :func:`dapo_trainer_class` sums it over processes). A batch with every group
    filtered has no tokens: the dapo loss is then 0 (TRL clamps the normaliser at 1).
    """
    keep = (~zero_spread).repeat_interleave(group_size).to(inputs["completion_mask"].device)
    out = dict(inputs)
    out["completion_mask"] = inputs["completion_mask"] * keep.unsqueeze(1).to(inputs["completion_mask"].dtype)
    out["advantages"] = inputs["advantages"] * keep.reshape(-1, *([1] * (inputs["advantages"].dim() - 1)))
    loss_mask = out["completion_mask"] if "tool_mask" not in out else out["completion_mask"] * out["tool_mask"]
    out["num_items_in_batch"] = loss_mask.sum()
    return out


@functools.cache
def dapo_trainer_class() -> type:
    """``DAPOTrainer``: TRL's ``GRPOTrainer`` with DAPO's dynamic sampling emulated by filtering (built on first
    use, so importing this module does not import TRL)."""
    from trl import GRPOTrainer

    class DAPOTrainer(GRPOTrainer):  # type: ignore[misc]
        """``GRPOTrainer`` that filters zero-spread groups out of each training generation batch.

        TRL has no hook to re-draw prompts inside a generation batch (DAPO refills the batch with new groups), so
        the groups are filtered instead: the batch shrinks. The share filtered is logged as :data:`FILTERED_KEY`.
        """

        def __init__(self, *args: Any, dynamic_sampling: bool = True, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.dynamic_sampling = dynamic_sampling
            self._scored_rewards: torch.Tensor | None = None

        def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._scored_rewards = rewards
            return rewards

        def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
            output = super()._generate_and_score_completions(inputs)
            rewards, self._scored_rewards = self._scored_rewards, None
            if not self.model.training or not self.dynamic_sampling or rewards is None:
                return output
            return self._filter(output, rewards)

        def _filter(self, output: dict[str, Any], rewards_per_func: torch.Tensor) -> dict[str, Any]:
            """Mask this process's zero-spread groups (TRL's weighted total reward over every process's rows)."""
            weights = self.reward_weights.to(rewards_per_func.device)
            zero = zero_spread_groups((rewards_per_func * weights.unsqueeze(0)).nansum(dim=1), self.num_generations)
            n_local = output["completion_mask"].shape[0] // self.num_generations
            start = self.accelerator.process_index * n_local
            output = filter_zero_spread(output, zero[start:start + n_local], self.num_generations)
            output["num_items_in_batch"] = self.accelerator.gather(output["num_items_in_batch"]).sum()
            self._metrics["train"][FILTERED_KEY].append(float(zero.float().mean()))
            return output

    return DAPOTrainer


# --------------------------------------------------------------------------------------------- KL and the monitor
@torch.no_grad()
def sequence_logprobs(model: Any, tokenizer: Any, prompts: Sequence[str], completion_ids: Sequence[Sequence[int]],
                      temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of ``completion_ids`` after their prompts: ``(logps [n, L], mask [n, L])``.

    Prompts are left-padded and completions right-padded into one batch (positions follow the attention mask, as in
    generation); one forward pass.
    """
    encoded = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_ids, prompt_mask = encoded["input_ids"], encoded["attention_mask"]
    n, width = len(completion_ids), max(1, max(len(c) for c in completion_ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    completion = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for row, ids in enumerate(completion_ids):
        completion[row, :len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
        mask[row, :len(ids)] = 1
    input_ids = torch.cat([prompt_ids, completion], dim=1).to(model.device)
    attention = torch.cat([prompt_mask, mask], dim=1).to(model.device)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits.float()
    logits = logits[:, prompt_ids.shape[1] - 1:-1, :] / temperature
    logps = torch.log_softmax(logits, dim=-1).gather(-1, completion.to(logits.device).unsqueeze(-1)).squeeze(-1)
    return logps.cpu(), mask


def rollout_kl(policy: Any, reference: Any, tokenizer: Any, prompts: Sequence[str],
               completion_ids: Sequence[Sequence[int]], temperature: float = 1.0) -> float:
    """KL(policy || reference) per token on the rollouts (k3 estimator, see module docstring); NaN without tokens."""
    if not completion_ids or not any(len(c) for c in completion_ids):
        return float("nan")
    was_training = policy.training
    policy.eval()
    try:
        logp, mask = sequence_logprobs(policy, tokenizer, prompts, completion_ids, temperature)
        ref, _ = sequence_logprobs(reference, tokenizer, prompts, completion_ids, temperature)
    finally:
        if was_training:
            policy.train()
    delta = ref - logp
    k3 = torch.exp(delta) - delta - 1.0
    weights = mask.float()
    return float((k3 * weights).sum() / weights.sum())


def frozen_copy(model: Any) -> Any:
    """A frozen, unpatched copy of ``model`` (a new instance of its class with its weights).

    ``copy.deepcopy`` is not enough: TRL's trainers patch ``forward`` on the instance with a closure over the
    *original* model, so a deep copy of a trained student would still run the original's weights.
    """
    with quiet_hf():
        reference = type(model)(copy.deepcopy(model.config))
    reference.load_state_dict(model.state_dict())
    reference.to(next(model.parameters()).device).eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference


@dataclass
class RolloutBatch:
    """The rollouts of one step as the reward functions saw them."""

    prompts: list[str]
    completions: list[str]
    completion_ids: list[list[int]]
    answers: list[str]
    rewards: dict[str, list[float]] = field(default_factory=dict)
    kl: float = float("nan")
    generated_at: float = 0.0
    kl_seconds: float = 0.0


class RLMonitor(TrainerCallback):
    """Per-step and held-out logging for :func:`train_rl` (see module docstring).

    Attributes:
        steps: one dict per optimiser step.
        evals: one dict per held-out evaluation (step 0 first).
        initial_graph: the initial policy's transfer graph (sampled at the RL temperature).
    """

    def __init__(self, student: Student, eval_tasks: Sequence[ChainTask], config: RLConfig, max_new_tokens: int,
                 reward_weights: dict[str, float], group_size: int):
        self.student = student
        self.eval_tasks = list(eval_tasks)
        self.config = config
        self.max_new_tokens = max_new_tokens
        self.reward_weights = dict(reward_weights)
        self.group_size = group_size
        self.reference = frozen_copy(student.model)
        self.policy: Any = None
        self.steps: list[dict[str, float]] = []
        self.evals: list[dict[str, Any]] = []
        self.initial_graph: TransferGraph | None = None
        self._batch: RolloutBatch | None = None
        self._window: list[list[str]] = []
        self._step_started = 0.0
        self._last: dict[str, float] | None = None
        self._filtered = 0.0

    # ------------------------------------------------------------------ reward hook
    def wrap(self, function: Callable[..., list[float]], name: str) -> Callable[..., list[float]]:
        """``function`` with the same TRL signature that also records the rollouts it scores."""

        def recorded(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
            rewards = function(prompts=prompts, completions=completions, **kwargs)
            batch = self._batch
            if batch is None:
                ids = [list(map(int, c)) for c in kwargs.get("completion_ids") or [[] for _ in completions]]
                batch = RolloutBatch(prompts=[str(p) for p in prompts],
                                     completions=[completion_text(c) or "" for c in completions], completion_ids=ids,
                                     answers=[str(a) for a in kwargs.get("answer", [])],
                                     generated_at=time.perf_counter())
                if self.policy is not None:
                    started = time.perf_counter()
                    n = len(batch.prompts)
                    keep = sorted(set(np.linspace(0, n - 1, min(n, self.config.kl_samples or n)).round().astype(int)))
                    batch.kl = rollout_kl(self.policy, self.reference, self.student.tokenizer,
                                          [batch.prompts[i] for i in keep], [batch.completion_ids[i] for i in keep],
                                          self.config.temperature)
                    batch.kl_seconds = time.perf_counter() - started
                self._batch = batch
            batch.rewards[name] = [float(r) for r in rewards]
            return rewards

        recorded.__name__ = name
        return recorded

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, step: int, model: Any = None) -> dict[str, Any]:
        """Held-out accuracy now (sampled at the RL temperature, and greedy), plus structural drift.

        The sampled decode uses the same seed at every evaluation (common random numbers), so differences between
        evaluations come from the policy, not the draw. At step 0 its completions define the initial graph; later,
        the graph of the training rollouts since the previous evaluation is compared with it.
        """
        if model is not None:
            self.student.model = model
        started = time.perf_counter()
        record: dict[str, Any] = {"step": step}
        tasks = [t for t in self.eval_tasks for _ in range(self.config.eval_samples)]
        if tasks:
            sampled = self.student.generate([t.prompt for t in tasks], temperature=self.config.temperature,
                                            max_new_tokens=self.max_new_tokens, seed=self.config.seed + 7919)
            metrics, _ = completion_metrics(tasks, sampled, "sampled")
            record.update({f"{k}_sampled": metrics[f"{k}_sampled"]
                           for k in ("acc", "no_answer", "chars", "step_error")})
            if self.config.eval_greedy:
                greedy = self.student.generate([t.prompt for t in self.eval_tasks], temperature=0.0,
                                               max_new_tokens=self.max_new_tokens)
                metrics, _ = completion_metrics(self.eval_tasks, greedy, "greedy")
                record.update(acc_greedy=metrics["acc_greedy"], no_answer_greedy=metrics["no_answer_greedy"],
                              chars_greedy=metrics["chars_greedy"])
            stats = rollout_stats(sampled)
            record.update({f"eval_{k}": v for k, v in stats.shares().items()})
            if step == 0:
                self.initial_graph = TransferGraph.from_sequences(stats.sequences, labeler="lab-parser",
                                                                  name="initial")
                answers = [t.answer for t in self.eval_tasks]
                record["acc_floor"] = max(answers.count(a) for a in set(answers)) / len(answers)
        if step > 0 and self.initial_graph is not None:
            window = TransferGraph.from_sequences(self._window, labeler="lab-parser", name=f"rollouts@{step}")
            record.update(graph_drift(self.initial_graph, window), window=len(self._window), graph=window.to_dict())
            self._window = []
        elif self.initial_graph is not None:
            has_graph = self.initial_graph.counts.sum() > 0
            record.update(drift_pearson=1.0 if has_graph else float("nan"), drift_js=0.0 if has_graph else float("nan"))
        record["seconds"] = time.perf_counter() - started
        self.evals.append(record)
        return record

    # ------------------------------------------------------------------ callbacks
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None:
            self.policy = model
        self.evaluate(0, model)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._batch = None
        self._step_started = time.perf_counter()

    def rollout_record(self, batch: RolloutBatch, ended: float) -> dict[str, float]:
        """The per-step numbers of a freshly generated batch (rewards, spread, lengths, behaviours, KL, times)."""
        names = list(batch.rewards)
        total = np.zeros(len(batch.completions))
        for name in names:
            total += self.reward_weights.get(name, 1.0) * np.asarray(batch.rewards[name], dtype=float)
        usable = len(total) - len(total) % self.group_size
        groups = total[:usable].reshape(-1, self.group_size) if usable else np.zeros((0, self.group_size))
        spread = groups.std(axis=1) if len(groups) else np.array([float("nan")])
        stats = rollout_stats(batch.completions)
        self._window.extend(stats.sequences)
        lengths = [len(ids) for ids in batch.completion_ids]
        record: dict[str, float] = dict(
            reward=float(total.mean()),
            reward_correct=float(np.mean(batch.rewards.get("correct", [float("nan")]))),
            reward_spread=float(np.mean(spread)), frac_zero_spread=float(np.mean(spread == 0)),
            length_tokens=float(np.mean(lengths)) if lengths else float("nan"),
            length_chars=float(np.mean([len(c) for c in batch.completions])),
            answered=stats.answered, malformed=stats.malformed, kl=batch.kl, **stats.shares(),
            generate_seconds=batch.generated_at - self._step_started,
            update_seconds=ended - batch.generated_at - batch.kl_seconds, kl_seconds=batch.kl_seconds,
            rollout_tokens=float(sum(lengths)), fresh=1.0)
        for name in names:
            if name != "correct":
                record[f"reward_{name}"] = float(np.mean(batch.rewards[name]))
        return record

    def reused_record(self, ended: float) -> dict[str, float]:
        """A step that trains on the previous generation batch again (``num_iterations`` or
        ``steps_per_generation`` > 1): that batch's numbers, no generation time and no new rollout tokens."""
        if self._last is None:
            return {}
        return {**self._last, "generate_seconds": 0.0, "kl_seconds": 0.0, "rollout_tokens": 0.0, "fresh": 0.0,
                "update_seconds": ended - self._step_started}

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        ended = time.perf_counter()
        step = int(state.global_step)
        if self._batch is not None:
            self._last = self.rollout_record(self._batch, ended)
            record = dict(self._last)
        else:
            record = self.reused_record(ended)
        self.steps.append({"step": float(step), **record})
        if step % self.config.eval_every == 0 or step == int(state.max_steps):
            self.evaluate(step, model)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None,
               **kwargs: Any) -> None:
        if not logs or not self.steps:
            return
        record = self.steps[-1]
        for key in TRL_LOGGED:
            if logs.get(key) is not None:
                record[f"trl_{key.replace('/', '_')}"] = float(logs[key])
        if logs.get(FILTERED_KEY) is not None:  # logged on generation steps; reused steps train on the same batch
            self._filtered = float(logs[FILTERED_KEY])
        record["frac_filtered"] = self._filtered


#: TRL's logged metrics that :class:`RLMonitor` copies into each step (as ``trl_<key with _ for />``).
TRL_LOGGED = ("entropy", "clip_ratio/region_mean", "clip_ratio/high_mean", "clip_ratio/low_mean",
              "clip_ratio/high_max", "frac_reward_zero_std", "loss", "grad_norm", "learning_rate")


@dataclass
class RLResult:
    """What :func:`train_rl` did.

    Attributes:
        steps: the monitor's per-step records.
        evals: the held-out evaluations (step 0 first).
        initial_graph: the initial policy's transfer graph (``to_dict`` form).
        seconds: wall time of training (evaluations included); ``eval_seconds`` of it spent evaluating.
        config: the RL settings.
    """

    steps: list[dict[str, float]]
    evals: list[dict[str, Any]]
    initial_graph: dict[str, Any] | None
    seconds: float
    eval_seconds: float
    config: dict[str, Any]

    @property
    def rollout_tokens_per_second(self) -> float:
        """Completion tokens generated per second of generation."""
        tokens = sum(s.get("rollout_tokens", 0.0) for s in self.steps)
        seconds = sum(s.get("generate_seconds", 0.0) for s in self.steps)
        return tokens / seconds if seconds > 0 else float("nan")

    @property
    def steps_per_second(self) -> float:
        """Optimiser steps per second of training, evaluations excluded."""
        seconds = self.seconds - self.eval_seconds
        return len(self.steps) / seconds if seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "evals": self.evals, "initial_graph": self.initial_graph,
                "seconds": self.seconds, "eval_seconds": self.eval_seconds, "config": self.config,
                "rollout_tokens_per_second": self.rollout_tokens_per_second,
                "steps_per_second": self.steps_per_second}


def make_trainer(student: Student, tasks: Sequence[ChainTask], config: RLConfig,
                 reward_funcs: Sequence[Callable[..., list[float]]], args: Any,
                 callbacks: Sequence[TrainerCallback] = ()) -> Any:
    """The ``DAPOTrainer`` (:func:`dapo_trainer_class`) for ``student`` on ``tasks`` with TRL ``args``."""
    trainer = dapo_trainer_class()(model=student.model, reward_funcs=list(reward_funcs), args=args,
                                   train_dataset=rl_dataset(tasks), processing_class=student.tokenizer,
                                   callbacks=list(callbacks), dynamic_sampling=config.dynamic_sampling)
    if not config.progress:
        trainer.remove_callback(PrinterCallback)
    return trainer


def train_rl(student: Student, tasks: Sequence[ChainTask], eval_tasks: Sequence[ChainTask],
             config: RLConfig | None = None, callbacks: Sequence[TrainerCallback] = ()) -> RLResult:
    """RL ``student`` in place on ``tasks`` (prompts) with held-out ``eval_tasks`` (see module docstring)."""
    config = config or RLConfig()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if torch.cuda.is_available():  # the trainer would move the policy; the frozen reference must sit beside it
        student.model.to("cuda")
    budget = completion_budget(student, config)
    rewards = reward_functions(config, budget)
    weights = [w for _, _, w in rewards]
    monitor = RLMonitor(student, eval_tasks, config, budget, {n: w for n, _, w in rewards}, config.num_generations)
    wrapped = [monitor.wrap(f, n) for n, f, _ in rewards]
    student.model.train()
    with tempfile.TemporaryDirectory(prefix="molesyn-rl-") as tmp, quiet_hf():
        trainer = make_trainer(student, tasks, config, wrapped, grpo_config(config, tmp, budget, weights),
                               [monitor, *callbacks])
        monitor.policy = trainer.model
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    student.model = trainer.model
    student.model.eval()
    student.meta.setdefault("rl", []).append({"steps": config.steps, "seconds": round(seconds, 2),
                                              "config": config.to_dict()})
    return RLResult(steps=monitor.steps, evals=monitor.evals,
                    initial_graph=monitor.initial_graph.to_dict() if monitor.initial_graph is not None else None,
                    seconds=seconds, eval_seconds=sum(e["seconds"] for e in monitor.evals), config=config.to_dict())
