"""Subcommand modules of the ``molesyn`` CLI; each defines ``register(subparsers)``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError, MolesynError
from ..formats import ReadOptions
from ..traces import Corpus, load_traces


def load_corpus(path: str | Path, model: str | None = None, drop_truncated: bool = False, limit: int | None = None,
                model_word: str = "model", read_options: ReadOptions | None = None) -> Corpus:
    """Load a trace file for a subcommand: the traces of ``model`` (all when None), truncated ones skipped when
    ``drop_truncated``; an :class:`InputError` naming the file when nothing usable is left; a summary on stderr.
    ``model_word`` names the filter in that error (``model`` or ``generator``); ``read_options`` override the format
    detection (:mod:`molesyn_lib.formats`)."""
    corpus = load_traces(path, model=model, truncated="skip" if drop_truncated else "keep", limit=limit,
                         read_options=read_options)
    if not corpus:
        reason = f" for {model_word} {model!r}" if model else ""
        raise InputError(f"no usable traces{reason} ({corpus.summary()})", path)
    print(f"loaded {corpus.summary()}", file=sys.stderr)
    return corpus


def add_http_options(parser: argparse.ArgumentParser, prefix: str = "openai backend: ") -> None:
    """The OpenAI-compatible client's time limits as options (``--timeout``, ``--max-retries``, ``--deadline``);
    unset ones fall back to ``$MOLESYN_OPENAI_TIMEOUT`` / ``_MAX_RETRIES`` / ``_DEADLINE``, then the defaults."""
    from ..backends import OPENAI_DEADLINE_S, OPENAI_MAX_RETRIES, OPENAI_TIMEOUT_S, RETRY_AFTER_MAX_S

    parser.add_argument("--timeout", type=float, metavar="S",
                        help=f"{prefix}seconds one attempt may wait for the server (default {OPENAI_TIMEOUT_S:g})")
    parser.add_argument("--max-retries", type=int, metavar="N",
                        help=f"{prefix}retries after a timeout, connection error, 429 or 5xx (default "
                             f"{OPENAI_MAX_RETRIES}); Retry-After is honoured up to {RETRY_AFTER_MAX_S:g} s")
    parser.add_argument("--deadline", type=float, metavar="S",
                        help=f"{prefix}seconds one request may take over all attempts and waits (default "
                             f"{OPENAI_DEADLINE_S:g}; 0 = no limit)")


def http_options(args: argparse.Namespace) -> dict[str, Any]:
    """The backend options of the :func:`add_http_options` flags that were given."""
    options: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        if not args.timeout > 0:
            raise MolesynError(f"--timeout must be positive, got {args.timeout:g}")
        options["timeout_s"] = args.timeout
    if getattr(args, "max_retries", None) is not None:
        if args.max_retries < 0:
            raise MolesynError(f"--max-retries must be 0 or more, got {args.max_retries}")
        options["max_retries"] = args.max_retries
    if getattr(args, "deadline", None) is not None:
        if args.deadline < 0:
            raise MolesynError(f"--deadline must be 0 (no limit) or positive, got {args.deadline:g}")
        options["deadline_s"] = args.deadline or None
    return options


#: File in a trained lab checkpoint listing its training prompts (``lab train`` writes it, ``lab rl`` excludes them).
TRAIN_PROMPTS_FILE = "train_prompts.txt"


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
