"""Evaluating lab students: accuracy, the student's own transfer graph, step errors, self-correction, entropy probes.

:func:`evaluate_student` decodes held-out tasks greedily and by sampling (``T=1`` by default, pure sampling), parses
every completion with the lab's ground-truth parser (:mod:`.grammar`) and reports, as flat numbers:

* ``acc_greedy`` / ``acc_sampled``: exact final answers; ``acc_floor``: what always answering the most common
  answer scores on these tasks (products make 0 frequent: about 0.2 for K=3 mod 10); ``no_answer_*``: share of
  completions without ``A n``;
* ``chars_*`` / ``steps_*``: response length; ``malformed_sampled``: share of steps the parser cannot read;
* ``step_error_*``: share of computations whose written result is wrong for the operands written (arithmetic);
  ``tracking_error_*``: share whose operands are not the chain's next ones;
* ``share_N``... ``share_E`` (sampled steps), ``traces_with_R`` / ``traces_with_E``, ``behavior_entropy`` (bits,
  marginal) and ``entropy_rate`` of the sampled traces' graph;
* ``fix_steps``, ``fix_needed``, ``fix_right``, ``false_alarms``, ``missed`` (per sampled trace): what the student's
  own reflections did (see :class:`~.grammar.ReplayStats`);
* ``pearson_<ref>`` / ``kl_<ref>`` / ``js_<ref>`` for each reference graph (usually the teachers'): Pearson r of the
  transition matrices, KL(student || reference) and the Jensen-Shannon distance of the rows;
* ``repair_rate`` / ``repair_fix_rate`` (:func:`self_correction`): true self-correction. A clean prefix of ``j``
  steps whose last result is off by one is given after the prompt; ``repair_rate`` is the share of greedy
  continuations that still reach the right answer, ``repair_fix_rate`` the share that write an R step correcting
  exactly the injected step. A student that only propagates values scores 0 on both.

Every completion is parsed in the run's step syntax (``EvalConfig.syntax``; :data:`~.grammar.SYNTAXES`): in the
``cue`` syntax behaviours come from replaying the completion on its task, never from its cue words, so students
trained with or without cues are measured alike.

The sampled traces come back as :class:`~molesyn_lib.traces.Trace` objects (:func:`student_traces`), so the
Chapter 1 labellers can label them like real traces. :class:`BehaviorProbe` is a trainer callback that samples at a
few points during training and records the behaviour entropy and graph correlation (the isomer experiment's
"entropy convergence").
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import TrainerCallback

from ..behaviors import STATES
from ..traces import Trace
from ..transfer import TransferGraph, js_distance, kl_divergence, pearson
from .grammar import NOT, ChainState, ParsedCompletion, parse_completion, render_completion, replay
from .student import Student
from .tasks import ChainTask


@dataclass
class EvalConfig:
    """Evaluation settings.

    Attributes:
        greedy: also decode greedily.
        temperature: sampling temperature of the structure/sampled-accuracy decode.
        n_samples: sampled completions per task.
        inject: tasks for the self-correction probe (0 skips it).
        batch_size: generation batch size.
        max_new_tokens: generation budget (default: 1.5 x the longest training completion).
        seed: sampling and probe seed.
        keep_samples: sampled completions returned as traces.
        syntax: the step syntax completions are parsed in (:data:`~.grammar.SYNTAXES`).
    """

    greedy: bool = True
    temperature: float = 1.0
    n_samples: int = 1
    inject: int = 100
    batch_size: int = 256
    max_new_tokens: int | None = None
    seed: int = 0
    keep_samples: int = 200
    syntax: str = "marked"


@dataclass
class EvalReport:
    """The result of :func:`evaluate_student`: flat ``metrics``, the sampled traces' graph, and the traces."""

    metrics: dict[str, float]
    student_graph: TransferGraph
    samples: list[Trace] = field(default_factory=list)
    greedy_completions: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return {**self.metrics, "student_graph": self.student_graph.to_dict(),
                "samples": [t.to_record() for t in self.samples]}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def completion_metrics(tasks: Sequence[ChainTask], completions: Sequence[str], suffix: str,
                       syntax: str = "marked") -> tuple[dict[str, float], list[ParsedCompletion]]:
    """Accuracy, answer rate, length and step-error metrics of completions (keys end in ``_<suffix>``)."""
    parsed = [parse_completion(c, t, syntax) for t, c in zip(tasks, completions)]
    stats = [replay(t, p) for t, p in zip(tasks, parsed)]
    n_compute = sum(s.n_compute for s in stats)
    n_steps = sum(s.n_steps for s in stats)
    metrics = {
        f"acc_{suffix}": _mean([s.correct for s in stats]),
        f"no_answer_{suffix}": _mean([not s.answered for s in stats]),
        f"chars_{suffix}": _mean([len(c) for c in completions]),
        f"steps_{suffix}": _mean([s.n_steps for s in stats]),
        f"step_error_{suffix}": sum(s.arithmetic_errors for s in stats) / n_compute if n_compute else float("nan"),
        f"tracking_error_{suffix}": sum(s.tracking_errors for s in stats) / n_compute if n_compute else float("nan"),
        f"malformed_{suffix}": sum(s.n_malformed for s in stats) / n_steps if n_steps else 0.0,
    }
    if suffix == "sampled":
        n = max(1, len(stats))
        for key in ("fix_steps", "fix_needed", "fix_right", "false_alarms", "missed", "ok_steps", "n_hollow"):
            metrics[key] = sum(getattr(s, key) for s in stats) / n
    return metrics, parsed


