"""Lab tasks: verifiable multi-step arithmetic chains, generated offline and seeded, with exact answer checking.

A :class:`ChainTask` is a start value and ``K`` operations applied strictly left to right, every intermediate value
reduced modulo ``M``: ``1+8-3+8-1*1`` (mod 10) is ``((((1+8)-3)+8)-1)*1 mod 10 = 3``. The default family is the one
the feasibility study found tiny students learn in minutes (``K=5`` single-digit operands, ``+ - *``, mod 10).
Difficulty grows with the chain length ``K``, the operand range and the modulus (e.g. mod 97 with two-digit operands
for the GPU profile).

The student sees the prompt ``Q:1+8-3+8-1*1>`` and writes a trace ending in ``A 3`` (see :mod:`.grammar`).
Train and test splits are disjoint by prompt and reproducible from a seed (:func:`make_splits`).
:func:`tasks_from_reasoning_gym` draws the same kind of chains from reasoning-gym's ``chain_sum`` generator.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InputError

OPERATORS = "+-*"
PROMPT_PREFIX = "Q:"
PROMPT_SUFFIX = ">"
_EXPR_RE = re.compile(r"^\s*(\d+)((?:\s*[-+*]\s*\d+)+)\s*$")
_OP_RE = re.compile(r"([-+*])\s*(\d+)")


def apply_op(value: int, op: str, operand: int) -> int:
    """The unreduced result of ``value op operand``."""
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand
    if op == "*":
        return value * operand
    raise ValueError(f"unknown operator {op!r}; expected one of {OPERATORS}")


@dataclass(frozen=True)
class TaskConfig:
    """A family of chain tasks.

    Attributes:
        length: number of operations K in a chain (the main difficulty knob).
        operand_max: operands (and the start value) are drawn uniformly from ``0..operand_max``.
        operators: the operators to draw from (subset of ``+-*``).
        modulus: every intermediate value is reduced modulo this number.
    """

    length: int = 5
    operand_max: int = 9
    operators: str = OPERATORS
    modulus: int = 10

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError("TaskConfig.length must be at least 1")
        if self.operand_max < 1 or self.modulus < 2:
            raise ValueError("TaskConfig needs operand_max >= 1 and modulus >= 2")
        if not self.operators or any(op not in OPERATORS for op in self.operators):
            raise ValueError(f"TaskConfig.operators must be a non-empty subset of {OPERATORS!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChainTask:
    """One chain: ``start`` then ``ops`` (``(operator, operand)`` pairs) applied left to right, mod ``modulus``."""

    start: int
    ops: tuple[tuple[str, int], ...]
    modulus: int = 10
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def expression(self) -> str:
        """``1+8-3`` (no spaces)."""
        return str(self.start) + "".join(f"{op}{b}" for op, b in self.ops)

    @property
    def question(self) -> str:
        """The human-readable question stored in trace files (parsed back by :func:`task_from_question`)."""
        return f"{self.expression} (mod {self.modulus})"

    @property
    def prompt(self) -> str:
        """What the student is given: ``Q:1+8-3>``."""
        return f"{PROMPT_PREFIX}{self.expression}{PROMPT_SUFFIX}"

    def values(self) -> list[int]:
        """The correct running values: ``values()[i]`` is the value after ``i`` operations (``[0]`` = start)."""
        out = [self.start % self.modulus]
        for op, b in self.ops:
            out.append(apply_op(out[-1], op, b) % self.modulus)
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]

    def check(self, predicted: int | str | None) -> bool:
        """Exact answer check (``None`` or non-numbers are wrong)."""
        if predicted is None:
            return False
        try:
            return int(str(predicted).strip()) == self.answer
        except ValueError:
            return False


def random_task(rng: random.Random, config: TaskConfig) -> ChainTask:
    """Draw one task of the family ``config``."""
    start = rng.randint(0, config.operand_max)
    ops = tuple((rng.choice(config.operators), rng.randint(0, config.operand_max)) for _ in range(config.length))
    return ChainTask(start=start, ops=ops, modulus=config.modulus)


def generate_tasks(n: int, config: TaskConfig = TaskConfig(), seed: int = 0,
                   exclude: Iterable[str] = (), unique: bool = True) -> list[ChainTask]:
    """``n`` tasks drawn with ``random.Random(seed)``, skipping prompts in ``exclude`` (and duplicates if ``unique``).

    Raises ``ValueError`` when the family has too few distinct tasks to satisfy the request.
    """
    rng = random.Random(seed)
    seen = set(exclude)
    tasks: list[ChainTask] = []
    tries = 0
    limit = 50 * n + 1000
    while len(tasks) < n:
        tries += 1
        if tries > limit:
            raise ValueError(f"could only draw {len(tasks)} distinct tasks of {config} (asked for {n})")
        task = random_task(rng, config)
        if task.prompt in seen:
            continue
        if unique:
            seen.add(task.prompt)
        tasks.append(task)
    return tasks


@dataclass
class TaskSplits:
    """Disjoint train and test tasks of one family."""

    train: list[ChainTask]
    test: list[ChainTask]
    config: TaskConfig
    seed: int

    def __post_init__(self) -> None:
        overlap = {t.prompt for t in self.train} & {t.prompt for t in self.test}
        if overlap:
            raise ValueError(f"train and test share {len(overlap)} prompts")


def make_splits(n_train: int, n_test: int, config: TaskConfig = TaskConfig(), seed: int = 1234) -> TaskSplits:
    """Train tasks from ``seed``; test tasks from ``seed + 1`` with every train prompt excluded (disjoint)."""
    train = generate_tasks(n_train, config, seed)
    test = generate_tasks(n_test, config, seed + 1, exclude={t.prompt for t in train})
    return TaskSplits(train=train, test=test, config=config, seed=seed)


def task_from_expression(expression: str, modulus: int = 10) -> ChainTask:
    """Parse ``1+8-3`` (spaces allowed) into a task; raises ``ValueError`` when it is not a chain."""
    match = _EXPR_RE.match(expression)
    if not match:
        raise ValueError(f"not an arithmetic chain: {expression!r}")
    ops = tuple((op, int(b)) for op, b in _OP_RE.findall(match.group(2)))
    return ChainTask(start=int(match.group(1)), ops=ops, modulus=modulus)


def task_from_question(question: str | None, path: str = "<memory>", line: int | None = None) -> ChainTask:
    """Parse a lab question (``1+8-3 (mod 10)``) or prompt (``Q:1+8-3>``); raises :class:`InputError`."""
    if not question:
        raise InputError("a lab trace needs a 'question' (an arithmetic chain such as '1+8-3 (mod 10)')", path, line)
    text = question.strip()
    modulus = 10
    mod_match = re.search(r"\(mod (\d+)\)\s*$", text)
    if mod_match:
        modulus = int(mod_match.group(1))
        text = text[: mod_match.start()]
    text = text.removeprefix(PROMPT_PREFIX)
    text = text.rstrip(PROMPT_SUFFIX)
    try:
        return task_from_expression(text, modulus)
    except ValueError as exc:
        raise InputError(f"{exc}: the lab works only on its own arithmetic-chain tasks (questions such as "
                         "'1+8-3 (mod 10)', e.g. from `molesyn lab traces`); use another backend for benchmark "
                         "questions", path, line) from None


def tasks_from_reasoning_gym(n: int, seed: int = 0, num_terms: int = 6, num_digits: int = 1,
                             modulus: int = 10) -> list[ChainTask]:
    """Chains from reasoning-gym's ``chain_sum`` generator (``+``/``-`` only), reduced modulo ``modulus``.

    ``num_terms`` is the number of numbers in the chain (K + 1) and ``num_digits`` their size: reasoning-gym's own
    difficulty knobs. The answer is checked by :meth:`ChainTask.check` (the chain's value mod ``modulus``), so traces
    from these tasks use the same grammar as the built-in family.
    """
    import reasoning_gym

    dataset = reasoning_gym.create_dataset("chain_sum", size=n, seed=seed, min_terms=num_terms, max_terms=num_terms,
                                           min_digits=num_digits, max_digits=num_digits)
    tasks = []
    for item in dataset:
        task = task_from_expression(item["metadata"]["expression"].replace(" ", ""), modulus)
        tasks.append(ChainTask(task.start, task.ops, modulus, meta={"source": "reasoning_gym:chain_sum",
                                                                     "gym_answer": item["answer"]}))
    return tasks


def prompts(tasks: Sequence[ChainTask]) -> list[str]:
    return [t.prompt for t in tasks]
