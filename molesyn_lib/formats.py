"""Trace formats as people have them: readers for the common containers and record shapes, with explained detection.

A trace source is read in two layers, both chosen automatically (and both overridable):

* the **container** (:data:`CONTAINERS`): JSON Lines (optionally gzip-compressed), a JSON array (or one JSON
  object), Parquet, Arrow (IPC file or stream), a ``datasets.save_to_disk`` folder, or a Hugging Face dataset named
  ``hf://org/name[/config][:split]`` (loaded through ``datasets``, from its cache when offline). Containers are
  sniffed from their content (magic bytes, first character), not their file name;
* the **record shape** of each record (:data:`SHAPES`): molesyn's own ``response``/``steps`` records; chat
  ``messages`` (``{role, content}``, the assistant turn may hold ``<think>...</think>``); ShareGPT ``conversations``
  (``{from, value}``, with the OpenThoughts / Bespoke-Stratos ``<|begin_of_thought|>`` and ``<|begin_of_solution|>``
  markers); reasoning-API records with ``reasoning_content`` (or ``reasoning``) beside ``content``; and full
  chat-completion responses (``choices[0].message``, also inside an OpenAI batch-output line).

Every shape is normalised to a molesyn trace record (``response`` = ``<think>`` reasoning ``</think>`` answer, plus
``id``, ``model``, ``question``) that :func:`molesyn_lib.traces.trace_from_record` turns into a
:class:`~molesyn_lib.traces.Trace`, so the same traces give exactly the same steps and graph through any format.
:class:`ReadOptions` overrides the detection (``--format``, ``--think-field``, ``--question-field``,
``--model-field`` on the command line). Records are streamed: JSONL, Parquet, Arrow and ``datasets`` folders are never
held in memory whole (a JSON array is, it has no streaming reader in the standard library). A record of unknown shape
is an :class:`~molesyn_lib.errors.InputError` of one line naming the source, the record number (the line number for
JSONL) and the accepted shapes.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .safeio import GZIP_MAGIC, open_binary, read_json_file

HF_PREFIX = "hf://"
PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"
#: Records per batch when reading Parquet / Arrow / ``datasets`` containers (bounded memory).
BATCH_SIZE = 256

THOUGHT_OPEN, THOUGHT_CLOSE = "<|begin_of_thought|>", "<|end_of_thought|>"
SOLUTION_OPEN, SOLUTION_CLOSE = "<|begin_of_solution|>", "<|end_of_solution|>"
#: Fields that hold the reasoning text in reasoning-API records and messages (first present wins).
REASONING_FIELDS = ("reasoning_content", "reasoning")
QUESTION_FIELDS = ("question", "problem", "prompt", "instruction", "input")
MODEL_FIELDS = ("model", "generator")
ID_FIELDS = ("id", "trace_id", "doc_id", "custom_id")
USER_ROLES = ("user", "human")
ASSISTANT_ROLES = ("assistant", "gpt", "model", "bot", "chatgpt")


@dataclass
class ReadOptions:
    """How to read a trace source; every field left ``None`` is detected.

    Attributes:
        format: a container name (``jsonl``, ``json``, ``parquet``, ``arrow``, ``hf-disk``, ``hf``), a record-shape
            name (``response``, ``messages``, ``sharegpt``, ``reasoning``, ``completion``), or both joined by a comma
            (``parquet,sharegpt``).
        think_field: the field holding the reasoning text (in the record, or in the assistant message), e.g.
            ``deepseek_thinking_trajectory``; a record with this field is read as a ``reasoning`` record.
        question_field: the field holding the question (default: ``question``/``problem``/``prompt``..., else the
            last user turn of a conversation).
        model_field: the field holding the generator's name (default: ``model``/``generator``).
        split: the split of a ``datasets`` folder holding several (default: ``train``, else the only one).
    """

    format: str | None = None
    think_field: str | None = None
    question_field: str | None = None
    model_field: str | None = None
    split: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ReadOptions:
        """The options given on a command line built with :func:`add_read_options` (missing flags are ``None``)."""
        return cls(**{name: getattr(args, name, None) for name in ("format", "think_field", "question_field",
                                                                   "model_field")})

    def container(self) -> str | None:
        return next((p for p in self._parts() if p in CONTAINERS), None)

    def shape(self) -> str | None:
        return next((p for p in self._parts() if p in SHAPES), None)

    def _parts(self) -> list[str]:
        parts = [p.strip() for p in (self.format or "").split(",") if p.strip()]
        for part in parts:
            if part not in CONTAINERS and part not in SHAPES:
                raise InputError(f"unknown --format {part!r}; containers: {', '.join(CONTAINERS)}; "
                                 f"record shapes: {', '.join(SHAPES)}")
        return parts


def add_read_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--format``, ``--think-field``, ``--question-field`` and ``--model-field`` to a subcommand."""
    parser.add_argument("--format", help="override format detection: a container (" + ", ".join(CONTAINERS)
                        + "), a record shape (" + ", ".join(SHAPES) + ") or both, e.g. parquet,sharegpt")
    parser.add_argument("--think-field", help="field holding the reasoning text (e.g. deepseek_thinking_trajectory)")
    parser.add_argument("--question-field", help="field holding the question (default question/problem/prompt...)")
    parser.add_argument("--model-field", help="field holding the generator's name (default model/generator)")