def structure_metrics(parsed: Sequence[ParsedCompletion], references: Mapping[str, TransferGraph],
                      name: str = "student") -> tuple[dict[str, float], TransferGraph]:
    """Behaviour shares, entropies and comparisons with ``references`` of parsed completions."""
    sequences = [p.behaviors for p in parsed]
    graph = TransferGraph.from_sequences(sequences, labeler="lab-parser", name=name)
    metrics: dict[str, float] = {f"share_{b}": float(v) for b, v in zip(STATES, graph.marginal)}
    n = max(1, len(sequences))
    metrics["traces_with_R"] = sum("R" in s for s in sequences) / n
    metrics["traces_with_E"] = sum("E" in s for s in sequences) / n
    metrics["behavior_entropy"] = graph.entropy()
    metrics["entropy_rate"] = graph.entropy_rate()
    for ref_name, ref in references.items():
        metrics[f"pearson_{ref_name}"] = pearson(graph, ref)
        metrics[f"kl_{ref_name}"] = kl_divergence(graph, ref)
        metrics[f"js_{ref_name}"] = js_distance(graph, ref)
    return metrics, graph


def student_traces(tasks: Sequence[ChainTask], completions: Sequence[str], model: str = "student",
                   seed: int = 0, syntax: str = "marked") -> list[Trace]:
    """Completions as :class:`Trace` objects (well-formed steps, their parsed behaviours as ``behaviors``)."""
    traces = []
    for index, (task, text) in enumerate(zip(tasks, completions)):
        parsed = parse_completion(text, task, syntax)
        kept = [s for s in parsed.steps if s.behavior is not None]
        traces.append(Trace(trace_id=f"{model}-s{seed}-{index}", steps=[s.text for s in kept], model=model,
                            question=task.question, answer=str(task.answer),
                            final=f"A {parsed.answer}" if parsed.answer is not None else None,
                            behaviors=[s.behavior for s in kept],  # type: ignore[misc]
                            meta={"prompt": task.prompt, "malformed": parsed.n_malformed, "raw": text,
                                  "correct": task.check(parsed.answer)}))
    return traces


def injected_prefix(task: ChainTask, rng: random.Random) -> tuple[str, int]:
    """A clean N-step prefix of ``j`` computations (1 <= j < K) whose last result is off by one.

    Returns ``(prefix text ending in ';', j)``; the injected step is the prefix's last.
    """
    state = ChainState.start(task)
    j = rng.randint(1, max(1, len(task.ops) - 1))
    for index in range(j):
        state.compute("N", slip=rng.choice((-1, 1)) if index == j - 1 else 0)
    return render_completion(state.steps, "").rstrip(";") + ";", j


def self_correction(student: Student, tasks: Sequence[ChainTask], seed: int = 0, batch_size: int = 256,
                    max_new_tokens: int | None = None, syntax: str = "marked") -> dict[str, float]:
    """The injection probe (see module docstring): ``repair_rate``, ``repair_fix_rate``, ``inject_n``."""
    if not tasks:
        return {}
    rng = random.Random(seed)
    prefixes = [injected_prefix(t, rng) for t in tasks]
    prompts = [t.prompt + p for t, (p, _) in zip(tasks, prefixes)]
    outputs = student.generate(prompts, temperature=0.0, batch_size=batch_size, max_new_tokens=max_new_tokens)
    repaired = fixed = 0
    for task, (prefix, j), output in zip(tasks, prefixes, outputs):
        parsed = parse_completion(prefix + output, task, syntax)
        stats = replay(task, parsed)
        repaired += stats.correct
        injected = parsed.steps[j - 1]
        fixed += any(s.behavior == "R" and s.verdict == NOT and s.value == injected.value and s.ops == injected.ops
                     and s.result == task.values()[j] for s in parsed.steps[j:])
    n = len(tasks)
    return {"repair_rate": repaired / n, "repair_fix_rate": fixed / n, "inject_n": float(n)}


