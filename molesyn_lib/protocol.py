"""The MOLE-SYN step-request protocol: the parts of a synthesis prompt that a backend reads back, in one place.

A MOLE-SYN prompt (:mod:`molesyn_lib.synth`) asks a model for one step of a requested behaviour. Most of it is prose
for the model (preamble, definitions, instructions, worked example) and may be reworded freely. A few parts are the
**protocol**: offline backends (the ``mock`` backend of :mod:`molesyn_lib.backends` and the ``lab`` backend of
:mod:`molesyn_lib.lab.writer`) read them back to know what was asked. This module renders them and parses them,
so a prompt and its readers cannot drift apart:

* the question line, :data:`QUESTION` (``"Question: <question>"``);
* the steps so far under a header (:data:`STEPS_HEADER` in the few-shot chat style, :data:`RATIONALE_HEADER`
  in the paper style and the answer request), separated by blank lines; :data:`NO_STEPS` / :data:`EMPTY_RATIONALE`
  when there are none;
* the chat styles' behaviour request :data:`CONDUCT` ("You should conduct <behaviour name> behavior now.");
* the transcript style's lines ``"<behaviour name>: <step>"``, ending with the requested behaviour's empty tag;
* the answer requests: :data:`ANSWER_QUESTION` (chat) and :data:`FINAL_ANSWER` (transcript).

:func:`render_request` writes a request's protocol parts (:func:`render_conduct`, :func:`render_steps`,
:func:`render_transcript` are its pieces); :func:`parse_request` reads a whole prompt back into a
:class:`StepRequest` (question, steps, behaviour or ``None`` for an answer request, transcript or chat);
:func:`requested_behavior` is the lenient reading the mock backend uses. The regular expressions are built from the
templates above, so changing a template changes writer and readers together.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .behaviors import NAMES, STATES, check_behavior
from .errors import MolesynError

#: The question line's label.
QUESTION = "Question:"
#: Header of the steps so far in the few-shot chat style, and its text when there are none.
STEPS_HEADER, NO_STEPS = "Steps so far:", "(none)"
#: Header of the steps so far in the paper style and the answer request, and its text when there are none.
RATIONALE_HEADER, EMPTY_RATIONALE = "Rationale:", "(empty)"
#: The chat styles' request for one behaviour; ``{name}`` is the behaviour's name (:data:`~.behaviors.NAMES`).
CONDUCT = "You should conduct {name} behavior now."
#: The chat answer request's question.
ANSWER_QUESTION = "What is the final answer?"
#: The transcript answer request's last line (the output continues the box).
FINAL_ANSWER = "Final answer: \\boxed{"
#: What separates steps in a chat prompt's steps block.
STEP_SEPARATOR = "\n\n"
#: The prefix of a truncated steps block (``SynthConfig.max_rationale_chars``).
TRUNCATED = "..."

_BY_NAME = {NAMES[b].lower(): b for b in STATES}


@dataclass(frozen=True)
class StepRequest:
    """What a MOLE-SYN prompt asks (see :func:`parse_request`).

    Attributes:
        question: the question text.
        steps: the steps written so far (whole ones; a truncated block is an error).
        behavior: the requested behaviour, or ``None`` for a final-answer request.
        transcript: the prompt is a plain-text transcript continuation (not chat).
    """

    question: str
    steps: tuple[str, ...]
    behavior: str | None
    transcript: bool


# ------------------------------------------------------------------------------------------------------ rendering
def render_conduct(behavior: str) -> str:
    """The chat styles' request for one step of ``behavior`` (:data:`CONDUCT`)."""
    return CONDUCT.format(name=NAMES[check_behavior(behavior)])


def render_tag(behavior: str) -> str:
    """The transcript tag of ``behavior`` (``"Self-reflection:"``)."""
    return f"{NAMES[check_behavior(behavior)]}:"


def render_steps(rationale: str, header: str | None = None) -> str:
    """The steps block: ``header`` (default :data:`STEPS_HEADER`) and the steps so far (already joined by
    :data:`STEP_SEPARATOR`, perhaps starting with :data:`TRUNCATED`), or the header's empty marker."""
    header = STEPS_HEADER if header is None else header
    empty = NO_STEPS if header == STEPS_HEADER else EMPTY_RATIONALE
    return f"{header}\n{rationale or empty}"


def render_question(question: str) -> str:
    """The question line."""
    return f"{QUESTION} {question}"


def render_transcript(question: str, tagged: Sequence[tuple[str, str]]) -> str:
    """A transcript: the question line, then one ``"<behaviour name>: <step>"`` line per ``(behaviour, step)``."""
    return f"{render_question(question)}\n" + "".join(f"{render_tag(b)} {text}\n" for b, text in tagged)


def render_request(behavior: str | None, question: str, steps: Sequence[str] = (),
                   behaviors: Sequence[str] | None = None, transcript: bool = False,
                   header: str | None = None) -> str:
    """The protocol part of a request for one step of ``behavior`` (``None``: the final answer).

    ``transcript``: the transcript lines ending in ``behavior``'s empty tag (or :data:`FINAL_ANSWER`); ``behaviors``
    tags the steps (default N). Otherwise the chat form: question line, steps block under ``header`` and the
    :data:`CONDUCT` sentence (or :data:`ANSWER_QUESTION`). :func:`parse_request` reads either back.
    """
    if transcript:
        tags = list(behaviors) if behaviors is not None else ["N"] * len(steps)
        lines = render_transcript(question, list(zip(tags, steps)))
        return lines + (FINAL_ANSWER if behavior is None else render_tag(behavior))
    ask = ANSWER_QUESTION if behavior is None else render_conduct(behavior)
    return f"{render_question(question)}\n\n{render_steps(STEP_SEPARATOR.join(steps), header)}\n\n{ask}"


