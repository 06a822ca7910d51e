"""The annotated step corpus as stand-off annotation: references into the data directory, never the texts.

The source texts may not be committed, so each annotated step is stored as a reference (``annotation/corpus.jsonl``):

    {"uid": "rf-aime-0042-07", "source": "reasoningflow/aime2024_5models.jsonl", "doc_id": "aime2024_3_QwQ-32B",
     "segmenter": "paragraph-markers/1", "step_index": 7, "n_steps": 88, "sha1": "3f2a...", "model": "QwQ-32B",
     "group": "long-cot", "window": "w017", "labels": {"a": "R", "b": "R"}, "label": "R"}

:func:`load_annotated_corpus` rebuilds the texts from the data directory with the named segmenter and checks every
step against its hash: a mismatch (other data, another segmenter) is one clear :class:`InputError` naming the corpus
file and line. :func:`sample_windows` draws the windows of consecutive steps that the annotation passes labelled.

Sources (``source`` field):

* ``reasoningflow/<file>``: ReasoningFlow traces, ``doc_id`` as in the file;
* ``steering/<model>``: the ``response`` of record ``doc_id`` (its index) of the steering-thinking-behaviours file;
* ``human/<benchmark>``: the human solution of question ``doc_id`` (GSM8K one step per line, MATH-500 sentences).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .behaviors import STATES
from .config import PROJECT_ROOT, data_dir
from .errors import InputError, UnknownNameError
from .segment import SegmentConfig, segment_text
from .traces import Trace, iter_jsonl, split_thinking

#: Where the annotated corpus lives in the repository.
CORPUS_PATH = PROJECT_ROOT / "annotation" / "corpus.jsonl"

HUMAN_SENTENCES = SegmentConfig(min_chars=15, max_chars=160)

#: Named, versioned segmenters: a stored step index means something only together with the segmenter that cut it.
SEGMENTERS: dict[str, Callable[[str], list[str]]] = {
    "paragraph-markers/1": lambda text: segment_text(text, SegmentConfig()),
    "human-lines/1": lambda text: [line.strip() for line in text.splitlines() if line.strip()],
    "human-sentences/1": lambda text: segment_text(text, HUMAN_SENTENCES),
}


def step_hash(text: str) -> str:
    """The hash stored for a step (sha1 of its UTF-8 text, first 16 hex digits)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class SourceDoc:
    """One document of a source, cut into steps by a named segmenter."""

    source: str
    doc_id: str
    segmenter: str
    steps: list[str]
    model: str
    group: str
    question: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


_REASONING = ("DeepSeek-R1", "QwQ-32B", "gpt-oss-120b")


def _segment(segmenter: str, text: str) -> list[str]:
    if segmenter not in SEGMENTERS:
        raise UnknownNameError(f"unknown segmenter {segmenter!r}; expected one of {', '.join(SEGMENTERS)}")
    return SEGMENTERS[segmenter](text)


def _reasoningflow_docs(name: str, root: Path) -> dict[str, SourceDoc]:
    path = root / "reasoningflow" / "traces" / name
    docs: dict[str, SourceDoc] = {}
    for _line, obj in iter_jsonl(path):
        thinking, _final, _truncated = split_thinking(obj.get("response") or "")
        generator = str(obj.get("generator"))
        docs[str(obj["doc_id"])] = SourceDoc(
            source=f"reasoningflow/{name}", doc_id=str(obj["doc_id"]), segmenter="paragraph-markers/1",
            steps=_segment("paragraph-markers/1", thinking), model=generator,
            group="long-cot" if generator in _REASONING else "instruct", question=obj.get("question"),
            meta={"domain": obj.get("domain")})
    return docs


def _steering_docs(model: str, root: Path) -> dict[str, SourceDoc]:
    from .sources import STEERING_THINKING

    base = root / "steering_thinking_behaviors"
    path = base / f"reasoning_comparison_{model}.json"
    if not path.is_file():
        raise InputError("no such file", path)
    records = json.loads(path.read_text(encoding="utf-8"))
    questions_path = base / "questions.json"
    questions = json.loads(questions_path.read_text(encoding="utf-8")) if questions_path.exists() else []
    docs: dict[str, SourceDoc] = {}
    for index, record in enumerate(records):
        thinking, _final, _truncated = split_thinking(record.get("response") or "")
        question = questions[index].get("question") if index < len(questions) else None
        docs[str(index)] = SourceDoc(
            source=f"steering/{model}", doc_id=str(index), segmenter="paragraph-markers/1",
            steps=_segment("paragraph-markers/1", thinking), model=model,
            group="distilled" if model in STEERING_THINKING else "instruct", question=question)
    return docs


