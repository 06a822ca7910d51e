"""MOLE-SYN: synthesise Long-CoT traces by a random walk on a behaviour transfer graph (paper section 4).

For each question the synthesiser keeps a running rationale. At each position it takes the next behaviour of the
walk (sampled from ``P(. | current)`` of a :class:`~molesyn_lib.transfer.TransferGraph`, starting from the marginal
or a fixed behaviour), asks an instruction model for one step of that behaviour with the paper's prompt (preamble,
the four definitions, "You should conduct <behaviour> behavior now.", the behaviour instruction, the question and the
rationale so far) and appends the step. The walk stops at a ``\\boxed{}`` answer given after ``min_steps`` steps, or
after ``max_steps``. The parts of the prompt that backends read back (question line, steps so far, the behaviour
request, transcript tags) are rendered by :mod:`molesyn_lib.protocol`, which also parses them; the prose around
them may be reworded freely.

All still-active walks are advanced together: one backend call per walk position, which is what makes a small CPU
model (SmolLM2-135M) usable. Prompt styles (:data:`PROMPT_STYLES`, chosen by :attr:`SynthConfig.prompt_style`):
``paper`` (the paper's prompt, for capable instruction models), ``few_shot_chat`` (the same made compact, with a
worked example step of each behaviour and a request for ONE short step) and ``transcript`` (default for small models:
a plain-text worked example whose steps are tagged with their behaviour, continued one line at a time; optionally
each step starts with a behaviour cue, :attr:`SynthConfig.cue_prefix`). Stop sequences, a repetition penalty and
:func:`clean_step` (echo stripping, truncation to whole sentences, rejection of empty or repeated steps, which are
re-asked with a new seed up to ``max_retries`` times) keep small models on track.

Reproducibility: the behaviour plan of walk ``i`` depends only on ``(seed, i)`` (:func:`walk_plan`) and every request
carries a seed derived from ``(seed, i, position, attempt)``, so with a :class:`~molesyn_lib.backends.CachedBackend`
a rerun is free and an interrupted run resumes.

Outputs are :class:`~molesyn_lib.traces.Trace` objects (``behaviors`` = the requested behaviours, provenance in
``meta``); :func:`to_hf_dataset` turns them into a prompt/completion dataset for TRL SFT and :func:`fidelity` measures
how well the synthesised text carries the target structure.
"""
from __future__ import annotations

import difflib
import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import protocol
from .backends import Backend, GenerationRequest
from .behaviors import DEFINITIONS, INSTRUCTIONS, NAMES, STATES, check_behavior
from .errors import InputError
from .labelers.base import DEFAULT_LABELER
from .progress import tqdm
from .registry import Registry
from .sources import Question
from .traces import Trace
from .transfer import TransferGraph, pearson

STOP_REASONS = ("boxed", "max_steps", "degenerate")


