"""Behaviour labellers (registry keyed by name): ``lexical`` (cue lexicon), ``embedding`` (MiniLM + classifier
trained on human annotations), ``llm`` (a judge model behind a generation backend)."""
from .base import Labeler, available_labelers, get_labeler, label_corpus, register_labeler

__all__ = ["Labeler", "available_labelers", "get_labeler", "label_corpus", "register_labeler"]
