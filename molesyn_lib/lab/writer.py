"""The weak writer: writes one lab step of a *requested* behaviour (it knows how, not when), and the ``lab`` backend.

:class:`LabWriter` is the lab's stand-in for the instruct model of MOLE-SYN (paper section 4). Given a task, the
rationale so far (:class:`~.grammar.ChainState`) and a requested behaviour it writes one step of that behaviour
correctly-ish: N computes the next operation, D derives the unreduced intermediate, E takes the alternative route,
R re-checks the *latest* computation (it does not know where its own slip is, so a slip further back is missed).
It slips at ``slip_rate`` per computation (independently; nothing limits it to one). When every operation is done
and the walk asks for anything but a reflection it answers. A reflection before anything is computed restates the
start value (a hollow R).

:func:`synthesize_lab_traces` is the MOLE-SYN random walk in the lab: for each task it samples the behaviour
sequence from a transfer graph (first behaviour from the graph's marginal, then ``P(. | current)``) and lets the
writer perform each step until it answers or ``max_steps`` is reached. Compare with :mod:`.teachers`, whose
policy also decides *when* (it reflects after its slips).

:class:`LabBackend` (registered as the ``lab`` generation backend of :mod:`molesyn_lib.backends`) answers
``molesyn synth`` requests in any of its prompt styles (:func:`parse_synth_request`): it reads the question (a chain
such as ``1+8-3 (mod 10)``), the steps so far and the requested behaviour from the prompt, rebuilds the state and
writes the step (``\\boxed{v}`` when it answers), deterministically for a request's seed.
"""
from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..backends import GenerationRequest, GenerationStats, apply_stop, register_backend
from ..behaviors import STATES
from ..errors import MolesynError
from ..protocol import parse_request
from ..traces import Corpus, Trace
from ..transfer import TransferGraph
from .grammar import ChainState
from .keywords import CUE_STYLES, CueStyle
from .tasks import ChainTask, task_from_question


@dataclass
class LabWriter:
    """Writes single steps of requested behaviours on chain tasks.

    Attributes:
        slip_rate: probability that a computation (N/D/E) is off by one.
        style: cue words (default: R1's).
    """

    slip_rate: float = 0.1
    style: CueStyle = field(default_factory=lambda: CUE_STYLES["r1"])

    def write_step(self, task: ChainTask, state: ChainState, behavior: str,
                   rng: random.Random) -> tuple[str, bool]:
        """Write one step of ``behavior`` into ``state``; returns ``(text, answered)``.

        ``answered`` is ``True`` when the writer gave the final answer instead (``text`` is then ``A <value>``):
        every operation is done and the requested behaviour is not a reflection.
        """
        if behavior not in STATES:
            raise ValueError(f"behaviour must be one of {STATES}, got {behavior!r}")
        if state.task is not task and state.task != task:
            raise ValueError("state belongs to another task")
        cue = self.style.draw(behavior, rng)
        if behavior == "R":
            if not state.computations:
                return state.hollow("R", cue), False
            return state.reflect(len(state.computations) - 1, cue), False
        if state.done:
            return state.finish(), True
        slip = rng.choice((-1, 1)) if rng.random() < self.slip_rate else 0
        if behavior == "E":
            return state.explore(slip=slip, cue=cue), False
        return state.compute(behavior, slip=slip, cue=cue), False


