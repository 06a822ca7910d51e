"""Long-CoT traces: the :class:`Trace` record, the JSONL trace format, and safe line-by-line reading.

A trace-file line is a JSON object with either

* ``response``: the raw model output, possibly with a ``<think>...</think>`` block (only the thinking part is
  segmented into steps; the text after ``</think>`` is kept as ``final``), or
* ``steps``: an already segmented list of strings (kept as-is),

plus the optional fields ``id``/``doc_id``/``trace_id``, ``model``/``generator``, ``question``/``problem``,
``correct_answer``/``answer`` and ``gold`` (a list of N/D/R/E behaviours aligned with ``steps``, as written by the
lab's teachers). A response that opens ``<think>`` but never closes it is *truncated* (flagged, see
:attr:`Trace.truncated`). Bad lines raise :class:`~molesyn_lib.errors.InputError` naming the file and line; empty
traces are skipped and counted in :attr:`Corpus.skipped`.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .behaviors import STATE_INDEX
from .errors import InputError
from .formats import ReadOptions, iter_records
from .safeio import GZIP_ERRORS, gzip_reason, input_problem, json_reason, open_binary
from .segment import SegmentConfig, segment_text

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass
class Trace:
    """One reasoning trace cut into steps.

    Attributes:
        trace_id: unique id (``id``/``doc_id`` of the input, else ``<file>:<line>``).
        steps: the reasoning steps (the thinking part only).
        model: the generator's name, if known.
        question: the task text, if known.
        answer: the gold answer, if known.
        response: the raw text the steps came from (``None`` for pre-segmented input).
        final: the text after ``</think>`` (the visible answer), if any.
        truncated: ``True`` when the thinking block was opened but never closed (generation budget hit).
        behaviors: per-step behaviour labels (gold labels from a lab teacher, or labels written by a labeller).
        source: ``file:line`` the trace was read from.
        meta: anything else (original tags, domain, provenance).
    """

    trace_id: str
    steps: list[str]
    model: str | None = None
    question: str | None = None
    answer: str | None = None
    response: str | None = None
    final: str | None = None
    truncated: bool = False
    behaviors: list[str] | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:  # the steps are shown by count and a short opening, not in full
        first = (self.steps[0][:60] + "...") if self.steps and len(self.steps[0]) > 60 else (self.steps or [""])[0]
        return (f"Trace({self.trace_id!r}, {len(self.steps)} steps, model={self.model!r}"
                f"{', truncated' if self.truncated else ''}, first step {first!r})")

    def to_record(self) -> dict[str, Any]:
        """The JSONL record of this trace (pre-segmented form, so it round-trips exactly)."""
        record: dict[str, Any] = {"id": self.trace_id, "model": self.model, "question": self.question,
                                  "answer": self.answer, "steps": list(self.steps)}
        if self.behaviors is not None:
            record["gold"] = list(self.behaviors)
        if self.final is not None:
            record["final"] = self.final
        if self.truncated:
            record["truncated"] = True
        if self.meta:
            record["meta"] = self.meta
        return record


class Corpus(list[Trace]):
    """A list of traces plus what was skipped while loading them (``skipped``: reason -> count)."""

    def __init__(self, traces: Iterable[Trace] = (), skipped: Counter[str] | None = None, source: str | None = None):
        super().__init__(traces)
        self.skipped: Counter[str] = skipped if skipped is not None else Counter()
        self.source = source

    @property
    def models(self) -> list[str]:
        """The distinct model names, in order of first appearance."""
        return list(dict.fromkeys(t.model or "unknown" for t in self))

    def by_model(self, model: str) -> Corpus:
        return Corpus((t for t in self if (t.model or "unknown") == model), source=self.source)

    def n_truncated(self) -> int:
        return sum(t.truncated for t in self)

    def __repr__(self) -> str:  # a corpus can hold hundreds of MB of text: never print it whole
        models = ", ".join(self.models[:5]) + (", ..." if len(self.models) > 5 else "")
        return f"<Corpus of {self.summary()}; models: {models or 'none'}; source: {self.source or '?'}>"

    def summary(self) -> str:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        return (f"{len(self)} traces ({self.n_truncated()} of them truncated), {sum(len(t) for t in self)} steps; "
                f"skipped: {skipped}")


def split_thinking(response: str) -> tuple[str, str | None, bool]:
    """Split a raw response into ``(thinking, final, truncated)``.

    * ``<think>A</think>B`` -> ``(A, B, False)``
    * ``A</think>B`` (QwQ-style, the opening tag is in the prompt) -> ``(A, B, False)``
    * ``<think>A`` (never closed) -> ``(A, None, True)``
    * ``A`` without tags (instruct models) -> ``(A, None, False)``
    """
    open_at = response.find(THINK_OPEN)
    close_at = response.find(THINK_CLOSE)
    if close_at >= 0:
        start = open_at + len(THINK_OPEN) if 0 <= open_at < close_at else 0
        return response[start:close_at], response[close_at + len(THINK_CLOSE):].strip() or None, False
    if open_at >= 0:
        return response[open_at + len(THINK_OPEN):], None, True
    return response, None, False


def _checked_lines(handle: Iterable[bytes], path: Path) -> Iterator[bytes]:
    """The lines of ``handle``; a corrupt ``.gz`` stream raises :class:`InputError` naming the file and line."""
    line_no = 0
    iterator = iter(handle)
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except GZIP_ERRORS as exc:
            raise InputError(gzip_reason(exc), path, line_no + 1) from None
        line_no += 1
        yield raw


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file (``.gz`` allowed), streaming.

    Raises :class:`InputError` naming the file and line for a line that is not UTF-8, not JSON or not an object,
    and for a file that does not exist.
    """
    path = Path(path)
    problem = input_problem(path)  # missing, a directory, under a regular file...
    if problem is not None:
        raise InputError(problem, path)
    with open_binary(path) as handle:
        for line_no, raw in enumerate(_checked_lines(handle, path), start=1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")  # a UTF-8 BOM (Windows tools) is read
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path, line_no) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({json_reason(exc)})", path, line_no) from None
            except RecursionError:
                raise InputError("JSON nested too deeply to read", path, line_no) from None
            if not isinstance(obj, dict):
                raise InputError(f"expected a JSON object, got {type(obj).__name__}", path, line_no)
            yield line_no, obj