# --------------------------------------------------------------------------------------------------------------------
# record shapes


@dataclass(frozen=True)
class Shape:
    """One record shape: how to recognise it and how to turn it into a molesyn trace record.

    Attributes:
        name: the registry key (``--format`` value).
        description: what it looks like (used in error messages and ``molesyn inspect``).
        detect: ``detect(record, options)`` is true when the record has this shape.
        normalise: ``normalise(record, options)`` -> the molesyn record (``response`` or ``steps`` plus metadata);
            raises ``ValueError`` with a short reason when the record is malformed.
    """

    name: str
    description: str
    detect: Callable[[dict[str, Any], ReadOptions], bool]
    normalise: Callable[[dict[str, Any], ReadOptions], dict[str, Any]]


def _text(value: Any, what: str) -> str:
    """A text field: a string, a list of strings (joined by blank lines) or OpenAI content parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise ValueError(f"{what} must be text, got a list holding {type(part).__name__}")
        return "\n\n".join(parts)
    raise ValueError(f"{what} must be text, got {type(value).__name__}")


def _pick(record: dict[str, Any], explicit: str | None, defaults: tuple[str, ...]) -> Any:
    if explicit is not None:
        return record.get(explicit)
    return next((record[k] for k in defaults if record.get(k) is not None), None)


def _with_reasoning(reasoning: str | None, content: str, truncated: bool = False) -> str:
    """``<think>reasoning</think>content`` (no closing tag when the generation was cut inside the reasoning)."""
    if reasoning is None:
        return content
    if truncated and not content.strip():
        return f"<think>{reasoning}"
    return f"<think>{reasoning}</think>{content}"


def _metadata(record: dict[str, Any], options: ReadOptions, question: Any = None) -> dict[str, Any]:
    """The id / model / question / answer fields of a normalised record."""
    out: dict[str, Any] = {}
    trace_id = _pick(record, None, ID_FIELDS)
    if trace_id is not None:
        out["id"] = trace_id
    model = _pick(record, options.model_field, MODEL_FIELDS)
    if model is not None:
        out["model"] = model
    explicit_question = _pick(record, options.question_field, QUESTION_FIELDS)
    if explicit_question is not None and not isinstance(explicit_question, (list, dict)):
        question = explicit_question
    if question is not None:
        out["question"] = question
    for key in ("correct_answer", "answer", "gold_answer", "meta", "truncated"):
        if record.get(key) is not None and not isinstance(record.get(key), list):
            out[key] = record[key]
    return out


def _detect_response(record: dict[str, Any], options: ReadOptions) -> bool:
    # any value: trace_from_record reports a wrongly typed 'response' / 'steps' with its own message
    return "steps" in record or ("response" in record and not isinstance(record["response"], dict))


def _normalise_response(record: dict[str, Any], options: ReadOptions) -> dict[str, Any]:
    out = dict(record)
    if options.model_field is not None:
        out["model"] = record.get(options.model_field)
    if options.question_field is not None:
        out["question"] = record.get(options.question_field)
    if options.think_field is not None and options.think_field in record:
        out["response"] = _text(record[options.think_field], options.think_field)
        out.pop("steps", None)
    return out


def _turns(record: dict[str, Any], key: str, role_key: str, text_key: str) -> list[tuple[str, dict[str, Any]]]:
    turns = record.get(key)
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"'{key}' must be a non-empty list of {{{role_key}, {text_key}}} objects")
    out = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get(role_key), str):
            raise ValueError(f"'{key}'[{index}] must be an object with a '{role_key}' string")
        out.append((turn[role_key].lower(), turn))
    return out


def _split_turns(turns: list[tuple[str, dict[str, Any]]], key: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The last assistant turn and the last user turn before it."""
    last = max((i for i, (role, _) in enumerate(turns) if role in ASSISTANT_ROLES), default=None)
    if last is None:
        roles = sorted({role for role, _ in turns})
        raise ValueError(f"'{key}' has no assistant turn (roles: {', '.join(roles)})")
    user = next((turn for role, turn in reversed(turns[:last]) if role in USER_ROLES), None)
    return turns[last][1], user