def synthesize_lab_traces(graph: TransferGraph, tasks: Sequence[ChainTask], seed: int = 0,
                          writer: LabWriter | None = None, max_steps: int = 24,
                          force_answer: bool = True, syntax: str = "marked") -> Corpus:
    """MOLE-SYN in the lab: a random walk on ``graph`` per task, each step written by the weak ``writer``.

    Walk ``i`` draws its behaviours from ``np.random.default_rng([seed, i])`` and the writer's slips and cues from
    ``random.Random`` seeded the same way, so any subset of tasks reproduces. A walk that reaches ``max_steps``
    without answering gets its current value as the answer when ``force_answer`` (``meta["stop_reason"]`` says
    which). ``behaviors`` are the steps' behaviours; ``meta["requested"]`` the walk's. ``syntax``: the step syntax
    (:data:`~.grammar.SYNTAXES`).
    """
    writer = writer or LabWriter()
    name = graph.name or "graph"
    traces = Corpus(source=f"molesyn-lab:{name}")
    for index, task in enumerate(tasks):
        walk_rng = np.random.default_rng([seed, index])
        rng = random.Random(int(walk_rng.integers(2**31)))
        state = ChainState.start(task, syntax)
        behavior = graph.sample_start(walk_rng)
        requested: list[str] = []
        final = None
        stop_reason = "max_steps"
        while len(state.steps) < max_steps:
            requested.append(behavior)
            text, answered = writer.write_step(task, state, behavior, rng)
            if answered:
                requested.pop()
                final, stop_reason = text, "answer"
                break
            behavior = graph.sample_next(behavior, walk_rng)
        if final is None and force_answer:
            final = state.finish()
        traces.append(Trace(
            trace_id=f"molesyn-lab-{name}-s{seed}-{index}", steps=list(state.steps), model=f"molesyn-lab:{name}",
            question=task.question, answer=str(task.answer), final=final, behaviors=list(state.behaviors),
            meta={"graph": name, "backend": "lab", "seed": seed, "walk": index, "prompt": task.prompt,
                  "requested": requested, "stop_reason": stop_reason, "slips": state.n_slips,
                  "fixes": state.n_fixes, "correct": state.answer == task.answer if final else False,
                  **({} if syntax == "marked" else {"syntax": syntax})}))
    return traces


# ------------------------------------------------------------------------------------------- the "lab" backend
@dataclass
class SynthRequest:
    """What a MOLE-SYN request asks the lab backend (see :func:`parse_synth_request`).

    Attributes:
        task: the chain task named in the question.
        steps: the steps written so far.
        behavior: the requested behaviour, or ``None`` for a final-answer request.
        transcript: the request is a plain-text transcript continuation (answers are written differently).
    """

    task: ChainTask
    steps: list[str]
    behavior: str | None
    transcript: bool


def parse_synth_request(request: GenerationRequest) -> SynthRequest:
    """Read a MOLE-SYN step request in any of :mod:`molesyn_lib.synth`'s prompt styles with
    :func:`molesyn_lib.protocol.parse_request` (the module that also renders those parts of the prompt), and turn its
    question into a lab chain task.

    Raises :class:`MolesynError` when the request is not a MOLE-SYN request or its question is not a lab chain.
    """
    try:
        parsed = parse_request(prompt=request.prompt, messages=request.messages)
    except MolesynError as exc:
        raise MolesynError(f"lab backend: {exc}") from None
    task = task_from_question(parsed.question, "<lab backend request>")
    return SynthRequest(task, list(parsed.steps), parsed.behavior, parsed.transcript)


@register_backend("lab")
class LabBackend:
    """The weak writer behind the generation-backend interface (offline, deterministic per request seed).

    Args:
        slip_rate: the writer's slip rate.
        style: cue style name (:data:`~.keywords.CUE_STYLES`).
        model: ignored except in :attr:`identity`.
    """

    name = "lab"

    def __init__(self, slip_rate: float = 0.1, style: str = "r1", model: str | None = None, **_: object):
        if style not in CUE_STYLES:
            raise MolesynError(f"lab backend: unknown style {style!r}; expected one of {', '.join(CUE_STYLES)}")
        self.writer = LabWriter(slip_rate=slip_rate, style=CUE_STYLES[style])
        self.style = style
        self.model = model
        self.stats = GenerationStats()

    @property
    def identity(self) -> str:
        return f"lab:slip={self.writer.slip_rate}:style={self.style}"

    def _one(self, request: GenerationRequest) -> str:
        parsed = parse_synth_request(request)
        state = ChainState.from_steps(parsed.task, parsed.steps)
        if parsed.behavior is None:
            while not state.done:  # the writer finishes the chain from its (possibly wrong) current value
                state.compute("N")
            return apply_stop(f"{state.value}}}" if parsed.transcript else f"\\boxed{{{state.value}}}", request.stop)
        text, answered = self.writer.write_step(parsed.task, state, parsed.behavior, random.Random(request.seed))
        if answered:
            return f"\\boxed{{{state.value}}}"
        return apply_stop(text, request.stop)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        started = time.perf_counter()
        outputs = [self._one(r) for r in requests]
        self.stats.add(len(outputs), sum(len(o) for o in outputs), time.perf_counter() - started)
        return outputs