@dataclass
class SynthConfig:
    """Settings of a MOLE-SYN run.

    Attributes:
        start: ``"sample"`` (first behaviour drawn from the graph's marginal) or a fixed behaviour (``"E"``, ``"N"``...).
        max_steps: hard cap on steps per walk.
        min_steps: a ``\\boxed{}`` answer ends the walk only from this step on; an earlier one is re-asked (up to
            ``max_retries`` times, then un-boxed and kept).
        max_new_tokens: generation budget per step.
        temperature: sampling temperature (0 = greedy).
        top_p: nucleus mass.
        repetition_penalty: > 1 discourages repeating tokens (important for small models).
        few_shot: small-model prompting (a worked example of each behaviour, ONE short step); ``False`` gives the
            paper's plain prompt. Picks :attr:`prompt_style` when that is not set.
        prompt_style: a key of :data:`PROMPT_STYLES`: ``"paper"``, ``"few_shot_chat"`` or ``"transcript"``;
            default ``"transcript"`` if ``few_shot`` else ``"paper"``.
        filter_correct: keep only traces whose boxed answer matches the gold answer (math-verify, else normalised
            string match); traces of questions without a gold answer are dropped too.
        seed: seed of the walks and of every generation request.
        stop: stop sequences of each step request; default the style's (one line for ``transcript``, one
            paragraph for the chat styles).
        max_rationale_chars: keep only the last this-many characters of the rationale in the prompt (``None``: all).
        max_retries: how often an empty, repeated or too-early answer step is re-asked (new seed); an empty or
            repeated step after that ends the walk (``stop_reason="degenerate"``).
        force_answer: after a walk ends without an answer, ask once for the final ``\\boxed{}`` answer (not a step).
        cue_prefix: transcript style only: start each step with an opening cue of its behaviour from
            :data:`CUE_PREFIXES` ("Wait," for R, "Alternatively," for E...) that the model continues. Steers tiny
            models, but cue-based labellers (``lexical``) then agree partly by construction.
    """

    start: str = "sample"
    max_steps: int = 12
    min_steps: int = 2
    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.95
    repetition_penalty: float = 1.15
    few_shot: bool = True
    prompt_style: str | None = None
    filter_correct: bool = False
    seed: int = 0
    stop: tuple[str, ...] | None = None
    max_rationale_chars: int | None = 2000
    max_retries: int = 2
    force_answer: bool = True
    cue_prefix: bool = False

    def __post_init__(self) -> None:
        if self.start != "sample":
            check_behavior(self.start)
        if self.max_steps < 1 or self.min_steps < 1 or self.min_steps > self.max_steps:
            raise ValueError("need 1 <= min_steps <= max_steps")
        if self.stop is not None:
            self.stop = tuple(self.stop)
        if self.prompt_style is not None:
            PROMPT_STYLES.get(self.prompt_style)  # UnknownNameError (a ValueError) listing the styles

    @property
    def style(self) -> str:
        """The prompt style in force."""
        return self.prompt_style or ("transcript" if self.few_shot else "paper")


# --------------------------------------------------------------------------------------------------------- answers
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def find_boxed(text: str) -> list[tuple[int, int, str]]:
    """All ``\\boxed{...}`` spans as ``(start, end, content)``, with nested braces handled; unclosed ones skipped."""
    spans = []
    for match in _BOXED_RE.finditer(text):
        depth, at = 1, match.end()
        while at < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[at], 0)
            at += 1
        if depth == 0:
            spans.append((match.start(), at, text[match.end():at - 1].strip()))
    return spans


def extract_boxed(text: str | None) -> str | None:
    """Content of the last ``\\boxed{}`` in ``text`` (``None`` if there is none)."""
    if not text:
        return None
    spans = find_boxed(text)
    return spans[-1][2] if spans else None


def normalize_answer(answer: str) -> str:
    """Loose normal form for string comparison: no ``$``, spaces, ``\\text``, thousands commas, trailing zeros."""
    text = answer.strip().strip("$").strip()
    text = re.sub(r"\\(?:text|mathrm|textbf)\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\\(?:left|right|!|,|;|quad)", "", text).replace("dfrac", "frac").replace("tfrac", "frac")
    text = re.sub(r"\s+", "", text).rstrip(".").lower()
    if re.fullmatch(r"-?[\d,]+(\.\d+)?", text):
        text = text.replace(",", "")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    return text


def grade_answer(predicted: str | None, gold: str | None) -> bool | None:
    """Whether ``predicted`` equals ``gold`` (math-verify, else normalised strings); ``None`` without a gold answer."""
    if gold is None or not str(gold).strip():
        return None
    if predicted is None or not predicted.strip():
        return False
    if normalize_answer(predicted) == normalize_answer(gold):
        return True
    try:
        from math_verify import parse, verify

        main_thread = threading.current_thread() is threading.main_thread()
        timeout = 5 if main_thread else None  # math-verify's timeouts use signals (main thread only)
        gold_parsed = parse(f"${gold}$", parsing_timeout=timeout)
        pred_parsed = parse(f"\\boxed{{{predicted}}}", parsing_timeout=timeout)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - math-verify raises many kinds of parse errors: count as not matching
        return False


# --------------------------------------------------------------------------------------------------------- prompts
PAPER_PREAMBLE = (
    "You are a helpful assistant. You will receive a question and a previously reasoned rationale. If you can "
    "directly get the answer, output the concise answer in \\boxed{}. Otherwise, continue the rationale by "
    "performing the requested reasoning behavior."
)
NOT_YET = "Do not give the final answer yet."