def _detect_messages(record: dict[str, Any], options: ReadOptions) -> bool:
    turns = record.get("messages")
    return isinstance(turns, list) and bool(turns) and isinstance(turns[0], dict) and "role" in turns[0]


def _message_response(message: dict[str, Any], options: ReadOptions, truncated: bool = False) -> str:
    content = _text(message.get("content"), "message 'content'")
    reasoning_value = _pick(message, options.think_field, REASONING_FIELDS)
    reasoning = _text(reasoning_value, "message reasoning") if reasoning_value is not None else None
    return _with_reasoning(reasoning, content, truncated)


def _normalise_messages(record: dict[str, Any], options: ReadOptions) -> dict[str, Any]:
    assistant, user = _split_turns(_turns(record, "messages", "role", "content"), "messages")
    question = _text(user.get("content"), "user 'content'") if user is not None else None
    return {**_metadata(record, options, question), "response": _message_response(assistant, options)}


def _detect_sharegpt(record: dict[str, Any], options: ReadOptions) -> bool:
    turns = record.get("conversations")
    return isinstance(turns, list) and bool(turns) and isinstance(turns[0], dict) and "from" in turns[0]


def thought_markers_to_think(text: str) -> str:
    """OpenThoughts / Bespoke-Stratos ``<|begin_of_thought|>A<|end_of_thought|><|begin_of_solution|>B
    <|end_of_solution|>`` -> ``<think>A</think>B`` (a thought block never closed stays unclosed: truncated)."""
    if THOUGHT_OPEN not in text and THOUGHT_CLOSE not in text:
        return text
    text = text.replace(THOUGHT_OPEN, "<think>", 1).replace(THOUGHT_CLOSE, "</think>", 1)
    return text.replace(SOLUTION_OPEN, "").replace(SOLUTION_CLOSE, "")


def _normalise_sharegpt(record: dict[str, Any], options: ReadOptions) -> dict[str, Any]:
    assistant, user = _split_turns(_turns(record, "conversations", "from", "value"), "conversations")
    question = _text(user.get("value"), "user 'value'") if user is not None else None
    response = thought_markers_to_think(_text(assistant.get("value"), "assistant 'value'"))
    return {**_metadata(record, options, question), "response": response}


def _reasoning_field(record: dict[str, Any], options: ReadOptions) -> str | None:
    if options.think_field is not None:
        return options.think_field if options.think_field in record else None
    return next((k for k in REASONING_FIELDS if isinstance(record.get(k), (str, list))), None)


def _detect_reasoning(record: dict[str, Any], options: ReadOptions) -> bool:
    return _reasoning_field(record, options) is not None


def _normalise_reasoning(record: dict[str, Any], options: ReadOptions) -> dict[str, Any]:
    name = _reasoning_field(record, options)
    if name is None:
        raise ValueError(f"no reasoning field '{options.think_field or REASONING_FIELDS[0]}'")
    reasoning = _text(record[name], f"field '{name}'")
    content = _text(next((record[k] for k in ("content", "attempt", "final") if record.get(k) is not None), None),
                    "field 'content'")
    truncated = record.get("finish_reason") == "length" or bool(record.get("truncated"))
    return {**_metadata(record, options), "response": _with_reasoning(reasoning, content, truncated)}


def _completion_body(record: dict[str, Any]) -> dict[str, Any] | None:
    """The chat-completion object of a record: itself, or ``response.body`` of an OpenAI batch-output line."""
    if isinstance(record.get("choices"), list):
        return record
    response = record.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    return body if isinstance(body, dict) and isinstance(body.get("choices"), list) else None


