"""Subcommand modules of the ``molesyn`` CLI; each defines ``register(subparsers)``."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError, MolesynError
from ..traces import Corpus, load_traces


def load_corpus(path: str | Path, model: str | None = None, drop_truncated: bool = False, limit: int | None = None,
                model_word: str = "model") -> Corpus:
    """Load a trace file for a subcommand: the traces of ``model`` (all when None), truncated ones skipped when
    ``drop_truncated``; an :class:`InputError` naming the file when nothing usable is left; a summary on stderr.
    ``model_word`` names the filter in that error (``model`` or ``generator``)."""
    corpus = load_traces(path, model=model, truncated="skip" if drop_truncated else "keep", limit=limit)
    if not corpus:
        reason = f" for {model_word} {model!r}" if model else ""
        raise InputError(f"no usable traces{reason} ({corpus.summary()})", path)
    print(f"loaded {corpus.summary()}", file=sys.stderr)
    return corpus


def student_task_config(meta: dict, length: int | None = None):
    """The lab :class:`~molesyn_lib.lab.tasks.TaskConfig` a student was trained on (its ``meta["task"]``, with the
    lab's defaults for missing fields), ``length`` overriding the chain length; :class:`MolesynError` on bad values."""
    from ..lab.tasks import TaskConfig

    task = meta.get("task") or {}
    try:
        return TaskConfig(length=int(length or task.get("length", 5)), operand_max=int(task.get("operand_max", 9)),
                          operators=str(task.get("operators") or "+-*"), modulus=int(task.get("modulus", 10)))
    except (TypeError, ValueError) as exc:
        raise MolesynError(f"bad task settings ({exc})") from None
