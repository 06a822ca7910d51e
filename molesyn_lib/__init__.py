"""molesyn: the executable companion to "The Molecular Structure of Thought" (Chen et al., arXiv 2601.06002).

Analyse Long-CoT traces as molecules (steps labelled Normal / Deep reasoning / self-Reflection / self-Exploration),
estimate and compare their behaviour transfer graphs, and synthesise traces with MOLE-SYN.

Typical use::

    from molesyn_lib import load_traces, get_labeler, TransferGraph
    corpus = load_traces("traces.jsonl")
    labels = get_labeler("lexical").label(corpus)
    graph = TransferGraph.from_sequences(labels, labeler="lexical")
"""
from __future__ import annotations

__version__ = "0.1.0"

from .behaviors import BONDS, DEFINITIONS, NAMES, STATES
from .errors import DataMissingError, InputError, MolesynError
from .labelers import available_labelers, get_labeler, label_corpus
from .segment import SegmentConfig, segment_text
from .traces import Corpus, Trace, load_traces, save_traces
from .transfer import (
    TransferGraph,
    bootstrap_stability,
    correlation_matrix,
    js_distance,
    load_graph,
    pearson,
)

__all__ = [
    "BONDS", "DEFINITIONS", "NAMES", "STATES", "Corpus", "DataMissingError", "InputError", "MolesynError",
    "SegmentConfig", "Trace", "TransferGraph", "available_labelers", "bootstrap_stability", "correlation_matrix",
    "get_labeler", "js_distance", "label_corpus", "load_graph", "load_traces", "pearson", "save_traces",
    "segment_text",
]
