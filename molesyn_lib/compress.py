"""Compressing reasoning traces, and how much each compression disrupts their molecular structure (Chapter 5).

The paper argues that summarised or compressed thinking (token reductions of about 45% and more) breaks the bond
distribution, which is why students distilled from such traces learn badly. This module provides the compressors and
the measurements.

**Compressors** (registry keyed by name: :func:`get_compressor`, :func:`available_compressors`). Each maps a trace and a
``strength`` in [0, 1] (how much to remove; 0 always returns the trace unchanged) to a :class:`CompressedTrace`: a new
:class:`~molesyn_lib.traces.Trace` plus the **provenance** of every output step (the original steps it came from) and
the **token reduction** ``1 - tokens(compressed) / tokens(original)``.

* ``extractive``: drop steps by behaviour, keeping the backbone. ``floor(strength * (n_R + n_E + n_N))`` steps are
  removed: reflection/exploration steps first, then normal steps; deep-reasoning steps are never removed (strength 1
  keeps only D steps, or the last step when there is none). Within a class the removed steps are spread evenly over
  the trace. Needs behaviours (given, the trace's own, or from a labeller, default ``lexical``).
* ``merge``: merge runs of consecutive steps into one step, the runs starting at :func:`stride_starts` (runs of 2 at
  strength 0.5, of 4 at 0.75, alternately 2 and 3 at 0.6; the whole trace at 1), so ``ceil((1 - strength) * n)``
  steps remain. Texts are concatenated with light deduplication: a sentence whose normalised form already occurred in
  the same merged step (``dedup="group"``; ``"trace"``: anywhere before; ``"none"``) is dropped. Merging removes
  boundaries rather than text, so its token reduction stays small: it changes the *measured* structure (the step unit)
  while the text stays nearly whole.
* ``truncate``: keep the first ``n - floor(strength * n)`` steps (at least one).
* ``keep_every``: keep every ``k``-th step with a fractional stride ``k = 1 / (1 - strength)``: steps
  ``floor(j * k)`` for ``j = 0, 1, ...`` (:func:`stride_starts`; every 2nd step at 0.5, every 4th at 0.75, the first
  step only at 1), so ``ceil((1 - strength) * n)`` steps remain and the reduction grows smoothly with strength.
* ``summarize``: abstractive summarisation with an LLM backend (:mod:`molesyn_lib.backends`: the SmolLM2
  ``transformers`` backend by default, any local HF model, an OpenAI-compatible server, or ``mock``). Steps are grouped
  into chunks of about ``chunk_tokens`` tokens so long traces fit the model; each chunk is summarised to about
  ``(1 - strength)`` of its tokens with :data:`SUMMARY_PROMPT`; every non-empty line of a summary becomes a step whose
  provenance is its chunk. Generations go through the backend's on-disk cache.

**Tokens** are counted with a real tokenizer (:func:`get_token_counter`): ``"auto"`` uses the SmolLM2 tokenizer when its
checkpoint is available (:mod:`molesyn_lib.models`, no download) and otherwise the ``regex`` proxy: runs of letters count
one token per started 7 characters, every digit and every other non-space character one token. On 3,000 steps of R1,
QwQ and gpt-oss traces that proxy totals 1.00x the SmolLM2 count (median per-step error 7%). The tokens of a trace are
its steps' tokens plus those of the blank line between consecutive steps (the thinking text as a student would read
it). Reductions are ratios, so the tokenizer matters little; it is recorded with every result.

**Structure disruption** (:func:`structure_disruption`, :func:`compression_curve`): the original and compressed traces
are labelled by the same labeller and their transfer graphs (:mod:`molesyn_lib.transfer`) compared: Pearson r of the
transition matrices and Jensen-Shannon distances of the transitions and marginals. :func:`reduction_point` interpolates
a curve at a target token reduction (the paper's ~45%).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from .errors import MolesynError, UnknownNameError
from .labelers.base import DEFAULT_LABELER
from .registry import Registry
from .traces import Trace

#: Text between consecutive steps when a trace is read as one text (counted in the trace's tokens).
STEP_SEPARATOR = "\n\n"
#: The proxy's longest letter piece counted as one token.
REGEX_PIECE_CHARS = 7
_REGEX_TOKEN_RE = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")


# ----------------------------------------------------------------------------------------------------------- tokens
@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens of a text; ``name`` says which tokenizer (recorded with results)."""

    name: str

    def count(self, text: str) -> int:
        ...


