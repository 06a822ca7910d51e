"""Compression as "protection" (Chapter 5): compression sweeps with bootstrap intervals, and lab students distilled
from compressed traces.

The paper argues that summarised or compressed thinking breaks the molecular structure of a Long CoT, so that
students distilled from it learn badly (which would protect private models from distillation). :mod:`.compress`
provides the compressors and the structure comparison; this module adds what the chapter needs on top of it.

**Sweeps on real traces** (:func:`sweep_compression`, :class:`CompressionSweep`). Every trace is compressed by every
method at every strength once; the per-trace token counts and the behaviour counts of the original and compressed
labels are kept, so that :meth:`CompressionSweep.rows` gives exactly :func:`~molesyn_lib.compress.compression_curve`'s
rows, and :meth:`CompressionSweep.bootstrap_points` resamples *traces* (with replacement) to put intervals on the
structure metrics at a target token reduction (the paper's ~45%) without recompressing anything.

**A stand-in summariser** (:func:`lead_sentences_responder`). A responder for the ``mock`` backend that answers a
:data:`~molesyn_lib.compress.SUMMARY_PROMPT` with the *leading sentences* of the chunk within the prompt's word
budget, one per line. It is not a summariser (it neither rewrites nor selects): it lets the abstractive pipeline
(chunking, budgets, provenance, relabelling) run offline, and its numbers are those of a "lead" baseline.

**Lab students on compressed traces** (:class:`ProtectionRun`, :func:`run_protection`, :func:`run_protection_grid`,
:func:`protection_grid`). A lab run (:class:`~molesyn_lib.lab.experiments.RunConfig`) whose training traces are
compressed by a step-selecting compressor (``extractive``, ``truncate``, ``keep_every``; the answer line is kept)
before SFT, with the **same supervised-token budget** as the uncompressed run (shorter traces = more traces seen).
Token reductions are counted with the student's own character tokenizer, both as the compressor reports them
(steps) and on the supervised completions the student is trained on (``supervised_token_reduction``). The student
is evaluated like every lab student (:func:`~molesyn_lib.lab.evaluate.evaluate_student`): accuracy, its sampled
traces' transfer graph against the teacher's (``pearson_<teacher>``), the uncompressed training data's
(``pearson_original``) and the compressed data's (``pearson_data``), behaviour shares and self-correction. Records are
cached as JSON under ``cache_dir()/lab/protection/<key>.json``; the key hashes the run's whole description
(with :data:`~.lab.kernel.LAB_VERSION`). Data, training, evaluation and caching go through the lab-run kernel
(:mod:`.lab.kernel`) shared with Chapter 2's lab runs and Chapter 4's initialisations.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .behaviors import STATES
from .compress import (
    BaseCompressor,
    HFTokenCounter,
    StepPlan,
    get_compressor,
    label_traces,
    reduction_point,
    split_sentences,
)
from .errors import MolesynError
from .lab.kernel import (
    LAB_VERSION,
    SFTPhase,
    cached_record,
    data_accuracy,
    data_record,
    evaluation_record,
    reference_graphs,
    save_model,
    train_phases,
)
from .labelers.base import DEFAULT_LABELER
from .runcache import cache_subdir, config_key, run_cached_grid
from .traces import Trace
from .transfer import TransferGraph, js_distance, pearson, transition_counts

#: Bump when the meaning of a protection run changes beyond the lab-run kernel's (whose
#: :data:`~.lab.kernel.LAB_VERSION` is in every protection key too): old cached records are then ignored.
PROTECTION_VERSION = "1"
#: Compressors that keep whole steps, so compressed lab traces stay in the lab grammar.
LAB_COMPRESSORS = ("extractive", "truncate", "keep_every")
NO_COMPRESSION = "none"


# -------------------------------------------------------------------------------------------- stand-in summariser
_CHUNK_RE = re.compile(r'"""\n(.*?)\n"""', re.DOTALL)
_WORDS_RE = re.compile(r"at most (\d+) words")


def lead_sentences(text: str, max_words: int) -> list[str]:
    """The leading sentences of ``text`` (:func:`~molesyn_lib.compress.split_sentences`) whose words fit in
    ``max_words`` (at least the first sentence, cut to ``max_words`` words), stripped and non-empty."""
    kept: list[str] = []
    used = 0
    for sentence in split_sentences(text):
        sentence = " ".join(sentence.split())
        if not sentence:
            continue
        words = len(sentence.split())
        if used + words > max_words:
            if not kept:
                kept.append(" ".join(sentence.split()[:max(1, max_words)]))
            break
        kept.append(sentence)
        used += words
    return kept


def lead_sentences_responder(request: Any) -> str:
    """A ``mock``-backend responder for :data:`~molesyn_lib.compress.SUMMARY_PROMPT` requests: the chunk's leading
    sentences within the prompt's word budget, one per line (see the module docstring: a lead baseline, not a
    summariser). Requests that are not summary prompts raise :class:`MolesynError`."""
    text = "\n".join(m["content"] for m in request.chat())
    chunk, words = _CHUNK_RE.search(text), _WORDS_RE.search(text)
    if chunk is None or words is None:
        raise MolesynError("lead_sentences_responder answers summary prompts only (no chunk or word budget found)")
    return "\n".join(lead_sentences(chunk.group(1), int(words.group(1))))


def lead_summary_options() -> dict[str, Any]:
    """Compressor options for ``summarize`` with the stand-in: the ``mock`` backend and :func:`lead_sentences_responder`
    (cached like any backend; the label keeps its cache entries apart from other mock runs)."""
    return {"backend": "mock", "responder": lead_sentences_responder, "label": "lead-sentences"}


# --------------------------------------------------------------------------------------------------- sweeps
def _behavior_counts(labels: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Per trace: its 4x4 transition counts and 4 behaviour counts (shapes ``(n, 4, 4)`` and ``(n, 4)``)."""
    pairs, totals = [], []
    for sequence in labels:
        counts, behaviour = transition_counts([list(sequence)])
        pairs.append(counts)
        totals.append(behaviour)
    if not pairs:
        return np.zeros((0, len(STATES), len(STATES)), dtype=np.int64), np.zeros((0, len(STATES)), dtype=np.int64)
    return np.stack(pairs), np.stack(totals)