def evaluate_student(student: Student, tasks: Sequence[ChainTask], config: EvalConfig | None = None,
                     references: Mapping[str, TransferGraph] | None = None, name: str = "student") -> EvalReport:
    """Evaluate ``student`` on held-out ``tasks`` (see the module docstring for every metric)."""
    config = config or EvalConfig()
    references = dict(references or {})
    prompts = [t.prompt for t in tasks]
    answers = [t.answer for t in tasks]
    metrics: dict[str, float] = {"n_test": float(len(tasks)),
                                 "acc_floor": max(answers.count(a) for a in set(answers)) / max(1, len(answers))}
    greedy: list[str] = []
    if config.greedy:
        greedy = student.generate(prompts, temperature=0.0, batch_size=config.batch_size,
                                  max_new_tokens=config.max_new_tokens)
        greedy_metrics, _ = completion_metrics(tasks, greedy, "greedy", config.syntax)
        metrics.update(greedy_metrics)
    sample_tasks = [t for t in tasks for _ in range(config.n_samples)]
    sampled = student.generate([t.prompt for t in sample_tasks], temperature=config.temperature,
                               batch_size=config.batch_size, max_new_tokens=config.max_new_tokens, seed=config.seed)
    sampled_metrics, parsed = completion_metrics(sample_tasks, sampled, "sampled", config.syntax)
    metrics.update(sampled_metrics)
    shape, graph = structure_metrics(parsed, references, name)
    metrics.update(shape)
    if config.inject:
        metrics.update(self_correction(student, tasks[: config.inject], seed=config.seed,
                                       batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
                                       syntax=config.syntax))
    samples = student_traces(sample_tasks[: config.keep_samples], sampled[: config.keep_samples], name, config.seed,
                             config.syntax)
    return EvalReport(metrics=metrics, student_graph=graph, samples=samples, greedy_completions=greedy)


class BehaviorProbe(TrainerCallback):
    """Samples the student during training and records its behaviour structure (entropy trajectory).

    At each optimiser step in ``at_steps`` (or at ``n_points`` evenly spaced steps, computed when training starts)
    it samples one completion per probe task at ``temperature`` and appends to :attr:`records` a dict with
    ``step``, ``fraction`` (of the run), ``behavior_entropy``, ``entropy_rate``, ``share_<b>``, ``malformed``,
    ``acc`` and ``pearson_<ref>`` for each reference. Sampling is seeded and does not disturb training randomness.
    Completions are parsed in ``syntax`` (:data:`~.grammar.SYNTAXES`).
    """

    def __init__(self, student: Student, tasks: Sequence[ChainTask], references: Mapping[str, TransferGraph] | None = None,
                 n_points: int = 4, at_steps: Sequence[int] | None = None, temperature: float = 1.0, seed: int = 0,
                 offset_steps: int = 0, syntax: str = "marked"):
        self.student = student
        self.tasks = list(tasks)
        self.references = dict(references or {})
        self.n_points = n_points
        self.at_steps = set(at_steps) if at_steps is not None else None
        self.temperature = temperature
        self.seed = seed
        self.offset_steps = offset_steps
        self.syntax = syntax
        self.max_steps = 0
        self.records: list[dict[str, float]] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.max_steps = int(state.max_steps or args.max_steps)
        if self.at_steps is None:
            self.at_steps = {max(1, round(self.max_steps * (i + 1) / self.n_points)) for i in range(self.n_points)}

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.at_steps is None or state.global_step not in self.at_steps:
            return
        if model is not None:
            self.student.model = model
        completions = self.student.generate([t.prompt for t in self.tasks], temperature=self.temperature,
                                            seed=self.seed + state.global_step)
        basic, parsed = completion_metrics(self.tasks, completions, "sampled", self.syntax)
        shape, _ = structure_metrics(parsed, self.references)
        record = {"step": float(state.global_step + self.offset_steps),
                  "fraction": state.global_step / max(1, self.max_steps),
                  "acc": basic["acc_sampled"], "malformed": basic["malformed_sampled"]}
        record.update({k: v for k, v in shape.items() if k.startswith(("share_", "pearson_")) or
                       k in ("behavior_entropy", "entropy_rate")})
        self.records.append(record)


def entropy_convergence(trajectory: Sequence[Mapping[str, float]], target: float, tolerance: float = 0.1,
                        key: str = "behavior_entropy") -> float:
    """The run fraction from which ``key`` stays within ``tolerance`` of ``target`` (1.0 + 1/n if it never does).

    ``target`` is usually the teacher's behaviour entropy: a fast-converging isomer gets there early.
    """
    points = sorted(trajectory, key=lambda r: r["fraction"])
    if not points:
        return float("nan")
    for index, point in enumerate(points):
        if all(abs(p[key] - target) <= tolerance for p in points[index:]):
            return float(point["fraction"])
    return 1.0 + 1.0 / len(points)