#: The worked example of the few-shot prompts: one short step of each behaviour, then a boxed answer.
FEW_SHOT_QUESTION = "A shop sells pens for $3 each. Tom buys 4 pens and pays with a $20 bill. How much change does he get?"
FEW_SHOT_STEPS: tuple[tuple[str, str], ...] = (
    ("N", "4 pens cost 4 x 3 = 12 dollars."),
    ("E", "Alternatively, we could count up from 12 to 20 to find the change."),
    ("D", "The change is what is left of the 20 dollars after paying for the pens, so we need 20 - 12."),
    ("R", "Wait, let me check the cost again: 3 + 3 + 3 + 3 = 12, so 12 dollars is right."),
    ("N", "20 - 12 = 8, so the answer is \\boxed{8}."),
)


#: Opening cues a transcript-style step may be started with (``SynthConfig.cue_prefix``); N steps get none.
CUE_PREFIXES: dict[str, tuple[str, ...]] = {
    "N": ("",),
    "D": ("So", "Therefore,", "This means", "Since"),
    "R": ("Wait,", "Let me check:", "Hmm,", "Let me verify"),
    "E": ("Alternatively,", "What if", "Another approach:", "Maybe"),
}


@dataclass(frozen=True)
class StepPrompt:
    """What a prompt style asks the backend: chat ``messages`` or a plain ``prompt``, its stop sequences, and a
    ``prefix`` the prompt ends with that belongs to the step (the output continues it)."""

    messages: tuple[dict[str, str], ...] | None = None
    prompt: str | None = None
    stop: tuple[str, ...] = ()
    prefix: str = ""


def _rationale_steps(steps: Sequence[str], limit: int | None) -> list[int]:
    """Indices of the most recent steps that fit in ``limit`` characters (at least the last one)."""
    kept: list[int] = []
    used = 0
    for index in range(len(steps) - 1, -1, -1):
        used += len(steps[index]) + 2
        if kept and limit is not None and used > limit:
            break
        kept.append(index)
    return kept[::-1]


def _rationale_text(steps: Sequence[str], limit: int | None) -> str:
    kept = _rationale_steps(steps, limit)
    text = protocol.STEP_SEPARATOR.join(steps[i] for i in kept)
    return (protocol.TRUNCATED + protocol.STEP_SEPARATOR + text) if kept and kept[0] > 0 else text


def _definitions() -> str:
    return "\n".join(f"- {DEFINITIONS[b]}" for b in STATES)


def _conduct(behavior: str) -> str:
    return f"{protocol.render_conduct(behavior)} {INSTRUCTIONS[behavior]}"


def paper_prompt(question: str, steps: Sequence[str], behaviors: Sequence[str], behavior: str, config: SynthConfig,
                 allow_answer: bool = True) -> StepPrompt:
    """The paper's prompt: preamble, definitions, "You should conduct X behavior now.", instruction, question and
    rationale (for capable instruction models)."""
    system = f"{PAPER_PREAMBLE}\n\nThe reasoning behaviors are:\n{_definitions()}\n\n{_conduct(behavior)}"
    if not allow_answer:
        system += f" {NOT_YET}"
    user = (f"{protocol.render_question(question)}\n\n"
            f"{protocol.render_steps(_rationale_text(steps, config.max_rationale_chars), protocol.RATIONALE_HEADER)}")
    return StepPrompt(messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                      stop=("\n\n",))


def few_shot_chat_prompt(question: str, steps: Sequence[str], behaviors: Sequence[str], behavior: str,
                         config: SynthConfig, allow_answer: bool = True) -> StepPrompt:
    """The paper's prompt made compact for small chat models: a worked example step of each behaviour and a request
    for ONE short step."""
    examples = "\n".join(f"- {NAMES[b]}: {text}" for b, text in FEW_SHOT_STEPS)
    answer_rule = ("If the steps so far already give the answer, write it as \\boxed{answer}." if allow_answer
                   else NOT_YET)
    system = (
        "You continue a step-by-step solution of a math question. Write ONE short step (one or two sentences) of "
        f"the requested behavior. Do not repeat earlier steps. {answer_rule}\n\nBehaviors:\n{_definitions()}\n\n"
        f"Example steps for the question \"{FEW_SHOT_QUESTION}\":\n{examples}"
    )
    rationale = _rationale_text(steps, config.max_rationale_chars)
    user = (f"{protocol.render_question(question)}\n\n{protocol.render_steps(rationale)}\n\n{_conduct(behavior)} "
            f"Write one short {NAMES[behavior].lower()} step.")
    return StepPrompt(messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                      stop=("\n\n",))


