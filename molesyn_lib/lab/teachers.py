"""Procedural Long-CoT teachers: state-dependent policies whose realised transfer graph matches a target graph.

A teacher writes a trace for a :class:`~.tasks.ChainTask` one step at a time with :class:`~.grammar.ChainState`
(every step carries real content: N computes, D derives the unreduced intermediate, R re-checks an earlier step
and corrects it if wrong, E takes an equivalent alternative route). Its policy is **state-dependent**:

* it slips (an off-by-one arithmetic error) with probability ``slip_rate`` per computation, at most one open slip
  at a time, and later steps build on the wrong value;
* while a slip is open it reflects ``reflect_gain`` times more often, and its reflection targets the slipped step
  (re-checks without an open slip target the latest computation, or with probability 0.3 a random earlier one);
* when the next operation is hard (wrap-around, or a product of operands >= 3) it explores ``explore_gain`` times
  more often;
* no reflection before anything has been computed; when the operations run out it may still reflect (a final
  check: the walk decides), an open slip is repaired before the answer (``repair``), then it answers.

Because of these state effects the policy's base matrix is not the realised one. :func:`calibrate_policy` fits the
base matrix by simulation (multiplicative updates ``B <- B * target / realised``) so that the **realised**
transition matrix of the written traces matches the target within a few hundredths (tested).

Presets (:func:`get_teacher`): ``r1``, ``qwq``, ``oss`` target the built-in lab graphs, the **illustrative
matrices** in :data:`FALLBACK_GRAPHS` (hand-set, NOT measured: R1 reflective, QwQ reflective and exploring, gpt-oss
deduction-heavy; pairwise Pearson 0.91-0.98, like the paper's Fig. 5 where all exceed 0.9). The target graph is an
explicit input: a caller that wants the graphs Chapter 1 measures on DeepSeek-R1 / QwQ-32B / gpt-oss-120b traces
passes their folder on purpose (``get_teacher("r1", graphs_dir=measured_graphs_dir())``; ``<folder>/<name>.json``
replaces the built-in graph where it exists). Nothing here reads another chapter's results unasked.
``instruct`` writes short CoT (N/D only) and slips at R1's rate (0.15 per computation) but, having no reflection,
never repairs a slip, so its data are wrong wherever it slipped (about 39 % of K=3 traces; every run record
keeps its ``data_accuracy``). ``control`` re-checks like r1 but never slips. ``human`` has the
N/D structure of human solutions (``human.json`` of ``graphs_dir`` if given and present), skips steps (computes
two operations at once half the time) and never slips. ``icl`` imitates the *surface* of Long CoT for 6-8 steps
(R1's cues and graph, but hollow R/E steps that check nothing, slips never repaired) and then falls back to plain
steps. Any ``GRAPH.json`` can be a teacher
(:func:`teacher_from_graph`).
"""
from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..behaviors import STATE_INDEX, STATES
from ..config import results_dir
from ..errors import InputError
from ..traces import Corpus, Trace
from ..transfer import TransferGraph, load_graph, normalise_rows, transition_counts
from .grammar import ChainState, render_completion
from .keywords import CUE_STYLES, CueStyle
from .tasks import ChainTask, TaskConfig, generate_tasks

Matrix = tuple[tuple[float, ...], ...]

#: Hand-set fallback graphs (rows: current N, D, R, E; columns: next N, D, R, E). Illustrative, not measured.
FALLBACK_GRAPHS: dict[str, Matrix] = {
    "r1": ((0.40, 0.30, 0.20, 0.10), (0.35, 0.30, 0.25, 0.10), (0.35, 0.30, 0.20, 0.15), (0.30, 0.40, 0.15, 0.15)),
    "qwq": ((0.36, 0.27, 0.23, 0.14), (0.32, 0.27, 0.29, 0.12), (0.33, 0.27, 0.22, 0.18), (0.27, 0.38, 0.17, 0.18)),
    "oss": ((0.37, 0.37, 0.16, 0.10), (0.33, 0.38, 0.23, 0.06), (0.33, 0.35, 0.18, 0.14), (0.27, 0.45, 0.13, 0.15)),
    "instruct": ((0.60, 0.40, 0.0, 0.0), (0.50, 0.50, 0.0, 0.0), (0.55, 0.45, 0.0, 0.0), (0.55, 0.45, 0.0, 0.0)),
    "human": ((0.65, 0.35, 0.0, 0.0), (0.60, 0.40, 0.0, 0.0), (0.60, 0.40, 0.0, 0.0), (0.60, 0.40, 0.0, 0.0)),
}

