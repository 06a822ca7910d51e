"""Ground truth for the behaviour labellers: human ReasoningFlow graphs mapped to N/D/R/E, and silver tag tables.

ReasoningFlow annotates a trace as a graph of sentence-level nodes (labels such as *reasoning*, *planning*,
*reflection*) and typed edges (``reason:infer``, ``plan:backtrack``, ``reflect:negative`` ...; the guideline is in
``reasoningflow/schema``). The paper labels steps N/D/R/E. Our mapping of a response node, first match wins:

==========  =====================================================================================================
behaviour   rule
==========  =====================================================================================================
R           node label ``reflection``, or the node is the target of a ``reflect:*``, ``validate:*`` or
            ``plan:verify`` edge (it comments on, checks or re-confirms earlier nodes: a hydrogen bond)
E           the node is the target of a ``plan:backtrack`` edge (an alternative plan: a van der Waals jump)
D           node label ``conclusion`` or ``assumption``, or a ``reasoning`` node reached by a ``reason:infer`` edge
            (a new derived proposition or hidden assumption: a covalent bond)
N           everything else: restatements, recalled facts, plans that proceed or decompose, examples, and
            ``reasoning`` nodes that only execute a plan (direct computation)
==========  =====================================================================================================

Human annotators A and B each share documents with annotator D (10 and 11 documents, identical node spans), which
gives the inter-annotator ceiling. Silver tags of Thought Anchors and of the steering-behaviours data are mapped by
:data:`THOUGHT_ANCHOR_TO_BEHAVIOR` and :data:`STEERING_TO_BEHAVIOR`; these silver sets are cross-checks only.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import data_dir, require
from .errors import InputError
from .traces import Corpus, Trace, iter_jsonl

HUMAN_FILES = {"A": "v0_human_A.jsonl", "B": "v0_human_B.jsonl", "D": "v0_human_D.jsonl"}

REFLECTION_EDGES = ("reflect:positive", "reflect:negative", "reflect:uncertain", "validate:support",
                    "validate:attack", "plan:verify")
EXPLORATION_EDGES = ("plan:backtrack",)

#: Thought Anchors function tag -> behaviour (``plan_generation`` is E when it proposes an alternative, see below).
THOUGHT_ANCHOR_TO_BEHAVIOR = {
    "problem_setup": "N", "fact_retrieval": "N", "active_computation": "N", "final_answer_emission": "N",
    "result_consolidation": "D", "plan_generation": "D", "self_checking": "R", "uncertainty_management": "R",
}
_ALTERNATIVE_RE = re.compile(r"^\W*(alternatively|another|or maybe|maybe|what if|perhaps|let me try|instead)\b", re.IGNORECASE)

#: Steering-thinking-behaviours tag -> behaviour.
STEERING_TO_BEHAVIOR = {
    "initializing": "N", "adding-knowledge": "N", "deduction": "D", "example-testing": "R",
    "uncertainty-estimation": "R", "backtracking": "E",
}


def reasoningflow_node_behavior(label: str, incoming: set[str]) -> str:
    """Map a ReasoningFlow response node (its label and the labels of its incoming edges) to N/D/R/E."""
    if label == "reflection" or incoming & set(REFLECTION_EDGES):
        return "R"
    if incoming & set(EXPLORATION_EDGES):
        return "E"
    if label in ("conclusion", "assumption") or (label == "reasoning" and "reason:infer" in incoming):
        return "D"
    return "N"


def thought_anchor_behaviors(steps: list[str], tags: list[list[str]]) -> list[str]:
    """Map Thought Anchors chunks to behaviours: R beats D beats N among a chunk's tags; a ``plan_generation``
    chunk that opens with an alternative cue ("Alternatively", "Maybe", "What if", ...) or follows an
    ``uncertainty_management`` chunk is E."""
    out: list[str] = []
    for i, (text, chunk_tags) in enumerate(zip(steps, tags)):
        mapped = [THOUGHT_ANCHOR_TO_BEHAVIOR.get(t, "N") for t in chunk_tags] or ["N"]
        if "plan_generation" in chunk_tags and (
            _ALTERNATIVE_RE.search(text) or (i > 0 and "uncertainty_management" in tags[i - 1])
        ):
            out.append("E")
            continue
        for behavior in ("R", "D", "N"):
            if behavior in mapped:
                out.append(behavior)
                break
    return out


@dataclass
class AnnotatedDoc:
    """One human-annotated ReasoningFlow document: its response nodes in order, with original and mapped labels."""

    doc_id: str
    annotator: str
    steps: list[str]
    node_labels: list[str]
    behaviors: list[str]
    spans: list[tuple[int, int]]
    question: str | None = None
    model: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_trace(self) -> Trace:
        return Trace(trace_id=self.doc_id, steps=list(self.steps), model=self.model, question=self.question,
                     behaviors=list(self.behaviors), meta={"annotator": self.annotator, **self.meta})


def parse_reasoningflow_doc(obj: dict[str, Any], path: str | Path = "<memory>", line: int = 0) -> AnnotatedDoc:
    """Turn one ReasoningFlow graph record into an :class:`AnnotatedDoc` (response nodes sorted by offset)."""
    try:
        nodes = [n for n in obj["nodes"] if n.get("source") == "response"]
        edges = obj["edges"]
        doc_id = obj["doc_id"]
    except (KeyError, TypeError) as exc:
        raise InputError(f"ReasoningFlow record lacks field {exc}", path, line) from None
    incoming: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        incoming[edge.get("dest_node_id")].add(edge.get("label") or "")
    nodes.sort(key=lambda n: (n.get("start", 0), n.get("end", 0)))
    meta = obj.get("metadata") or {}
    return AnnotatedDoc(
        doc_id=doc_id, annotator=str(meta.get("annotator", "?")),
        steps=[n.get("text", "") for n in nodes], node_labels=[n.get("label", "") for n in nodes],
        behaviors=[reasoningflow_node_behavior(n.get("label", ""), incoming[n["id"]]) for n in nodes],
        spans=[(int(n.get("start", 0)), int(n.get("end", 0))) for n in nodes],
        question=(obj.get("raw_text") or {}).get("question"), model=meta.get("generator"),
        meta={"domain": meta.get("domain"), "response": (obj.get("raw_text") or {}).get("response")},
    )


def load_human_annotations(annotator: str = "D", root: str | Path | None = None) -> list[AnnotatedDoc]:
    """Load the human ReasoningFlow annotations of one annotator (``A``, ``B`` or ``D``; D covers all 31 documents)."""
    if annotator not in HUMAN_FILES:
        raise ValueError(f"annotator must be one of {sorted(HUMAN_FILES)}, got {annotator!r}")
    path = require(data_dir(root) / "reasoningflow" / "annotations_human" / HUMAN_FILES[annotator],
                   "ReasoningFlow human annotations")
    return [parse_reasoningflow_doc(obj, path, line) for line, obj in iter_jsonl(path)]


def load_silver_annotations(root: str | Path | None = None, name: str = "v1_human_D.jsonl") -> list[AnnotatedDoc]:
    """Load the v1 ReasoningFlow graphs (Gemini drafts corrected by a person: silver) of R1/QwQ/gpt-oss/V3/Qwen."""
    path = require(data_dir(root) / "reasoningflow" / "annotations_human" / name, "ReasoningFlow v1 annotations")
    return [parse_reasoningflow_doc(obj, path, line) for line, obj in iter_jsonl(path)]


GEMINI_FILE = "aime2024_gemini_graphs.jsonl"


def load_gemini_graphs(root: str | Path | None = None, thinking_only: bool = True) -> list[AnnotatedDoc]:
    """The Gemini-labelled (silver) ReasoningFlow graphs of the AIME-2024 traces of all five generators.

    ``thinking_only`` keeps the nodes inside the thinking block of reasoning models (before ``</think>``, as
    molesyn's own steps are) and drops nodes that hold only a tag or whitespace (Gemini labels ``<think>`` itself).
    Document ids match the ReasoningFlow traces (``aime2024_<k>_<generator>``).
    """
    path = require(data_dir(root) / "reasoningflow" / "annotations_llm" / GEMINI_FILE, "Gemini silver graphs")
    docs = []
    for line, obj in iter_jsonl(path):
        doc = parse_reasoningflow_doc(obj, path, line)
        response = doc.meta.get("response") or ""
        end = response.find("</think>") if thinking_only else -1
        keep = [i for i, (text, (start, _)) in enumerate(zip(doc.steps, doc.spans))
                if text.replace("<think>", "").replace("</think>", "").strip() and (end < 0 or start < end)]
        doc.steps = [doc.steps[i] for i in keep]
        doc.node_labels = [doc.node_labels[i] for i in keep]
        doc.behaviors = [doc.behaviors[i] for i in keep]
        doc.spans = [doc.spans[i] for i in keep]
        doc.model = str((obj.get("metadata") or {}).get("generator") or doc.model)
        docs.append(doc)
    return docs


def locate_steps(text: str, steps: list[str]) -> list[tuple[int, int]]:
    """Character spans of ``steps`` (cut from ``text`` in order, possibly re-joined by the segmenter) in ``text``.

    Each step is found from the end of the previous one by its first and last 40 characters; a step that cannot
    be found gets an empty span at the cursor (it then overlaps no node)."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for step in steps:
        head, tail = step[:40], step[-40:]
        start = text.find(head, cursor)
        if start < 0:
            spans.append((cursor, cursor))
            continue
        end_at = text.find(tail, start + max(len(step) - 40 - 200, 0))
        end = end_at + len(tail) if end_at >= 0 else start + len(step)
        spans.append((start, end))
        cursor = end
    return spans


def labels_by_overlap(step_spans: list[tuple[int, int]], node_spans: list[tuple[int, int]],
                      node_behaviors: list[str]) -> list[str | None]:
    """The behaviour of each step by the nodes it overlaps: the behaviour covering most of its characters (ties:
    R > E > D > N, the rarer moves first); ``None`` for a step that overlaps no node."""
    out: list[str | None] = []
    rank = {"R": 3, "E": 2, "D": 1, "N": 0}
    for start, end in step_spans:
        cover: dict[str, int] = defaultdict(int)
        for (a, b), behavior in zip(node_spans, node_behaviors):
            overlap = min(end, b) - max(start, a)
            if overlap > 0:
                cover[behavior] += overlap
        out.append(max(cover, key=lambda k: (cover[k], rank[k])) if cover else None)
    return out


def project_step_docs(docs: list[AnnotatedDoc], segment: Any = None) -> list[Trace]:
    """The annotated documents re-cut by molesyn's segmenter (``segment``: text -> steps, default the paragraph /
    marker segmenter), each step labelled by the annotated nodes it overlaps (:func:`labels_by_overlap`); steps
    that overlap no node are dropped and counted in ``meta["unaligned"]``."""
    from .segment import segment_text
    from .traces import split_thinking

    segment = segment or segment_text
    traces: list[Trace] = []
    for doc in docs:
        response = doc.meta.get("response") or ""
        thinking, _final, _truncated = split_thinking(response)
        offset = response.find(thinking) if thinking else 0
        steps = segment(thinking)
        spans = [(a + offset, b + offset) for a, b in locate_steps(thinking, steps)]
        labels = labels_by_overlap(spans, doc.spans, doc.behaviors)
        kept = [(s, lab) for s, lab in zip(steps, labels) if lab is not None]
        if not kept:
            continue
        traces.append(Trace(trace_id=doc.doc_id, steps=[s for s, _ in kept], model=doc.model,
                            question=doc.question, behaviors=[str(lab) for _, lab in kept],
                            meta={"annotator": doc.annotator, "unaligned": len(steps) - len(kept)}))
    return traces


def annotated_corpus(docs: list[AnnotatedDoc]) -> Corpus:
    """The documents as a corpus of traces whose ``behaviors`` are the mapped human labels."""
    return Corpus(doc.to_trace() for doc in docs)


def shared_documents(first: list[AnnotatedDoc], second: list[AnnotatedDoc]) -> list[tuple[AnnotatedDoc, AnnotatedDoc]]:
    """Pairs of the same document annotated by two annotators with identical node spans."""
    by_id = {doc.doc_id: doc for doc in second}
    return [(doc, by_id[doc.doc_id]) for doc in first if doc.doc_id in by_id and doc.spans == by_id[doc.doc_id].spans]
