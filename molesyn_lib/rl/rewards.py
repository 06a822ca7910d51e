"""Reward functions for RL on lab tasks, with TRL's signature ``reward(prompts, completions, answer, **kw)``.

Every reward here is a plain function (or a small callable object with a ``__name__``) that ``GRPOTrainer`` can call:
``completions`` are strings (plain-text prompts, the lab's case) or conversational ``[{"role": "assistant",
"content": ...}]`` lists; extra dataset columns (``answer``: the gold final value) arrive as keyword lists.

* :func:`correctness_reward`: 1.0 when the completion's final ``A n`` line (read by the lab's ground-truth parser,
  :func:`molesyn_lib.lab.grammar.parse_completion`) equals the gold answer, else 0.0: wrong, missing or unparseable
  answers all score 0. A gold answer that is not an integer is bad input (:class:`~molesyn_lib.errors.InputError`).
* :func:`format_reward`: the optional format term, ``answered x (well-formed steps / steps)``: 1.0 for a completion
  whose every step parses and that ends in an answer, 0.0 without an answer.
* :func:`overlong_reward`: DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), TRL's own
  ``trl.rewards.get_soft_overlong_punishment``: 0 up to ``max_len - cache`` completion tokens, then linearly down to
  -1 at ``max_len``.

:func:`get_reward` builds them by name from the registry :data:`REWARDS`; :func:`rollout_stats` summarises a batch of
completions (answered share, correctness, behaviour counts) for the RL monitor. Nothing here imports torch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..behaviors import STATES
from ..errors import InputError, MolesynError, lookup
from ..lab.grammar import ParsedCompletion, parse_completion

RewardFunction = Callable[..., list[float]]


def completion_text(completion: Any) -> str | None:
    """The text of one completion: a string, or the content of a conversational completion; ``None`` otherwise."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        return content if isinstance(content, str) else None
    if isinstance(completion, dict) and isinstance(completion.get("content"), str):
        return completion["content"]
    return None


def parse_gold(answer: Any, index: int | None = None) -> int:
    """The gold answer as an integer; raises :class:`InputError` naming the row when it is not one."""
    try:
        if isinstance(answer, bool):
            raise TypeError
        if isinstance(answer, float):
            if not answer.is_integer():
                raise ValueError
            return int(answer)
        return int(str(answer).strip())
    except (TypeError, ValueError):
        where = "<rl dataset>" if index is None else f"<rl dataset row {index}>"
        raise InputError(f"gold answer {answer!r} is not an integer (the 'answer' column must hold the final value)",
                         where) from None


def parse_completions(completions: Sequence[Any]) -> list[ParsedCompletion | None]:
    """Parse every completion with the lab grammar (``None`` for a completion that is not text)."""
    parsed: list[ParsedCompletion | None] = []
    for completion in completions:
        text = completion_text(completion)
        parsed.append(None if text is None else parse_completion(text))
    return parsed


def _check_lengths(completions: Sequence[Any], answer: Sequence[Any]) -> None:
    if len(completions) != len(answer):
        raise MolesynError(f"reward got {len(completions)} completions but {len(answer)} answers")


def correctness_reward(prompts: Sequence[Any], completions: Sequence[Any], answer: Sequence[Any],
                       **kwargs: Any) -> list[float]:
    """1.0 when the parsed final answer equals the gold ``answer``, else 0.0 (see module docstring)."""
    _check_lengths(completions, answer)
    gold = [parse_gold(a, i) for i, a in enumerate(answer)]
    return [1.0 if p is not None and p.answer is not None and p.answer == g else 0.0
            for p, g in zip(parse_completions(completions), gold)]


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """``answered x share of well-formed steps`` per completion (0.0 for non-text completions)."""
    rewards = []
    for parsed in parse_completions(completions):
        if parsed is None or parsed.answer is None:
            rewards.append(0.0)
            continue
        n_steps = len(parsed.steps)
        rewards.append(1.0 if n_steps == 0 else (n_steps - parsed.n_malformed) / n_steps)
    return rewards


def overlong_reward(max_completion_length: int, cache: int) -> RewardFunction:
    """DAPO's soft overlong punishment from TRL (needs ``completion_ids``, which ``GRPOTrainer`` passes)."""
    from trl.rewards import get_soft_overlong_punishment

    if not 0 <= cache < max_completion_length:
        raise MolesynError(f"overlong cache must be in [0, max_completion_length); got {cache} and "
                           f"{max_completion_length}")
    punishment = get_soft_overlong_punishment(max_completion_len=max_completion_length, soft_punish_cache=cache)

    def overlong(prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None,
                 completion_ids: Sequence[Sequence[int]] | None = None, **kwargs: Any) -> list[float]:
        if completion_ids is None:
            raise MolesynError("the overlong reward needs completion_ids (GRPOTrainer passes them)")
        return [float(x) for x in punishment(completion_ids=completion_ids)]

    overlong.__name__ = "overlong"
    return overlong


#: Reward builders by name: ``correct`` and ``format`` take no options; ``overlong`` takes
#: ``max_completion_length`` and ``cache``.
REWARDS: dict[str, Callable[..., RewardFunction]] = {
    "correct": lambda: correctness_reward,
    "format": lambda: format_reward,
    "overlong": overlong_reward,
}


def get_reward(name: str, **options: Any) -> RewardFunction:
    """A reward function from :data:`REWARDS` by name."""
    return lookup(REWARDS, name, "reward")(**options)


@dataclass
class RolloutStats:
    """A batch of rollouts summarised.

    Attributes:
        n: completions.
        answered: share with a final ``A n`` line.
        correct: share with the right answer (``None`` when no gold answers were given).
        malformed: share of steps the parser cannot read.
        mean_steps: steps per completion.
        behavior_counts: steps of each behaviour N, D, R, E (well-formed steps only).
        sequences: each completion's behaviour sequence (for transfer graphs).
    """

    n: int
    answered: float
    correct: float | None
    malformed: float
    mean_steps: float
    behavior_counts: dict[str, int] = field(default_factory=dict)
    sequences: list[list[str]] = field(default_factory=list)

    def shares(self) -> dict[str, float]:
        """Share of each behaviour among well-formed steps (``share_N`` ...; 0 when there are none)."""
        total = sum(self.behavior_counts.values())
        return {f"share_{b}": (self.behavior_counts.get(b, 0) / total if total else 0.0) for b in STATES}


def rollout_stats(completions: Sequence[Any], answer: Sequence[Any] | None = None) -> RolloutStats:
    """Summarise completions with the lab's ground-truth parser (see :class:`RolloutStats`)."""
    parsed = parse_completions(completions)
    n = len(parsed)
    sequences = [p.behaviors if p is not None else [] for p in parsed]
    counts = {b: sum(seq.count(b) for seq in sequences) for b in STATES}
    n_steps = sum(len(p.steps) for p in parsed if p is not None)
    n_malformed = sum(p.n_malformed for p in parsed if p is not None)
    correct = None
    if answer is not None:
        correct = sum(correctness_reward([], completions, answer)) / n if n else float("nan")
    return RolloutStats(
        n=n, answered=sum(p is not None and p.answer is not None for p in parsed) / n if n else float("nan"),
        correct=correct, malformed=n_malformed / n_steps if n_steps else 0.0,
        mean_steps=n_steps / n if n else float("nan"), behavior_counts=counts, sequences=sequences)