@dataclass
class SweepCell:
    """One method at one strength over the sweep's traces.

    Attributes:
        method, strength: the compression.
        original_tokens, compressed_tokens: per trace.
        transitions, behaviors: per trace, the compressed labels' transition counts ``(n, 4, 4)`` and behaviour
            counts ``(n, 4)``.
        n_steps: per trace, the compressed steps.
    """

    method: str
    strength: float
    original_tokens: np.ndarray
    compressed_tokens: np.ndarray
    transitions: np.ndarray
    behaviors: np.ndarray
    n_steps: np.ndarray


@dataclass
class CompressionSweep:
    """Per-trace results of compressing a corpus by several methods and strengths (see the module docstring).

    Attributes:
        trace_ids: the traces, in order.
        original_transitions, original_behaviors, original_steps: the original labels' counts per trace.
        cells: one :class:`SweepCell` per (method, strength), in sweep order.
        tokenizer: the token counter's name; labeler: the labeller's name.
    """

    trace_ids: list[str]
    original_transitions: np.ndarray
    original_behaviors: np.ndarray
    original_steps: np.ndarray
    cells: list[SweepCell]
    tokenizer: str
    labeler: str

    @property
    def n_traces(self) -> int:
        return len(self.trace_ids)

    def _row(self, cell: SweepCell, weights: np.ndarray) -> dict[str, Any]:
        original = TransferGraph(counts=np.tensordot(weights, self.original_transitions, axes=1),
                                 behavior_counts=weights @ self.original_behaviors)
        compressed = TransferGraph(counts=np.tensordot(weights, cell.transitions, axes=1),
                                   behavior_counts=weights @ cell.behaviors)
        before = float(weights @ cell.original_tokens)
        after = float(weights @ cell.compressed_tokens)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_trace = np.where(cell.original_tokens > 0, 1.0 - cell.compressed_tokens / cell.original_tokens, 0.0)
        return {"method": cell.method, "strength": cell.strength,
                "token_reduction": 1.0 - after / before if before else 0.0,
                "token_reduction_mean": float(weights @ per_trace / weights.sum()) if weights.sum() else 0.0,
                "original_tokens": int(before), "compressed_tokens": int(after),
                "pearson": pearson(original, compressed), "js_transition": js_distance(original, compressed),
                "js_marginal": js_distance(original, compressed, "marginal"),
                "n_steps": int(weights @ cell.n_steps), "n_steps_original": int(weights @ self.original_steps),
                "n_traces": int(weights.sum()), "tokenizer": self.tokenizer, "labeler": self.labeler}

    def rows(self, indices: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Tidy rows as :func:`~molesyn_lib.compress.compression_curve` gives them, over all traces or over the
        traces at ``indices`` (repeats allowed: a bootstrap sample)."""
        weights = (np.ones(self.n_traces) if indices is None
                   else np.bincount(np.asarray(indices, dtype=int), minlength=self.n_traces).astype(float))
        return [self._row(cell, weights) for cell in self.cells]

    def bootstrap_points(self, target: float = 0.45, repeats: int = 200, seed: int = 0) -> list[dict[str, Any]]:
        """:func:`~molesyn_lib.compress.reduction_point` at ``target`` on ``repeats`` resamples of the traces (with
        replacement): one row per method and repeat, with ``repeat`` added."""
        rng = np.random.default_rng(seed)
        out = []
        for repeat in range(repeats):
            sample = rng.integers(0, self.n_traces, size=self.n_traces)
            for point in reduction_point(self.rows(sample), target):
                out.append({**point, "repeat": repeat})
        return out

    def point_intervals(self, target: float = 0.45, repeats: int = 200, seed: int = 0,
                        metrics: Sequence[str] = ("pearson", "js_transition", "js_marginal"),
                        level: float = 0.9) -> list[dict[str, Any]]:
        """Per method, :func:`~molesyn_lib.compress.reduction_point` at ``target`` on all traces with, for each
        metric, the central ``level`` bootstrap interval (``<metric>_lo`` / ``<metric>_hi``, over the resamples in
        which the method reaches the target; ``None`` when none does) and ``reachable_share`` (share of resamples
        that reach it)."""
        boot = self.bootstrap_points(target, repeats, seed)
        tail = 100 * (1 - level) / 2
        out = []
        for point in reduction_point(self.rows(), target, metrics=metrics):
            reached = [b for b in boot if b["method"] == point["method"] and b["reachable"]]
            row = {**point, "reachable_share": len(reached) / repeats if repeats else 0.0}
            for metric in metrics:
                values = np.array([b[metric] for b in reached if b[metric] is not None], dtype=float)
                values = values[~np.isnan(values)]
                row[f"{metric}_lo"] = float(np.percentile(values, tail)) if values.size else None
                row[f"{metric}_hi"] = float(np.percentile(values, 100 - tail)) if values.size else None
            out.append(row)
        return out


def sweep_compression(traces: Sequence[Trace], methods: Sequence[str], strengths: Sequence[float],
                      labeler: str | Any = DEFAULT_LABELER, method_options: dict[str, dict[str, Any]] | None = None,
                      progress: bool = True, **options: Any) -> CompressionSweep:
    """Compress ``traces`` by every method at every strength and label the results (the originals once; their
    labels drive ``extractive``). ``options`` go to every compressor, ``method_options[method]`` to one."""
    from .labelers import get_labeler
    from .progress import tqdm

    traces = list(traces)
    if not traces:
        raise MolesynError("sweep_compression needs at least one trace")
    if isinstance(labeler, str):
        try:
            labeler = get_labeler(labeler)
        except ValueError as exc:
            raise MolesynError(str(exc)) from None
    original_labels = label_traces(traces, labeler)
    original_transitions, original_behaviors = _behavior_counts(original_labels)
    cells: list[SweepCell] = []
    tokenizer_name = ""
    jobs = [(m, float(s)) for m in methods for s in strengths]
    compressors: dict[str, BaseCompressor] = {}
    for method, strength in tqdm(jobs, desc="compression sweep", unit="cell", disable=not progress):
        if method not in compressors:
            compressors[method] = get_compressor(method, **{**options, **(method_options or {}).get(method, {})})
        compressor = compressors[method]
        compressed = compressor.compress_batch(traces, strength,
                                               original_labels if compressor.needs_behaviors else None)
        labels = label_traces([c.trace for c in compressed], labeler)
        transitions, behaviors = _behavior_counts(labels)
        cells.append(SweepCell(method, strength, np.array([c.original_tokens for c in compressed], dtype=float),
                               np.array([c.compressed_tokens for c in compressed], dtype=float), transitions,
                               behaviors, np.array([len(c.trace.steps) for c in compressed], dtype=float)))
        tokenizer_name = compressor.token_counter.name
    return CompressionSweep(trace_ids=[t.trace_id for t in traces], original_transitions=original_transitions,
                            original_behaviors=original_behaviors,
                            original_steps=np.array([len(t.steps) for t in traces], dtype=float), cells=cells,
                            tokenizer=tokenizer_name, labeler=getattr(labeler, "name", str(labeler)))


# ------------------------------------------------------------------------------------------------ lab runs
def lab_token_counter() -> HFTokenCounter:
    """Counts tokens with the lab students' character tokenizer (what a lab student is trained on)."""
    from .lab.tokenizer import char_tokenizer

    return HFTokenCounter(char_tokenizer(), "lab-char")


def compress_lab_traces(traces: Sequence[Trace], method: str, strength: float, valid_chains: bool = True
                        ) -> list[Any]:
    """Compress lab traces with a step-selecting compressor (:data:`LAB_COMPRESSORS`; extractive uses the traces'
    gold behaviours), counting tokens with :func:`lab_token_counter`. The answer (``final``) is kept.

    ``valid_chains`` (default): the kept steps are rewritten into a valid chain (:func:`~.lab.valid_chain.valid_chain`:
    a repair episode is kept whole or removed with its reflection, dropped computations fold into the next kept one),
    so the student's supervision is as correct as the uncompressed traces'; ``False``: the kept steps as they are
    (slips without their correction, chains with gaps)."""
    from .lab.tasks import task_from_question
    from .lab.valid_chain import valid_chain

    if method not in LAB_COMPRESSORS:
        raise MolesynError(f"lab traces can be compressed by {', '.join(LAB_COMPRESSORS)} (whole steps in the lab "
                           f"grammar), not {method!r}")
    traces = list(traces)
    compressor = get_compressor(method, tokenizer=lab_token_counter())
    behaviors = [list(t.behaviors or []) for t in traces] if compressor.needs_behaviors else None
    compressed = compressor.compress_batch(traces, strength, behaviors)
    if not valid_chains:
        return compressed
    rebuilt = []
    for trace, result in zip(traces, compressed):
        task = task_from_question(trace.question)
        steps, labels, provenance = valid_chain(task, trace.steps, list(trace.behaviors or []),
                                                [p[0] for p in result.provenance])
        fixed = compressor._result(trace, StepPlan(steps, provenance), strength)
        fixed.trace.behaviors = labels
        fixed.trace.meta["compression"]["valid_chains"] = True
        rebuilt.append(fixed)
    return rebuilt


@dataclass(frozen=True)
class ProtectionRun:
    """A lab run whose training traces are compressed before SFT.

    Attributes:
        base: the lab run (data, student, token budget, evaluation); its probes are not run here.
        method: a compressor of :data:`LAB_COMPRESSORS`, or ``"none"`` (the uncompressed baseline).
        strength: the compression strength in [0, 1] (0 with ``"none"``).
        valid_chains: rewrite the kept steps into valid chains (:func:`compress_lab_traces`); ``False`` trains on
            the kept steps as they are.
        condition: display label (not part of the cache key).
    """

    base: Any
    method: str = NO_COMPRESSION
    strength: float = 0.0
    valid_chains: bool = True
    condition: str = ""

    def __post_init__(self) -> None:
        if self.method != NO_COMPRESSION and self.method not in LAB_COMPRESSORS:
            raise MolesynError(f"unknown lab compression {self.method!r}; expected none or "
                               f"{', '.join(LAB_COMPRESSORS)}")
        if not 0.0 <= float(self.strength) <= 1.0:
            raise MolesynError(f"strength must be in [0, 1], got {self.strength}")
        if self.method == NO_COMPRESSION and self.strength:
            raise MolesynError("the uncompressed baseline has strength 0")

    @property
    def seed(self) -> int:
        return int(self.base.seed)

    def describe(self) -> dict[str, Any]:
        return {"run": self.base.describe(), "method": self.method, "strength": float(self.strength),
                "valid_chains": self.valid_chains, "protection_version": PROTECTION_VERSION,
                "lab_version": LAB_VERSION}

    def key(self) -> str:
        return config_key(self.describe())

    def label(self) -> str:
        if self.condition:
            return self.condition
        if self.method == NO_COMPRESSION:
            return "full traces"
        return f"{self.method} {self.strength:g}" + ("" if self.valid_chains else " (raw)")


def protection_dir() -> Path:
    return cache_subdir("lab", "protection")


def run_protection(run: ProtectionRun, cache: bool = True, keep_model: bool = False) -> dict[str, Any]:
    """Run (or load from the cache) one :class:`ProtectionRun` and return its flat record (see module docstring)."""
    return cached_record(protection_dir() / f"{run.key()}.json", partial(_execute_protection, run, keep_model),
                         cache=cache, keep_model=keep_model, condition=run.label())


def _execute_protection(run: ProtectionRun, keep_model: bool) -> dict[str, Any]:
    """One protection run through the lab-run kernel (:mod:`.lab.kernel`): write the teacher's data, compress it,
    SFT at the base run's token budget, evaluate against the teachers, the uncompressed and the compressed data."""
    from .lab.experiments import phase_traces
    from .lab.student import completion_token_counts, sft_rows
    from .lab.tasks import make_splits
    from .lab.teachers import graph_of
    from .lab.valid_chain import valid_share

    config = run.base
    if len(config.phases) != 1:
        raise MolesynError("protection runs train in one phase")
    if config.syntax != "marked":
        raise MolesynError("protection runs compress traces in the marked step syntax only")
    splits = make_splits(config.n_train, config.n_test, config.task, config.task_seed)
    original = list(phase_traces(config.phases[0], config, splits.train, 0))
    if run.method == NO_COMPRESSION:
        training, step_reduction = original, 0.0
    else:
        compressed = compress_lab_traces(original, run.method, run.strength, valid_chains=run.valid_chains)
        training = [c.trace for c in compressed]
        before = sum(c.original_tokens for c in compressed)
        step_reduction = 1.0 - sum(c.compressed_tokens for c in compressed) / before if before else 0.0
    references = reference_graphs(config.references, splits.train, config.task, config.graphs_dir)
    references["original"] = graph_of(original, name="original")
    references["data"] = graph_of(training, name="data")
    trained = train_phases(config.student, config.seed, [SFTPhase(training, token_budget=config.token_budget,
                                                                  epochs=config.epochs)],
                           config.batch_size, config.learning_rate, bf16=config.bf16)
    tokenizer = trained.student.tokenizer
    supervised = float(np.mean(completion_token_counts(tokenizer, sft_rows(training))))
    supervised_original = float(np.mean(completion_token_counts(tokenizer, sft_rows(original))))
    record: dict[str, Any] = {
        "key": run.key(), "condition": run.label(), "seed": config.seed,
        "teacher": "+".join(config.phases[0].teachers), "method": run.method, "strength": float(run.strength),
        "student": config.student, "token_budget": config.token_budget, "n_traces": len(training),
        "step_token_reduction": step_reduction,
        "supervised_tokens_per_trace": supervised, "supervised_tokens_per_trace_original": supervised_original,
        "supervised_token_reduction": 1.0 - supervised / supervised_original,
        "data_steps_per_trace": float(np.mean([len(t.steps) for t in training])),
        "data_pearson_original": pearson(references["data"], references["original"]),
        "data_js_original": js_distance(references["data"], references["original"]),
        **{f"data_share_{b}": float(v) for b, v in zip(STATES, references["data"].marginal)},
        "data_accuracy_original": data_accuracy(original),
        "data_valid_chains": valid_share(training), "data_valid_chains_original": valid_share(original),
        **trained.record(), **data_record(training, references),
        **evaluation_record(trained, splits.test, references, config.temperature, config.inject, config.seed,
                            run.label(), n_samples=20),
        "config": run.describe(),
    }
    if keep_model:
        record["model_dir"] = save_model(trained, f"protection-{run.key()}", condition=run.label(),
                                         seed=config.seed, compression=[run.method, run.strength])
    return record


def run_protection_grid(runs: Sequence[ProtectionRun], workers: int = 2, cache: bool = True,
                        progress: bool = True, threads_per_worker: int = 1) -> list[dict[str, Any]]:
    """Run every :class:`ProtectionRun` (cached ones are loaded; identical runs run once) in ``workers`` spawned
    processes of ``threads_per_worker`` torch threads; records come back in the order of ``runs``."""
    return run_cached_grid(runs, partial(run_protection, cache=cache), protection_dir(), "protection run",
                           workers=workers, use_cache=cache, progress=progress, threads_per_worker=threads_per_worker)


def protection_grid(profile: str | Any = "smoke", teacher: str = "r1", methods: Sequence[str] = LAB_COMPRESSORS,
                    strengths: Sequence[float] = (0.25, 0.5, 0.75), seeds: Sequence[int] | None = None,
                    **overrides: Any) -> list[ProtectionRun]:
    """The uncompressed baseline and every method x strength, for each seed (the profile's seeds by default), on
    the lab profile's base run with ``teacher``'s traces on every training task (``overrides`` change the base, e.g.
    ``token_budget``)."""
    from .lab.experiments import Phase
    from .lab.experiments import profile as lab_profile

    p = lab_profile(profile)
    n_traces = int(overrides.get("n_train", p.n_train))
    base = p.base(phases=(Phase((teacher,), n_traces),), probe_points=0, **overrides)
    conditions = [(NO_COMPRESSION, 0.0)] + [(m, float(s)) for m in methods for s in strengths]
    return [ProtectionRun(replace(base, seed=seed), method, strength)
            for method, strength in conditions for seed in (seeds if seeds is not None else p.seeds)]


__all__ = [
    "LAB_COMPRESSORS",
    "NO_COMPRESSION",
    "PROTECTION_VERSION",
    "CompressionSweep",
    "ProtectionRun",
    "SweepCell",
    "compress_lab_traces",
    "lab_token_counter",
    "lead_sentences",
    "lead_sentences_responder",
    "lead_summary_options",
    "protection_dir",
    "protection_grid",
    "run_protection",
    "run_protection_grid",
    "sweep_compression",
]
