"""Loaders for the public datasets molesyn analyses (read from the data directory, see :mod:`molesyn_lib.config`).

* ReasoningFlow traces (DeepSeek-R1, QwQ-32B, gpt-oss-120b and two instruct models on AIME-2024, GPQA-diamond and
  TheoremQA): :func:`load_reasoningflow_traces`.
* Thought Anchors (R1-distill MATH traces with sentence function tags): :func:`load_thought_anchors`.
* Steering-thinking-behaviours (5 R1-distilled vs 5 instruct models, sentence behaviour tags):
  :func:`load_steering`.
* Math benchmarks and any questions JSONL (``question``/``problem`` + ``answer``): :func:`load_questions`.

Each returns a :class:`~molesyn_lib.traces.Corpus` (or a list of :class:`Question`). Silver tags are mapped to
N/D/R/E by the documented tables in :mod:`molesyn_lib.annotations`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .annotations import STEERING_TO_BEHAVIOR, thought_anchor_behaviors
from .config import data_dir, require
from .errors import InputError
from .segment import SegmentConfig
from .traces import Corpus, Trace, iter_jsonl, trace_from_record

#: Generators in the ReasoningFlow traces that write a ``<think>`` block (long-CoT reasoning models).
REASONING_MODELS = ("DeepSeek-R1", "QwQ-32B", "gpt-oss-120b")
#: Instruct (short-CoT) generators in the ReasoningFlow traces.
INSTRUCT_MODELS = ("DeepSeek-V3", "Qwen2.5-32B-Instruct")

REASONINGFLOW_FILES = ("aime2024_5models.jsonl", "gpqa_diamond_5models.jsonl", "bright_theoremqa_3models.jsonl")

STEERING_THINKING = ("deepseek-r1-distill-llama-8b", "deepseek-r1-distill-llama-70b", "deepseek-r1-distill-qwen-1.5b",
                     "deepseek-r1-distill-qwen-14b", "deepseek-r1-distill-qwen-32b")
STEERING_INSTRUCT = ("llama-3.1-8b-instruct", "llama-3.3-70b-instruct", "qwen2.5-1.5b-instruct",
                     "qwen2.5-14b-instruct", "qwen2.5-32b-instruct")


def load_reasoningflow_traces(root: str | Path | None = None, files: tuple[str, ...] = REASONINGFLOW_FILES,
                              models: tuple[str, ...] | None = None, segment_config: SegmentConfig | None = None,
                              drop_truncated: bool = False, per_model_limit: int | None = None) -> Corpus:
    """Load the ReasoningFlow raw traces.

    Reasoning models' responses without ``</think>`` are flagged truncated (dropped and counted under
    ``skipped["truncated"]`` when ``drop_truncated``). ``per_model_limit`` keeps the first N traces of each model per
    file (deterministic; used by the smoke profile). Each trace's ``meta`` holds ``domain`` and ``question_id``.
    """
    base = data_dir(root) / "reasoningflow" / "traces"
    corpus = Corpus(source=str(base))
    for name in files:
        path = require(base / name, "ReasoningFlow traces")
        kept: dict[str, int] = {}
        for line, obj in iter_jsonl(path):
            generator = obj.get("generator")
            if models is not None and generator not in models:
                continue
            if per_model_limit is not None and kept.get(generator, 0) >= per_model_limit:
                continue
            trace = trace_from_record(obj, path, line, segment_config, reasoning_model=generator in REASONING_MODELS)
            if trace is None:
                corpus.skipped["empty"] += 1
                continue
            if trace.truncated and drop_truncated:
                corpus.skipped["truncated"] += 1
                continue
            trace.meta.update(domain=obj.get("domain"), question_id=obj.get("question_id"))
            corpus.append(trace)
            kept[generator] = kept.get(generator, 0) + 1
    return corpus


def load_thought_anchors(root: str | Path | None = None) -> Corpus:
    """Load the Thought Anchors R1-distill MATH traces: steps = labelled sentence chunks.

    ``behaviors`` holds the N/D/R/E mapping of each chunk's function tags
    (:func:`molesyn_lib.annotations.thought_anchor_behaviors`); ``meta["tags"]`` keeps the original tags and
    ``meta["depends_on"]`` the dependency edges.
    """
    path = require(data_dir(root) / "thought_anchors" / "math_chunks_labeled.jsonl", "Thought Anchors")
    corpus = Corpus(source=str(path))
    for line, obj in iter_jsonl(path):
        try:
            chunks = sorted(obj["chunks"], key=lambda c: c["chunk_idx"])
            steps = [c["chunk"] for c in chunks]
            tags = [list(c.get("function_tags") or []) for c in chunks]
            problem = obj["problem"]
        except (KeyError, TypeError) as exc:
            raise InputError(f"Thought Anchors record lacks field {exc}", path, line) from None
        if not steps:
            corpus.skipped["empty"] += 1
            continue
        corpus.append(Trace(
            trace_id=f"{obj.get('model')}/{obj.get('base_solution_type')}/{obj.get('problem_id')}", steps=steps,
            model=obj.get("model"), question=problem.get("problem"), answer=problem.get("gt_answer"),
            behaviors=thought_anchor_behaviors(steps, tags), source=f"{path}:{line}",
            meta={"tags": tags, "depends_on": [[int(d) for d in c.get("depends_on") or [] if str(d).isdigit()]
                                               for c in chunks],
                  "is_correct": (obj.get("base_solution") or {}).get("is_correct")},
        ))
    return corpus


_STEERING_TAGS = "initializing|deduction|adding-knowledge|example-testing|uncertainty-estimation|backtracking|end-section"
#: ``["label"]`` or, in some upstream records, ``[4. label]`` / ``[label]`` (only the known tag names).
_STEERING_TAG_RE = re.compile(rf'\[(?:"([a-z-]+)"|(?:\d+\.\s*)?({_STEERING_TAGS}))\]')


def parse_steering_annotation(annotated: str) -> tuple[list[tuple[str, str]], int]:
    """Parse ``["label"]text["end-section"]`` (also ``[4. label]`` and ``[label]`` openers) spans into ``(label, text)`` pairs (empty texts dropped).

    Returns the spans and the number of non-empty text pieces that sat outside any labelled span (a few upstream
    records close a section twice or forget an opening tag); those pieces are not steps and are counted, not lost
    silently.
    """
    spans: list[tuple[str, str]] = []
    orphans = 0
    label: str | None = None
    position = 0
    for match in _STEERING_TAG_RE.finditer(annotated):
        text = annotated[position:match.start()].strip()
        if text:
            if label is None:
                orphans += 1
            else:
                spans.append((label, text))
        tag = match.group(1) or match.group(2)
        label = None if tag == "end-section" else tag
        position = match.end()
    tail = annotated[position:].strip()
    if tail:
        if label is None:
            orphans += 1
        else:
            spans.append((label, tail))
    return spans, orphans


def load_steering(model: str, root: str | Path | None = None) -> Corpus:
    """Load one model's file of the steering-thinking-behaviours data; steps = the annotated sentence spans."""
    base = data_dir(root) / "steering_thinking_behaviors"
    path = require(base / f"reasoning_comparison_{model}.json", "steering_thinking_behaviors")
    questions_path = base / "questions.json"
    questions = json.loads(questions_path.read_text()) if questions_path.exists() else []
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path, exc.lineno) from None
    corpus = Corpus(source=str(path))
    for index, record in enumerate(records):
        spans, orphans = parse_steering_annotation(record.get("annotated_response") or "")
        if orphans:
            corpus.skipped["unlabelled text pieces"] += orphans
        if not spans:
            corpus.skipped["empty"] += 1
            continue
        tags = [label for label, _ in spans]
        unknown = sorted({t for t in tags if t not in STEERING_TO_BEHAVIOR})
        if unknown:
            raise InputError(f"record {index} has unknown behaviour tags {unknown}", path)
        question = questions[index]["question"] if index < len(questions) else None
        corpus.append(Trace(
            trace_id=f"{model}/{index}", steps=[text for _, text in spans], model=model, question=question,
            behaviors=[STEERING_TO_BEHAVIOR[t] for t in tags], source=f"{path}:record {index}",
            meta={"tags": tags, "kind": "thinking" if model in STEERING_THINKING else "instruct"},
        ))
    return corpus