def _human_docs(benchmark: str, root: Path) -> dict[str, SourceDoc]:
    from .sources import _CALCULATOR_RE, benchmark_path, load_questions

    segmenter = "human-lines/1" if benchmark == "gsm8k" else "human-sentences/1"
    docs: dict[str, SourceDoc] = {}
    for question in load_questions(benchmark_path(benchmark, root)):
        if not question.solution:
            continue
        steps = _segment(segmenter, _CALCULATOR_RE.sub("", question.solution))
        if steps:
            docs[question.question_id] = SourceDoc(
                source=f"human/{benchmark}", doc_id=question.question_id, segmenter=segmenter, steps=steps,
                model=f"human-{benchmark}", group="human", question=question.question)
    return docs


def source_documents(source: str, root: str | Path | None = None) -> dict[str, SourceDoc]:
    """All documents of one source (``reasoningflow/<file>``, ``steering/<model>``, ``human/<benchmark>``)."""
    base = data_dir(root)
    kind, _, name = source.partition("/")
    if kind == "reasoningflow":
        return _reasoningflow_docs(name, base)
    if kind == "steering":
        return _steering_docs(name, base)
    if kind == "human":
        return _human_docs(name, base)
    raise UnknownNameError(f"unknown annotation source {source!r}; expected reasoningflow/FILE, steering/MODEL "
                           "or human/BENCHMARK")


# -- the stored corpus ----------------------------------------------------------------------------------------------
@dataclass
class AnnotatedStep:
    """One annotated step: where its text is, the labels of each pass and the adjudicated label."""

    uid: str
    source: str
    doc_id: str
    segmenter: str
    step_index: int
    sha1: str
    model: str
    group: str
    window: str
    n_steps: int
    labels: dict[str, str]
    label: str | None
    text: str = ""

    def to_record(self) -> dict[str, Any]:
        return {"uid": self.uid, "source": self.source, "doc_id": self.doc_id, "segmenter": self.segmenter,
                "step_index": self.step_index, "n_steps": self.n_steps, "sha1": self.sha1, "model": self.model,
                "group": self.group, "window": self.window, "labels": self.labels, "label": self.label}