def _first(obj: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def _as_text(value: Any, name: str, path: Path | str, line: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InputError(f"field '{name}' must be a string, got {type(value).__name__}", path, line)
    return value


def trace_from_record(obj: dict[str, Any], path: str | Path = "<memory>", line: int = 0,
                      segment_config: SegmentConfig | None = None, reasoning_model: bool = False) -> Trace | None:
    """Build a :class:`Trace` from one JSON record; ``None`` when it has no reasoning text (an empty trace).

    ``reasoning_model=True`` marks a response with no ``</think>`` as truncated even when it lacks the opening tag
    (QwQ-style outputs whose ``<think>`` is part of the prompt).
    """
    trace_id = _first(obj, "id", "trace_id", "doc_id")
    trace_id = str(trace_id) if trace_id is not None else f"{Path(str(path)).name}:{line}"
    model = _as_text(_first(obj, "model", "generator"), "model", path, line)
    question = _as_text(_first(obj, "question", "problem"), "question", path, line)
    answer = _as_text(_first(obj, "correct_answer", "answer", "gold_answer"), "answer", path, line)
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    steps_value = obj.get("steps")
    response = None
    final = _as_text(obj.get("final"), "final", path, line)
    truncated = bool(obj.get("truncated", False))
    if steps_value is not None:
        if not isinstance(steps_value, list) or not all(isinstance(s, str) for s in steps_value):
            raise InputError("field 'steps' must be a list of strings", path, line)
        steps = [s for s in steps_value]
    elif "response" in obj:
        response = _as_text(obj["response"], "response", path, line) or ""
        thinking, after, truncated = split_thinking(response)
        if reasoning_model and THINK_CLOSE not in response:
            truncated = True
        final = after
        steps = segment_text(thinking, segment_config)
    else:
        raise InputError("a trace needs a 'response' (text) or 'steps' (list of strings) field", path, line)
    behaviors = obj.get("gold", obj.get("behaviors"))
    if behaviors is not None:
        if not isinstance(behaviors, list) or any(not isinstance(b, str) or b not in STATE_INDEX for b in behaviors):
            raise InputError("field 'gold' must be a list of N/D/R/E labels", path, line)
        if len(behaviors) != len(steps):
            raise InputError(f"field 'gold' has {len(behaviors)} labels for {len(steps)} steps", path, line)
    if not any(s.strip() for s in steps):
        return None
    return Trace(trace_id=trace_id, steps=steps, model=model, question=question, answer=answer, response=response,
                 final=final, truncated=truncated, behaviors=list(behaviors) if behaviors is not None else None,
                 source=f"{path}:{line}", meta=dict(meta))


def load_traces(path: str | Path, model: str | None = None, segment_config: SegmentConfig | None = None,
                truncated: Literal["keep", "skip", "error"] = "keep", limit: int | None = None,
                read_options: ReadOptions | None = None) -> Corpus:
    """Load a trace file (see the module docstring for the format) or any source :mod:`molesyn_lib.formats` reads.

    Args:
        path: the JSONL file (``.jsonl`` or ``.jsonl.gz``), or a chat / ShareGPT / reasoning-API / chat-completion
            file, a JSON array, Parquet, Arrow, a ``datasets`` folder or ``hf://org/name:split`` (detected).
        model: keep only lines whose ``model`` or ``generator`` equals this name.
        segment_config: how ``response`` texts are cut into steps.
        truncated: what to do with truncated traces: keep them (flagged), skip them (counted), or raise.
        limit: stop after this many kept traces.
        read_options: overrides of the format detection (:class:`~molesyn_lib.formats.ReadOptions`).

    Empty traces are skipped and counted under ``skipped["empty"]``; lines of other models under
    ``skipped["other model"]``.
    """
    corpus = Corpus(source=str(path))
    for line, obj in iter_records(path, read_options):
        if model is not None and _first(obj, "model", "generator") != model:
            corpus.skipped["other model"] += 1
            continue
        trace = trace_from_record(obj, path, line, segment_config)
        if trace is None:
            corpus.skipped["empty"] += 1
            continue
        if trace.truncated and truncated != "keep":
            if truncated == "error":
                raise InputError("truncated trace: '<think>' is never closed by '</think>'", path, line)
            corpus.skipped["truncated"] += 1
            continue
        corpus.append(trace)
        if limit is not None and len(corpus) >= limit:
            break
    _flag_unclosed_thinking(corpus)
    if truncated != "keep":
        dropped = [t for t in corpus if t.truncated]
        if truncated == "error" and dropped:
            raise InputError("truncated trace: the model's other responses close '</think>' but this one does not",
                             path, int(dropped[0].source.rsplit(":", 1)[1]) if dropped[0].source else None)
        corpus.skipped["truncated"] += len(dropped)
        corpus[:] = [t for t in corpus if not t.truncated]
    return corpus


def _flag_unclosed_thinking(corpus: Corpus) -> None:
    """Flag as truncated the responses of a thinking model that lack ``</think>`` (QwQ-style outputs omit the
    opening tag, so a cut-off response has no tag at all): a model is a thinking model when most of its responses
    in the file close a thinking block."""
    by_model: dict[str, list[Trace]] = {}
    for trace in corpus:
        if trace.response is not None:
            by_model.setdefault(trace.model or "", []).append(trace)
    for traces in by_model.values():
        closed = sum(THINK_CLOSE in t.response for t in traces if t.response is not None)
        if closed * 2 > len(traces):
            for trace in traces:
                if trace.response is not None and THINK_CLOSE not in trace.response:
                    trace.truncated = True


def save_traces(traces: Iterable[Trace], path: str | Path) -> int:
    """Write traces as JSONL (pre-segmented records) and return how many were written.

    The file is written beside ``path`` and renamed into place (:func:`molesyn_lib.safeio.atomic_open`), so an
    interrupted write leaves the old file or the complete new one. Non-finite numbers in ``meta`` become ``null``.
    """
    from .safeio import atomic_open, dumps_strict

    count = 0
    with atomic_open(path) as handle:
        for trace in traces:
            handle.write(dumps_strict(trace.to_record(), ensure_ascii=False) + "\n")
            count += 1
    return count


def trace_as_dict(trace: Trace) -> dict[str, Any]:
    """All fields of a trace as a plain dict (for DataFrames)."""
    return asdict(trace)
