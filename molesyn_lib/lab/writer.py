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
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..backends import GenerationRequest, GenerationStats, apply_stop, register_backend
from ..behaviors import NAMES, STATES
from ..errors import MolesynError
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
                          force_answer: bool = True) -> Corpus:
    """MOLE-SYN in the lab: a random walk on ``graph`` per task, each step written by the weak ``writer``.

    Walk ``i`` draws its behaviours from ``np.random.default_rng([seed, i])`` and the writer's slips and cues from
    ``random.Random`` seeded the same way, so any subset of tasks reproduces. A walk that reaches ``max_steps``
    without answering gets its current value as the answer when ``force_answer`` (``meta["stop_reason"]`` says
    which). ``behaviors`` are the steps' behaviours; ``meta["requested"]`` the walk's.
    """
    writer = writer or LabWriter()
    name = graph.name or "graph"
    traces = Corpus(source=f"molesyn-lab:{name}")
    for index, task in enumerate(tasks):
        walk_rng = np.random.default_rng([seed, index])
        rng = random.Random(int(walk_rng.integers(2**31)))
        state = ChainState.start(task)
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
                  "fixes": state.n_fixes, "correct": state.answer == task.answer if final else False}))
    return traces


# ------------------------------------------------------------------------------------------- the "lab" backend
_BEHAVIOUR_BY_NAME = {NAMES[b].lower(): b for b in STATES}
_CONDUCT_RE = re.compile(r"conduct (normal operation|deep reasoning|self-reflection|self-exploration) behavior",
                         re.IGNORECASE)
_TAGGED_RE = re.compile(r"^(Normal operation|Deep reasoning|Self-reflection|Self-exploration):[ \t]?(.*)$",
                        re.IGNORECASE)
_RATIONALE_RE = re.compile(r"(?:Steps so far|Rationale):\n(.*?)(?:\n\n(?:You should conduct|What is the final)|$)",
                           re.DOTALL)
_EMPTY = {"(none)", "(empty)", ""}


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
    """Read a MOLE-SYN step request in any of :mod:`molesyn_lib.synth`'s prompt styles.

    * ``transcript`` (plain prompt): the last ``Question:`` line, then ``<Behaviour name>: step`` lines, ending in
      the requested behaviour's empty tag (or ``Final answer: \\boxed{`` for the answer request);
    * ``paper`` / ``few_shot_chat`` (chat): the user message's ``Question:``, its ``Rationale:`` / ``Steps so far:``
      block (steps separated by blank lines) and "conduct <behaviour> behavior".

    Raises :class:`MolesynError` when the request is none of these or its question is not a lab chain.
    """
    if request.prompt is not None:
        text, everything = request.prompt, request.prompt
    else:
        chat = request.chat()
        text = next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")
        everything = "\n".join(m["content"] for m in chat)
    at = text.rfind("Question:")
    if at < 0:
        raise MolesynError("lab backend: the request has no 'Question:' line (is it a MOLE-SYN prompt?)")
    tail = text[at + len("Question:"):]
    lines = tail.split("\n")
    tagged = [_TAGGED_RE.match(line) for line in lines[1:]]
    is_transcript = request.prompt is not None and (any(tagged) or lines[-1].startswith("Final answer:"))
    if is_transcript:
        task = task_from_question(lines[0].strip(), "<lab backend request>")
        steps = [m.group(2).strip() for m in tagged if m and m.group(2).strip()]
        last = lines[-1]
        if last.startswith("Final answer:"):
            return SynthRequest(task, steps, None, True)
        final_tag = _TAGGED_RE.match(last)
        if final_tag is None or final_tag.group(2).strip():
            raise MolesynError("lab backend: the transcript does not end with a behaviour tag")
        return SynthRequest(task, steps, _BEHAVIOUR_BY_NAME[final_tag.group(1).lower()], True)
    question = re.match(r"\s*(.*?)\s*(?:\n\n|$)", tail, re.DOTALL)
    task = task_from_question(question.group(1) if question else "", "<lab backend request>")
    rationale_match = _RATIONALE_RE.search(text)
    rationale = rationale_match.group(1).strip() if rationale_match else ""
    if rationale.startswith("..."):
        raise MolesynError("lab backend: the rationale was truncated by max_rationale_chars; raise it")
    steps = [] if rationale in _EMPTY else [s.strip() for s in rationale.split("\n\n") if s.strip()]
    if "What is the final answer" in everything:
        return SynthRequest(task, steps, None, False)
    conduct = _CONDUCT_RE.findall(everything)
    if not conduct:
        raise MolesynError("lab backend: the request does not say which behaviour to conduct")
    return SynthRequest(task, steps, _BEHAVIOUR_BY_NAME[conduct[-1].lower()], False)


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