@dataclass
class RegexTokenCounter:
    """The tokenizer-free proxy: a run of letters counts one token per started ``piece_chars`` characters, each digit
    and each other non-space character one token (calibrated on SmolLM2's BPE, see the module docstring)."""

    piece_chars: int = REGEX_PIECE_CHARS
    name: str = "regex"

    def count(self, text: str) -> int:
        total = 0
        for match in _REGEX_TOKEN_RE.finditer(text):
            word = match.group()
            total += math.ceil(len(word) / self.piece_chars) if word[0].isalpha() else 1
        return total


class HFTokenCounter:
    """Counts tokens with a Hugging Face tokenizer (no special tokens); remembers the counts of texts it has seen."""

    def __init__(self, tokenizer: Any, name: str):
        self.tokenizer = tokenizer
        self.name = name
        self._memo: dict[str, int] = {}

    def count(self, text: str) -> int:
        found = self._memo.get(text)
        if found is None:
            found = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
            if len(self._memo) < 500_000:
                self._memo[text] = found
        return found


_COUNTERS: dict[str, TokenCounter] = {}


def _smollm2_counter() -> TokenCounter:
    from transformers import AutoTokenizer

    from .models import smollm2_path

    return HFTokenCounter(AutoTokenizer.from_pretrained(str(smollm2_path(allow_download=False)),
                                                        local_files_only=True), "smollm2")


def get_token_counter(spec: str | TokenCounter | Any | None = "auto") -> TokenCounter:
    """A token counter from a name or object.

    * ``"auto"`` (or ``None``): SmolLM2's tokenizer when its local checkpoint (or GGUF) is available, else ``regex``;
    * ``"smollm2"``: SmolLM2's tokenizer (:class:`MolesynError` when unavailable);
    * ``"regex"``: the proxy (:class:`RegexTokenCounter`);
    * any other string: a local tokenizer folder or a model id in the local HF cache;
    * an object with ``count(text)`` is used as it is; a HF tokenizer object is wrapped.
    """
    if spec is None:
        spec = "auto"
    if not isinstance(spec, str):
        if isinstance(spec, TokenCounter):
            return spec
        if callable(spec):
            return HFTokenCounter(spec, getattr(spec, "name_or_path", None) or type(spec).__name__)
        raise MolesynError(f"not a tokenizer: {spec!r}")
    if spec in _COUNTERS:
        return _COUNTERS[spec]
    if spec == "regex":
        counter: TokenCounter = RegexTokenCounter()
    elif spec in ("smollm2", "auto"):
        try:
            counter = _smollm2_counter()
        except (ImportError, OSError, MolesynError) as exc:
            if spec == "smollm2":
                raise MolesynError(f"the SmolLM2 tokenizer is not available ({exc})") from None
            counter = RegexTokenCounter()
    else:
        from transformers import AutoTokenizer

        try:
            counter = HFTokenCounter(AutoTokenizer.from_pretrained(spec, local_files_only=True), spec)
        except (OSError, ValueError) as exc:
            raise MolesynError(f"cannot load tokenizer {spec!r} locally: {str(exc).splitlines()[0]}") from None
    _COUNTERS[spec] = counter
    return counter


def trace_tokens(steps: Sequence[str], counter: TokenCounter) -> int:
    """Tokens of a trace's steps read as one text: the steps plus a blank-line separator between consecutive ones."""
    if not steps:
        return 0
    return sum(counter.count(s) for s in steps) + (len(steps) - 1) * counter.count(STEP_SEPARATOR)