PRESETS = ("r1", "qwq", "oss", "instruct", "control", "human", "icl")
DEFAULT_TASKS = TaskConfig()


@dataclass(frozen=True)
class TeacherSpec:
    """Everything that defines a teacher (hashable: the cache key of its calibration and of lab runs).

    Attributes:
        name: display name; traces get ``model = "lab:<name>"``.
        target: the target transition matrix ``P(next | current)`` over N, D, R, E.
        start: distribution of the first step's behaviour (R is never first).
        style: the teacher's cue words (:mod:`.keywords`).
        slip_rate: probability that a computation slips (off by one) while no slip is open.
        reflect_gain: factor on the R weight while a slip is open ("reflect more after a slip").
        explore_gain: factor on the E weight when the next operation is hard ("explore when stuck").
        repair: repair a slip still open when the operations run out (else the answer is wrong).
        hollow: ICL imitation: R/E steps have the form but do no work; after ``horizon`` steps only plain N steps.
        horizon: ``(low, high)`` steps of Long-CoT form for a hollow teacher.
        chunk_rate: probability that an N/D step computes two operations at once (human-style step skipping).
        max_steps: hard cap on steps per trace.
        source: where the target graph came from (a file, or ``fallback``).
    """

    name: str
    target: Matrix
    start: tuple[float, ...]
    style: CueStyle
    slip_rate: float = 0.15
    reflect_gain: float = 4.0
    explore_gain: float = 2.0
    repair: bool = True
    hollow: bool = False
    horizon: tuple[int, int] = (6, 8)
    chunk_rate: float = 0.0
    max_steps: int = 40
    source: str = "fallback"

    @property
    def target_matrix(self) -> np.ndarray:
        return np.asarray(self.target, dtype=float)

    def target_graph(self) -> TransferGraph:
        return TransferGraph.from_matrix(self.target_matrix, name=self.name)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly description (used in run cache keys)."""
        return {"name": self.name, "target": [list(r) for r in self.target], "start": list(self.start),
                "cues": {b: list(c) for b, c in self.style.cues}, "cue_rate": self.style.rate,
                "slip_rate": self.slip_rate, "reflect_gain": self.reflect_gain, "explore_gain": self.explore_gain,
                "repair": self.repair, "hollow": self.hollow, "horizon": list(self.horizon),
                "chunk_rate": self.chunk_rate, "max_steps": self.max_steps}


def _as_matrix(matrix: np.ndarray | Sequence[Sequence[float]]) -> Matrix:
    rows = normalise_rows(np.asarray(matrix, dtype=float))
    return tuple(tuple(round(float(x), 6) for x in row) for row in rows)


def _start_from(marginal: np.ndarray) -> tuple[float, ...]:
    start = np.asarray(marginal, dtype=float).copy()
    start[STATE_INDEX["R"]] = 0.0
    if start.sum() <= 0:
        start = np.array([1.0, 0.0, 0.0, 0.0])
    return tuple(round(float(x), 6) for x in start / start.sum())


def teacher_from_graph(graph: TransferGraph, name: str | None = None, style: CueStyle | str = "r1",
                       **options: object) -> TeacherSpec:
    """A teacher whose target is ``graph``'s transition matrix (start from its marginal, R excluded)."""
    cue_style = CUE_STYLES[style] if isinstance(style, str) else style
    return TeacherSpec(name=name or graph.name or "graph", target=_as_matrix(graph.transition),
                       start=_start_from(graph.marginal), style=cue_style, **options)  # type: ignore[arg-type]


def measured_graphs_dir(results: str | Path | None = None) -> Path:
    """The folder where Chapter 1 saves its measured graphs (``<results>/graphs``, ``results`` defaulting to
    :func:`~molesyn_lib.config.results_dir`): pass it as ``graphs_dir`` to use those graphs on purpose."""
    return results_dir(results) / "graphs"