@dataclass
class Question:
    """A task: its text, gold answer (may be ``None``), id and an optional human solution."""

    question_id: str
    question: str
    answer: str | None = None
    solution: str | None = None
    source: str | None = None


def _gsm8k_answer(answer: str) -> tuple[str, str]:
    solution, _, final = answer.rpartition("####")
    return final.strip().replace(",", ""), solution.strip()


def load_questions(path: str | Path, limit: int | None = None) -> list[Question]:
    """Load questions from JSONL: ``question``/``problem`` plus ``answer``/``final_answer``/``correct_answer``.

    GSM8K lines (``answer`` holding a rationale that ends in ``#### N``) are split into the final answer and the human
    solution; MATH-500 ``solution`` and OlympiadBench ``solution``/``final_answer`` lists are understood too.
    """
    questions: list[Question] = []
    path = Path(path)
    for line, obj in iter_jsonl(path):
        text = _first_str(obj, "question", "problem", "prompt")
        if text is None:
            raise InputError("a question line needs a 'question' or 'problem' string field", path, line)
        answer: Any = _first_present(obj, "final_answer", "answer", "correct_answer", "gold")
        solution: Any = obj.get("solution")
        if isinstance(answer, list):
            answer = answer[0] if answer else None
        if isinstance(solution, list):
            solution = solution[0] if solution else None
        if isinstance(answer, str) and "####" in answer:
            answer, solution = _gsm8k_answer(answer)
        if answer is not None and not isinstance(answer, str):
            answer = str(answer)
        qid = _first_present(obj, "id", "unique_id", "idx", "question_id")
        questions.append(Question(question_id=str(qid) if qid is not None else f"{path.stem}-{line}",
                                  question=text, answer=answer, solution=solution, source=f"{path}:{line}"))
        if limit is not None and len(questions) >= limit:
            break
    return questions