def transcript_prompt(question: str, steps: Sequence[str], behaviors: Sequence[str], behavior: str,
                      config: SynthConfig, allow_answer: bool = True) -> StepPrompt:
    """Plain-text continuation for very small models: the definitions, a worked example whose steps are tagged with
    their behaviour, then this question's steps so far, ending with the tag of the requested behaviour.

    SmolLM2-135M stays on the task far more often with this pattern than with chat instructions, which it answers
    with assistant small talk. ``allow_answer`` has no effect here (early answers are un-boxed by the walk)."""
    header = ("Solve the question step by step. Each step is one of four behaviors:\n"
              f"{_definitions()}\nWhen the steps give the answer, write it as \\boxed{{answer}}.\n\n")
    example = protocol.render_transcript(FEW_SHOT_QUESTION, FEW_SHOT_STEPS)
    kept = _rationale_steps(steps, config.max_rationale_chars)
    current = protocol.render_transcript(question, [(behaviors[i], steps[i]) for i in kept])
    prefix = ""
    if config.cue_prefix:
        cues = CUE_PREFIXES[behavior]
        prefix = cues[derive_seed(config.seed, question, len(steps)) % len(cues)]
    tag = protocol.render_tag(behavior)
    return StepPrompt(prompt=f"{header}{example}\n{current}{tag}{' ' + prefix if prefix else ''}",
                      stop=("\n",), prefix=prefix)


PromptStyle = Callable[..., StepPrompt]
#: Prompt styles by name (see :attr:`SynthConfig.prompt_style`), in registration order.
PROMPT_STYLES: Registry[PromptStyle] = Registry("prompt style", {
    "paper": paper_prompt, "few_shot_chat": few_shot_chat_prompt, "transcript": transcript_prompt,
}, sort=False)


def register_prompt_style(name: str, builder: PromptStyle) -> None:
    """Add a prompt style: ``builder(question, steps, behaviors, behavior, config, allow_answer) -> StepPrompt``.

    A style that the offline backends (``mock``, ``lab``) should answer writes its request with
    :mod:`molesyn_lib.protocol`'s renderers, which :func:`molesyn_lib.protocol.parse_request` reads back."""
    PROMPT_STYLES.register(name, builder)


def step_prompt(question: str, steps: Sequence[str], behaviors: Sequence[str], behavior: str, config: SynthConfig,
                allow_answer: bool = True) -> StepPrompt:
    """The prompt asking for one step of ``behavior`` in the configured style."""
    return PROMPT_STYLES.get(config.style)(question, list(steps), list(behaviors), check_behavior(behavior), config,
                                      allow_answer)


def build_messages(question: str, steps: Sequence[str], behavior: str, config: SynthConfig,
                   allow_answer: bool = True) -> list[dict[str, str]]:
    """Chat messages asking for one step of ``behavior``: the paper prompt, or the few-shot chat prompt when
    ``config.few_shot``."""
    builder = few_shot_chat_prompt if config.few_shot else paper_prompt
    prompt = builder(question, list(steps), ["N"] * len(steps), check_behavior(behavior), config, allow_answer)
    return [dict(m) for m in prompt.messages or ()]


def answer_prompt(question: str, steps: Sequence[str], behaviors: Sequence[str], config: SynthConfig) -> StepPrompt:
    """The prompt asking for the final answer after a walk that gave none (a plain ``\\boxed{`` continuation for the
    transcript style, a chat question otherwise); the output is the boxed content, or contains a ``\\boxed{}``."""
    if config.style == "transcript":
        kept = _rationale_steps(steps, config.max_rationale_chars)
        text = protocol.render_transcript(question, [(behaviors[i], steps[i]) for i in kept])
        return StepPrompt(prompt=f"{text}{protocol.FINAL_ANSWER}", stop=("}", "\n"))
    rationale = _rationale_text(steps, config.max_rationale_chars)
    return StepPrompt(messages=(
        {"role": "system", "content": "You are a helpful assistant. Give only the final answer as \\boxed{answer}."},
        {"role": "user", "content": f"{protocol.render_question(question)}\n\n"
                                    f"{protocol.render_steps(rationale, protocol.RATIONALE_HEADER)}\n\n"
                                    f"{protocol.ANSWER_QUESTION} Reply with \\boxed{{answer}} only."}), stop=())