def preset_graph(name: str, graphs_dir: str | Path | None = None) -> tuple[TransferGraph, str]:
    """The graph of a preset: ``<graphs_dir>/<name>.json`` when a folder is given and the file exists, else the
    built-in lab graph (:data:`FALLBACK_GRAPHS`). Returns ``(graph, source)``, ``source`` being the file or
    ``"fallback"``. Reads no folder unless one is passed."""
    if graphs_dir is not None:
        path = Path(graphs_dir) / f"{name}.json"
        if path.is_file():
            return load_graph(path), str(path)
    matrix = np.asarray(FALLBACK_GRAPHS[name], dtype=float)
    return TransferGraph.from_matrix(matrix, name=name), "fallback"


#: The instruct teacher's slip rate: the same per-computation rate as R1 and QwQ, so instruct distillation is not
#: error-free by fiat (it slips like the teachers but cannot repair: no reflection).
INSTRUCT_SLIP_RATE = 0.15


def get_teacher(name: str, graphs_dir: str | Path | None = None, **overrides: object) -> TeacherSpec:
    """A preset teacher (see module docstring), a ``GRAPH.json`` path, with field ``overrides``.

    ``graphs_dir``: a folder of measured graphs (e.g. :func:`measured_graphs_dir`) whose ``<preset>.json`` replaces
    the built-in graph; ``None`` (default) uses the built-in lab graphs, whatever other chapters left on disk."""
    if name not in PRESETS:
        path = Path(name)
        if path.suffix == ".json" or path.exists():
            graph = load_graph(path)
            return replace(teacher_from_graph(graph, name=graph.name or path.stem, source=str(path)),
                           **overrides)  # type: ignore[arg-type]
        raise InputError(f"unknown teacher {name!r}; expected one of {', '.join(PRESETS)} or a GRAPH.json path")
    if name in ("r1", "qwq", "oss"):
        graph, source = preset_graph(name, graphs_dir)
        spec = teacher_from_graph(graph, name=name, style=name, source=source,
                                  slip_rate={"r1": 0.15, "qwq": 0.15, "oss": 0.10}[name])
    elif name == "control":
        graph, source = preset_graph("r1", graphs_dir)
        spec = teacher_from_graph(graph, name="control", style="r1", source=source, slip_rate=0.0)
    elif name == "icl":
        graph, source = preset_graph("r1", graphs_dir)
        spec = teacher_from_graph(graph, name="icl", style="r1", source=source, hollow=True, repair=False)
    elif name == "human":
        graph, source = preset_graph("human", graphs_dir)
        spec = teacher_from_graph(graph, name="human", style="plain", source=source, slip_rate=0.0, chunk_rate=0.5)
    else:  # instruct
        graph, source = preset_graph("instruct", graphs_dir)
        spec = teacher_from_graph(graph, name="instruct", style="instruct", source=source,
                                  slip_rate=INSTRUCT_SLIP_RATE, repair=False)
    return replace(spec, **overrides)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- writing
def _slip(rng: random.Random) -> int:
    return rng.choice((-1, 1))


def _choose(weights: np.ndarray, rng: random.Random) -> str:
    total = float(weights.sum())
    if total <= 0:
        return "N"
    x = rng.random() * total
    acc = 0.0
    for state, w in zip(STATES, weights):
        acc += float(w)
        if x < acc:
            return state
    return STATES[int(np.flatnonzero(weights)[-1])]


@dataclass
class WrittenTrace:
    """A finished teacher trace: the state (steps, behaviours, computations) and the answer line."""

    task: ChainTask
    state: ChainState
    final: str

    @property
    def completion(self) -> str:
        return render_completion(self.state.steps, self.final)


