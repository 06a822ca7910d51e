"""The lab-run kernel: one way to write a run's data, train its student by SFT, evaluate it and cache the record.

Three experiments train lab students, and all three go through this module:

* Chapter 2's lab runs (:func:`.experiments.run_one`: several phases, entropy probes);
* Chapter 5's students on compressed traces (:func:`molesyn_lib.protection.run_protection`: the data are compressed
  between writing and SFT);
* Chapter 4's SFT initialisations (:func:`molesyn_lib.rl.experiments.init_checkpoint`: a fixed number of SFT steps,
  an optional answer filter, the checkpoint is the product).

What they share lives here, once:

* **One data-source vocabulary.** A source is a string: a teacher preset (``r1``, ``qwq``, ``oss``, ``instruct``,
  ``control``, ``human``, ``icl``), a ``GRAPH.json`` teacher, or ``molesyn:<graph>`` (the lab MOLE-SYN walk:
  :func:`~.writer.synthesize_lab_traces`, a first-order random walk on the graph, each step written by the weak
  :class:`~.writer.LabWriter`, which performs any requested behaviour but does not know when to reflect).
  ``<graph>`` is a teacher preset (its target graph: ``molesyn:oss``), ``uniform`` (every transition 1/4) or
  ``shuffled-<teacher>`` (the teacher's 16 transition probabilities permuted by a fixed seed, rows renormalised: same
  numbers, wrong structure). :func:`source_traces` writes a source's traces; :func:`describe_source` says what
  determines them (part of every cache key).
* :func:`reference_graphs`: the teachers' graphs a student is compared with (1000 training tasks, seed 99).
* :func:`train_phases`: SFT on one or more phases in order (token budget, epochs or a fixed number of steps).
* :func:`data_record`, :func:`evaluation_record`: the record fields every run reports (data accuracy and length,
  training time and loss; accuracy, structure and samples).
* :func:`cached_record`: load the JSON record of a key, or compute it and write it atomically.
* :data:`LAB_VERSION`: the one version constant of everything a lab student is trained on and evaluated by; lab
  runs, protection runs and initialisation checkpoints all put it in their cache keys.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runcache import cache_subdir, write_record
from ..traces import Trace
from ..transfer import TransferGraph
from .tasks import ChainTask, TaskConfig
from .teachers import Teacher, get_teacher, graph_of
from .writer import LabWriter, synthesize_lab_traces

#: Bump when the meaning of a lab student's run changes (grammar, teachers, metrics, training): every cached lab
#: run, protection run and initialisation checkpoint is then ignored. 2: the instruct teacher slips (no repair).
LAB_VERSION = "2"

MOLESYN_PREFIX = "molesyn:"
#: Step cap of a MOLE-SYN walk.
MOLESYN_MAX_STEPS = 24
#: Training tasks and seed of the reference graphs every student is compared with.
REFERENCE_TASKS = 1000
REFERENCE_SEED = 99


# ----------------------------------------------------------------------------------------------------- data
def is_molesyn(name: str) -> bool:
    return name.startswith(MOLESYN_PREFIX)


def walk_graph(name: str, graphs_dir: str | Path | None = None) -> TransferGraph:
    """The transfer graph a ``molesyn:<graph>`` data source walks on (see module docstring); a teacher's graph
    comes from ``graphs_dir`` when given (:func:`~.teachers.get_teacher`), else it is the built-in one."""
    graph_name = name.removeprefix(MOLESYN_PREFIX)
    if graph_name == "uniform":
        return TransferGraph.from_matrix(np.full((4, 4), 0.25), name="uniform")
    if graph_name.startswith("shuffled-"):
        source = get_teacher(graph_name.removeprefix("shuffled-"), graphs_dir=graphs_dir).target_graph()
        cells = source.transition.ravel().copy()
        np.random.default_rng(0).shuffle(cells)
        return TransferGraph.from_matrix(cells.reshape(4, 4), name=graph_name)
    graph = get_teacher(graph_name, graphs_dir=graphs_dir).target_graph()
    graph.name = graph_name
    return graph


def describe_source(name: str, graphs_dir: str | Path | None = None, writer: LabWriter | None = None
                    ) -> dict[str, Any]:
    """What determines a data source's traces (part of run cache keys)."""
    if is_molesyn(name):
        return {"molesyn_walk": [list(map(float, row)) for row in walk_graph(name, graphs_dir).transition],
                "writer": repr(writer or LabWriter()), "max_steps": MOLESYN_MAX_STEPS}
    return get_teacher(name, graphs_dir=graphs_dir).describe()