def read_standoff(path: str | Path = CORPUS_PATH, root: str | Path | None = None,
                  with_text: bool = True) -> list[AnnotatedStep]:
    """Read the stand-off corpus and (``with_text``) rebuild each step's text from the data directory.

    Raises :class:`InputError` naming ``path`` and the line when a record lacks a field, names a document that is
    not in the source, an index past the document's end, or a step whose text does not match its hash.
    """
    path = Path(path)
    steps: list[AnnotatedStep] = []
    documents: dict[str, dict[str, SourceDoc]] = {}
    for line, obj in iter_jsonl(path):
        try:
            step = AnnotatedStep(
                uid=str(obj["uid"]), source=str(obj["source"]), doc_id=str(obj["doc_id"]),
                segmenter=str(obj["segmenter"]), step_index=int(obj["step_index"]), sha1=str(obj["sha1"]),
                model=str(obj.get("model", "")), group=str(obj.get("group", "")), window=str(obj.get("window", "")),
                n_steps=int(obj.get("n_steps", 0)), labels=dict(obj.get("labels") or {}), label=obj.get("label"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"stand-off record lacks or mistypes field {exc}", path, line) from None
        if step.label is not None and step.label not in STATES:
            raise InputError(f"label {step.label!r} is not one of N/D/R/E", path, line)
        if with_text:
            if step.source not in documents:
                try:
                    documents[step.source] = source_documents(step.source, root)
                except InputError as exc:
                    raise InputError(f"cannot read the source {step.source!r} ({exc})", path, line) from None
            doc = documents[step.source].get(step.doc_id)
            if doc is None:
                raise InputError(f"document {step.doc_id!r} is not in {step.source}", path, line)
            if doc.segmenter != step.segmenter:
                raise InputError(f"step was cut by segmenter {step.segmenter!r} but {step.source} is now cut by "
                                 f"{doc.segmenter!r}", path, line)
            if step.step_index >= len(doc.steps):
                raise InputError(f"step {step.step_index} is past the end of {step.doc_id} ({len(doc.steps)} "
                                 "steps): the data or the segmenter changed", path, line)
            text = doc.steps[step.step_index]
            if step_hash(text) != step.sha1:
                raise InputError(f"hash mismatch for step {step.step_index} of {step.doc_id} in {step.source} "
                                 f"(stored {step.sha1}, data gives {step_hash(text)}): the data or the segmenter "
                                 "changed", path, line)
            step.text = text
        steps.append(step)
    return steps


def write_standoff(steps: Sequence[AnnotatedStep], path: str | Path = CORPUS_PATH) -> Path:
    """Write the stand-off records (no texts) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for step in steps:
            handle.write(json.dumps(step.to_record(), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def load_annotated_corpus(path: str | Path = CORPUS_PATH, root: str | Path | None = None,
                          label: str = "adjudicated") -> list[Trace]:
    """The annotated corpus as traces: one trace per window, ``behaviors`` = the adjudicated labels (or the labels
    of pass ``label``). Each trace's ``meta`` holds the document's full step list context: ``doc_steps`` (all steps
    of the source document), ``offset`` (index of the window's first step in it), ``group`` and ``source``."""
    steps = read_standoff(path, root, with_text=True)
    documents: dict[str, dict[str, SourceDoc]] = {}
    windows: dict[str, list[AnnotatedStep]] = {}
    for step in steps:
        windows.setdefault(step.window, []).append(step)
    traces: list[Trace] = []
    for window, members in windows.items():
        members.sort(key=lambda s: s.step_index)
        first = members[0]
        if first.source not in documents:
            documents[first.source] = source_documents(first.source, root)
        doc = documents[first.source][first.doc_id]
        labels = [(s.label if label == "adjudicated" else s.labels.get(label)) for s in members]
        if any(lab not in STATES for lab in labels):
            raise InputError(f"window {window} has steps without a {label!r} label", path)
        traces.append(Trace(
            trace_id=window, steps=[s.text for s in members], model=first.model, question=doc.question,
            behaviors=[str(lab) for lab in labels], source=f"{first.source}#{first.doc_id}",
            meta={"doc_id": first.doc_id, "source": first.source, "group": first.group, "offset": first.step_index,
                  "doc_steps": doc.steps, "uids": [s.uid for s in members],
                  "pass_labels": {name: [s.labels.get(name) for s in members] for name in members[0].labels}}))
    return traces


# -- sampling the windows that were annotated -----------------------------------------------------------------------
@dataclass(frozen=True)
class SamplePlan:
    """How many windows of how many steps to draw from each source (and which models of it)."""

    source: str
    windows: int
    window_steps: int = 10
    models: tuple[str, ...] | None = None


#: The plan the corpus was drawn with (seed 0): about 3,300 steps.
DEFAULT_PLAN: tuple[SamplePlan, ...] = (
    SamplePlan("reasoningflow/aime2024_5models.jsonl", 36, models=_REASONING),
    SamplePlan("reasoningflow/gpqa_diamond_5models.jsonl", 105, models=_REASONING),
    SamplePlan("reasoningflow/bright_theoremqa_3models.jsonl", 44, models=("DeepSeek-R1", "QwQ-32B")),
    SamplePlan("reasoningflow/aime2024_5models.jsonl", 10, window_steps=12,
               models=("DeepSeek-V3", "Qwen2.5-32B-Instruct")),
    SamplePlan("reasoningflow/gpqa_diamond_5models.jsonl", 24, window_steps=12,
               models=("DeepSeek-V3", "Qwen2.5-32B-Instruct")),
    SamplePlan("reasoningflow/bright_theoremqa_3models.jsonl", 6, window_steps=12, models=("Qwen2.5-32B-Instruct",)),
    *(SamplePlan(f"steering/{m}", 12) for m in ("deepseek-r1-distill-llama-8b", "deepseek-r1-distill-llama-70b",
                                                 "deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-14b",
                                                 "deepseek-r1-distill-qwen-32b")),
    *(SamplePlan(f"steering/{m}", 8, window_steps=10) for m in ("llama-3.1-8b-instruct", "llama-3.3-70b-instruct",
                                                                 "qwen2.5-1.5b-instruct", "qwen2.5-14b-instruct",
                                                                 "qwen2.5-32b-instruct")),
    SamplePlan("human/gsm8k", 60, window_steps=8),
    SamplePlan("human/math500", 25, window_steps=10),
)


def sample_windows(plan: Sequence[SamplePlan] = DEFAULT_PLAN, seed: int = 0,
                   root: str | Path | None = None) -> list[AnnotatedStep]:
    """Draw windows of consecutive steps (distinct documents per source, models balanced, a random start inside the
    document; a document shorter than the window is taken whole). Returns unlabelled :class:`AnnotatedStep` s."""
    rng = np.random.default_rng(seed)
    out: list[AnnotatedStep] = []
    used: set[tuple[str, str]] = set()
    cache: dict[str, dict[str, SourceDoc]] = {}
    counter = 0
    for item in plan:
        docs = cache.setdefault(item.source, source_documents(item.source, root))
        candidates = [d for d in docs.values() if (item.models is None or d.model in item.models)
                      and len(d.steps) >= 2 and (d.source, d.doc_id) not in used]
        models = sorted({d.model for d in candidates})
        by_model = {m: [d for d in candidates if d.model == m] for m in models}
        for m in models:
            rng.shuffle(by_model[m])  # type: ignore[arg-type]
        picked: list[SourceDoc] = []
        while len(picked) < item.windows and any(by_model.values()):
            for m in models:
                if by_model[m] and len(picked) < item.windows:
                    picked.append(by_model[m].pop())
        for doc in picked:
            used.add((doc.source, doc.doc_id))
            n = len(doc.steps)
            start = int(rng.integers(0, max(n - item.window_steps, 0) + 1))
            window = f"w{counter:04d}"
            counter += 1
            for index in range(start, min(start + item.window_steps, n)):
                out.append(AnnotatedStep(
                    uid=f"{window}-{index - start:02d}", source=doc.source, doc_id=doc.doc_id,
                    segmenter=doc.segmenter, step_index=index, sha1=step_hash(doc.steps[index]), model=doc.model,
                    group=doc.group, window=window, n_steps=n, labels={}, label=None, text=doc.steps[index]))
    return out


def read_label_lines(path: str | Path) -> dict[str, str]:
    """Read an annotation pass's ``<uid> <LABEL>`` lines; a malformed line is an :class:`InputError` naming it."""
    labels: dict[str, str] = {}
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in STATES:
                raise InputError(f"expected '<uid> <N|D|R|E>', got {line.strip()[:60]!r}", path, number)
            if parts[0] in labels and labels[parts[0]] != parts[1]:
                raise InputError(f"uid {parts[0]} labelled twice with different labels", path, number)
            labels[parts[0]] = parts[1]
    return labels


def merge_passes(steps: Sequence[AnnotatedStep], passes: dict[str, dict[str, str]],
                 adjudicated: dict[str, str] | None = None) -> list[AnnotatedStep]:
    """Attach each pass's labels to the steps; the adjudicated label is the passes' common label where they agree
    and ``adjudicated[uid]`` where they do not (a disagreement without an adjudication raises ``ValueError``)."""
    adjudicated = adjudicated or {}
    out: list[AnnotatedStep] = []
    for step in steps:
        labels = {name: labels_of[step.uid] for name, labels_of in passes.items() if step.uid in labels_of}
        missing = [name for name in passes if name not in labels]
        if missing:
            raise ValueError(f"step {step.uid} has no label from pass(es) {missing}")
        values = set(labels.values())
        if len(values) == 1:
            final = values.pop()
        elif step.uid in adjudicated:
            final = adjudicated[step.uid]
        else:
            raise ValueError(f"passes disagree on {step.uid} ({labels}) and it was not adjudicated")
        out.append(AnnotatedStep(**{**step.__dict__, "labels": labels, "label": final}))
    return out