def write_trace(spec: TeacherSpec, policy: np.ndarray, task: ChainTask, rng: random.Random,
                syntax: str = "marked") -> WrittenTrace:
    """Write one trace of ``task`` with base matrix ``policy`` (see module docstring for the state effects), in the
    step ``syntax`` of :mod:`.grammar` (hollow, i.e. ``icl``, teachers only in the marked one)."""
    state = ChainState.start(task, syntax)
    r, e = STATE_INDEX["R"], STATE_INDEX["E"]
    current: str | None = None
    horizon = rng.randint(*spec.horizon) if spec.hollow else 0
    while len(state.steps) < spec.max_steps:
        pending = state.pending_slip()
        if state.done and pending is not None and spec.repair and not spec.hollow:
            nxt = "R"
        else:
            weights = np.array(spec.start if current is None else policy[STATE_INDEX[current]], dtype=float)
            if not state.computations:
                weights[r] = 0.0
            if pending is not None and not spec.hollow:
                weights[r] *= spec.reflect_gain
            if state.next_is_hard():
                weights[e] *= spec.explore_gain
            if spec.hollow and len(state.steps) >= horizon:
                weights = np.array([1.0, 0.0, 0.0, 0.0])
            nxt = _choose(weights, rng)
            if state.done and nxt != "R":
                break
        if nxt == "R" and spec.hollow:
            state.hollow("R", spec.style.draw("R", rng))
        elif nxt == "R":
            if pending is not None:
                target = pending
            elif rng.random() < 0.3:
                target = rng.randrange(len(state.computations))
            else:
                target = len(state.computations) - 1
            state.reflect(target, spec.style.draw("R", rng))
        else:
            slip = _slip(rng) if (pending is None and spec.slip_rate > 0 and rng.random() < spec.slip_rate) else 0
            cue = spec.style.draw(nxt, rng)
            if nxt == "E" and spec.hollow:
                state.hollow("E", cue)
                current = nxt
                continue
            if nxt == "E":
                state.explore(slip=slip, cue=cue)
            else:
                chunk = 2 if (spec.chunk_rate > 0 and state.n_left >= 2 and rng.random() < spec.chunk_rate) else 1
                state.compute(nxt, n_ops=chunk, slip=slip, cue=cue)
        current = nxt
    while not state.done:  # step cap hit: finish plainly so every trace has an answer
        state.compute("N")
    return WrittenTrace(task=task, state=state, final=state.finish())


def _task_config_of(tasks: Sequence[ChainTask]) -> TaskConfig:
    first = tasks[0]
    operands = [b for t in tasks[:200] for _, b in t.ops] + [t.start for t in tasks[:200]]
    operators = "".join(op for op in "+-*" if any(o == op for t in tasks[:200] for o, _ in t.ops))
    return TaskConfig(length=len(first.ops), operand_max=max(1, max(operands)), operators=operators or "+",
                      modulus=first.modulus)


def realised_counts(spec: TeacherSpec, policy: np.ndarray, tasks: Sequence[ChainTask], seed: int) -> np.ndarray:
    rng = random.Random(seed)
    sequences = [write_trace(spec, policy, t, rng).state.behaviors for t in tasks]
    return transition_counts(sequences)[0]


@functools.lru_cache(maxsize=64)
def calibrate_policy(spec: TeacherSpec, task_config: TaskConfig = DEFAULT_TASKS, n_tasks: int = 1200,
                     iterations: int = 8, seed: int = 0) -> np.ndarray:
    """Fit the base matrix so that the realised transition matrix of ``spec``'s traces matches ``spec.target``.

    Multiplicative updates ``B_ij <- B_ij * T_ij / R_ij`` (ratios clipped to [0.2, 5], rows renormalised) from
    ``iterations`` simulations of ``n_tasks`` tasks. Structural zeros of the target stay zero. Hollow (ICL)
    teachers are not calibrated: their form-only steps and fixed horizon are the point, not a target graph.
    Returns a read-only 4x4 array. Cached per (spec, task family).
    """
    target = spec.target_matrix
    base = target.copy()
    if not spec.hollow:
        tasks = generate_tasks(n_tasks, task_config, seed=seed + 7919, unique=False)
        for iteration in range(iterations):
            counts = realised_counts(spec, base, tasks, seed + iteration)
            realised = normalise_rows(counts)
            support = counts.sum(axis=1, keepdims=True) > 20
            ratio = np.where((target > 0) & (realised > 0), target / np.where(realised > 0, realised, 1.0), 2.0)
            ratio = np.clip(ratio, 0.2, 5.0)
            base = np.where(support & (target > 0), base * ratio, base)
            base = np.where(target > 0, base, 0.0)
            base = normalise_rows(base)
    base.setflags(write=False)
    return base


