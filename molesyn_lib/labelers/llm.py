"""The ``llm`` labeller: a judge model, prompted with the paper's four behaviour definitions, labels each step.

For every step the judge sees the definitions (:data:`molesyn_lib.behaviors.DEFINITIONS`), the question (if known),
the previous step as context and the step itself, and is asked to answer with one letter N, D, R or E. All steps of
all traces go to the generation backend as one batched call (greedy decoding, a few tokens each), through the
on-disk generation cache unless ``cache=False``. :func:`parse_behavior` reads the answer: the first standalone
N/D/R/E letter or behaviour name; an unparseable answer becomes ``"N"`` and is counted in :attr:`LLMLabeler.unparsed`.

Two prompt styles: ``chat`` (system prompt with the definitions, a user turn with the step; for capable judges) and
``few_shot`` (plain-text continuation: the definitions, one labelled example step of each behaviour, then
``Behavior:`` to complete; small chat models such as SmolLM2-135M answer the chat prompt with small talk, "You are
correct, ...", instead of a letter). ``auto`` picks ``few_shot`` for the ``transformers`` backend, ``chat`` otherwise.

Default judge: SmolLM2-135M-Instruct on the ``transformers`` backend (weak: measure it before trusting it); any
backend of :mod:`molesyn_lib.backends` (``openai`` for a vLLM server, ``mock`` in tests) can be used instead.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends import Backend, CachedBackend, GenerationRequest, get_backend
from ..behaviors import DEFINITIONS, NAMES, STATES
from ..traces import Trace
from .base import register_labeler

SYSTEM_PROMPT = (
    "You classify one step of a reasoning trace into one of four behaviors.\n"
    + "\n".join(f"{code}: {DEFINITIONS[code]}" for code in STATES)
    + "\nAnswer with one letter: N, D, R or E."
)

#: One labelled example step of each behaviour for the ``few_shot`` prompt (same worked example as MOLE-SYN's).
FEW_SHOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("4 pens cost 4 x 3 = 12 dollars.", "N"),
    ("Wait, let me check the cost again: 3 + 3 + 3 + 3 = 12, so 12 dollars is right.", "R"),
    ("The change is what is left of the 20 dollars after paying for the pens, so we need 20 - 12.", "D"),
    ("Alternatively, we could count up from 12 to 20 to find the change.", "E"),
)
PROMPT_STYLES = ("auto", "chat", "few_shot")

_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    ("N", r"normal(?:\s+operation)?"), ("D", r"deep(?:\s+reasoning)?"), ("R", r"self[- ]?reflection|reflection"),
    ("E", r"self[- ]?exploration|exploration"),
)
_ANSWER_RE = re.compile(
    r"(?<![A-Za-z])(?:(?P<letter>[NDRE])|(?P<name>" + "|".join(p for _, p in _NAME_PATTERNS) + r"))(?![A-Za-z])",
    re.IGNORECASE,
)


def parse_behavior(text: str) -> str | None:
    """The behaviour a judge answered: the first standalone N/D/R/E letter (upper case) or behaviour name."""
    for match in _ANSWER_RE.finditer(text or ""):
        letter = match.group("letter")
        if letter is not None:
            if letter.isupper():
                return letter
            continue
        name = match.group("name").lower()
        for code, pattern in _NAME_PATTERNS:
            if re.fullmatch(pattern, name, re.IGNORECASE):
                return code
    return None


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " ..."


class LLMLabeler:
    """Labels steps with a judge model behind a generation backend.

    Args:
        backend: a backend name (``"transformers"`` default, ``"openai"``, ``"mock"``...) or a built backend.
        model: the judge model (backend option; ``"smollm2"`` for the transformers backend).
        cache: wrap the backend in a :class:`~molesyn_lib.backends.CachedBackend` (default on).
        cache_dir: folder of the generation cache (default ``cache_dir()``).
        max_new_tokens: answer budget per step.
        step_chars: steps longer than this are clipped in the prompt.
        context_chars: the previous step is clipped to this length.
        question_chars: the question is clipped to this length.
        prompt_style: ``"auto"``, ``"chat"`` or ``"few_shot"`` (see the module docstring).
        backend_options: extra keyword options for the backend factory.
    """

    name = "llm"

    def __init__(self, backend: str | Backend = "transformers", model: str | None = None, cache: bool = True,
                 cache_dir: str | Path | None = None, max_new_tokens: int = 4, step_chars: int = 1200,
                 context_chars: int = 400, question_chars: int = 600, progress: bool = True,
                 prompt_style: str = "auto", backend_options: dict[str, Any] | None = None):
        if isinstance(backend, str):
            options = dict(backend_options or {})
            if model is not None:
                options["model"] = model
            built: Backend = get_backend(backend, **options)
        else:
            built = backend
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"unknown llm labeller prompt style {prompt_style!r}; known: {', '.join(PROMPT_STYLES)}")
        if prompt_style == "auto":
            prompt_style = "few_shot" if built.name == "transformers" else "chat"
        self.prompt_style = prompt_style
        self.backend: Backend = CachedBackend(built, cache_dir=cache_dir, progress=progress) if cache else built
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.step_chars = step_chars
        self.context_chars = context_chars
        self.question_chars = question_chars
        self.unparsed = 0
        self.answers: list[str] = []

    def request(self, step: str, previous: str | None = None, question: str | None = None) -> GenerationRequest:
        """The judge request for one step."""
        previous_text = _clip(previous, self.context_chars) if previous else "(none, this is the first step)"
        if self.prompt_style == "few_shot":
            examples = "".join(f"Step: {text}\nBehavior: {code}\n\n" for text, code in FEW_SHOT_EXAMPLES)
            context = f"Question: {_clip(question, self.question_chars)}\n" if question else ""
            prompt = (f"{SYSTEM_PROMPT}\n\n{examples}{context}Previous step: {previous_text}\n"
                      f"Step: {_clip(step, self.step_chars)}\nBehavior:")
            return GenerationRequest(prompt=prompt, max_new_tokens=self.max_new_tokens, temperature=0.0,
                                     stop=("\n",), model=self.model)
        parts = []
        if question:
            parts.append(f"Question: {_clip(question, self.question_chars)}")
        parts.append(f"Previous step: {previous_text}")
        parts.append(f"Step to classify: {_clip(step, self.step_chars)}")
        parts.append("Which behavior is this step: N (" + NAMES["N"] + "), D (" + NAMES["D"] + "), R (" + NAMES["R"]
                     + ") or E (" + NAMES["E"] + ")? Answer with one letter.")
        return GenerationRequest(messages=({"role": "system", "content": SYSTEM_PROMPT},
                                           {"role": "user", "content": "\n\n".join(parts)}),
                                 max_new_tokens=self.max_new_tokens, temperature=0.0, model=self.model)

    def label(self, traces: Sequence[Trace]) -> list[list[str]]:
        requests = [self.request(step, trace.steps[i - 1] if i else None, trace.question)
                    for trace in traces for i, step in enumerate(trace.steps)]
        answers = self.backend.generate(requests) if requests else []
        self.answers = list(answers)
        labels: list[list[str]] = []
        at = 0
        for trace in traces:
            trace_labels = []
            for answer in answers[at:at + len(trace.steps)]:
                code = parse_behavior(answer)
                if code is None:
                    self.unparsed += 1
                    code = "N"
                trace_labels.append(code)
            at += len(trace.steps)
            labels.append(trace_labels)
        return labels


@register_labeler("llm")
def make_llm_labeler(**options: Any) -> LLMLabeler:
    """Factory of the ``llm`` labeller (options: see :class:`LLMLabeler`)."""
    return LLMLabeler(**options)