# ------------------------------------------------------------------------------------------------------- results
@dataclass
class CompressedTrace:
    """One compressed trace.

    Attributes:
        trace: the compressed trace (same id, question, answer and final answer; ``meta["compression"]`` records the
            method, strength, token counts and provenance so it survives a JSONL round trip).
        original: the trace it was made from.
        method: the compressor's name.
        strength: the strength used.
        provenance: for each output step, the indices of the original steps it came from.
        original_tokens: tokens of the original steps.
        compressed_tokens: tokens of the compressed steps.
        tokenizer: the token counter's name.
    """

    trace: Trace
    original: Trace
    method: str
    strength: float
    provenance: list[list[int]]
    original_tokens: int
    compressed_tokens: int
    tokenizer: str

    @property
    def token_reduction(self) -> float:
        """``1 - compressed / original`` tokens (0 for an empty original)."""
        return 1.0 - self.compressed_tokens / self.original_tokens if self.original_tokens else 0.0


@dataclass
class StepPlan:
    """What a compressor decided for one trace: the output steps and, for each, the original steps it came from."""

    steps: list[str]
    provenance: list[list[int]]


def _check_strength(strength: float) -> float:
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise MolesynError(f"strength must be a number in [0, 1], got {strength!r}") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise MolesynError(f"strength must be in [0, 1], got {strength}")
    return value


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def stride_starts(n_steps: int, strength: float) -> list[int]:
    """Step indices ``floor(j / (1 - strength))`` for ``j = 0 .. ceil((1 - strength) * n_steps) - 1``: every ``k``-th
    step for a fractional stride ``k = 1 / (1 - strength)`` (``[0]`` at strength 1, all steps at 0)."""
    if n_steps <= 0:
        return []
    keep = 1.0 - strength
    if keep <= 0.0:
        return [0]
    count = max(1, math.ceil(keep * n_steps - 1e-9))
    return sorted({min(n_steps - 1, math.floor(j / keep + 1e-9)) for j in range(count)})


def _evenly_spaced(indices: Sequence[int], count: int) -> list[int]:
    """``count`` of ``indices`` spread evenly (deterministic)."""
    if count <= 0:
        return []
    if count >= len(indices):
        return list(indices)
    positions = np.rint(np.linspace(0, len(indices) - 1, count)).astype(int)
    return [indices[p] for p in positions.tolist()]


# ---------------------------------------------------------------------------------------------------- compressors
#: The compressors by name, in registration order (:func:`register_compressor`, :func:`get_compressor`).
COMPRESSORS: Registry[type[BaseCompressor]] = Registry("compression method", sort=False)


def register_compressor(name: str) -> Callable[[type[BaseCompressor]], type[BaseCompressor]]:
    """Class decorator registering a compressor under ``name``."""

    def decorator(cls: type[BaseCompressor]) -> type[BaseCompressor]:
        cls.name = name
        return COMPRESSORS.register(name, cls)

    return decorator


def available_compressors() -> list[str]:
    """Names of the registered compressors."""
    return COMPRESSORS.names()


def get_compressor(name: str, **options: Any) -> BaseCompressor:
    """Build the compressor registered under ``name`` (:class:`~molesyn_lib.errors.UnknownNameError` listing the
    known ones for an unknown name)."""
    return COMPRESSORS.get(name)(**options)