def source_traces(name: str, tasks: Sequence[ChainTask], seed: int, task_config: TaskConfig,
                  graphs_dir: str | Path | None = None, writer: LabWriter | None = None,
                  syntax: str = "marked") -> list[Trace]:
    """The traces data source ``name`` writes on ``tasks`` (one per task, in order), in step ``syntax``
    (:data:`~.grammar.SYNTAXES`: ``marked`` or ``cue``, where only the cue word marks a reflection/exploration)."""
    if is_molesyn(name):
        return list(synthesize_lab_traces(walk_graph(name, graphs_dir), list(tasks), seed=seed,
                                          writer=writer or LabWriter(), max_steps=MOLESYN_MAX_STEPS, syntax=syntax))
    return list(Teacher(name, graphs_dir=graphs_dir).traces(list(tasks), seed=seed, task_config=task_config,
                                                            syntax=syntax))


def reference_graphs(names: Sequence[str], train_tasks: Sequence[ChainTask], task_config: TaskConfig,
                     graphs_dir: str | Path | None = None) -> dict[str, TransferGraph]:
    """The graph of each teacher in ``names`` on the first :data:`REFERENCE_TASKS` training tasks."""
    tasks = list(train_tasks[:REFERENCE_TASKS])
    return {name: graph_of(Teacher(name, graphs_dir=graphs_dir).traces(tasks, seed=REFERENCE_SEED,
                                                                       task_config=task_config), name=name)
            for name in names}


def data_accuracy(traces: Sequence[Trace]) -> float:
    """Share of traces whose final answer is right (the supervision's own accuracy)."""
    return sum(bool(t.meta.get("correct")) for t in traces) / len(traces) if traces else float("nan")


def data_chars(traces: Sequence[Trace]) -> float:
    """Mean characters per trace (steps, separators and answer)."""
    if not traces:
        return float("nan")
    return sum(len(t.final or "") + sum(len(s) + 1 for s in t.steps) for t in traces) / len(traces)


# ----------------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class SFTPhase:
    """One SFT phase of the kernel: its traces and how long to train on them.

    Attributes:
        traces: the training traces.
        token_budget: supervised completion tokens (``None``: ``epochs`` or ``max_steps``).
        epochs: passes over the traces when there is no token budget.
        max_steps: a fixed number of optimiser steps (overrides both).
    """

    traces: Sequence[Trace]
    token_budget: int | None = None
    epochs: float | None = None
    max_steps: int | None = None


@dataclass
class TrainedStudent:
    """What :func:`train_phases` returns: the student and one TRL training result per phase."""

    student: Any
    results: list[Any]
    seconds: float
    probe: Any = None

    @property
    def steps(self) -> int:
        return sum(r.steps for r in self.results)

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.results)

    def record(self) -> dict[str, Any]:
        return {"params": self.student.n_params, "steps": self.steps, "completion_tokens": self.completion_tokens,
                "train_loss": self.results[-1].train_loss if self.results else float("nan"),
                "train_seconds": round(self.seconds, 2)}


