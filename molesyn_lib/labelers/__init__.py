"""Behaviour labellers (registry keyed by name): ``trained`` (the default: MiniLM context features + TF-IDF n-grams
with a head trained on molesyn's annotated corpus), ``lexical`` (cue lexicon, the fast baseline), ``embedding``
(MiniLM + classifier trained on the human ReasoningFlow nodes), ``llm`` (a judge model behind a generation backend)."""
from . import builtin  # noqa: F401  (registers the built-in labellers)
from .base import DEFAULT_LABELER, LABELERS, Labeler, available_labelers, get_labeler, label_corpus, register_labeler

__all__ = [
    "DEFAULT_LABELER", "LABELERS", "Labeler", "available_labelers", "get_labeler", "label_corpus", "register_labeler",
]
