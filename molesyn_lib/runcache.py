"""Plumbing shared by the cached experiment runners (lab runs, protection runs, RL runs).

Each runner stores one JSON record per run under the cache directory, keyed by a hash of the run's full config, and
runs uncached configs in spawned worker processes with one torch thread each. This module holds the pieces they
share: cache sub-directories, JSON encoding of numpy values, the atomic record write, and the worker initialiser.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from .config import cache_dir


def cache_subdir(*parts: str) -> Path:
    """``<cache dir>/<parts...>``, created if needed."""
    path = cache_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for numpy arrays and scalars."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a run record atomically (a temporary file per process, then a rename): a killed run leaves no half file."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, default=json_default) + "\n")
    os.replace(tmp, path)


def init_worker(threads: int) -> None:
    """Initialise a worker process: offline Hugging Face, ``threads`` torch threads, TRL's harmless FutureWarning
    (it calls transformers' deprecated ``is_gradient_checkpointing`` every step) silenced."""
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(threads)