def train_phases(student_name: str, seed: int, phases: Sequence[SFTPhase], batch_size: int, learning_rate: float,
                 bf16: bool = False, probe: Any = None) -> TrainedStudent:
    """Build student ``student_name`` (seeded) and train it on each phase in order (TRL SFT, see
    :func:`~.student.train_student`); ``probe``: an entropy probe (:class:`~.evaluate.BehaviorProbe` built on the
    student by the caller's ``probe(student)``) whose step counter continues across phases."""
    from .student import TrainConfig, build_student, sft_rows, train_student

    started = time.perf_counter()
    student = build_student(student_name, seed=seed)
    callback = probe(student) if probe is not None else None
    results = []
    offset = 0
    for phase in phases:
        config = TrainConfig(token_budget=phase.token_budget, epochs=phase.epochs, max_steps=phase.max_steps,
                             batch_size=batch_size, learning_rate=learning_rate, seed=seed, threads=None, bf16=bf16)
        if callback is not None:
            callback.at_steps = None
            callback.offset_steps = offset
        result = train_student(student, sft_rows(list(phase.traces)), config,
                               callbacks=[callback] if callback is not None else [])
        offset += result.steps
        results.append(result)
    return TrainedStudent(student, results, time.perf_counter() - started, probe=callback)


# ----------------------------------------------------------------------------------------------------- records
def data_record(traces: Sequence[Trace], references: Mapping[str, TransferGraph]) -> dict[str, Any]:
    """The data fields of a run's record: accuracy and length of its supervision, every reference's entropy."""
    return {"data_accuracy": data_accuracy(traces), "data_chars": data_chars(traces),
            **{f"teacher_entropy_{name}": graph.entropy() for name, graph in references.items()}}


def evaluation_record(trained: TrainedStudent, test_tasks: Sequence[ChainTask], references: Mapping[str, TransferGraph],
                      temperature: float, inject: int, seed: int, label: str, n_samples: int,
                      syntax: str = "marked") -> dict[str, Any]:
    """Evaluate the trained student (:func:`~.evaluate.evaluate_student`) and return its record fields: metrics,
    student graph, reference graphs, the first ``n_samples`` samples and ``eval_seconds``."""
    from .evaluate import EvalConfig, evaluate_student

    started = time.perf_counter()
    report = evaluate_student(trained.student, test_tasks, EvalConfig(temperature=temperature, inject=inject,
                                                                       seed=seed, syntax=syntax),
                              dict(references), name=label)
    return {**report.metrics, "eval_seconds": round(time.perf_counter() - started, 2),
            "student_graph": report.student_graph.to_dict(),
            "reference_graphs": {name: graph.to_dict() for name, graph in references.items()},
            "samples": [t.to_record() for t in report.samples[:n_samples]]}


def models_dir() -> Path:
    return cache_subdir("lab", "models")


def save_model(trained: TrainedStudent, name: str, **meta: Any) -> str:
    """Save the trained student under :func:`models_dir` / ``name``; returns the folder."""
    directory = models_dir() / name
    trained.student.meta.update(**meta)
    trained.student.save(directory)
    return str(directory)


def cached_record(path: Path, compute: Callable[[], dict[str, Any]], cache: bool = True, keep_model: bool = False,
                  **fresh: Any) -> dict[str, Any]:
    """The record at ``path`` (with ``fresh`` fields such as the display label, and ``cached=True``), or
    ``compute()`` written atomically to ``path`` (``cached=False``). With ``keep_model``, a cached record counts
    only if the model folder it names still exists."""
    if cache and path.is_file():
        record = json.loads(path.read_text())
        if not keep_model or (record.get("model_dir") and Path(record["model_dir"]).is_dir()):
            return record | fresh | {"cached": True}
    record = compute()
    write_record(path, record)
    return record | {"cached": False}


__all__ = [
    "LAB_VERSION", "MOLESYN_MAX_STEPS", "MOLESYN_PREFIX", "SFTPhase", "TrainedStudent", "cached_record",
    "data_accuracy", "data_chars", "data_record", "describe_source", "evaluation_record", "is_molesyn",
    "models_dir", "reference_graphs", "save_model", "source_traces", "train_phases", "walk_graph",
]