# ---------------------------------------------------------------------------------------------------- cleaning
_LABEL_WORDS = (r"step\s*\d*|next step|new step|normal operation|deep reasoning|self[- ]?reflection|"
                r"self[- ]?exploration|reflection|exploration|rationale|response|answer|final answer")
_LEADING_LABEL_RE = re.compile(rf"^\s*(?:[-*#>]+\s*|\d+[.)]\s+)?(?:\*\*)?(?:{_LABEL_WORDS})(?:\*\*)?\s*[:\-]\s*"
                               rf"(?:\*\*)?\s*", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*>]+|\d+[.)])\s+")
#: Echoed prompt parts a generated step is cut at: the protocol's labels (the request sentence up to the behaviour's
#: name) and the few-shot prompts' headers.
_ECHO_MARKERS = (protocol.QUESTION, protocol.STEPS_HEADER.rstrip(":"), protocol.RATIONALE_HEADER,
                 protocol.CONDUCT.partition("{name}")[0].strip(), "Behaviors:", "Example steps")
_ECHO_RE = re.compile(rf"(?:^|\n)\s*(?:{'|'.join(re.escape(m) for m in _ECHO_MARKERS if m)})", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s|$)|\}(?=\s*$)")


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def clean_step(raw: str, question: str = "", previous: Sequence[str] = ()) -> str | None:
    """Tidy one generated step; ``None`` when nothing usable is left (empty, an echo, or a repeat).

    Strips echoed prompt parts (anything from an echoed "Question:"/"Steps so far" line on), leading labels such as
    "Self-reflection:" or "Step 3:", bullets, and a trailing unfinished sentence; rejects steps that are empty, are
    part of the question, or nearly repeat an earlier step (difflib ratio >= 0.9).
    """
    text = raw.replace("\r", "")
    echo = _ECHO_RE.search(text)
    if echo:
        text = text[:echo.start()]
    text = text.strip()
    for _ in range(3):
        stripped = _BULLET_RE.sub("", _LEADING_LABEL_RE.sub("", text)).strip()
        if stripped == text:
            break
        text = stripped
    text = re.sub(r"[ \t]+", " ", text).strip()
    if text and not find_boxed(text) and not re.search(r"[.!?)\]}]$", text):
        ends = [m.end() for m in _SENTENCE_END_RE.finditer(text)]
        if ends:
            text = text[:ends[-1]].strip()
    normal = _normal(text)
    if len(normal) < 2:
        return None
    if len(normal) > 20 and normal in _normal(question):
        return None
    for earlier in previous:
        matcher = difflib.SequenceMatcher(None, normal, _normal(earlier), autojunk=False)
        if matcher.real_quick_ratio() >= 0.9 and matcher.quick_ratio() >= 0.9 and matcher.ratio() >= 0.9:
            return None
    return text


def unbox(text: str) -> str:
    """Replace every ``\\boxed{X}`` by ``X`` (used for answers given before ``min_steps``)."""
    for start, end, content in reversed(find_boxed(text)):
        text = text[:start] + content + text[end:]
    return text


