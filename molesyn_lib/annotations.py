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

from .config import data_dir
from .errors import InputError
from .sources import require
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
        meta={"domain": meta.get("domain")},
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


def annotated_corpus(docs: list[AnnotatedDoc]) -> Corpus:
    """The documents as a corpus of traces whose ``behaviors`` are the mapped human labels."""
    return Corpus(doc.to_trace() for doc in docs)


def shared_documents(first: list[AnnotatedDoc], second: list[AnnotatedDoc]) -> list[tuple[AnnotatedDoc, AnnotatedDoc]]:
    """Pairs of the same document annotated by two annotators with identical node spans."""
    by_id = {doc.doc_id: doc for doc in second}
    return [(doc, by_id[doc.doc_id]) for doc in first if doc.doc_id in by_id and doc.spans == by_id[doc.doc_id].spans]