# -------------------------------------------------------------------------------------------------------- parsing
def _names_pattern() -> str:
    return "|".join(re.escape(NAMES[b]) for b in STATES)


def _conduct_re() -> re.Pattern[str]:
    pattern = re.escape(CONDUCT).replace(re.escape("{name}"), f"({_names_pattern()})")
    return re.compile(pattern, re.IGNORECASE)


def _tag_line_re() -> re.Pattern[str]:
    return re.compile(rf"^({_names_pattern()}):[ \t]?(.*)$", re.IGNORECASE)


def _behavior_named(name: str) -> str:
    return _BY_NAME[name.lower()]


def requested_behavior(text: str) -> str | None:
    """The behaviour a prompt's text asks for, leniently: the last :data:`CONDUCT` sentence, else a behaviour tag
    ending the text (transcript style); ``None`` when it asks for none."""
    conduct = _conduct_re().findall(text)
    if conduct:
        return _behavior_named(conduct[-1])
    tag = re.search(rf"({_names_pattern()}):\s*$", text)
    return _behavior_named(tag.group(1)) if tag else None


def parse_request(prompt: str | None = None, messages: Sequence[Mapping[str, str]] | None = None) -> StepRequest:
    """Read a MOLE-SYN step or answer request in any of :mod:`molesyn_lib.synth`'s prompt styles.

    * plain ``prompt`` (transcript style): the last question line, then tagged step lines, ending in the requested
      behaviour's empty tag (or :data:`FINAL_ANSWER` for the answer request);
    * chat ``messages`` (paper / few-shot chat styles): the last user message's question line and steps block,
      and the :data:`CONDUCT` sentence of any message (or :data:`ANSWER_QUESTION`).

    Raises :class:`~molesyn_lib.errors.MolesynError` when the text is none of these, or its steps block was
    truncated (the steps so far cannot be known then).
    """
    if (prompt is None) == (messages is None):
        raise MolesynError("a MOLE-SYN request has exactly one of a prompt or chat messages")
    if prompt is not None:
        text = everything = prompt
    else:
        chat = list(messages or ())
        text = next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")
        everything = "\n".join(m["content"] for m in chat)
    at = text.rfind(QUESTION)
    if at < 0:
        raise MolesynError(f"the request has no {QUESTION!r} line (is it a MOLE-SYN prompt?)")
    tail = text[at + len(QUESTION):]
    lines = tail.split("\n")
    tag_line = _tag_line_re()
    tagged = [tag_line.match(line) for line in lines[1:]]
    if prompt is not None and (any(tagged) or lines[-1].startswith(FINAL_ANSWER)):
        question = lines[0].strip()
        steps = tuple(m.group(2).strip() for m in tagged if m and m.group(2).strip())
        if lines[-1].startswith(FINAL_ANSWER):
            return StepRequest(question, steps, None, True)
        final_tag = tag_line.match(lines[-1])
        if final_tag is None or final_tag.group(2).strip():
            raise MolesynError("the transcript does not end with an empty behaviour tag")
        return StepRequest(question, steps, _behavior_named(final_tag.group(1)), True)
    first = re.match(r"\s*(.*?)\s*(?:\n\n|$)", tail, re.DOTALL)
    question = first.group(1) if first else ""
    headers = "|".join(re.escape(h) for h in (STEPS_HEADER, RATIONALE_HEADER))
    ends = f"(?i:{_conduct_re().pattern})|{re.escape(ANSWER_QUESTION)}"
    block = re.search(rf"(?:{headers})\n(.*?)(?:{re.escape(STEP_SEPARATOR)}(?:{ends})|$)", text, re.DOTALL)
    rationale = block.group(1).strip() if block else ""
    if rationale.startswith(TRUNCATED):
        raise MolesynError("the steps so far were truncated by max_rationale_chars; raise it")
    steps = () if rationale in {NO_STEPS, EMPTY_RATIONALE, ""} else tuple(
        s.strip() for s in rationale.split(STEP_SEPARATOR) if s.strip())
    if ANSWER_QUESTION in everything:
        return StepRequest(question, steps, None, False)
    conduct = _conduct_re().findall(everything)
    if not conduct:
        raise MolesynError("the request does not say which behaviour to conduct")
    return StepRequest(question, steps, _behavior_named(conduct[-1]), False)


__all__ = [
    "ANSWER_QUESTION", "CONDUCT", "EMPTY_RATIONALE", "FINAL_ANSWER", "NO_STEPS", "QUESTION", "RATIONALE_HEADER",
    "STEPS_HEADER", "STEP_SEPARATOR", "TRUNCATED", "StepRequest", "parse_request", "render_conduct",
    "render_question", "render_request", "render_steps", "render_tag", "render_transcript", "requested_behavior",
]