# ------------------------------------------------------------------------------------------------------- walks
def derive_seed(*parts: int | str) -> int:
    """A 31-bit seed derived from the parts (stable across runs and platforms)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def walk_plan(graph: TransferGraph, config: SynthConfig, walk_index: int) -> list[str]:
    """The behaviours walk ``walk_index`` asks for, ``config.max_steps`` long; depends only on (seed, index)."""
    rng = np.random.default_rng([config.seed, walk_index])
    current = graph.sample_start(rng) if config.start == "sample" else config.start
    plan = [current]
    while len(plan) < config.max_steps:
        current = graph.sample_next(current, rng)
        plan.append(current)
    return plan


@dataclass
class _Walk:
    index: int
    question: Question
    plan: list[str]
    steps: list[str] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    predicted: str | None = None
    stop_reason: str | None = None
    forced_answer: bool = False
    early_answers: list[str] = field(default_factory=list)
    prefix: str = ""

    @property
    def position(self) -> int:
        return len(self.steps)


def _request(prompt: StepPrompt, config: SynthConfig, seed: int, model: str | None, max_new_tokens: int,
             temperature: float, repetition_penalty: float) -> GenerationRequest:
    stop = prompt.stop if config.stop is None else config.stop
    return GenerationRequest(messages=prompt.messages, prompt=prompt.prompt, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_p=config.top_p, repetition_penalty=repetition_penalty,
                             stop=stop, seed=seed, model=model)


def _step_request(walk: _Walk, config: SynthConfig, model: str | None) -> GenerationRequest:
    position = walk.position
    prompt = step_prompt(walk.question.question, walk.steps, walk.plan, walk.plan[position], config,
                         allow_answer=position + 1 >= config.min_steps)
    walk.prefix = prompt.prefix
    return _request(prompt, config, derive_seed(config.seed, walk.index, position, walk.attempts), model,
                    config.max_new_tokens, config.temperature, config.repetition_penalty)


def _answer_request(walk: _Walk, config: SynthConfig, model: str | None) -> GenerationRequest:
    prompt = answer_prompt(walk.question.question, walk.steps, walk.plan, config)
    request = GenerationRequest(messages=prompt.messages, prompt=prompt.prompt, max_new_tokens=24, temperature=0.0,
                                stop=prompt.stop, seed=derive_seed(config.seed, walk.index, "answer"), model=model)
    return request


def _forced_answer(raw: str, config: SynthConfig) -> str | None:
    boxed = extract_boxed(raw)
    if boxed is not None or config.style != "transcript":
        return boxed
    text = raw.strip().strip("$").strip()  # the transcript answer prompt ends in "\boxed{": raw is the content
    looks_like_answer = bool(re.search(r"[0-9\\]", text)) or len(text) <= 3
    return text if text and len(text) <= 40 and looks_like_answer else None


def _advance(walk: _Walk, raw: str, config: SynthConfig) -> None:
    """Apply one generated step to a walk: append it, re-ask (empty, repeated, or an answer before ``min_steps``),
    or end the walk (boxed answer, ``max_steps``, retries exhausted)."""
    if walk.prefix and raw.strip():
        raw = walk.prefix + (raw if raw[:1].isspace() else " " + raw)
    step = clean_step(raw, walk.question.question, walk.steps)
    boxed = extract_boxed(step) if step else None
    early = boxed is not None and walk.position + 1 < config.min_steps
    last_try = walk.attempts >= config.max_retries
    if step is not None and early:
        walk.early_answers.append(boxed or "")
        if last_try:  # keep what the step says besides the answer, if anything
            step = unbox(step).strip()
            if len(_normal(step)) < 2 or _normal(step) == _normal(boxed or ""):
                step = None
        else:
            step = None
    if step is None:
        if last_try:
            walk.stop_reason = "degenerate"
        walk.attempts += 1
        walk.retries += 1
        return
    walk.attempts = 0
    walk.steps.append(step)
    if boxed is not None and not early:
        walk.predicted = boxed
        walk.stop_reason = "boxed"
    elif walk.position >= config.max_steps:
        walk.stop_reason = "max_steps"


def _graph_label(graph: TransferGraph) -> str:
    return graph.name or "graph"


def synthesize(questions: Sequence[Question], graph: TransferGraph, backend: Backend,
               config: SynthConfig | None = None, walks_per_question: int = 1, model: str | None = None,
               progress: bool = True) -> list[Trace]:
    """Run MOLE-SYN walks over ``questions`` and return the synthesised traces.

    Args:
        questions: the tasks (:func:`molesyn_lib.sources.load_questions`).
        graph: the target transfer graph.
        backend: any generation backend (wrap it in :class:`~molesyn_lib.backends.CachedBackend` to resume).
        config: walk and decoding settings.
        walks_per_question: independent walks per question; walk ``i`` is question ``i // walks_per_question``.
        model: model name put into every request (backends that serve several models).
        progress: show a progress bar over steps.

    Returns one trace per walk (only correct ones with ``config.filter_correct``), in walk order.
    """
    config = config or SynthConfig()
    if walks_per_question < 1:
        raise ValueError("walks_per_question must be >= 1")
    walks = [_Walk(index=q * walks_per_question + k, question=question,
                   plan=walk_plan(graph, config, q * walks_per_question + k))
             for q, question in enumerate(questions) for k in range(walks_per_question)]
    bar = tqdm(total=len(walks) * config.max_steps, desc="MOLE-SYN steps", unit="step", disable=not progress)
    try:
        active = [w for w in walks if w.stop_reason is None]
        while active:
            outputs = backend.generate([_step_request(w, config, model) for w in active])
            if len(outputs) != len(active):
                raise RuntimeError(f"backend returned {len(outputs)} outputs for {len(active)} requests")
            for walk, raw in zip(active, outputs):
                before = walk.position
                _advance(walk, raw, config)
                bar.update(walk.position - before)
                if walk.stop_reason is not None:
                    bar.update(config.max_steps - walk.position)
            active = [w for w in walks if w.stop_reason is None]
    finally:
        bar.close()
    unanswered = [w for w in walks if w.predicted is None and w.steps and config.force_answer]
    if unanswered:
        requests = [_answer_request(w, config, model) for w in unanswered]
        for walk, raw in zip(unanswered, backend.generate(requests)):
            walk.predicted = _forced_answer(raw, config)
            walk.forced_answer = walk.predicted is not None
    traces = [_to_trace(w, graph, backend, config, model) for w in walks if w.steps]
    if config.filter_correct:
        traces = [t for t in traces if t.meta.get("correct") is True]
    return traces


def _to_trace(walk: _Walk, graph: TransferGraph, backend: Backend, config: SynthConfig,
              model: str | None) -> Trace:
    correct = grade_answer(walk.predicted, walk.question.answer)
    meta: dict[str, Any] = {
        "graph": _graph_label(graph), "backend": backend.name, "backend_identity": backend.identity,
        "model": model, "seed": config.seed, "walk": walk.index, "question_id": walk.question.question_id,
        "stop_reason": walk.stop_reason, "predicted": walk.predicted, "correct": correct,
        "forced_answer": walk.forced_answer, "retries": walk.retries, "early_answers": walk.early_answers,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
    }
    return Trace(trace_id=f"molesyn-{walk.question.question_id}-s{config.seed}-w{walk.index}",
                 steps=list(walk.steps), model=f"molesyn-{_graph_label(graph)}", question=walk.question.question,
                 answer=walk.question.answer,
                 final=f"\\boxed{{{walk.predicted}}}" if walk.predicted is not None else None,
                 behaviors=walk.plan[:len(walk.steps)], source=walk.question.source, meta=meta)


# -------------------------------------------------------------------------------------------------------- export
def completion_text(trace: Trace) -> str:
    """``<think>`` + the steps + ``</think>`` + the boxed final answer: the SFT target of a synthesised trace."""
    body = "<think>\n" + "\n\n".join(trace.steps) + "\n</think>\n\n"
    return body + (trace.final or "")


def to_hf_dataset(traces: Sequence[Trace], conversational: bool = False) -> Any:
    """A ``datasets.Dataset`` for TRL SFT: ``prompt`` (the question), ``completion`` and provenance columns.

    ``conversational=True`` gives chat-format columns (``[{"role": "user", ...}]``/``[{"role": "assistant", ...}]``).
    """
    from datasets import Dataset

    rows = []
    for trace in traces:
        if not trace.question:
            raise InputError(f"trace {trace.trace_id} has no question, so it cannot become an SFT example",
                             trace.source)
        completion = completion_text(trace)
        rows.append({
            "prompt": [{"role": "user", "content": trace.question}] if conversational else trace.question,
            "completion": [{"role": "assistant", "content": completion}] if conversational else completion,
            "answer": trace.answer or "", "trace_id": trace.trace_id, "behaviors": list(trace.behaviors or []),
        })
    return Dataset.from_list(rows)


# -------------------------------------------------------------------------------------------------------- fidelity
@dataclass
class Fidelity:
    """How faithfully synthesised traces carry the target structure.

    Attributes:
        pearson_labelled: Pearson r between the transfer graph of the *labelled* traces and the target graph.
        pearson_requested: Pearson r between the graph of the *requested* behaviour sequences and the target (the
            walk itself; close to 1 for enough steps).
        agreement: share of steps whose labelled behaviour equals the requested one, per behaviour and ``"all"``.
        confusion: ``confusion[requested][labelled]`` step counts.
        mean_steps: mean steps per trace.
        answer_rate: share of traces with a boxed final answer.
        accuracy: share of traces (with a gold answer) whose answer is correct; ``None`` when there is no gold.
        n_traces: traces measured.
        labeler: name of the labeller.
        labelled_graph: the labelled traces' graph.
        requested_graph: the requested sequences' graph.
    """

    pearson_labelled: float
    pearson_requested: float
    agreement: dict[str, float]
    confusion: dict[str, dict[str, int]]
    mean_steps: float
    answer_rate: float
    accuracy: float | None
    n_traces: int
    labeler: str
    labelled_graph: TransferGraph
    requested_graph: TransferGraph

    def to_dict(self) -> dict[str, Any]:
        record = {k: v for k, v in asdict(self).items() if k not in ("labelled_graph", "requested_graph")}
        record["labelled_graph"] = self.labelled_graph.to_dict()
        record["requested_graph"] = self.requested_graph.to_dict()
        return record

    def summary(self) -> str:
        agreement = "  ".join(f"{b}={self.agreement[b]:.2f}" if not np.isnan(self.agreement[b]) else f"{b}=n/a"
                              for b in (*STATES, "all"))
        accuracy = f"{self.accuracy:.3f}" if self.accuracy is not None else "n/a"
        return (f"traces={self.n_traces}  mean_steps={self.mean_steps:.2f}  answer_rate={self.answer_rate:.3f}  "
                f"accuracy={accuracy}\n"
                f"pearson(labelled graph [{self.labeler}], target) = {self.pearson_labelled:.3f}\n"
                f"pearson(requested walk graph, target)      = {self.pearson_requested:.3f}\n"
                f"agreement labelled==requested: {agreement}")


def fidelity(traces: Sequence[Trace], graph: TransferGraph, labeler: Any = DEFAULT_LABELER) -> Fidelity:
    """Measure synthesised traces against the target ``graph`` with a labeller (instance or registered name)."""
    from .labelers import get_labeler, label_corpus

    if not traces:
        raise InputError("no traces to measure")
    for trace in traces:
        if trace.behaviors is None:
            raise InputError(f"trace {trace.trace_id} has no requested behaviours ('gold' field)", trace.source)
    labeler_obj = get_labeler(labeler) if isinstance(labeler, str) else labeler
    labels = label_corpus(traces, labeler_obj)
    requested = [list(t.behaviors or []) for t in traces]
    labelled_graph = TransferGraph.from_sequences(labels, labeler=labeler_obj.name, name="labelled")
    requested_graph = TransferGraph.from_sequences(requested, name="requested")
    confusion = {b: {c: 0 for c in STATES} for b in STATES}
    for want_seq, got_seq in zip(requested, labels):
        for want, got in zip(want_seq, got_seq):
            confusion[want][got] += 1
    agreement = {}
    for b in STATES:
        total = sum(confusion[b].values())
        agreement[b] = confusion[b][b] / total if total else float("nan")
    n_steps = sum(len(s) for s in requested)
    agreement["all"] = sum(confusion[b][b] for b in STATES) / n_steps if n_steps else float("nan")
    answered = [t for t in traces if extract_boxed(t.final) is not None]
    graded = [grade_answer(extract_boxed(t.final), t.answer) for t in traces]
    graded = [g for g in graded if g is not None]
    return Fidelity(
        pearson_labelled=pearson(labelled_graph, graph), pearson_requested=pearson(requested_graph, graph),
        agreement=agreement, confusion=confusion, mean_steps=float(np.mean([len(t.steps) for t in traces])),
        answer_rate=len(answered) / len(traces), accuracy=(sum(graded) / len(graded)) if graded else None,
        n_traces=len(traces), labeler=labeler_obj.name, labelled_graph=labelled_graph,
        requested_graph=requested_graph)


__all__ = [
    "PROMPT_STYLES", "Fidelity", "StepPrompt", "SynthConfig", "answer_prompt", "build_messages", "clean_step",
    "completion_text", "derive_seed", "extract_boxed", "few_shot_chat_prompt", "fidelity", "find_boxed",
    "grade_answer", "normalize_answer", "paper_prompt", "register_prompt_style", "step_prompt", "synthesize",
    "to_hf_dataset", "transcript_prompt", "unbox", "walk_plan",
]