def _first_present(obj: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in obj and obj[key] is not None:
            return obj[key]
    return None


def _first_str(obj: dict[str, Any], *keys: str) -> str | None:
    value = _first_present(obj, *keys)
    return value if isinstance(value, str) and value.strip() else None


#: Human solutions are short, so they are cut at sentences (and lines) rather than paragraphs.
HUMAN_SEGMENTATION = SegmentConfig(min_chars=15, max_chars=160)
_CALCULATOR_RE = re.compile(r"<<[^>]*>>")


def load_human_solutions(benchmark: str = "gsm8k", limit: int | None = None,
                         root: str | Path | None = None) -> Corpus:
    """Human-written solutions of a benchmark as traces (``model="human-<benchmark>"``).

    GSM8K rationales lose their ``<<calc>>`` annotations and keep one step per line; MATH-500 (and other benchmarks
    with a ``solution``) are cut with :data:`HUMAN_SEGMENTATION` (sentence-level). Questions without a solution are
    skipped and counted.
    """
    from .segment import segment_text

    corpus = Corpus(source=benchmark)
    for question in load_questions(benchmark_path(benchmark, root), limit=limit):
        if not question.solution:
            corpus.skipped["no solution"] += 1
            continue
        text = _CALCULATOR_RE.sub("", question.solution)
        if benchmark == "gsm8k":
            steps = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            steps = segment_text(text, HUMAN_SEGMENTATION)
        if not steps:
            corpus.skipped["empty"] += 1
            continue
        corpus.append(Trace(trace_id=f"{benchmark}/{question.question_id}", steps=steps, model=f"human-{benchmark}",
                            question=question.question, answer=question.answer, source=question.source))
    return corpus


def benchmark_path(name: str, root: str | Path | None = None) -> Path:
    """Path of a benchmark file in the data directory (``gsm8k``, ``math500``, ``aime24``, ``aime25``, ``amc23``,
    ``olympiadbench``, ``minerva_math``)."""
    return require(data_dir(root) / "benchmarks" / f"{name}_test.jsonl", "math benchmarks")