class BaseCompressor:
    """The compressor interface: subclasses implement :meth:`plan`; :meth:`compress_batch` / :meth:`compress` add token
    counts, provenance and the compressed :class:`Trace`.

    Args:
        tokenizer: what counts tokens (see :func:`get_token_counter`).
    """

    name: ClassVar[str] = "base"
    #: Whether :meth:`plan` needs per-step behaviours.
    needs_behaviors: ClassVar[bool] = False
    #: Whether output steps are original steps unchanged (so gold behaviours carry over).
    selects_steps: ClassVar[bool] = True

    def __init__(self, tokenizer: str | TokenCounter | Any | None = "auto"):
        self.token_counter = get_token_counter(tokenizer)

    def plan(self, traces: Sequence[Trace], strength: float,
             behaviors: Sequence[Sequence[str]] | None) -> list[StepPlan]:
        raise NotImplementedError

    def compress_batch(self, traces: Sequence[Trace], strength: float,
                       behaviors: Sequence[Sequence[str]] | None = None) -> list[CompressedTrace]:
        """Compress each trace at ``strength`` (``behaviors``: one label list per trace, for ``extractive``)."""
        strength = _check_strength(strength)
        traces = list(traces)
        if behaviors is not None and len(behaviors) != len(traces):
            raise MolesynError(f"{len(behaviors)} behaviour lists for {len(traces)} traces")
        if strength == 0.0:
            plans = [StepPlan(list(t.steps), [[i] for i in range(len(t.steps))]) for t in traces]
        else:
            plans = self.plan(traces, strength, behaviors)
        return [self._result(trace, plan, strength) for trace, plan in zip(traces, plans)]

    def compress(self, trace: Trace, strength: float, behaviors: Sequence[str] | None = None) -> CompressedTrace:
        """Compress one trace."""
        return self.compress_batch([trace], strength, [list(behaviors)] if behaviors is not None else None)[0]

    def _result(self, trace: Trace, plan: StepPlan, strength: float) -> CompressedTrace:
        original_tokens = trace_tokens(trace.steps, self.token_counter)
        compressed_tokens = trace_tokens(plan.steps, self.token_counter)
        carried = None
        if self.selects_steps and trace.behaviors is not None and all(len(p) == 1 for p in plan.provenance):
            carried = [trace.behaviors[p[0]] for p in plan.provenance]
        reduction = 1.0 - compressed_tokens / original_tokens if original_tokens else 0.0
        meta = dict(trace.meta)
        meta["compression"] = {"method": self.name, "strength": strength, "tokenizer": self.token_counter.name,
                               "original_tokens": original_tokens, "compressed_tokens": compressed_tokens,
                               "token_reduction": reduction, "original_steps": len(trace.steps),
                               "provenance": plan.provenance}
        compressed = Trace(trace_id=trace.trace_id, steps=list(plan.steps), model=trace.model,
                           question=trace.question, answer=trace.answer, final=trace.final,
                           truncated=trace.truncated, behaviors=carried, source=trace.source, meta=meta)
        return CompressedTrace(trace=compressed, original=trace, method=self.name, strength=strength,
                               provenance=plan.provenance, original_tokens=original_tokens,
                               compressed_tokens=compressed_tokens, tokenizer=self.token_counter.name)


def _select(indices: Sequence[int]) -> Callable[[Trace], StepPlan]:
    def build(trace: Trace) -> StepPlan:
        return StepPlan([trace.steps[i] for i in indices], [[i] for i in indices])
    return build


@register_compressor("truncate")
class TruncateCompressor(BaseCompressor):
    """Keep the first ``n - floor(strength * n)`` steps (at least one)."""

    def plan(self, traces: Sequence[Trace], strength: float,
             behaviors: Sequence[Sequence[str]] | None) -> list[StepPlan]:
        plans = []
        for trace in traces:
            n = len(trace.steps)
            keep = max(1, n - math.floor(strength * n + 1e-9)) if n else 0
            plans.append(_select(range(keep))(trace))
        return plans


@register_compressor("keep_every")
class KeepEveryCompressor(BaseCompressor):
    """Keep every ``k``-th step, ``k = 1 / (1 - strength)`` possibly fractional (see :func:`stride_starts`)."""

    def plan(self, traces: Sequence[Trace], strength: float,
             behaviors: Sequence[Sequence[str]] | None) -> list[StepPlan]:
        return [_select(stride_starts(len(trace.steps), strength))(trace) for trace in traces]


@register_compressor("extractive")
class ExtractiveCompressor(BaseCompressor):
    """Drop reflection/exploration steps, then normal steps; never deep-reasoning steps (see the module docstring).

    Args:
        labeler: labeller used when neither ``behaviors`` nor the traces' own labels are given.
        tokenizer: see :func:`get_token_counter`.
    """

    needs_behaviors = True

    def __init__(self, labeler: str | Any = DEFAULT_LABELER, tokenizer: str | TokenCounter | Any | None = "auto"):
        super().__init__(tokenizer)
        self.labeler = labeler

    def _behaviors(self, traces: Sequence[Trace],
                   behaviors: Sequence[Sequence[str]] | None) -> list[list[str]]:
        if behaviors is not None:
            return [list(b) for b in behaviors]
        if all(t.behaviors is not None for t in traces):
            return [list(t.behaviors or []) for t in traces]
        return label_traces(traces, self.labeler)

    def plan(self, traces: Sequence[Trace], strength: float,
             behaviors: Sequence[Sequence[str]] | None) -> list[StepPlan]:
        labels = self._behaviors(traces, behaviors)
        plans = []
        for trace, trace_labels in zip(traces, labels):
            if len(trace_labels) != len(trace.steps):
                raise MolesynError(f"trace {trace.trace_id}: {len(trace_labels)} behaviours for "
                                   f"{len(trace.steps)} steps")
            side = [i for i, b in enumerate(trace_labels) if b in ("R", "E")]
            normal = [i for i, b in enumerate(trace_labels) if b == "N"]
            budget = math.floor(strength * (len(side) + len(normal)) + 1e-9)
            removed = set(_evenly_spaced(side, min(budget, len(side))))
            removed |= set(_evenly_spaced(normal, budget - min(budget, len(side))))
            kept = [i for i in range(len(trace.steps)) if i not in removed]
            if not kept and trace.steps:
                kept = [len(trace.steps) - 1]
            plans.append(_select(kept)(trace))
        return plans


