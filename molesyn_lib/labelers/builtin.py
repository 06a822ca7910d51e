"""The explicit list of built-in labellers: importing this module imports each of them, and each registers itself
in :data:`molesyn_lib.labelers.base.LABELERS` with ``@register_labeler``.

The arrows point one way: every labeller imports :mod:`.base`; this module imports the labellers; the package
``molesyn_lib.labelers`` imports both. :mod:`.base` imports no labeller.
"""
from __future__ import annotations

from . import embedding, gold, lexical, llm, trained

#: The modules of the built-in labellers, in the order they register.
BUILTIN_MODULES = (embedding, gold, lexical, llm, trained)

__all__ = ["BUILTIN_MODULES"]