def _detect_completion(record: dict[str, Any], options: ReadOptions) -> bool:
    return _completion_body(record) is not None


def _normalise_completion(record: dict[str, Any], options: ReadOptions) -> dict[str, Any]:
    body = _completion_body(record)
    if body is None or not body["choices"] or not isinstance(body["choices"][0], dict):
        raise ValueError("'choices' must be a non-empty list of {message, finish_reason} objects")
    choice = body["choices"][0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError("'choices'[0] has no 'message' object")
    meta = _metadata(body, options)
    if body is not record:  # a batch-output line: its custom_id is the caller's id for the request
        meta.update({k: v for k, v in _metadata(record, options).items() if k not in meta})
        if record.get("custom_id") is not None:
            meta["id"] = record["custom_id"]
    return {**meta, "response": _message_response(message, options, choice.get("finish_reason") == "length")}


#: The record shapes, tried in this order (the first that matches wins).
SHAPES: dict[str, Shape] = {shape.name: shape for shape in (
    Shape("completion", "a chat-completion response ('choices'[0].message with 'content' and optionally "
          "'reasoning_content')", _detect_completion, _normalise_completion),
    Shape("messages", "chat 'messages' [{role, content}] (the assistant turn may hold <think>...</think>)",
          _detect_messages, _normalise_messages),
    Shape("sharegpt", "ShareGPT 'conversations' [{from, value}] (with <|begin_of_thought|> markers or <think>)",
          _detect_sharegpt, _normalise_sharegpt),
    Shape("reasoning", "a reasoning-API record: 'reasoning_content' or 'reasoning' beside 'content'",
          _detect_reasoning, _normalise_reasoning),
    Shape("response", "molesyn's own record: 'response' (text) or 'steps' (list of strings)",
          _detect_response, _normalise_response),
)}


def accepted_shapes() -> str:
    """One line listing the accepted record shapes (for error messages)."""
    return "; ".join(f"{name}: {shape.description}" for name, shape in SHAPES.items())


def detect_shape(record: dict[str, Any], options: ReadOptions | None = None) -> str | None:
    """The name of the first record shape that matches (``--think-field`` makes its field a ``reasoning`` record
    unless the record is a conversation), or ``None``."""
    options = options or ReadOptions()
    forced = options.shape()
    if forced is not None:
        return forced
    for name, shape in SHAPES.items():
        if shape.detect(record, options):
            return name
    return None


def normalise_record(record: dict[str, Any], source: str, number: int,
                     options: ReadOptions | None = None) -> tuple[str, dict[str, Any]]:
    """``(shape name, molesyn record)`` for one record; :class:`InputError` naming ``source`` and ``number`` for
    an unknown or malformed shape."""
    options = options or ReadOptions()
    name = detect_shape(record, options)
    if name is None:
        fields = ", ".join(sorted(map(str, record))[:12]) or "none"
        raise InputError(f"a trace needs a 'response' (text) or 'steps' (list of strings) field, or another accepted "
                         f"shape, and this record has fields {fields}; accepted shapes: {accepted_shapes()}; or name "
                         "the reasoning field with --think-field", source, number)
    try:
        return name, SHAPES[name].normalise(record, options)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InputError(f"malformed {name} record: {exc}", source, number) from None


# --------------------------------------------------------------------------------------------------------------------
# containers


@dataclass(frozen=True)
class Container:
    """One container format: ``read(source, options)`` yields ``(record number, record)`` (line numbers for JSONL)."""

    name: str
    description: str
    read: Callable[[str, ReadOptions], Iterator[tuple[int, dict[str, Any]]]]




def _read_jsonl(source: str, options: ReadOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON Lines through :func:`molesyn_lib.traces.iter_jsonl`, the one JSONL reader (gzip, BOM, nesting and
    decoding errors named by file and line)."""
    from .traces import iter_jsonl

    yield from iter_jsonl(source)


def _read_json(source: str, options: ReadOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    data = read_json_file(source)  # gzip, BOM, decoding and nesting errors as one line naming the file
    if isinstance(data, dict):
        inner = next((data[k] for k in ("data", "rows", "traces", "records") if isinstance(data.get(k), list)), None)
        records = inner if inner is not None else [data]
    elif isinstance(data, list):
        records = data
    else:
        raise InputError(f"a JSON file must hold an array of objects or one object, got {type(data).__name__}", source)
    for number, obj in enumerate(records, start=1):
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", source, number)
        yield number, obj


def _batches_to_records(batches: Iterator[Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of Arrow record batches as dicts; a columnar table gives every row every column, so top-level nulls
    are dropped (a row then has the fields it would have had as a JSON line)."""
    number = 0
    for batch in batches:
        for row in batch.to_pylist():
            number += 1
            yield number, {k: v for k, v in row.items() if v is not None}


def _need(module: str, source: str) -> Any:
    """Import an optional dependency, or an :class:`InputError` saying which package reads ``source``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise InputError(f"reading this format needs the '{package}' package (pip install {package})", source) from None


def _read_parquet(source: str, options: ReadOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    pa = _need("pyarrow", source)
    pq = _need("pyarrow.parquet", source)

    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({_first_line(exc)})", source) from None
    yield from _batches_to_records(parquet.iter_batches(batch_size=BATCH_SIZE))


def _read_arrow(source: str, options: ReadOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    pa = _need("pyarrow", source)
    _need("pyarrow.ipc", source)

    with pa.memory_map(source, "r") as handle:
        try:
            reader = pa.ipc.open_file(handle)
            batches: Iterator[Any] = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            handle.seek(0)
            try:
                batches = iter(pa.ipc.open_stream(handle))
            except pa.ArrowInvalid as exc:
                raise InputError(f"not a readable Arrow file ({_first_line(exc)})", source) from None
        yield from _batches_to_records(batches)


def _iter_dataset(dataset: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a ``datasets.Dataset`` (memory-mapped Arrow, read in batches)."""
    yield from _batches_to_records(batch for batch in dataset.with_format("arrow").iter(batch_size=BATCH_SIZE))


def _read_hf_disk(source: str, options: ReadOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    path, split = _split_suffix(source)
    folder = Path(path)
    if not any((folder / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
        raise InputError("a folder must be a datasets.save_to_disk folder (with dataset_info.json / state.json or "
                         "dataset_dict.json)", source)
    datasets = _need("datasets", source)

    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.DatasetDict):
        split = split or options.split or ("train" if "train" in loaded else None)
        if split is None and len(loaded) == 1:
            split = next(iter(loaded))
        if split not in loaded:
            raise InputError(f"choose a split with FOLDER:SPLIT; this folder has {', '.join(loaded)}", source)
        loaded = loaded[split]
    yield from _iter_dataset(loaded)


def parse_hf_name(source: str) -> tuple[str, str | None, str]:
    """``hf://org/name[/config][:split]`` -> ``(repo id, config, split)`` (split defaults to ``train``)."""
    rest = re.sub(r"^hf:/+", "", source)
    rest, _, split = rest.partition(":")
    parts = [p for p in rest.split("/") if p]
    if not parts or len(parts) > 3:
        raise InputError("a Hugging Face dataset is named hf://org/name[/config][:split]", source)
    repo = "/".join(parts[:2]) if len(parts) >= 2 else parts[0]
    config = parts[2] if len(parts) == 3 else None
    return repo, config, split or "train"


def _read_hf(source: str, options: ReadOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    import os

    repo, config, split = parse_hf_name(source)
    datasets = _need("datasets", source)
    try:
        dataset = datasets.load_dataset(repo, config, split=split)
    except Exception as exc:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ValueError...)
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        what = f"dataset {repo!r}" + (f" config {config!r}" if config else "") + f" split {split!r}"
        cache = os.environ.get("HF_DATASETS_CACHE") or str(Path(os.environ.get("HF_HOME", "~/.cache/huggingface"))
                                                           / "datasets")
        if offline:
            raise InputError(f"{what} is not in the local cache {cache} and HF_HUB_OFFLINE=1 forbids downloading it; "
                             "run once online (HF_HUB_OFFLINE=0) or pass a local file", source) from None
        raise InputError(f"could not load {what} ({type(exc).__name__}: {_first_line(exc)})", source) from None
    yield from _iter_dataset(dataset)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _split_suffix(source: str) -> tuple[str, str | None]:
    """``folder:split`` -> ``(folder, split)`` when ``folder`` exists and the whole name does not."""
    if not Path(source).exists() and ":" in source:
        head, _, tail = source.rpartition(":")
        if Path(head).is_dir():
            return head, tail
    return source, None


#: The containers (``--format`` values).
CONTAINERS: dict[str, Container] = {c.name: c for c in (
    Container("jsonl", "JSON Lines, one object a line (gzip allowed)", _read_jsonl),
    Container("json", "a JSON array of objects, or one object (gzip allowed)", _read_json),
    Container("parquet", "an Apache Parquet file", _read_parquet),
    Container("arrow", "an Apache Arrow IPC file or stream (e.g. a datasets cache file)", _read_arrow),
    Container("hf-disk", "a datasets.save_to_disk folder (FOLDER or FOLDER:SPLIT)", _read_hf_disk),
    Container("hf", "a Hugging Face dataset hf://org/name[/config][:split], loaded through datasets", _read_hf),
)}


def detect_container(source: str | Path) -> tuple[str, str]:
    """``(container name, why)`` for a source, from its name (``hf://``), kind (folder) or first bytes."""
    text = str(source)
    if text.startswith("hf:/"):
        return "hf", "the name starts with hf://"
    folder, split = _split_suffix(text)
    path = Path(folder)
    if path.is_dir():
        return "hf-disk", "a folder" + (f" (split {split!r})" if split else "")
    if not path.is_file():
        raise InputError("no such file", source)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head[:4] == PARQUET_MAGIC:
        return "parquet", "starts with the Parquet magic bytes PAR1"
    if head[:6] == ARROW_FILE_MAGIC:
        return "arrow", "starts with the Arrow file magic bytes ARROW1"
    if head[:4] == ARROW_STREAM_MAGIC:
        return "arrow", "starts with an Arrow stream message marker"
    gz = head[:2] == GZIP_MAGIC
    with open_binary(path) as handle:
        first = handle.readline(1 << 20)
        while first and not first.strip():
            first = handle.readline(1 << 20)
    prefix = "gzip-compressed, " if gz else ""
    stripped = first.lstrip()
    if stripped.startswith(b"["):
        return "json", prefix + "the text opens with '[' (a JSON array)"
    if stripped.startswith(b"{"):
        try:
            json.loads(first)
            return "jsonl", prefix + "the first line is a whole JSON object"
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return "json", prefix + "the text opens with '{' but its first line is not a whole object (one JSON object)"
    return "jsonl", prefix + "no other format matched (read as JSON Lines)"


# --------------------------------------------------------------------------------------------------------------------
# reading


@dataclass
class TraceReader:
    """Reads one source record by record, normalising each to a molesyn trace record, and counts what it saw.

    Iterate it for ``(record number, molesyn record)``. After (or during) iteration, ``shapes`` counts the records
    of each shape, ``fields`` the top-level field names, ``markers`` the ShareGPT records with thought markers.
    """

    source: str
    options: ReadOptions = field(default_factory=ReadOptions)
    container: str = ""
    container_reason: str = ""
    shapes: Counter[str] = field(default_factory=Counter)
    fields: Counter[str] = field(default_factory=Counter)
    records: int = 0

    def __post_init__(self) -> None:
        self.source = str(self.source)
        forced = self.options.container()
        if forced is not None:
            self.container, self.container_reason = forced, "given by --format"
        else:
            self.container, self.container_reason = detect_container(self.source)

    def raw(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """The records as stored, ``(record number, dict)``."""
        read = CONTAINERS[self.container].read
        if self.container == "jsonl" and not Path(self.source).is_file():
            raise InputError("no such file", self.source)
        yield from read(self.source, self.options)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, record in self.raw():
            self.records += 1
            self.fields.update(map(str, record))
            shape, normalised = normalise_record(record, self.source, number, self.options)
            self.shapes[shape] += 1
            yield number, normalised

    def describe(self) -> str:
        """One line: container and why, record shapes seen."""
        shapes = ", ".join(f"{name} ({count})" for name, count in self.shapes.most_common()) or "none yet"
        return f"{self.container} ({self.container_reason}); record shapes: {shapes}"


def iter_records(source: str | Path, options: ReadOptions | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream ``(record number, molesyn trace record)`` from any supported source (see the module docstring)."""
    yield from TraceReader(str(source), options or ReadOptions())