_SENTENCE_BREAK_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Cut a text after sentence punctuation and at newlines, keeping the whitespace with the piece before it, so
    that ``"".join(split_sentences(t)) == t``."""
    pieces, start = [], 0
    for match in _SENTENCE_BREAK_RE.finditer(text):
        if match.end() > start:
            pieces.append(text[start:match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def sentence_key(sentence: str) -> str:
    """Normalised form of a sentence for deduplication (lower case, words only)."""
    return " ".join(re.findall(r"\w+", sentence.lower()))


@register_compressor("merge")
class MergeCompressor(BaseCompressor):
    """Merge runs of consecutive steps (starting at :func:`stride_starts`) into one, dropping repeated sentences.

    Args:
        dedup: ``"group"`` (a sentence already in the same merged step), ``"trace"`` (anywhere earlier) or
            ``"none"``.
        tokenizer: see :func:`get_token_counter`.
    """

    selects_steps = False

    def __init__(self, dedup: str = "group", tokenizer: str | TokenCounter | Any | None = "auto"):
        super().__init__(tokenizer)
        if dedup not in ("group", "trace", "none"):
            raise MolesynError(f"dedup must be 'group', 'trace' or 'none', got {dedup!r}")
        self.dedup = dedup

    def plan(self, traces: Sequence[Trace], strength: float,
             behaviors: Sequence[Sequence[str]] | None) -> list[StepPlan]:
        plans = []
        for trace in traces:
            starts = stride_starts(len(trace.steps), strength)
            seen: set[str] = set()
            steps, provenance = [], []
            for start, end in zip(starts, [*starts[1:], len(trace.steps)]):
                group = list(range(start, end))
                if self.dedup == "group":
                    seen = set()
                parts = []
                for index in group:
                    kept = []
                    for sentence in split_sentences(trace.steps[index]):
                        key = sentence_key(sentence)
                        if key and self.dedup != "none" and key in seen:
                            continue
                        if key:
                            seen.add(key)
                        kept.append(sentence)
                    text = "".join(kept).strip()
                    if text:
                        parts.append(text)
                if parts:
                    steps.append(" ".join(parts))
                    provenance.append(group)
            plans.append(StepPlan(steps, provenance))
        return plans


#: The summarisation prompt (``{question}``, ``{part}``, ``{parts}``, ``{chunk}``, ``{words}`` are filled in).
SUMMARY_SYSTEM = ("You compress the reasoning of a problem solver. You rewrite a part of a step-by-step solution as a "
                  "shorter summary that keeps its essential computations, intermediate results and conclusions.")
SUMMARY_PROMPT = (
    "Problem:\n{question}\n\n"
    "Part {part} of {parts} of the solver's reasoning:\n\"\"\"\n{chunk}\n\"\"\"\n\n"
    "Summarise this part in at most {words} words. Keep the key steps, numbers and conclusions in their order; drop "
    "repetitions, hesitations and abandoned attempts. Write short sentences, one idea per line, with no preamble."
)
_LIST_MARKER_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


@register_compressor("summarize")
class SummarizeCompressor(BaseCompressor):
    """Abstractive summarisation of chunks of steps with an LLM backend (see the module docstring).

    Args:
        backend: a backend name (``transformers``, ``openai``, ``mock``...; built with the on-disk cache) or a backend
            object with ``generate(requests)``.
        model: the backend's model (``transformers``: id or folder, default SmolLM2; ``openai``: the served model).
        chunk_tokens: about how many tokens of steps go into one request.
        question_chars: the question is cut to this many characters in the prompt.
        temperature: 0 = greedy.
        seed: generation seed (part of the cache key).
        cache: wrap a named backend in the on-disk generation cache.
        tokenizer: see :func:`get_token_counter`.
        backend_options: passed to the backend factory (``base_url=...`` for ``openai``, ``responder=...`` for
            ``mock``...).
    """

    selects_steps = False

    def __init__(self, backend: str | Any = "transformers", model: str | None = None, chunk_tokens: int = 384,
                 question_chars: int = 600, temperature: float = 0.0, seed: int = 0, cache: bool = True,
                 tokenizer: str | TokenCounter | Any | None = "auto", **backend_options: Any):
        super().__init__(tokenizer)
        if chunk_tokens < 1:
            raise MolesynError(f"chunk_tokens must be at least 1, got {chunk_tokens}")
        self.backend_spec = backend
        self.model = model
        self.chunk_tokens = chunk_tokens
        self.question_chars = question_chars
        self.temperature = temperature
        self.seed = seed
        self.cache = cache
        self.backend_options = backend_options
        self._backend: Any = None

    @property
    def backend(self) -> Any:
        """The generation backend (built on first use)."""
        if self._backend is None:
            if isinstance(self.backend_spec, str):
                from .backends import make_backend

                options = dict(self.backend_options)
                if self.model is not None:
                    options["model"] = self.model
                self._backend = make_backend(self.backend_spec, cache=self.cache, **options)
            else:
                self._backend = self.backend_spec
        return self._backend

    def chunks(self, trace: Trace) -> list[list[int]]:
        """Consecutive step indices grouped until a group holds at least ``chunk_tokens`` tokens."""
        groups: list[list[int]] = []
        current: list[int] = []
        size = 0
        for index, step in enumerate(trace.steps):
            current.append(index)
            size += self.token_counter.count(step)
            if size >= self.chunk_tokens:
                groups.append(current)
                current, size = [], 0
        if current:
            groups.append(current)
        return groups

    def requests(self, trace: Trace, strength: float) -> tuple[list[Any], list[list[int]]]:
        """The generation requests for one trace and the chunk (original step indices) of each."""
        from .backends import GenerationRequest

        groups = self.chunks(trace)
        question = (trace.question or "(not given)").strip()
        if len(question) > self.question_chars:
            question = question[:self.question_chars].rstrip() + " ..."
        requests = []
        for part, group in enumerate(groups, start=1):
            chunk = STEP_SEPARATOR.join(trace.steps[i] for i in group)
            target_tokens = max(8, _round_half_up((1.0 - strength) * trace_tokens([trace.steps[i] for i in group],
                                                                                self.token_counter)))
            words = max(5, _round_half_up(0.75 * target_tokens))
            prompt = SUMMARY_PROMPT.format(question=question, part=part, parts=len(groups), chunk=chunk, words=words)
            requests.append(GenerationRequest(
                messages=({"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": prompt}),
                max_new_tokens=int(1.5 * target_tokens) + 16, temperature=self.temperature, seed=self.seed))
        return requests, groups

    @staticmethod
    def summary_steps(text: str) -> list[str]:
        """The steps of a summary: its non-empty lines, list markers removed."""
        steps = []
        for line in text.splitlines():
            line = _LIST_MARKER_RE.sub("", line).strip()
            if line:
                steps.append(line)
        return steps

    def plan(self, traces: Sequence[Trace], strength: float,
             behaviors: Sequence[Sequence[str]] | None) -> list[StepPlan]:
        all_requests: list[Any] = []
        owners: list[tuple[int, list[int]]] = []
        for index, trace in enumerate(traces):
            requests, groups = self.requests(trace, strength)
            all_requests += requests
            owners += [(index, group) for group in groups]
        outputs = self.backend.generate(all_requests) if all_requests else []
        if len(outputs) != len(all_requests):
            raise MolesynError(f"the backend returned {len(outputs)} summaries for {len(all_requests)} requests")
        plans = [StepPlan([], []) for _ in traces]
        for (index, group), output in zip(owners, outputs):
            for step in self.summary_steps(output):
                plans[index].steps.append(step)
                plans[index].provenance.append(list(group))
        return plans


def compress_traces(traces: Sequence[Trace], method: str, strength: float,
                    behaviors: Sequence[Sequence[str]] | None = None, **options: Any) -> list[CompressedTrace]:
    """One call: build the ``method`` compressor with ``options`` and compress ``traces`` at ``strength``."""
    return get_compressor(method, **options).compress_batch(traces, strength, behaviors)


# ------------------------------------------------------------------------------------------------------ disruption
def label_traces(traces: Sequence[Trace], labeler: str | Any = DEFAULT_LABELER) -> list[list[str]]:
    """Label traces with a labeller name or instance (unknown names raise :class:`MolesynError`)."""
    from .labelers import get_labeler, label_corpus

    if isinstance(labeler, str):
        try:
            labeler = get_labeler(labeler)
        except UnknownNameError:
            raise
        except ValueError as exc:
            raise MolesynError(str(exc)) from None
    return label_corpus(list(traces), labeler) if traces else []


def structure_disruption(original_labels: Sequence[Sequence[str]],
                         compressed_labels: Sequence[Sequence[str]]) -> dict[str, float]:
    """How far the compressed corpus's transfer graph is from the original's: Pearson r of the transition matrices
    (1 = same structure), Jensen-Shannon distances of the transitions (marginal-weighted rows) and of the marginals
    (0 = same), and the step counts."""
    from .transfer import TransferGraph, js_distance, pearson

    original = TransferGraph.from_sequences(original_labels)
    compressed = TransferGraph.from_sequences(compressed_labels)
    return {"pearson": pearson(original, compressed), "js_transition": js_distance(original, compressed),
            "js_marginal": js_distance(original, compressed, "marginal"), "n_steps": compressed.n_steps,
            "n_steps_original": original.n_steps}


def corpus_token_reduction(compressed: Sequence[CompressedTrace]) -> float:
    """``1 - sum(compressed tokens) / sum(original tokens)`` over a corpus."""
    before = sum(c.original_tokens for c in compressed)
    after = sum(c.compressed_tokens for c in compressed)
    return 1.0 - after / before if before else 0.0


def measure_compression(compressed: Sequence[CompressedTrace], labeler: str | Any = DEFAULT_LABELER,
                        original_labels: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """Token reduction and structure disruption of compressed traces against their originals (labelled by
    ``labeler``; ``original_labels`` skips relabelling the originals)."""
    compressed = list(compressed)
    if original_labels is None:
        original_labels = label_traces([c.original for c in compressed], labeler)
    compressed_labels = label_traces([c.trace for c in compressed], labeler)
    result: dict[str, Any] = {
        "token_reduction": corpus_token_reduction(compressed),
        "token_reduction_mean": float(np.mean([c.token_reduction for c in compressed])) if compressed else 0.0,
        "original_tokens": sum(c.original_tokens for c in compressed),
        "compressed_tokens": sum(c.compressed_tokens for c in compressed),
    }
    result.update(structure_disruption(original_labels, compressed_labels))
    return result


def compression_curve(traces: Sequence[Trace], method: str, strengths: Sequence[float],
                      labeler: str | Any = DEFAULT_LABELER, original_labels: Sequence[Sequence[str]] | None = None,
                      progress: bool = True, **options: Any) -> list[dict[str, Any]]:
    """Token reduction and structure disruption of ``method`` at each strength: tidy rows with ``method``,
    ``strength``, ``token_reduction`` (corpus level), ``token_reduction_mean`` (per trace), ``pearson``,
    ``js_transition``, ``js_marginal``, ``n_steps``, ``n_steps_original``, ``n_traces``, ``tokenizer``, ``labeler``.

    The originals are labelled once (or ``original_labels`` given) and those labels drive ``extractive``.
    ``options`` go to the compressor (``tokenizer=``, ``backend=``...).
    """
    from .progress import tqdm

    traces = list(traces)
    if not traces:
        raise MolesynError("compression_curve needs at least one trace")
    labeler_obj = labeler
    if isinstance(labeler, str):
        from .labelers import get_labeler

        try:
            labeler_obj = get_labeler(labeler)
        except UnknownNameError:
            raise
        except ValueError as exc:
            raise MolesynError(str(exc)) from None
    if original_labels is None:
        original_labels = label_traces(traces, labeler_obj)
    compressor = get_compressor(method, **options)
    rows = []
    for strength in tqdm(list(strengths), desc=f"compress ({method})", unit="strength", disable=not progress):
        compressed = compressor.compress_batch(traces, strength,
                                               original_labels if compressor.needs_behaviors else None)
        row: dict[str, Any] = {"method": method, "strength": float(strength)}
        row.update(measure_compression(compressed, labeler_obj, original_labels))
        row.update(n_traces=len(traces), tokenizer=compressor.token_counter.name,
                   labeler=getattr(labeler_obj, "name", str(labeler)))
        rows.append(row)
    return rows


def compression_curves(traces: Sequence[Trace], methods: Sequence[str], strengths: Sequence[float],
                       labeler: str | Any = DEFAULT_LABELER, method_options: dict[str, dict[str, Any]] | None = None,
                       progress: bool = True, **options: Any) -> list[dict[str, Any]]:
    """:func:`compression_curve` for several methods, labelling the originals once; ``method_options`` adds
    per-method compressor options to the shared ``options``."""
    traces = list(traces)
    labels = label_traces(traces, labeler)
    rows = []
    for method in methods:
        merged = {**options, **(method_options or {}).get(method, {})}
        rows += compression_curve(traces, method, strengths, labeler, labels, progress=progress, **merged)
    return rows


METRICS = ("pearson", "js_transition", "js_marginal", "n_steps")


def reduction_point(rows: Sequence[dict[str, Any]], target: float = 0.45,
                    metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
    """For each method in ``rows``, the strength and metrics at token reduction ``target``, linearly interpolated
    between the two strengths whose reductions first bracket it (rows sorted by strength). ``reachable`` is false,
    and the values ``None``, when no strength of that method reaches the target."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        curve = sorted((r for r in rows if r["method"] == method), key=lambda r: r["strength"])
        point: dict[str, Any] = {"method": method, "target": target, "reachable": False, "strength": None,
                                 "max_token_reduction": max(r["token_reduction"] for r in curve)}
        point.update({m: None for m in metrics})
        for first, second in pairwise(curve):
            a, b = first["token_reduction"], second["token_reduction"]
            if min(a, b) <= target <= max(a, b):
                w = 0.0 if b == a else (target - a) / (b - a)
                point.update(reachable=True, strength=first["strength"] + w * (second["strength"] - first["strength"]))
                point.update({m: first[m] + w * (second[m] - first[m]) for m in metrics})
                break
        else:
            exact = [r for r in curve if r["token_reduction"] == target]
            if exact:
                point.update(reachable=True, strength=exact[0]["strength"])
                point.update({m: exact[0][m] for m in metrics})
        out.append(point)
    return out


def save_compressed(compressed: Sequence[CompressedTrace], path: str | Path) -> int:
    """Write the compressed traces as trace JSONL (:func:`molesyn_lib.traces.save_traces`)."""
    from .traces import save_traces

    return save_traces([c.trace for c in compressed], path)


__all__ = [
    "COMPRESSORS",
    "STEP_SEPARATOR",
    "SUMMARY_PROMPT",
    "BaseCompressor",
    "CompressedTrace",
    "ExtractiveCompressor",
    "HFTokenCounter",
    "KeepEveryCompressor",
    "MergeCompressor",
    "RegexTokenCounter",
    "StepPlan",
    "SummarizeCompressor",
    "TokenCounter",
    "TruncateCompressor",
    "available_compressors",
    "compress_traces",
    "compression_curve",
    "compression_curves",
    "corpus_token_reduction",
    "get_compressor",
    "get_token_counter",
    "label_traces",
    "measure_compression",
    "reduction_point",
    "register_compressor",
    "save_compressed",
    "sentence_key",
    "split_sentences",
    "stride_starts",
    "structure_disruption",
    "trace_tokens",
]