class Teacher:
    """A calibrated teacher: :meth:`traces` writes lab traces (``Trace`` objects with ``gold`` behaviours)."""

    def __init__(self, spec: TeacherSpec | str, calibrate: bool = True, graphs_dir: str | Path | None = None):
        self.spec = get_teacher(spec, graphs_dir=graphs_dir) if isinstance(spec, str) else spec
        self.calibrate = calibrate

    @property
    def name(self) -> str:
        return self.spec.name

    def policy(self, task_config: TaskConfig) -> np.ndarray:
        if not self.calibrate:
            return self.spec.target_matrix
        return calibrate_policy(self.spec, task_config)

    def write(self, tasks: Sequence[ChainTask], seed: int = 0, task_config: TaskConfig | None = None,
              syntax: str = "marked") -> list[WrittenTrace]:
        """Write one trace per task in step ``syntax``, seeded (one RNG stream over all tasks; the policy is
        calibrated in the marked syntax, whose behaviour sequences the cue syntax keeps up to rare rewrites)."""
        if not tasks:
            return []
        policy = self.policy(task_config or _task_config_of(tasks))
        rng = random.Random(seed)
        return [write_trace(self.spec, policy, task, rng, syntax) for task in tasks]

    def traces(self, tasks: Sequence[ChainTask], seed: int = 0, task_config: TaskConfig | None = None,
               syntax: str = "marked") -> Corpus:
        """Traces in the project format (``steps``, ``gold``, ``question``, ``answer``, ``model``, ``final``);
        ``syntax``: the step syntax (:data:`~.grammar.SYNTAXES`), recorded in ``meta["syntax"]`` unless ``marked``."""
        written = self.write(tasks, seed, task_config, syntax)
        return Corpus((to_trace(w, self.spec.name, seed, i) for i, w in enumerate(written)),
                      source=f"lab:{self.spec.name}")

    def target_graph(self) -> TransferGraph:
        return self.spec.target_graph()


def to_trace(written: WrittenTrace, teacher: str, seed: int, index: int) -> Trace:
    state = written.state
    return Trace(trace_id=f"lab-{teacher}-s{seed}-{index}", steps=list(state.steps), model=f"lab:{teacher}",
                 question=written.task.question, answer=str(written.task.answer), final=written.final,
                 behaviors=list(state.behaviors),
                 meta={"teacher": teacher, "seed": seed, "prompt": written.task.prompt, "slips": state.n_slips,
                       "fixes": state.n_fixes, "correct": state.answer == written.task.answer,
                       **({} if state.syntax == "marked" else {"syntax": state.syntax})})


def graph_of(traces: Iterable[Trace], name: str | None = None) -> TransferGraph:
    """The transfer graph of traces' gold behaviours."""
    return TransferGraph.from_sequences([t.behaviors or [] for t in traces], labeler="gold", name=name)


@dataclass
class TeacherStats:
    """Summary statistics of a teacher's traces (as in the feasibility study's teacher table)."""

    name: str
    n: int
    mean_steps: float
    mean_chars: float
    share_with_R: float
    share_with_E: float
    fixes_per_trace: float
    slips_per_trace: float
    answer_accuracy: float
    marginal: dict[str, float] = field(default_factory=dict)


def teacher_stats(traces: Sequence[Trace], name: str = "") -> TeacherStats:
    n = max(1, len(traces))
    graph = graph_of(traces)
    return TeacherStats(
        name=name or (traces[0].meta.get("teacher", "") if traces else ""), n=len(traces),
        mean_steps=sum(len(t.steps) for t in traces) / n,
        mean_chars=sum(len(render_completion(t.steps, t.final or "")) for t in traces) / n,
        share_with_R=sum("R" in (t.behaviors or []) for t in traces) / n,
        share_with_E=sum("E" in (t.behaviors or []) for t in traces) / n,
        fixes_per_trace=sum(t.meta.get("fixes", 0) for t in traces) / n,
        slips_per_trace=sum(t.meta.get("slips", 0) for t in traces) / n,
        answer_accuracy=sum(bool(t.meta.get("correct")) for t in traces) / n,
        marginal=graph.marginal_dict(),
    )
